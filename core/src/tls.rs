//! The secure channel of paper §3.2.2 on TLS 1.3 (docs/secure-channel.md): a client that knows
//! only a name resolves it on chain, and accepts the server only if the certificate key it
//! presents is one that `NameRegistry.verifyCertificate(name, keyHash)` accepts at the latest
//! block — exists, bound to the name and its current owner, not revoked, inside its window, the
//! owner's identity open. No CA takes part: self-signed certificates work, and the handshake's
//! signature is still checked with the provider's algorithms. Sessions are never resumed, so
//! every connection is checked against the chain of its own time (a revocation counts from the
//! next connection on).
//!
//! The on-chain part ([`Resolved::now`]) runs before the handshake: it reads every key ever pinned
//! for the name (`CertificateAdded` events) and keeps those `verifyCertificate` accepts at one
//! block, with the name's address at that block. rustls's verifier, which cannot wait on the
//! chain, then only compares the presented key's hash with that set.

use crate::contracts::NameRegistry;
use crate::{AddressBook, chain};
use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::providers::DynProvider;
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use alloy::sol_types::{Eip712Domain, SolStruct};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use x509_cert::der::{Decode, Encode};

/// The TLS stream of a pinned connection.
pub type Stream = tokio_rustls::client::TlsStream<TcpStream>;

/// The label of RFC 9266's `tls-exporter` channel binding.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";

/// Why a pinned channel was not established.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] crate::Error),
    /// The name has no record, or its record holds no usable address.
    #[error("{name} does not resolve on chain")]
    Unresolved {
        /// The name.
        name: String,
    },
    /// No TCP connection to the name's address.
    #[error("cannot connect to {name} at {addr} (its address on chain): {source}")]
    Connect {
        /// The name.
        name: String,
        /// Where it resolved to.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server presented a key that the chain does not accept for the name now.
    #[error(
        "{name} at {addr} presented certificate key {presented}, which the chain does not accept for {name} at block {block} (accepted: {})",
        if accepted.is_empty() { "none".to_string() } else { accepted.iter().map(B256::to_string).collect::<Vec<_>>().join(", ") }
    )]
    NotPinned {
        /// The name.
        name: String,
        /// The server's address.
        addr: SocketAddr,
        /// keccak256 of the presented certificate's SubjectPublicKeyInfo.
        presented: B256,
        /// The block of the check.
        block: u64,
        /// The keys the chain accepts for the name at that block.
        accepted: Vec<B256>,
    },
    /// The handshake failed for another reason (no TLS 1.3, a bad signature, a closed socket…).
    #[error("TLS 1.3 handshake with {name} at {addr} failed: {source}")]
    Handshake {
        /// The name.
        name: String,
        /// The server's address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The handshake did not finish in time.
    #[error("TLS handshake with {name} at {addr} did not finish within {secs} s")]
    Timeout {
        /// The name.
        name: String,
        /// The server's address.
        addr: SocketAddr,
        /// The limit.
        secs: u64,
    },
    /// A certificate or key file that cannot be used.
    #[error("{0}")]
    Config(String),
}

/// A name as the chain has it at one block: its address and the certificate keys accepted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The name.
    pub name: String,
    /// Its IP address on chain.
    pub ip: IpAddr,
    /// The block read.
    pub block: u64,
    /// The keys `verifyCertificate(name, key)` accepts at `block`, in the order they were pinned.
    pub accepted: Vec<B256>,
}

impl Resolved {
    /// Reads the name's record at the latest block: its address and every key pinned for it that
    /// `verifyCertificate` accepts at that block.
    pub async fn now(provider: &DynProvider, book: &AddressBook, name: &str) -> Result<Self, TlsError> {
        let block = chain::latest_block(provider).await?;
        let at = alloy::eips::BlockId::number(block);
        let names = NameRegistry::new(book.name_registry(), provider);
        let unresolved = || TlsError::Unresolved { name: name.to_string() };
        let ip_bytes = match chain::call(names.resolveAddress(name.to_string()).block(at)).await {
            Ok(ip) => ip,
            Err(e) if e.to_string().contains("Names_UnknownName") => return Err(unresolved()),
            Err(e) => return Err(e.into()),
        };
        let ip = crate::names::decode_ip(&ip_bytes).ok_or_else(unresolved)?;
        let filter = Filter::new()
            .address(book.name_registry())
            .event_signature(NameRegistry::CertificateAdded::SIGNATURE_HASH)
            .topic1(keccak256(name.as_bytes()));
        let mut accepted = Vec::new();
        for log in chain::logs(provider, &filter, book.deployed_block, block).await? {
            let Some(key) = log.topics().get(2).copied() else { continue };
            if !accepted.contains(&key) && chain::call(names.verifyCertificate(name.to_string(), key).block(at)).await?
            {
                accepted.push(key);
            }
        }
        Ok(Self { name: name.to_string(), ip, block, accepted })
    }
}

