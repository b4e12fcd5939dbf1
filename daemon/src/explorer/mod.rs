//! `iotegrityd explorer`: the auditor's web page (docs/explorer.md). One search box; a page and a
//! JSON route for each identity, name, table, receipt, job, training and transaction; history from
//! a local index of the chain's events (`index.rs`), state and every verdict from the chain now,
//! and — with a service's database — receipts checked row by row and the audit run on demand.
//! Read only: it holds no key, sends no transaction and writes nothing to the database.
//!
//! Rooms, from the bottom up: `config` (the TOML file), `index` (the chain's events, kept and
//! looked up), `state` (what every page reads from), `view` (each page's data), `html` (each
//! page's markup), `routes` (the web server's routes); this file builds them and runs them.

pub mod config;
pub mod html;
pub mod index;
pub mod routes;
pub mod state;
pub mod view;

pub use state::{AuditState, Explorer, ExplorerMetrics};

use config::ExplorerConfig;
use eyre::{Result, WrapErr};
use index::Indexer;
use iotegrity_core::store::TableRef;
use iotegrity_core::{AddressBook, chain};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::info;

/// The running explorer: its pages' state and the indexer that feeds them.
pub struct Running {
    /// The pages' state.
    pub explorer: Arc<Explorer>,
    indexer: Indexer,
    cfg: ExplorerConfig,
    stop: watch::Sender<bool>,
}

/// Reads the address book, connects to the chain (and the database, if configured) and reads the
/// saved index, if any.
pub async fn connect(cfg: ExplorerConfig, metrics: Arc<ExplorerMetrics>) -> Result<Running> {
    let book = AddressBook::load(&cfg.chain.deployments)?;
    let provider = chain::reader(&cfg.chain.rpc_url)?;
    let chain_id = chain::chain_id(&provider).await.wrap_err("the chain cannot be reached")?;
    eyre::ensure!(
        chain_id == book.chain_id,
        "{} is of chain {}, the RPC at {} is chain {chain_id}",
        cfg.chain.deployments.display(),
        book.chain_id,
        cfg.chain.rpc_url
    );
    let pool = match &cfg.database {
        Some(db) => Some(iotegrity_core::store::connect(&db.url, 4).await.wrap_err("cannot connect to Postgres")?),
        None => None,
    };
    let tables = cfg
        .tables
        .iter()
        .map(|t| TableRef::new(&t.name, &t.key).map_err(|e| eyre::eyre!("[[tables]] {}: {e}", t.name)))
        .collect::<Result<Vec<_>>>()?;
    let indexer = Indexer::new(provider.clone(), &book, cfg.explorer.state_dir.clone(), cfg.explorer.confirmations)?;
    let (stop, stopped) = watch::channel(false);
    let explorer = Arc::new(Explorer {
        index: indexer.index(),
        news: indexer.sender(),
        provider,
        book,
        pool,
        tables,
        anchorer: cfg.explorer.anchorer,
        audits: Mutex::new(HashMap::new()),
        stopped,
        metrics,
    });
    Ok(Running { explorer, indexer, cfg, stop })
}

impl Running {
    /// Serves the pages and keeps the index up to date until `shutdown`.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let listener = crate::http::bind(&self.cfg.explorer.listen, "explorer").await?;
        let addr = listener.local_addr()?;
        let synced = self.explorer.index.read().expect("not poisoned").synced_to();
        info!(url = %format!("http://{addr}/"), from_block = synced + 1, "explorer serving; indexing the chain");
        let app = routes::router(self.explorer.clone());
        let http = self.cfg.http.clone();
        let (stop_serving, serving_stopped) = watch::channel(false);
        let server = tokio::spawn(async move {
            let mut stopped = serving_stopped;
            crate::http::serve(listener, app, &http, None, async move {
                let _ = stopped.changed().await;
            })
            .await
        });
        let every = Duration::from_millis(self.cfg.explorer.poll_interval_ms);
        let errors = self.explorer.metrics.errors.clone();
        crate::poll::run(&mut self, "explorer index", every, &errors, shutdown).await?;
        // Live streams end first, so the server's graceful shutdown does not wait on them.
        let _ = self.stop.send(true);
        let _ = stop_serving.send(true);
        let _ = server.await;
        Ok(())
    }
}

impl crate::poll::Ticks for Running {
    async fn tick(&mut self) -> Result<()> {
        let added = self.indexer.tick().await?;
        self.explorer.metrics.indexed.inc_by(added as u64);
        Ok(())
    }
}
