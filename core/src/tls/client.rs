//! The client side of the pinned channel: the verifier that accepts only the keys the chain
//! accepts for a name now, [`connect`] (with a certificate of the client's own for servers that
//! ask for one: [`connect_as`]), and [`request`], one HTTP/1.1 request over an open channel.

use super::{EXPORTER_LABEL, PinCache, ReloadingCert, Resolved, Signatures, Stream, TlsError, cert_key_hash, provider};
use crate::{AddressBook, chain};
use alloy::primitives::B256;
use alloy::providers::DynProvider;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;

/// What a pinned handshake established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The server's address.
    pub addr: SocketAddr,
    /// keccak256 of the server certificate's SubjectPublicKeyInfo: one of the accepted pins.
    pub cert_key_hash: B256,
    /// The RFC 9266 `tls-exporter` value (32 bytes) of this session: the same on both ends,
    /// different for every session.
    pub exporter: B256,
}

/// Accepts a server certificate iff its key is in the accepted set (or, with no set, defers the
/// decision to its caller, who reads the key from the session before sending anything); checks
/// the TLS 1.3 handshake signature with the provider's algorithms; refuses TLS 1.2.
#[derive(Debug)]
struct PinnedVerifier {
    accepted: Option<Vec<B256>>,
    signatures: Signatures,
    /// The key the server presented (read back to name it when it is refused).
    presented: Mutex<Option<B256>>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let hash = cert_key_hash(end_entity)
            .ok_or(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        *self.presented.lock().expect("not poisoned") = Some(hash);
        if self.accepted.as_ref().is_none_or(|keys| keys.contains(&hash)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.schemes()
    }
}

impl PinCache {
    /// A pinned channel to `name` on `port`, checked against the name's pins at the latest block.
    /// When the name was read before, the latest block number is asked for while the handshake
    /// with the address read then runs, and the presented key is checked once both are in —
    /// against the pins of that block, read again if it is new — before anything is sent; so the
    /// check costs no round trip of its own. If the name moved to another address meanwhile, or the
    /// handshake failed and a block was mined since, it connects again to the name as it is now.
    pub async fn connect(
        &self,
        provider: &DynProvider,
        book: &AddressBook,
        name: &str,
        port: u16,
        timeout: std::time::Duration,
        client_cert: Option<Arc<ReloadingCert>>,
    ) -> Result<(Stream, Session), TlsError> {
        let Some(cached) = self.cached(name) else {
            let fresh = self.refresh(provider, book, name).await?;
            return connect_as(&fresh, port, timeout, client_cert).await;
        };
        let addr = SocketAddr::new(cached.ip, port);
        let (latest, shaken) =
            tokio::join!(chain::latest_block(provider), handshake(name, addr, timeout, client_cert.clone(), None));
        let mined_since = latest? != cached.block;
        let now = if mined_since { self.refresh(provider, book, name).await? } else { cached };
        match shaken {
            Ok((stream, session)) if now.ip == addr.ip() => {
                if now.accepted.contains(&session.cert_key_hash) {
                    Ok((stream, session))
                } else {
                    Err(not_pinned(&now, addr, session.cert_key_hash))
                }
            }
            // Nothing changed on chain since: the failure stands.
            Err(e) if !mined_since => Err(e),
            // The name moved, or a block was mined since the failure: the name as it is now.
            _ => connect_as(&now, port, timeout, client_cert).await,
        }
    }
}

/// Opens a pinned TLS 1.3 channel to `resolved` on `port` (the handshake within `timeout`).
pub async fn connect(resolved: &Resolved, port: u16, timeout: Duration) -> Result<(Stream, Session), TlsError> {
    connect_as(resolved, port, timeout, None).await
}

/// [`connect`], presenting `client_cert` if the server asks for a certificate (mutual TLS: the
/// server lets the client in only if the key is pinned under a name it accepts). A server that
/// refuses the client's certificate says so with an alert that arrives at the first read, after
/// this returns: the request over the channel fails then.
pub async fn connect_as(
    resolved: &Resolved,
    port: u16,
    timeout: Duration,
    client_cert: Option<Arc<ReloadingCert>>,
) -> Result<(Stream, Session), TlsError> {
    let addr = SocketAddr::new(resolved.ip, port);
    handshake(&resolved.name, addr, timeout, client_cert, Some(resolved)).await
}

/// The TCP connection and TLS 1.3 handshake with `name` at `addr`, the server's key checked
/// against `pins` during the handshake — or, with none, left for the caller to check (see
/// [`super::PinCache::connect`]) before anything is sent.
async fn handshake(
    name: &str,
    addr: SocketAddr,
    timeout: Duration,
    client_cert: Option<Arc<ReloadingCert>>,
    pins: Option<&Resolved>,
) -> Result<(Stream, Session), TlsError> {
    let name = name.to_string();
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        accepted: pins.map(|r| r.accepted.clone()),
        signatures: Signatures::new(),
        presented: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone());
    let mut config = match client_cert {
        Some(cert) => config.with_client_cert_resolver(cert),
        None => config.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| TlsError::Config(format!("{name} is not a DNS name")))?;
    let tcp =
        TcpStream::connect(addr).await.map_err(|source| TlsError::Connect { name: name.clone(), addr, source })?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name, tcp);
    let stream = match tokio::time::timeout(timeout, handshake).await {
        Err(_) => return Err(TlsError::Timeout { name, addr, secs: timeout.as_secs() }),
        Ok(Err(source)) => {
            let presented = *verifier.presented.lock().expect("not poisoned");
            return Err(match (presented, pins) {
                (Some(presented), Some(pins)) if !pins.accepted.contains(&presented) => {
                    not_pinned(pins, addr, presented)
                }
                _ => TlsError::Handshake { name, addr, source },
            });
        }
        Ok(Ok(stream)) => stream,
    };
    let conn = stream.get_ref().1;
    let cert_key_hash = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| cert_key_hash(c))
        .ok_or_else(|| TlsError::Config("the server presented no certificate".into()))?;
    let mut exporter = [0u8; 32];
    conn.export_keying_material(&mut exporter, EXPORTER_LABEL, None)
        .map_err(|e| TlsError::Config(format!("no tls-exporter value: {e}")))?;
    Ok((stream, Session { addr, cert_key_hash, exporter: B256::from(exporter) }))
}