/// [`Resolved`] kept per name for the block it was read at: a client that connects often asks
/// the chain for the latest block number (one cheap call) and reads the name again only when a
/// block was mined since — so no trust outlives a block, and the events and `verifyCertificate`
/// calls are paid once per block instead of once per connection.
#[derive(Debug, Default)]
pub struct PinCache {
    entries: Mutex<std::collections::HashMap<String, Resolved>>,
}

impl PinCache {
    /// The name as the chain has it at the latest block (read again only if that block is new).
    pub async fn resolve(&self, provider: &DynProvider, book: &AddressBook, name: &str) -> Result<Resolved, TlsError> {
        let latest = chain::latest_block(provider).await?;
        if let Some(hit) = self.entries.lock().expect("not poisoned").get(name).filter(|r| r.block == latest) {
            return Ok(hit.clone());
        }
        let fresh = Resolved::now(provider, book, name).await?;
        self.entries.lock().expect("not poisoned").insert(name.to_string(), fresh.clone());
        Ok(fresh)
    }
}

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

/// keccak256 of a DER certificate's SubjectPublicKeyInfo: the `certKeyHash` the chain pins.
pub fn cert_key_hash(cert: &[u8]) -> Option<B256> {
    let cert = x509_cert::Certificate::from_der(cert).ok()?;
    Some(keccak256(cert.tbs_certificate.subject_public_key_info.to_der().ok()?))
}

