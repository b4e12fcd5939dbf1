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
    http: reqwest::Client,
    chain: Option<(DynProvider, AddressBook)>,
    pins: PinCache,
    client_cert: Option<Arc<ReloadingCert>>,
}

impl Peer {
    /// A peer at a base URL; each request within `timeout`.
    pub fn url(base: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(timeout).build().expect("an HTTP client builds");
        Self {
            target: Target::Url(base.trim_end_matches('/').to_string()),
            timeout,
            http,
            chain: None,
            pins: PinCache::default(),
            client_cert: None,
        }
    }

    /// A peer known by `name` on the chain of `book`, at `port`; each request (handshake
    /// included) within `timeout`. With `client_cert`, the client presents it when the server asks
    /// (mutual TLS: its key pinned under the client's own name).
    pub fn name(
        name: &str,
        port: u16,
        provider: DynProvider,
        book: AddressBook,
        timeout: Duration,
        client_cert: Option<Arc<ReloadingCert>>,
    ) -> Self {
        Self {
            target: Target::Name { name: name.to_string(), port },
            timeout,
            http: reqwest::Client::new(),
            chain: Some((provider, book)),
            pins: PinCache::default(),
            client_cert,
        }
    }

    /// A peer at `target`: a name needs the chain (`provider`, `book`), and presents
    /// `client_cert` if its server asks for one.
    pub fn new(
        target: Target,
        provider: DynProvider,
        book: AddressBook,
        timeout: Duration,
        client_cert: Option<Arc<ReloadingCert>>,
    ) -> Self {
        match target {
            Target::Url(url) => Self::url(&url, timeout),
            Target::Name { name, port } => Self::name(&name, port, provider, book, timeout, client_cert),
        }
    }

    /// Where the peer is.
    pub fn target(&self) -> &Target {
        &self.target
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
        let (name, port) = match &self.target {
            Target::Url(_) => {
                let unreachable = |e: reqwest::Error| HttpError::Unreachable { url: url.clone(), source: e.into() };
                let request = match body {
                    Some(body) => self.http.post(&url).header("content-type", "application/json").body(body),
                    None => self.http.get(&url),
                };
                let answer = request.send().await.map_err(unreachable)?;
                let status = answer.status().as_u16();
                return Ok((status, answer.bytes().await.map_err(unreachable)?));
            }
            Target::Name { name, port } => (name, *port),
        };
        let unreachable = |e: super::TlsError| HttpError::Unreachable { url: url.clone(), source: e.into() };
        let (provider, book) = self.chain.as_ref().expect("a named peer has a chain");
        let (stream, session) = self
            .pins
            .connect(provider, book, name, port, self.timeout, self.client_cert.clone())
            .await
            .map_err(unreachable)?;
        request(stream, &session, name, path, body, self.timeout).await.map_err(unreachable)
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
        for text in ["http://127.0.0.1:8080", "svc.iot:8443"] {
            assert_eq!(Target::parse(text).unwrap().to_string(), text, "read back as written");
        }
    }
}
