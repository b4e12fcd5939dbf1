//! Errors of the core library: one variant per thing that can go wrong, each keeping the error
//! that caused it as its `source` (print a chain with `{:#}` through eyre, or walk `source()`).

use std::path::PathBuf;

/// Result alias for the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cause of an error from another crate (alloy's transports and signers, serde, io, x509).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A contract call reverted; `reason` is the decoded custom error and its explanation.
    #[error("transaction reverted: {reason}")]
    Reverted {
        /// e.g. `Identity_NotActive(0x…): The sender has no active identity.`
        reason: String,
    },
    /// The RPC endpoint failed or could not be reached while doing `what`.
    #[error("RPC error: {what}")]
    Rpc {
        /// e.g. "eth_getLogs", "waiting for the receipt".
        what: &'static str,
        /// The transport's error.
        #[source]
        source: Cause,
    },
    /// The RPC URL does not parse.
    #[error("bad RPC URL {url:?}")]
    RpcUrl {
        /// The URL given.
        url: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// The endpoint's answers contradict the chain's own record (it hides or reorders events).
    #[error("the RPC endpoint's answers are inconsistent: {0}; use another endpoint")]
    InconsistentRpc(String),
    /// A log that does not decode as the event its topic names.
    #[error("a malformed {event} log: {what}")]
    MalformedLog {
        /// The event, e.g. `RootHashStored`.
        event: &'static str,
        /// What is wrong.
        what: &'static str,
        /// The decoder's error, if it was one.
        #[source]
        source: Option<Cause>,
    },
    /// The endpoint answered without a latest block.
    #[error("RPC error: the endpoint has no latest block")]
    NoLatestBlock,
    /// No address book for this chain, or it cannot be read or written.
    #[error("cannot use the address book {path} (deploy first: `iotegrity deploy`, or pass --deployments)")]
    AddressBook {
        /// The file tried.
        path: PathBuf,
        /// Why: the file system's or the JSON parser's error.
        #[source]
        source: Cause,
    },
    /// The address book lacks a contract this build needs.
    #[error("address book {path} has no {key} ({contract}): a deployment by an older build? deploy again")]
    AddressBookIncomplete {
        /// The file.
        path: PathBuf,
        /// The contract's key in the book.
        key: &'static str,
        /// The contract's name.
        contract: &'static str,
    },
    /// The address book belongs to another chain.
    #[error("address book {path} is for chain {book}, but the RPC endpoint is chain {rpc}")]
    WrongChain {
        /// The file.
        path: PathBuf,
        /// Chain id in the file.
        book: u64,
        /// Chain id of the endpoint.
        rpc: u64,
    },
    /// A domain name that the contracts would reject.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A certificate that cannot be parsed.
    #[error("cannot read certificate")]
    Certificate(#[source] Cause),
    /// A certificate whose key cannot be pinned: not P-256.
    #[error(
        "the key of {subject} is not a P-256 (ECDSA) key: only those can prove possession on chain \
         (openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 …)"
    )]
    NotP256 {
        /// The certificate's subject.
        subject: String,
    },
    /// A certificate key file that is not a P-256 private key.
    #[error("not a P-256 private key in PEM (PKCS#8 or SEC1)")]
    NotP256Key,
    /// A keystore's password does not decrypt it.
    #[error("{path}: wrong password")]
    WrongPassword {
        /// The keystore.
        path: PathBuf,
    },
    /// A keystore that cannot be read, written or decrypted for another reason.
    #[error("keystore {path}")]
    Keystore {
        /// The keystore (or its directory).
        path: PathBuf,
        /// The signer's or the file system's error.
        #[source]
        source: Cause,
    },
    /// A key file exists where a new key would be written.
    #[error("{path} exists; refusing to overwrite a key")]
    KeyExists {
        /// The file.
        path: PathBuf,
    },
    /// Signing failed.
    #[error("cannot sign")]
    Signing(#[source] Cause),
    /// A database query failed.
    #[cfg(feature = "postgres")]
    #[error("{context}")]
    Database {
        /// What was being done, e.g. "cannot read public.readings".
        context: String,
        /// The store's error.
        #[source]
        source: crate::store::StoreError,
    },
}

impl Error {
    /// An RPC failure while doing `what`.
    pub fn rpc(what: &'static str) -> impl FnOnce(alloy::transports::TransportError) -> Self {
        move |e| Self::Rpc { what, source: Box::new(e) }
    }
}