/// The one crypto provider of the channel (aws-lc-rs, already in the tree through reqwest).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Accepts a server certificate iff its key is in the accepted set; checks the TLS 1.3
/// handshake signature with the provider's algorithms; refuses TLS 1.2.
#[derive(Debug)]
struct PinnedVerifier {
    accepted: Vec<B256>,
    provider: Arc<CryptoProvider>,
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
        if self.accepted.contains(&hash) {
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
        Err(rustls::Error::General("TLS 1.2 is refused: the channel is TLS 1.3 only".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Opens a pinned TLS 1.3 channel to `resolved` on `port` (the handshake within `timeout`).
pub async fn connect(resolved: &Resolved, port: u16, timeout: Duration) -> Result<(Stream, Session), TlsError> {
    let name = resolved.name.clone();
    let addr = SocketAddr::new(resolved.ip, port);
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        accepted: resolved.accepted.clone(),
        provider: provider.clone(),
        presented: Mutex::new(None),
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
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
            return Err(match presented {
                Some(presented) if !resolved.accepted.contains(&presented) => TlsError::NotPinned {
                    name,
                    addr,
                    presented,
                    block: resolved.block,
                    accepted: resolved.accepted.clone(),
                },
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

/// Reads a PEM certificate chain and key into rustls's form, checking that they belong together;
/// also returns the key hash of the first certificate.
fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<(Arc<rustls::sign::CertifiedKey>, B256), TlsError> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Config(format!("the certificate file: {e}")))?;
    let hash = certs
        .first()
        .and_then(|c| cert_key_hash(c))
        .ok_or_else(|| TlsError::Config("the certificate file holds no certificate".into()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Config(format!("the key file: {e}")))?;
    let signing =
        provider().key_provider.load_private_key(key).map_err(|e| TlsError::Config(format!("the key: {e}")))?;
    let certified = rustls::sign::CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| TlsError::Config(format!("the certificate and key: {e}")))?;
    Ok((Arc::new(certified), hash))
}

/// A server certificate read from two PEM files and read again whenever either file changes
/// (checked at each handshake: two `stat`s), so a certificate rollover needs no restart: replace
/// the files (each by a rename, so no handshake reads half a file); until both parse and match,
/// the previous certificate stays in use.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    current: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    stamp: (Option<std::time::SystemTime>, Option<std::time::SystemTime>),
    key: Arc<rustls::sign::CertifiedKey>,
    hash: B256,
}

impl ReloadingCert {
    /// Reads the files; an error if they are not a certificate and its key.
    pub fn open(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, TlsError> {
        let read =
            |p: &std::path::Path| std::fs::read(p).map_err(|e| TlsError::Config(format!("{}: {e}", p.display())));
        let stamp = Self::stamp(cert, key);
        let (certified, hash) = certified_key(&read(cert)?, &read(key)?)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Mutex::new(Loaded { stamp, key: certified, hash }),
        })
    }

    fn stamp(
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> (Option<std::time::SystemTime>, Option<std::time::SystemTime>) {
        let m = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (m(cert), m(key))
    }

    /// The certificate to present now (read again first if a file changed), and its key hash.
    pub fn current(&self) -> (Arc<rustls::sign::CertifiedKey>, B256) {
        let mut loaded = self.current.lock().expect("not poisoned");
        let stamp = Self::stamp(&self.cert, &self.key);
        if stamp != loaded.stamp {
            let files = std::fs::read(&self.cert).and_then(|c| Ok((c, std::fs::read(&self.key)?)));
            if let Ok(Ok((key, hash))) = files.map(|(c, k)| certified_key(&c, &k)) {
                *loaded = Loaded { stamp, key, hash };
            }
        }
        (loaded.key.clone(), loaded.hash)
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current().0)
    }
}

/// A server configuration for a pinned name: TLS 1.3 only, the certificate of `cert` (read again
/// when its files change), no session tickets and no session cache (every client checks the
/// chain anew).
pub fn server_config(cert: Arc<ReloadingCert>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A self-signed P-256 certificate for `name`, valid for `days` from now (from five minutes ago,
/// for clocks a little behind): (certificate PEM, key PEM). Its key is what gets pinned
/// (`iotegrity cert add`). Feature `certgen`.
#[cfg(feature = "certgen")]
pub fn issue(name: &str, days: u32) -> Result<(String, String), TlsError> {
    let bad = |e: rcgen::Error| TlsError::Config(format!("cannot issue a certificate for {name}: {e}"));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(bad)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(bad)?;
    let now = std::time::SystemTime::now();
    params.not_before = (now - Duration::from_secs(300)).into();
    params.not_after = (now + Duration::from_secs(u64::from(days) * 86_400)).into();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).map_err(bad)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// What a server knows of one TLS connection, handed to its request handlers (the service's
/// `POST /v1/tls/handshake-proof` signs a [`HandshakeProof`] from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The name the client asked for (SNI), if it sent one.
    pub name: Option<String>,
    /// keccak256 of the SubjectPublicKeyInfo of the certificate this server presented.
    pub cert_key_hash: B256,
    /// The session's RFC 9266 `tls-exporter` value.
    pub exporter: B256,
}

impl Channel {
    /// The channel of an accepted server connection that presented the certificate `cert_key_hash`.
    pub fn of(conn: &rustls::ServerConnection, cert_key_hash: B256) -> Option<Self> {
        let mut exporter = [0u8; 32];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, None).ok()?;
        Some(Self { name: conn.server_name().map(str::to_string), cert_key_hash, exporter: B256::from(exporter) })
    }
}

pub use crate::contracts::IReputation::HandshakeProof;

/// A handshake proof and its two signatures, as `iotegrity tls probe --proof-out` writes it and
/// `iotegrity reputation vote --proof` reads it (docs/secure-channel.md, "Handshake proofs").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofFile {
    /// The name the channel was opened to.
    pub name: String,
    /// keccak256 of the certificate key the server presented.
    pub cert_key_hash: B256,
    /// keccak256 of the session's `tls-exporter` value.
    pub exporter_hash: B256,
    /// The server's online key (the name owner's).
    pub server: Address,
    /// The client's online key (the voter's).
    pub client: Address,
    /// The server's clock when it signed, unix seconds.
    pub server_time: u64,
    /// The client's clock when it asked, unix seconds.
    pub client_time: u64,
    /// The server's 65-byte signature of the EIP-712 digest.
    pub server_sig: Bytes,
    /// The client's countersignature of the same digest (empty until it countersigns).
    #[serde(default)]
    pub client_sig: Bytes,
}

/// Why a handshake proof was not obtained.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The exchange over the channel failed.
    #[error("asking {name} for a handshake proof: {why}")]
    Exchange {
        /// The name.
        name: String,
        /// Why.
        why: String,
    },
    /// The server's proof is not a proof of this session, or not signed by the key it names.
    #[error("{name}'s handshake proof does not hold: {why}")]
    Invalid {
        /// The name.
        name: String,
        /// What differs.
        why: String,
    },
}

impl ProofFile {
    /// The signed message.
    pub fn proof(&self) -> HandshakeProof {
        HandshakeProof {
            name: self.name.clone(),
            certKeyHash: self.cert_key_hash,
            exporterHash: self.exporter_hash,
            server: self.server,
            client: self.client,
            serverTime: self.server_time,
            clientTime: self.client_time,
        }
    }

