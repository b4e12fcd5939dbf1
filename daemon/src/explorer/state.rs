//! The explorer's shared state: what every page reads from (the chain, the index, the database,
//! the audits running or done) and its metrics. The runner (`mod.rs`) builds it; the views read it.

use super::index::{Entry, Index};
use crate::metrics::{Counter, LatencyFamily, MetricSet, latency_family};
use alloy::primitives::Address;
use alloy::providers::DynProvider;
use iotegrity_core::AddressBook;
use iotegrity_core::audit::AuditReport;
use iotegrity_core::store::TableRef;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{broadcast, watch};

/// The explorer's metrics.
#[derive(Debug)]
pub struct ExplorerMetrics {
    /// Page and API requests, by route and status.
    pub requests: LatencyFamily,
    /// Events indexed.
    pub indexed: Counter,
    /// Failed reads of the chain (retried).
    pub errors: Counter,
}

impl Default for ExplorerMetrics {
    fn default() -> Self {
        Self { requests: latency_family(), indexed: Counter::default(), errors: Counter::default() }
    }
}

impl MetricSet for ExplorerMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "iotegrity_explorer_request_seconds",
            "Page and API requests, by route and status",
            self.requests.clone(),
        );
        r.register("iotegrity_explorer_indexed_events", "Events indexed", self.indexed.clone());
        r.register("iotegrity_explorer_errors", "Failed reads of the chain (retried)", self.errors.clone());
    }
}

/// What every page reads from.
pub struct Explorer {
    pub(super) provider: DynProvider,
    pub(super) book: AddressBook,
    pub(super) index: Arc<RwLock<Index>>,
    pub(super) news: broadcast::Sender<Arc<Entry>>,
    pub(super) pool: Option<sqlx::PgPool>,
    pub(super) tables: Vec<TableRef>,
    pub(super) anchorer: Option<Address>,
    pub(super) audits: Mutex<HashMap<String, AuditState>>,
    pub(super) stopped: watch::Receiver<bool>,
    pub(super) metrics: Arc<ExplorerMetrics>,
}

impl Explorer {
    /// The configured table named `name`, if the database holds it.
    pub(super) fn db_table(&self, name: Option<&str>) -> Option<&TableRef> {
        let name = name?;
        self.tables.iter().find(|t| t.name() == name)
    }
}

/// An audit of a table, as the explorer runs it (one at a time per table).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum AuditState {
    /// Reading and checking rows.
    Running {
        /// Rows read so far.
        rows_read: u64,
        /// Rows in the table when it started.
        rows_total: u64,
    },
    /// Done.
    Done {
        /// The report.
        report: Box<AuditReport>,
        /// When it finished (unix seconds).
        at: u64,
    },
    /// It could not run.
    Failed {
        /// Why.
        error: String,
    },
}
