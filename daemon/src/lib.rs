//! iotegrityd as a library: the `service` role (receipts for Postgres tables, the ingest API) and
//! the `gateway` role (sensors, signing, store-and-forward, commands), each behind its feature;
//! `main.rs` only parses arguments, sets up logging and passes a shutdown signal.

#[cfg(feature = "service")]
pub mod config;
pub mod files;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "service")]
pub mod ingest;
pub mod metrics;
#[cfg(feature = "gateway")]
pub mod sensors;
#[cfg(feature = "service")]
pub mod service;
