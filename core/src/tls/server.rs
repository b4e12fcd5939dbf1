//! The server side: TLS 1.3 only, no resumption, a certificate read again when its files change
//! (rollover without a restart), clients optionally held to keys pinned under names the server
//! lets in (mutual TLS), and what a request handler knows of its connection.

use super::{EXPORTER_LABEL, PinCache, Resolved, TlsError, cert_key_hash, provider};
use crate::AddressBook;
use alloy::primitives::B256;
use alloy::providers::DynProvider;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::{Arc, Mutex};

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

    /// The certificate of a config's or command line's `tls_cert` / `tls_key` pair, if set (a
    /// pair given half is an error); the error names the files.
    pub fn open_pair(
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> Result<Option<Arc<Self>>, TlsError> {
        match (cert, key) {
            (Some(c), Some(k)) => Self::open(c, k)
                .map(|r| Some(Arc::new(r)))
                .map_err(|e| TlsError::Config(format!("tls_cert {} / tls_key {}: {e}", c.display(), k.display()))),
            (None, None) => Ok(None),
            _ => Err(TlsError::Config("tls_cert and tls_key go together".into())),
        }
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

/// A client presents the same kind of certificate (mutual TLS).
impl rustls::client::ResolvesClientCert for ReloadingCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current().0)
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A server configuration for a pinned name: TLS 1.3 only, the certificate of `cert` (read again
/// when its files change), no session tickets and no session cache (every client checks the
/// chain anew). With `clients` (mutual TLS), a client must present a certificate whose key is
/// one of theirs — the keys the chain accepts under the names the server lets in, read for this
/// connection ([`ClientNames::accepted`]) — or the handshake fails.
pub fn server_config(
    cert: Arc<ReloadingCert>,
    clients: Option<&[Resolved]>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match clients {
        None => builder.with_no_client_auth(),
        Some(names) => builder.with_client_cert_verifier(Arc::new(PinnedClients {
            accepted: names.iter().flat_map(|r| r.accepted.iter().copied()).collect(),
            signatures: super::Signatures::new(),
        })),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The names a server lets in as clients (mutual TLS): a client must present a certificate whose
/// key `verifyCertificate(name, key)` accepts now for one of them — the same check a client makes
/// of a server. Read at the latest block for every connection ([`PinCache`]: the names' records
/// once per block), so a revoked client key is refused from the next connection on.
#[derive(Debug)]
pub struct ClientNames {
    names: Vec<String>,
    provider: DynProvider,
    book: AddressBook,
    pins: PinCache,
}

impl ClientNames {
    /// Lets in clients pinned under `names`.
    pub fn new(names: Vec<String>, provider: DynProvider, book: AddressBook) -> Self {
        Self { names, provider, book, pins: PinCache::default() }
    }

    /// The names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each name as the chain has it now (a name that does not resolve is left out: it lets no
    /// client in); an error only if the chain cannot be read, and then no client is let in.
    pub async fn accepted(&self) -> Result<Vec<Resolved>, TlsError> {
        let mut all = Vec::with_capacity(self.names.len());
        for name in &self.names {
            match self.pins.resolve(&self.provider, &self.book, name).await {
                Ok(r) => all.push(r),
                Err(TlsError::Unresolved { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(all)
    }
}

/// Accepts a client certificate iff its key is one of `accepted`; checks the client's TLS 1.3
/// handshake signature with the provider's algorithms.
#[derive(Debug)]
struct PinnedClients {
    accepted: Vec<B256>,
    signatures: super::Signatures,
}

impl ClientCertVerifier for PinnedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match cert_key_hash(end_entity) {
            Some(hash) if self.accepted.contains(&hash) => Ok(ClientCertVerified::assertion()),
            Some(_) => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)),
            None => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)),
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

/// A self-signed P-256 certificate for `name`, valid for `days` from now (from five minutes ago,
/// for clocks a little behind): (certificate PEM, key PEM). Its key is what gets pinned
/// (`iotegrity cert add`). Feature `certgen`.
#[cfg(feature = "certgen")]
pub fn issue(name: &str, days: u32) -> Result<(String, String), TlsError> {
    let bad = |e: rcgen::Error| TlsError::Config(format!("cannot issue a certificate for {name}: {e}"));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(bad)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(bad)?;
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(300)).into();
    params.not_after = (now + std::time::Duration::from_secs(u64::from(days) * 86_400)).into();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).map_err(bad)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// What a server knows of one TLS connection, handed to its request handlers (the service's
/// `POST /v1/tls/handshake-proof` signs a [`super::HandshakeProof`] from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// The name the client asked for (SNI), if it sent one.
    pub name: Option<String>,
    /// keccak256 of the SubjectPublicKeyInfo of the certificate this server presented.
    pub cert_key_hash: B256,
    /// The session's RFC 9266 `tls-exporter` value.
    pub exporter: B256,
    /// Under mutual TLS: the name the client's certificate key is pinned under, and that key.
    pub client: Option<(String, B256)>,
}

impl Channel {
    /// The channel of an accepted server connection that presented the certificate
    /// `cert_key_hash`, whose client's key was checked against `clients` (mutual TLS).
    pub fn of(conn: &rustls::ServerConnection, cert_key_hash: B256, clients: Option<&[Resolved]>) -> Option<Self> {
        let mut exporter = [0u8; 32];
        conn.export_keying_material(&mut exporter, EXPORTER_LABEL, None).ok()?;
        let client = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| super::cert_key_hash(c))
            .and_then(|key| clients?.iter().find(|r| r.accepted.contains(&key)).map(|r| (r.name.clone(), key)));
        Some(Self {
            name: conn.server_name().map(str::to_string),
            cert_key_hash,
            exporter: B256::from(exporter),
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_names_fail_closed_while_the_chain_cannot_be_read() {
        let book = serde_json::from_value::<AddressBook>(serde_json::json!({
            "chainId": 31337, "nameMode": "decentralized", "deployedBlock": 0,
            "governance": alloy::primitives::Address::ZERO, "penaltySink": alloy::primitives::Address::ZERO,
        }))
        .unwrap();
        let nobody = crate::chain::reader("http://127.0.0.1:1").unwrap();
        let names = ClientNames::new(vec!["gw.iot".into()], nobody, book);
        assert!(names.accepted().await.is_err(), "no client is let in while the chain is away");
    }

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
        assert!(server_config(served.clone(), None).is_ok());
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
        assert!(ReloadingCert::open_pair(None, None).unwrap().is_none());
        assert!(ReloadingCert::open_pair(Some(&c), None).unwrap_err().to_string().contains("go together"));
        let err = ReloadingCert::open_pair(Some(&c), Some(&k)).unwrap_err().to_string();
        assert!(err.contains("c.pem") && err.contains("k.pem"), "the files are named: {err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(cert_key_hash(b"not a certificate"), None);
    }
}
