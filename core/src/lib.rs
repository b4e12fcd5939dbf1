//! iotegrity-core: the one place for contract bindings, the address book, providers, the EIP-712
//! key binding, name/IP/certificate encodings, revert decoding, receipts, the chain's record of
//! anchors and the audit, shared by the CLI and the daemon.

pub mod address_book;
pub mod anchors;
#[cfg(feature = "postgres")]
pub mod audit;
pub mod cert;
pub mod chain;
pub mod contracts;
pub mod dataset;
pub mod error;
#[cfg(all(feature = "postgres", feature = "learning"))]
pub mod evaluate;
pub mod events;
pub mod federated;
#[cfg(feature = "ipfs")]
pub mod ipfs;
pub mod job_spec;
pub mod keys;
#[cfg(feature = "learning")]
pub mod learning;
pub mod market;
pub mod merkle;
pub mod names;
pub mod receipt;
pub mod registry_cache;
pub mod reputation;
pub mod revert;
pub mod signatures;
#[cfg(feature = "postgres")]
pub mod store;
#[cfg(feature = "tls")]
pub mod tls;
pub mod wire;

pub use address_book::AddressBook;
pub use error::{Error, Result};