    /// The EIP-712 digest both ends sign (`Reputation.handshakeProofDigest`).
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.proof().eip712_signing_hash(domain)
    }

    /// The server's side: a proof of `channel` for `client`, signed by `key`.
    pub fn sign_as_server(
        channel: &Channel,
        name: &str,
        client: Address,
        client_time: u64,
        key: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut file = Self {
            name: name.to_string(),
            cert_key_hash: channel.cert_key_hash,
            exporter_hash: keccak256(channel.exporter),
            server: key.address(),
            client,
            server_time: now,
            client_time,
            server_sig: Bytes::new(),
            client_sig: Bytes::new(),
        };
        file.server_sig = crate::signatures::sign(key, &file.proof(), domain);
        file
    }

    /// The client's side: checks that the server's proof is of this session (name, key,
    /// exporter, client, time) and signed by the key it names, then countersigns it.
    pub fn countersign(
        mut self,
        session: &Session,
        name: &str,
        key: &PrivateKeySigner,
        client_time: u64,
        domain: &Eip712Domain,
    ) -> Result<Self, ProofError> {
        let invalid = |why: String| ProofError::Invalid { name: name.to_string(), why };
        for (differs, what) in [
            (self.name != name, "it is for another name"),
            (self.cert_key_hash != session.cert_key_hash, "it names another certificate key than the one presented"),
            (self.exporter_hash != keccak256(session.exporter), "it is bound to another session (tls-exporter)"),
            (self.client != key.address(), "it names another client"),
            (self.client_time != client_time, "it carries another client time than the one sent"),
        ] {
            if differs {
                return Err(invalid(what.to_string()));
            }
        }
        let digest = self.digest(domain);
        let signer = crate::signatures::recover_prehash(&digest, &self.server_sig);
        if signer != Some(self.server) {
            return Err(invalid(format!("the server's signature recovers to {signer:?}, not to {}", self.server)));
        }
        self.client_sig = crate::signatures::sign(key, &self.proof(), domain);
        Ok(self)
    }
}

