//! The secure channel of paper §3.2.2 on TLS 1.3 (docs/secure-channel.md): a client that knows
//! only a name resolves it on chain, and accepts the server only if the certificate key it
//! presents is one that `NameRegistry.verifyCertificate(name, keyHash)` accepts at the latest
//! block — exists, bound to the name and its current owner, not revoked, inside its window, the
//! owner's identity open. No CA takes part: self-signed certificates work, and the handshake's
//! signature is still checked with the provider's algorithms. Sessions are never resumed, so
//! every connection is checked against the chain of its own time (a revocation counts from the
//! next connection on). A server may ask the same of its clients (mutual TLS): a certificate
//! whose key is pinned under one of the names it lets in.
//!
//! The on-chain part ([`Resolved::now`]) runs before the handshake: it reads every key ever pinned
//! for the name (`CertificateAdded` events) and keeps those `verifyCertificate` accepts at one
//! block, with the name's address at that block. rustls's verifiers, which cannot wait on the
//! chain, then only compare the presented key's hash with that set.
//!
//! Rooms: [`client`] (the verifier, [`connect`], one HTTP request over a channel), [`server`]
//! (TLS 1.3 server configurations, certificates read again when their files change, what a
//! handler knows of its connection), [`proof`] (handshake proofs that back a vote on a name),
//! [`peer`] (where a request goes: a URL, or a name over the pinned channel).

pub mod client;
pub mod peer;
pub mod proof;
pub mod server;

pub use client::{Session, connect, connect_as, request};
pub use peer::{Peer, Target};
pub use proof::{HandshakeProof, ProofError, ProofFile, request_proof};
#[cfg(feature = "certgen")]
pub use server::issue;
pub use server::{Channel, ClientNames, ReloadingCert, server_config};

use crate::contracts::NameRegistry;
use crate::{AddressBook, chain};
use alloy::primitives::{B256, keccak256};
use alloy::providers::DynProvider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
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
    /// The HTTP request over an established channel failed.
    #[error("HTTP over the pinned channel to {name} at {addr}: {why}")]
    Http {
        /// The name.
        name: String,
        /// The server's address.
        addr: SocketAddr,
        /// Why.
        why: String,
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
        match self.cached(name).filter(|r| r.block == latest) {
            Some(hit) => Ok(hit),
            None => self.refresh(provider, book, name).await,
        }
    }

    pub(super) fn cached(&self, name: &str) -> Option<Resolved> {
        self.entries.lock().expect("not poisoned").get(name).cloned()
    }

    pub(super) async fn refresh(
        &self,
        provider: &DynProvider,
        book: &AddressBook,
        name: &str,
    ) -> Result<Resolved, TlsError> {
        let fresh = Resolved::now(provider, book, name).await?;
        self.entries.lock().expect("not poisoned").insert(name.to_string(), fresh.clone());
        Ok(fresh)
    }
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

/// What the server's and the client's verifiers share: a TLS 1.3 handshake signature is checked
/// with the provider's algorithms (a pin says which key, not that the peer holds it); TLS 1.2 is
/// refused.
#[derive(Debug)]
struct Signatures(Arc<CryptoProvider>);

impl Signatures {
    fn new() -> Self {
        Self(provider())
    }

    fn tls12(&self) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is refused: the channel is TLS 1.3 only".into()))
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
