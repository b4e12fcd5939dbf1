//! End-to-end tests: the real `iotegrity` binary against a real Anvil per test.

mod audit;
mod browser;
mod certs;
mod deploy;
mod explorer;
mod gateway;
mod hostile;
mod identity;
mod ingest;
mod ipfs;
mod learning;
mod market;
mod merkle;
mod names;
mod reputation;
mod service;
mod signatures;
mod tamper;
mod tls;