/// Asks the server at the other end of `stream` for a handshake proof of this session
/// (`POST /v1/tls/handshake-proof`, the connection closed after it) and countersigns it as `key`.
pub async fn request_proof(
    mut stream: Stream,
    session: &Session,
    name: &str,
    key: &PrivateKeySigner,
    domain: &Eip712Domain,
) -> Result<ProofFile, ProofError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = |why: String| ProofError::Exchange { name: name.to_string(), why };
    let client_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let body = serde_json::json!({ "client": key.address(), "clientTime": client_time }).to_string();
    let request = format!(
        "POST /v1/tls/handshake-proof HTTP/1.1\r\nHost: {name}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| exchange(e.to_string()))?;
    let mut answer = Vec::new();
    // The server closes the connection after its answer; a peer that never does is cut off.
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| exchange("no answer within 10 s".into()))?
        .map_err(|e| exchange(e.to_string()))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| exchange("not an HTTP answer".into()))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(exchange(format!("HTTP {status}: {}", body.trim())));
    }
    let file: ProofFile = serde_json::from_str(body.trim()).map_err(|e| exchange(format!("not a proof: {e}")))?;
    file.countersign(session, name, key, client_time, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "certgen")]
    fn an_issued_certificate_hashes_to_the_key_the_chain_would_pin_and_serves() {
        let (cert, key) = issue("svc.iot", 30).unwrap();
        let info = crate::cert::CertInfo::from_pem(cert.as_bytes()).unwrap();
        let pinned = crate::cert::p256_key_hash(&info.p256_key().unwrap());
        assert_eq!(info.key_hash, pinned);
        use rustls::pki_types::pem::PemObject;
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert_eq!(cert_key_hash(&der), Some(pinned));
        assert!(info.not_after - info.not_before >= 30 * 86_400 - 1);
        assert!(info.subject.contains("svc.iot"), "{}", info.subject);
        let dir = std::env::temp_dir().join(format!("iotegrity-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, &cert).unwrap();
        std::fs::write(&k, &key).unwrap();
        let served = Arc::new(ReloadingCert::open(&c, &k).unwrap());
        assert_eq!(served.current().1, pinned);
        assert!(server_config(served.clone()).is_ok());
        // Another certificate with the old key: refused as a pair, the old one stays in use.
        let (cert2, key2) = issue("svc.iot", 30).unwrap();
        std::fs::write(&c, &cert2).unwrap();
        assert_eq!(served.current().1, pinned, "a mismatched pair is not taken");
        std::fs::write(&k, &key2).unwrap();
        let next = crate::cert::CertInfo::from_pem(cert2.as_bytes()).unwrap().key_hash;
        assert_eq!(served.current().1, next, "both files replaced: the next certificate");
        std::fs::write(&k, b"junk").unwrap();
        assert_eq!(served.current().1, next, "a broken file is not taken");
        assert!(matches!(ReloadingCert::open(&c, &k), Err(TlsError::Config(_))));
        assert!(matches!(ReloadingCert::open(&dir.join("none"), &k), Err(TlsError::Config(_))));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(cert_key_hash(b"not a certificate"), None);
    }

    #[test]
    fn a_proof_is_countersigned_only_if_it_is_of_this_session_and_signed_by_its_server() {
        let domain = alloy::sol_types::eip712_domain! {
            name: "iotegrity", version: "1", chain_id: 31337, verifying_contract: Address::repeat_byte(0x1d),
        };
        let (server, client) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let channel = Channel {
            name: Some("svc.iot".into()),
            cert_key_hash: B256::repeat_byte(7),
            exporter: B256::repeat_byte(9),
        };
        let session = Session {
            addr: "127.0.0.1:1".parse().unwrap(),
            cert_key_hash: channel.cert_key_hash,
            exporter: channel.exporter,
        };
        let signed = ProofFile::sign_as_server(&channel, "svc.iot", client.address(), 100, &server, &domain);
        let ok = signed.clone().countersign(&session, "svc.iot", &client, 100, &domain).unwrap();
        let digest = ok.digest(&domain);
        assert_eq!(crate::signatures::recover_prehash(&digest, &ok.server_sig), Some(server.address()));
        assert_eq!(crate::signatures::recover_prehash(&digest, &ok.client_sig), Some(client.address()));
        let refused = |f: ProofFile, s: &Session, name: &str, time: u64| {
            matches!(f.countersign(s, name, &client, time, &domain), Err(ProofError::Invalid { .. }))
        };
        assert!(refused(signed.clone(), &session, "other.iot", 100), "another name");
        assert!(
            refused(signed.clone(), &Session { exporter: B256::repeat_byte(1), ..session.clone() }, "svc.iot", 100),
            "another session"
        );
        assert!(
            refused(signed.clone(), &Session { cert_key_hash: B256::ZERO, ..session.clone() }, "svc.iot", 100),
            "another key"
        );
        assert!(refused(signed.clone(), &session, "svc.iot", 101), "another client time");
        let mut liar = signed.clone();
        liar.server = client.address(); // claims another signer
        assert!(refused(liar, &session, "svc.iot", 100));
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<ProofFile>(&json).unwrap(), ok);
        assert!(json.contains("\"exporterHash\"") && json.contains("\"clientSig\""), "{json}");
    }
}
