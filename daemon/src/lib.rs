//! iotegrityd as a library: the service role (receipts for Postgres tables) with its config and
//! metrics; `main.rs` only parses arguments, sets up logging and passes a shutdown signal.

pub mod config;
pub mod ingest;
pub mod metrics;
pub mod service;
