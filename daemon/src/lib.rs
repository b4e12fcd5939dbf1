//! iotegrityd as a library, one folder per role, each behind its feature: `service/` (receipts for
//! Postgres tables, the ingest API) and `gateway/` (sensors, signing, store-and-forward, commands);
//! beside them the pieces every role shares (`files`, `http`, `metrics`). `main.rs` only parses arguments,
//! sets up logging and passes a shutdown signal.

pub mod files;
#[cfg(feature = "gateway")]
pub mod gateway;
pub mod http;
pub mod metrics;
#[cfg(feature = "service")]
pub mod service;