/// The refusal of a server at `addr` that presented `presented`, a key `pins` does not hold.
fn not_pinned(pins: &Resolved, addr: SocketAddr, presented: B256) -> TlsError {
    TlsError::NotPinned { name: pins.name.clone(), addr, presented, block: pins.block, accepted: pins.accepted.clone() }
}

/// Sends one HTTP/1.1 request over an open channel to `name` — `POST path` with a JSON `body`, or
/// `GET path` without one — and reads the whole answer within `timeout`; the connection is closed
/// after it (the next request opens a channel of its own, checked against the chain of its own
/// time): (status, body).
pub async fn request(
    stream: Stream,
    session: &Session,
    name: &str,
    path: &str,
    body: Option<String>,
    timeout: Duration,
) -> Result<(u16, bytes::Bytes), TlsError> {
    let failed = |why: String| TlsError::Http { name: name.to_string(), addr: session.addr, why };
    let exchange = async {
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| failed(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let method = if body.is_some() { hyper::Method::POST } else { hyper::Method::GET };
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, name)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::CONNECTION, "close")
            .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
            .map_err(|e| failed(e.to_string()))?;
        let answer = match sender.send_request(request).await {
            Ok(answer) => answer,
            // The connection's own error says more (the server's TLS alert, say) than "not ready".
            Err(e) => {
                return Err(match driver.await {
                    Ok(Err(conn)) => failed(describe(&conn)),
                    _ => failed(describe(&e)),
                });
            }
        };
        let status = answer.status().as_u16();
        let body = answer.into_body().collect().await.map_err(|e| failed(describe(&e)))?.to_bytes();
        driver.abort();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| failed(format!("no whole answer within {} s", timeout.as_secs())))?
}

/// hyper's error with its causes (a TLS alert from the server, say) on one line, and what the
/// two alerts of mutual TLS mean.
fn describe(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    if text.contains("CertificateRequired") {
        text.push_str(" (the server lets in only clients with a certificate pinned under a name it accepts: give one)");
    } else if text.contains("AccessDenied") {
        text.push_str(" (the server does not let this client's certificate in: its key is not pinned now under a name the server accepts)");
    }
    text
}
