//! Errors of the core library.

use std::path::PathBuf;

/// Result alias for the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A contract call reverted; `reason` is the decoded custom error and its explanation.
    #[error("transaction reverted: {reason}")]
    Reverted {
        /// e.g. `Identity_NotActive(0x…): The sender has no active identity.`
        reason: String,
    },
    /// The RPC endpoint failed or could not be reached.
    #[error("RPC error: {0}")]
    Rpc(String),
    /// No address book for this chain, or it cannot be read.
    #[error("cannot read the address book {path}: {reason} (deploy first: `iotegrity deploy`, or pass --deployments)")]
    AddressBook {
        /// The file tried.
        path: PathBuf,
        /// Why it failed.
        reason: String,
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
    #[error("cannot read certificate: {0}")]
    Certificate(String),
    /// Reading or writing a key failed.
    #[error("key error: {0}")]
    Key(String),
    /// A database query failed.
    #[cfg(feature = "postgres")]
    #[error("{context}: {source}")]
    Database {
        /// What was being done, e.g. "cannot read public.readings".
        context: String,
        /// The store's error.
        #[source]
        source: crate::store::StoreError,
    },
}
