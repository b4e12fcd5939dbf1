//! Where a request of ours goes: a plain URL (local work), or a name resolved on chain and reached
//! over the pinned channel (docs/secure-channel.md) — one [`Peer::send`] for both, so the gateway's
//! delivery, the CLI's commands and the rest are configured with either and do not care which.

use super::{PinCache, ReloadingCert, request};
use crate::AddressBook;
use crate::wire::{Answer, HttpError};
use alloy::providers::DynProvider;
use alloy::transports::http::reqwest;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Where a peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A base URL such as `http://127.0.0.1:8080`: plain HTTP (or HTTPS through the web PKI),
    /// nothing pinned — for local work.
    Url(String),
    /// A name on chain and its server's TCP port (the chain holds the address, not the port):
    /// the pinned TLS 1.3 channel, the server's key checked against the chain at every connection.
    Name {
        /// The name, e.g. `svc.iot`.
        name: String,
        /// The port.
        port: u16,
    },
}

impl std::fmt::Display for Target {
    /// The form [`Target::parse`] reads back: the URL, or `NAME:PORT`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => f.write_str(url),
            Self::Name { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

impl Target {
    /// The target a config section names with `name` and `port` (the pinned channel) or `url`
    /// (plain, for local work) — exactly one of the two.
    pub fn from_config(name: Option<&str>, port: u16, url: Option<&str>) -> Result<Self, String> {
        match (name, url) {
            (Some(name), None) => {
                crate::names::validate_name(name).map_err(|e| format!("name: {e}"))?;
                Ok(Self::Name { name: name.to_string(), port })
            }
            (None, Some(url)) => Ok(Self::Url(url.trim_end_matches('/').to_string())),
            _ => Err("set either name (the pinned TLS channel) or url (plain, for local work), not both".into()),
        }
    }

    /// `http://…` or `https://…` is a URL; anything else is `NAME[:PORT]`, a name on chain
    /// (port 443 if none is given).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.contains("://") {
            return Ok(Self::Url(text.trim_end_matches('/').to_string()));
        }
        let (name, port) = match text.rsplit_once(':') {
            Some((name, port)) => (name, port.parse().map_err(|_| format!("{port:?} is not a port (in {text:?})"))?),
            None => (text, 443),
        };
        crate::names::validate_name(name).map_err(|e| format!("{text:?} is neither a URL nor NAME[:PORT]: {e}"))?;
        Ok(Self::Name { name: name.to_string(), port })
    }
}

/// A peer's API: one request at a time, each on a connection of its own when the peer is a name
/// (so each is checked against the chain of its time; the name's record is read once per block).
#[derive(Debug)]
pub struct Peer {
    target: Target,
    timeout: Duration,
    route: Route,
}

/// How requests reach the peer.
#[derive(Debug)]
enum Route {
    /// Plain HTTP (reqwest).
    Url(reqwest::Client),
    /// The pinned channel, checked against this chain.
    Pinned { provider: DynProvider, book: AddressBook, pins: PinCache, client_cert: Option<Arc<ReloadingCert>> },
}

impl Peer {
    /// A peer at `target`, each request (a name's handshake included) within `timeout`. A name is
    /// checked against the chain of `provider` and `book`, and `client_cert` is presented if its
    /// server asks for one (mutual TLS: its key pinned under the client's own name).
    pub fn new(
        target: Target,
        provider: DynProvider,
        book: AddressBook,
        timeout: Duration,
        client_cert: Option<Arc<ReloadingCert>>,
    ) -> Self {
        let route = match &target {
            Target::Url(_) => {
                Route::Url(reqwest::Client::builder().timeout(timeout).build().expect("an HTTP client builds"))
            }
            Target::Name { .. } => Route::Pinned { provider, book, pins: PinCache::default(), client_cert },
        };
        Self { target, timeout, route }
    }

    /// The URL of `path` at this peer (`https://NAME:PORT/…` for a name), for messages and logs.
    pub fn url_of(&self, path: &str) -> String {
        match &self.target {
            Target::Url(base) => format!("{base}{path}"),
            Target::Name { name, port } => format!("https://{name}:{port}{path} (pinned on chain)"),
        }
    }

    /// POSTs `body` (JSON text, sent as is) to `path`, and reads the answer whatever its status.
    pub async fn send(&self, path: &str, body: String) -> Result<Answer, HttpError> {
        let (status, answer) = self.request(path, Some(body)).await?;
        let text = String::from_utf8_lossy(&answer);
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()));
        Ok(Answer { url: self.url_of(path), status, body })
    }

    /// One request — POST with `body` (JSON text), GET without — whatever its answer's status:
    /// (status, the body's bytes as they came).
    pub async fn request(&self, path: &str, body: Option<String>) -> Result<(u16, bytes::Bytes), HttpError> {
        let url = self.url_of(path);
        match (&self.route, &self.target) {
            (Route::Url(http), _) => {
                let unreachable = |e: reqwest::Error| HttpError::Unreachable { url: url.clone(), source: e.into() };
                let request = match body {
                    Some(body) => http.post(&url).header("content-type", "application/json").body(body),
                    None => http.get(&url),
                };
                let answer = request.send().await.map_err(unreachable)?;
                let status = answer.status().as_u16();
                Ok((status, answer.bytes().await.map_err(unreachable)?))
            }
            (Route::Pinned { provider, book, pins, client_cert }, Target::Name { name, port }) => {
                let unreachable = |e: super::TlsError| HttpError::Unreachable { url: url.clone(), source: e.into() };
                let (stream, session) = pins
                    .connect(provider, book, name, *port, self.timeout, client_cert.clone())
                    .await
                    .map_err(unreachable)?;
                request(stream, &session, name, path, body, self.timeout).await.map_err(unreachable)
            }
            (Route::Pinned { .. }, Target::Url(_)) => unreachable!("Peer::new routes a URL over plain HTTP"),
        }
    }

    /// POSTs `body` serialized as JSON to `path`, and decodes a 2xx answer as `T`.
    pub async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, HttpError> {
        self.send(path, serde_json::to_string(body).expect("wire types serialize")).await?.decode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_url_or_a_name_with_a_port() {
        assert_eq!(Target::parse("http://pi.local:8090/"), Ok(Target::Url("http://pi.local:8090".into())));
        assert_eq!(Target::parse("gw.iot:8443"), Ok(Target::Name { name: "gw.iot".into(), port: 8443 }));
        assert_eq!(Target::parse("gw.iot"), Ok(Target::Name { name: "gw.iot".into(), port: 443 }));
        assert!(Target::parse("gw.iot:http").unwrap_err().contains("not a port"));
        assert!(Target::parse("gw.iot:70000").is_err());
        assert!(Target::parse("Not A Name").unwrap_err().contains("neither a URL"));
        assert_eq!(
            Target::from_config(Some("svc.iot"), 8443, None),
            Ok(Target::Name { name: "svc.iot".into(), port: 8443 })
        );
        assert_eq!(Target::from_config(None, 1, Some("http://x:1/")), Ok(Target::Url("http://x:1".into())));
        assert!(Target::from_config(Some("svc.iot"), 1, Some("http://x")).unwrap_err().contains("either name"));
        assert!(Target::from_config(None, 1, None).unwrap_err().contains("either name"));
        assert!(Target::from_config(Some("No Name"), 1, None).unwrap_err().starts_with("name:"));
        for text in ["http://127.0.0.1:8080", "svc.iot:8443"] {
            assert_eq!(Target::parse(text).unwrap().to_string(), text, "read back as written");
        }
    }
}
