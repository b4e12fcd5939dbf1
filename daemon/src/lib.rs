//! iotegrityd as a library, one folder per role, each behind its feature: `service/` (receipts for
//! Postgres tables, the ingest and job APIs), `gateway/` (sensors, signing, store-and-forward, commands)
//! `worker/` (takes jobs of the market, verifies, trains, reports, claims), `learner/` (takes
//! part in federated trainings) and `explorer/` (the auditor's web page, read only);
//! beside them the pieces every role shares (`files`, `http`, `metrics`). `main.rs` only parses arguments,
//! sets up logging and passes a shutdown signal.

#[cfg(feature = "explorer")]
pub mod explorer;
pub mod files;
#[cfg(feature = "gateway")]
pub mod gateway;
pub mod http;
#[cfg(feature = "learner")]
pub mod learner;
pub mod metrics;
#[cfg(any(feature = "worker", feature = "learner", feature = "service", feature = "explorer"))]
pub mod poll;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "worker")]
pub mod worker;
