//! `iotegrityd service`: watches Postgres tables, cuts every `m` new rows into a batch of `n`
//! sub-tables, anchors batch roots on chain through ReceiptAnchor, and writes one receipt per
//! sub-table (paper §4, Figure 6). Every step is persisted before the next, so a crash or
//! restart at any point resumes without skipping a row or anchoring one twice:
//!
//! 1. **cut** — rows past the table's watermark become final once every transaction that was
//!    running when they were read has ended (so rows committed out of key order are never
//!    skipped); a batch and the new watermark are written in one transaction;
//! 2. **plan** — unanchored batches get an anchor row (their anchored root) before anything is
//!    sent, so a restart re-checks the same plan instead of making a new one;
//! 3. **anchor** — a planned root not yet anchored *by this service's identity* is sent; one it
//!    already anchored is found in its own `RootHashStored` events (never a stranger's);
//! 4. **confirm** — after `confirmations` blocks, receipts are written and the plan is confirmed.
//!
//! The chain, not this database, is the record of what was anchored (docs/receipts.md): before a
//! cut the daemon asks ReceiptAnchor how far its table's anchored history goes, and refuses to cut
//! keys the chain already holds (a watermark moved back, batches deleted) instead of anchoring
//! them again — which the contract would refuse anyway.
//!
//! Each table is watched by one daemon at a time — the holder of that table's Postgres advisory
//! lock — so several daemons of one database share its tables, and a daemon stands by for the
//! tables another holds, taking each over when its holder's session ends. Daemons sharing tables
//! share the service key too (the chain knows a table by its owner's identity); their anchoring
//! transactions take turns under a lock of the key, so their nonces never collide. A daemon with
//! no `[[tables]]` only serves the ingest API (docs/daemon.md).

pub mod config;
pub mod handshake;
pub mod ingest;
pub mod jobs;
pub mod learning;

use crate::metrics::Metrics;
use alloy::primitives::B256;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use config::{ServiceConfig, TableConfig};
use eyre::{Result, WrapErr, bail, eyre};
use ingest::Ingest;
use iotegrity_core::anchors;
use iotegrity_core::contracts::{IReceiptAnchor, IdentityRegistry, ReceiptAnchor};
use iotegrity_core::merkle;
use iotegrity_core::receipt::{AnchorRef, Batch, table_id};
use iotegrity_core::store::receipts::{self, PlannedAnchor, StoredBatch};
use iotegrity_core::store::{self, TableRef};
use iotegrity_core::{AddressBook, chain, keys};
use sqlx::Connection;
use sqlx::postgres::{PgListener, PgPool};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Runs `send` while holding the lock of anchoring key `key` on `session`, so daemons sharing
/// the key never ask for the same nonce at once.
pub(crate) async fn with_key_lock<T>(
    session: &mut sqlx::PgConnection,
    key: alloy::primitives::Address,
    send: impl Future<Output = T>,
) -> Result<T> {
    let key = lock_key(alloy::primitives::keccak256(key));
    sqlx::query("SELECT pg_advisory_lock($1)").bind(key).execute(&mut *session).await?;
    let out = send.await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(session).await?;
    Ok(out)
}

/// An advisory lock key from a 32-byte id: its first 8 bytes (keccak-derived, so distinct ids
/// collide with odds of 2⁻⁶⁴).
fn lock_key(id: B256) -> i64 {
    i64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
}
/// How long a cut waits for older transactions to end before trying again next cycle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Least time between two cycles when notifications keep arriving.
const MIN_CYCLE: Duration = Duration::from_millis(200);
/// Most batches one cut reads rows for at a time (bounds the daemon's memory after downtime).
const CUT_READ_BATCHES: usize = 64;
/// Most cut batches kept in memory until their anchor is confirmed (the rest are read back).
const MAX_KEPT_BATCHES: usize = 1_024;
/// Least time between two heartbeats of a table (`iotegrity.watermarks.seen_at`).
const HEARTBEAT: Duration = Duration::from_secs(1);

struct Watched {
    table: TableRef,
    cfg: TableConfig,
    /// Whether this daemon holds the table's lock (on its session), so watches it now.
    held: bool,
    /// Whether "standing by" was logged since the lock was last tried and refused.
    standing_by: bool,
    waiting_since: Option<Instant>,
    /// When the heartbeat was last written, and the waiting state it wrote.
    beat: Option<(Instant, bool)>,
}

/// The running service.
pub struct Service {
    cfg: ServiceConfig,
    pool: PgPool,
    provider: DynProvider,
    book: AddressBook,
    tables: Vec<Watched>,
    metrics: Arc<Metrics>,
    /// The service's online address (its anchoring key; the `service` of its commands).
    service: alloy::primitives::Address,
    /// That key, which also signs the handshake proofs of its TLS channels.
    signer: PrivateKeySigner,
    /// The service identity's offline address: the owner of its tables on chain (looked up once).
    owner: Option<alloy::primitives::Address>,
    /// Batches this process cut whose anchor is not confirmed yet, by id.
    cut_batches: HashMap<i64, Arc<StoredBatch>>,
    /// The dedicated session holding the table locks (and, while sending, the key's lock).
    session: Option<sqlx::PgConnection>,
    /// When this process sent each anchor not confirmed yet, by anchor id (for the latency metric).
    sent_at: HashMap<i64, Instant>,
}

/// Reads the anchoring key from the config or the environment.
pub fn load_signer(cfg: &ServiceConfig) -> Result<PrivateKeySigner> {
    if let Ok(hex) = std::env::var("IOTEGRITYD_PRIVATE_KEY") {
        return hex.trim().parse().map_err(|_| eyre!("IOTEGRITYD_PRIVATE_KEY is not a 32-byte hex key"));
    }
    let path = cfg.chain.keystore.as_ref().ok_or_else(|| {
        eyre!("no anchoring key: set chain.keystore (the service's online key) or IOTEGRITYD_PRIVATE_KEY")
    })?;
    let password = crate::files::keystore_password(cfg.chain.password_file.as_deref(), "chain.password_file")?;
    Ok(keys::open_keystore(path, &password)?)
}

impl Service {
    /// Connects to Postgres (running migrations) and the chain.
    pub async fn connect(cfg: ServiceConfig, metrics: Arc<Metrics>) -> Result<Self> {
        let signer = load_signer(&cfg)?;
        let service = signer.address();
        let book = AddressBook::load(&cfg.chain.deployments)?;
        let provider = chain::writer(&cfg.chain.rpc_url, signer.clone())?;
        let pool = store::connect(&cfg.database.url, 4).await.wrap_err("cannot connect to Postgres")?;
        store::MIGRATOR.run(&pool).await.wrap_err("cannot migrate the receipts schema")?;
        let tables = cfg
            .tables
            .iter()
            .map(|t| {
                Ok(Watched {
                    table: TableRef::new(&t.name, &t.key).map_err(|e| eyre!(e))?,
                    cfg: t.clone(),
                    held: false,
                    standing_by: false,
                    waiting_since: None,
                    beat: None,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            cfg,
            pool,
            provider,
            book,
            tables,
            metrics,
            service,
            signer,
            owner: None,
            cut_batches: HashMap::new(),
            session: None,
            sent_at: HashMap::new(),
        })
    }

    /// Runs until `shutdown` resolves: serves the ingest API (if configured, also while standing
    /// by), takes the lock of every configured table no other daemon holds (standing by for the
    /// others), then cuts, plans, anchors and confirms its tables on every NOTIFY or poll tick.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let ingest = self.start_ingest(stopped.clone()).await?;
        let pinner = self.start_pinner(stopped);
        let result = self.watch(&mut shutdown).await;
        let _ = stop.send(true);
        for task in [ingest, pinner].into_iter().flatten() {
            let _ = task.await;
        }
        info!("shut down");
        result
    }

    /// Starts pinning the models of the service's federated trainings, if `[learning]` is set.
    fn start_pinner(&self, mut stopped: tokio::sync::watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
        let cfg = self.cfg.learning.as_ref()?;
        let ipfs = iotegrity_core::ipfs::Ipfs::new(&cfg.ipfs, Duration::from_secs(cfg.timeout_secs));
        let pinned = self.metrics.models_pinned.clone();
        let mut pinner = learning::Pinner::new(self.provider.clone(), self.book.clone(), ipfs, self.service, pinned);
        let (poll, errors) = (Duration::from_millis(cfg.poll_interval_ms), self.metrics.errors.clone());
        info!(ipfs = %cfg.ipfs, "pinning the models of this service's federated trainings");
        Some(tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.changed().await;
            };
            let _ = crate::poll::run(&mut pinner, "learning", poll, &errors, stop).await;
        }))
    }

    /// Starts the ingest API and its registry sync, if `[ingest] listen` is set.
    async fn start_ingest(
        &self,
        stopped: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(addr) = &self.cfg.ingest.listen else { return Ok(None) };
        let api = Ingest::new(
            self.pool.clone(),
            chain::reader(&self.cfg.chain.rpc_url)?,
            &self.book,
            self.service,
            self.cfg.ingest.clone(),
            self.metrics.clone(),
        )
        .await?;
        let keys = self.tables.iter().map(|t| (t.table.name(), t.cfg.key.clone())).collect();
        let jobs = jobs::Jobs::new(
            self.pool.clone(),
            self.provider.clone(),
            &self.book,
            self.service,
            keys,
            self.cfg.market.clone(),
        );
        let ingest = &self.cfg.ingest;
        let tls = crate::http::Tls::from_config(
            "[ingest]",
            ingest.tls_cert.as_deref(),
            ingest.tls_key.as_deref(),
            &ingest.client_names,
            &self.provider,
            &self.book,
        )?;
        let listener = crate::http::bind(addr, "ingest API").await?;
        let poll = Duration::from_millis(self.cfg.receipts.poll_interval_ms);
        let (sync_api, mut sync_stop) = (api.clone(), stopped.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = sync_stop.changed() => break,
                    _ = tokio::time::sleep(poll) => if let Err(e) = sync_api.sync().await { warn!(error = %format!("{e:#}"), "registry sync failed; retrying") },
                }
            }
        });
        let (mut serve_stop, http) = (stopped, self.cfg.http.clone());
        let (signer, domain) = (self.signer.clone(), iotegrity_core::signatures::domain_of(&self.book));
        Ok(Some(tokio::spawn(async move {
            let graceful = async move {
                let _ = serve_stop.changed().await;
            };
            let app = ingest::router(api).merge(jobs::router(jobs)).merge(handshake::router(signer, domain));
            crate::http::serve(listener, app, &http, tls, graceful).await;
        })))
    }

    /// Watches the tables whose locks this daemon holds, trying the others on every tick; if the
    /// session holding the locks is lost (database restarted), drops them all and starts over, so
    /// two daemons never watch one table at once. With no tables configured, only waits.
    async fn watch(&mut self, shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>) -> Result<()> {
        if self.tables.is_empty() {
            info!("ingest only: no [[tables]] to watch");
            shutdown.as_mut().await;
            return Ok(());
        }
        let poll = Duration::from_millis(self.cfg.receipts.poll_interval_ms);
        loop {
            let Some(session) = self.open_session(shutdown, poll).await else { return Ok(()) };
            self.session = Some(session);
            // Another daemon may have confirmed what this one cut while the locks were lost.
            self.cut_batches.clear();
            for t in &mut self.tables {
                (t.held, t.standing_by) = (false, false);
            }
            let mut listener: Option<PgListener> = None;
            loop {
                // Still holding the locks? Their session dies with a database restart.
                let session = self.session.as_mut().expect("opened above");
                if sqlx::query("SELECT 1").execute(&mut *session).await.is_err() {
                    warn!("lost the database session holding the locks; re-acquiring them");
                    self.session = None;
                    break;
                }
                if let Err(err) = self.claim_tables().await {
                    warn!(error = %format!("{err:#}"), "cannot take or prepare the tables; retrying");
                }
                if self.tables.iter().any(|t| t.held) {
                    if listener.is_none() {
                        let mut l = PgListener::connect_with(&self.pool).await?;
                        l.listen("iotegrity_rows").await?;
                        listener = Some(l);
                    }
                    if let Err(err) = self.cycle().await {
                        self.metrics.errors.inc();
                        warn!(error = %format!("{err:#}"), "cycle failed; retrying");
                    }
                }
                let cycle_started = Instant::now();
                let notified = async {
                    match listener.as_mut() {
                        Some(l) => {
                            if let Err(e) = l.try_recv().await {
                                debug!(error = %e, "listener reconnecting");
                            }
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = shutdown.as_mut() => return Ok(()), // dropping the session releases its locks
                    _ = notified => {}
                    _ = tokio::time::sleep(poll) => {}
                }
                // Under a stream of inserts every statement notifies: coalesce them into at most
                // one cycle per MIN_CYCLE, so watching costs the writers almost nothing.
                if let Some(l) = listener.as_mut() {
                    while l.next_buffered().is_some() {}
                    if let Some(rest) = MIN_CYCLE.checked_sub(cycle_started.elapsed()) {
                        tokio::select! {
                            _ = shutdown.as_mut() => return Ok(()),
                            _ = tokio::time::sleep(rest) => {}
                        }
                        while l.next_buffered().is_some() {}
                    }
                }
            }
        }
    }

    /// Opens the dedicated session that holds the locks, retrying while the database is
    /// unreachable. None on shutdown.
    async fn open_session(
        &self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        poll: Duration,
    ) -> Option<sqlx::PgConnection> {
        loop {
            match store::options(&self.cfg.database.url) {
                Ok(options) => match sqlx::PgConnection::connect_with(&options).await {
                    Ok(conn) => return Some(conn),
                    Err(e) => warn!(error = %e, "cannot reach the database; retrying"),
                },
                Err(e) => warn!(error = %e, "bad database URL; retrying"),
            }
            tokio::select! {
                _ = shutdown.as_mut() => return None,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Tries the lock of every configured table not held yet; prepares each one it gets (its
    /// watermark row and trigger) before watching it.
    async fn claim_tables(&mut self) -> Result<()> {
        for i in 0..self.tables.len() {
            if self.tables[i].held {
                continue;
            }
            let name = self.tables[i].table.name();
            let session = self.session.as_mut().expect("a session is open");
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(lock_key(table_id(&name)))
                .fetch_one(&mut *session)
                .await?;
            if !got {
                if !self.tables[i].standing_by {
                    info!(table = %name, "another iotegrityd watches this table; standing by");
                    self.tables[i].standing_by = true;
                }
                continue;
            }
            if let Err(e) = self.prepare_table(i).await {
                let session = self.session.as_mut().expect("a session is open");
                sqlx::query("SELECT pg_advisory_unlock($1)").bind(lock_key(table_id(&name))).execute(session).await?;
                return Err(e);
            }
            let t = &mut self.tables[i];
            (t.held, t.standing_by, t.waiting_since, t.beat) = (true, false, None, None);
            info!(table = %name, "active: watching {name}");
        }
        Ok(())
    }

    /// Records table `i` as watched (its watermark row, with max_wait_secs and a first heartbeat),
    /// and installs its NOTIFY trigger, or removes one an earlier run installed.
    async fn prepare_table(&self, i: usize) -> Result<()> {
        let t = &self.tables[i];
        receipts::watch(&self.pool, &t.table.name(), t.cfg.max_wait_secs).await?;
        let sql = if self.cfg.receipts.install_triggers {
            t.table.notify_trigger_sql(t.cfg.wake_every())
        } else {
            t.table.drop_notify_trigger_sql()
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .wrap_err_with(|| format!("cannot install or remove the NOTIFY trigger on {}", t.table.name()))?;
        Ok(())
    }

    /// The tables this daemon holds now.
    fn held(&self) -> Vec<String> {
        self.tables.iter().filter(|t| t.held).map(|t| t.table.name()).collect()
    }

    /// One pass: cut every held table, then plan, anchor and confirm.
    async fn cycle(&mut self) -> Result<()> {
        for i in 0..self.tables.len() {
            if self.tables[i].held {
                self.cut(i).await?;
            }
        }
        self.anchor_planned().await?;
        while self.plan().await? {
            self.anchor_planned().await?;
        }
        Ok(())
    }

    /// The offline address of the service's identity, which owns its tables on chain.
    async fn owner(&mut self) -> Result<alloy::primitives::Address> {
        if let Some(owner) = self.owner {
            return Ok(owner);
        }
        let registry = IdentityRegistry::new(self.book.identity_registry(), &self.provider);
        let owner = chain::call(registry.offlineOf(self.service)).await?;
        if owner.is_zero() {
            bail!(
                "the anchoring key {} is not a registered online key: register the service identity first \
                 (iotegrity identity register --role service …)",
                self.service
            );
        }
        self.owner = Some(owner);
        Ok(owner)
    }

    /// Tells the store that table `i` was looked at now, and since when rows wait to be cut (for
    /// the audit's overdue warning): at most once per [`HEARTBEAT`], or when the waiting state
    /// changes.
    async fn heartbeat(&mut self, i: usize) -> Result<()> {
        let t = &self.tables[i];
        let waiting = t.waiting_since.is_some();
        if t.beat.is_some_and(|(at, was)| at.elapsed() < HEARTBEAT && was == waiting) {
            return Ok(());
        }
        let waited = t.waiting_since.map(|since| since.elapsed().as_secs_f64());
        receipts::heartbeat(&self.pool, &t.table.name(), waited).await?;
        self.tables[i].beat = Some((Instant::now(), waiting));
        Ok(())
    }

    /// Fails unless the batch about to be cut from `first_key` on lies above everything the chain
    /// holds for table `name`: anchored history is append-only, so a store behind the chain
    /// (watermark moved back, batches deleted, an old backup restored) must not be re-anchored.
    async fn check_chain_history(&mut self, name: &str, first_key: i64) -> Result<()> {
        let owner = self.owner().await?;
        let contract = ReceiptAnchor::new(self.book.receipt_anchor(), &self.provider);
        let record = chain::call(contract.tableOf(owner, table_id(name))).await?;
        if record.batches > 0 && first_key <= record.lastKey {
            bail!(
                "the chain already holds anchors of {name} up to key {} ({} batches), but the receipts store would cut \
                 again from key {first_key}: iotegrity.watermarks or iotegrity.batches were moved back or edited, or an \
                 old backup restored. Refusing to anchor those rows again; audit the table (docs/receipts.md)",
                record.lastKey,
                record.batches
            );
        }
        Ok(())
    }

    /// Cuts every final batch of one table: reads the rows that are ready in one stream (at most
    /// [`CUT_READ_BATCHES`] batches at a time), and writes their batches and the new watermark in
    /// one transaction.
    async fn cut(&mut self, i: usize) -> Result<()> {
        let name = self.tables[i].table.name();
        let mut mark = receipts::watermark(&self.pool, &name).await?;
        let (xmax, max_key) = self.tables[i].table.snapshot_and_max_key(&self.pool).await?;
        let (m, n, max_wait) = {
            let c = &self.tables[i].cfg;
            (c.m, c.n, Duration::from_secs(c.max_wait_secs))
        };
        let Some(upto) = max_key.filter(|k| *k > mark.unwrap_or(i64::MIN)) else {
            self.tables[i].waiting_since = None;
            return self.heartbeat(i).await;
        };
        let due = self.tables[i].waiting_since.get_or_insert_with(Instant::now).elapsed() >= max_wait;
        self.heartbeat(i).await?;
        // Keys are distinct integers, so fewer than m of them lie in (mark, upto] when the range is
        // shorter than m: nothing to read until more arrive or the short batch is due.
        if !due && i128::from(upto) - i128::from(mark.unwrap_or(i64::MIN)) < m as i128 {
            return Ok(());
        }
        // Rows with keys <= upto are final once every transaction running at that snapshot has
        // ended: any of them could still commit a smaller key (sequences hand out keys before
        // commit), and later transactions can only take larger keys.
        let settle = Instant::now();
        while store::current_xmin(&self.pool).await? < xmax {
            if settle.elapsed() > SETTLE_TIMEOUT {
                debug!(table = %name, "older transactions still running; cutting next cycle");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let limit = (m * CUT_READ_BATCHES) as i64;
        loop {
            let after = mark.unwrap_or(i64::MIN);
            let mut rows = self.tables[i].table.rows(&self.pool, after, upto, Some(limit)).await?;
            if rows.is_empty() {
                self.tables[i].waiting_since = None;
                return Ok(());
            }
            let complete = rows.len() < limit as usize; // every ready row was read
            if rows.len() % m != 0 && !(complete && due) {
                rows.truncate(rows.len() - rows.len() % m); // a short batch waits for more rows or max_wait
            }
            if rows.is_empty() {
                return Ok(());
            }
            self.check_chain_history(&name, rows[0].key).await?;
            let batches: Vec<Batch> = rows.chunks(m).map(|chunk| Batch::new(chunk.to_vec(), n)).collect();
            let last = batches[batches.len() - 1].key_range().1;
            let ids = receipts::store_batches(&self.pool, &name, mark, &batches).await?;
            for (id, batch) in ids.into_iter().zip(batches) {
                let (first, last) = batch.key_range();
                self.metrics.rows_batched.inc_by(batch.rows.len() as u64);
                self.metrics.batches_cut.inc();
                info!(table = %name, first, last, rows = batch.rows.len(), root = %batch.root(), "batch cut");
                if self.cut_batches.len() < MAX_KEPT_BATCHES {
                    self.cut_batches.insert(id, Arc::new(StoredBatch { id, table: name.clone(), batch }));
                }
            }
            mark = Some(last);
            self.tables[i].waiting_since = (last < upto).then(Instant::now);
            if complete {
                return Ok(());
            }
        }
    }

    /// Plans one anchor over unanchored batches; false if there were none.
    async fn plan(&self) -> Result<bool> {
        let (max, chain_id, contract) =
            (self.cfg.receipts.max_batches_per_anchor, self.book.chain_id, self.book.receipt_anchor());
        let Some((plan, batches)) = receipts::plan_anchor(&self.pool, &self.held(), max, chain_id, contract).await?
        else {
            return Ok(false);
        };
        info!(anchor = plan.id, batches, root = %plan.anchored_root, "anchor planned");
        Ok(true)
    }

    /// Sends or finds every planned anchor, then writes its receipts once confirmed.
    async fn anchor_planned(&mut self) -> Result<()> {
        for plan in receipts::planned_anchors(&self.pool, &self.held()).await? {
            self.anchor_one(plan).await?;
        }
        Ok(())
    }

    async fn anchor_one(&mut self, plan: PlannedAnchor) -> Result<()> {
        let PlannedAnchor { id, anchored_root: root, tx: sent } = plan;
        let batches = receipts::batches_of(&self.pool, id, &self.cut_batches).await?;
        let owner = self.owner().await?;
        let contract = ReceiptAnchor::new(self.book.receipt_anchor(), &self.provider);
        let on_chain: bool = chain::call(contract.verifyRootHash(owner, root)).await?;
        let (tx_hash, block) = if on_chain {
            self.find_anchor(owner, root, sent, &batches).await?
        } else {
            let call_batches: Vec<_> = batches
                .iter()
                .map(|b| {
                    let (first, last) = b.batch.key_range();
                    IReceiptAnchor::Batch {
                        root: b.batch.root(),
                        tableId: table_id(&b.table),
                        firstKey: first,
                        lastKey: last,
                        m: b.batch.rows.len() as u32,
                        n: b.batch.ranges.len() as u32,
                    }
                })
                .collect();
            let pending = with_key_lock(
                self.session.as_mut().ok_or_else(|| eyre!("no database session"))?,
                self.service,
                contract.storeRootHashes(call_batches).send(),
            )
            .await?
            .map_err(chain::contract_error)?;
            let hash = *pending.tx_hash();
            self.sent_at.entry(id).or_insert_with(Instant::now);
            receipts::record_sent(&self.pool, id, hash).await?;
            info!(anchor = id, tx = %hash, "anchor sent");
            // A receipt that does not come (a transaction stuck in the mempool) fails this cycle;
            // the next looks on chain again and, if it must, re-sends — a no-op should both land.
            let receipt = pending
                .with_timeout(Some(chain::RECEIPT_TIMEOUT))
                .get_receipt()
                .await
                .wrap_err("waiting for the anchoring transaction")?;
            if !receipt.status() {
                bail!("anchoring transaction {hash} failed on chain");
            }
            (hash, receipt.block_number.ok_or_else(|| eyre!("receipt without a block number"))?)
        };
        let confirmations = self.cfg.chain.confirmations.max(1);
        let latest = self.provider.get_block_number().await?;
        if latest + 1 < block + confirmations {
            debug!(anchor = id, block, latest, "waiting for confirmations");
            return Ok(()); // the next cycle finishes it
        }
        self.confirm(id, root, tx_hash, block, &batches).await
    }

    /// Finds the transaction in which this service's identity (`owner`) anchored `root` (after a
    /// crash): the recorded transaction if its events show that anchor, else the identity's own
    /// `RootHashStored` events. Their batches must be exactly `batches`: an anchor is adopted only
    /// if this service made it, for these very rows.
    async fn find_anchor(
        &self,
        owner: alloy::primitives::Address,
        root: B256,
        sent: Option<B256>,
        batches: &[Arc<StoredBatch>],
    ) -> Result<(B256, u64)> {
        let ours = |log: &alloy::rpc::types::Log| {
            log.address() == self.book.receipt_anchor()
                && log.topic0() == Some(&ReceiptAnchor::RootHashStored::SIGNATURE_HASH)
                && anchors::decode(log).is_ok_and(|b| b.owner == owner && b.anchored_root == root)
        };
        let mut logs = Vec::new();
        if let Some(hash) = sent
            && let Some(r) = self.provider.get_transaction_receipt(hash).await?
            && r.status()
        {
            logs = r.inner.logs().iter().filter(|l| ours(l)).cloned().collect();
        }
        if logs.is_empty() {
            let filter = Filter::new()
                .address(self.book.receipt_anchor())
                .event_signature(ReceiptAnchor::RootHashStored::SIGNATURE_HASH)
                .topic2(owner.into_word())
                .topic3(root);
            let latest = chain::latest_block(&self.provider).await?;
            logs = chain::logs(&self.provider, &filter, self.book.deployed_block, latest).await?;
        }
        let found: Vec<anchors::AnchoredBatch> = logs.iter().map(anchors::decode).collect::<Result<_, _>>()?;
        let planned: Vec<(B256, i64, i64, u32, u32)> = batches
            .iter()
            .map(|b| {
                let (first, last) = b.batch.key_range();
                (b.batch.root(), first, last, b.batch.rows.len() as u32, b.batch.ranges.len() as u32)
            })
            .collect();
        let anchored: Vec<_> = found.iter().map(|b| (b.root, b.first_key, b.last_key, b.m, b.n)).collect();
        match found.first() {
            Some(first) if anchored == planned => Ok((first.tx, first.block)),
            Some(_) => bail!(
                "root {root} was anchored by this identity for other batches than the ones planned: \
                 the receipts store was altered (audit the table)"
            ),
            None => bail!("root {root} is anchored by {owner} but no RootHashStored event was found for it"),
        }
    }

    /// Writes the receipts of a confirmed anchor (one INSERT for all) and marks it confirmed.
    async fn confirm(
        &mut self,
        id: i64,
        root: B256,
        tx_hash: B256,
        block: u64,
        batches: &[Arc<StoredBatch>],
    ) -> Result<()> {
        let roots: Vec<B256> = batches.iter().map(|b| b.batch.root()).collect();
        let upper = merkle::anchor_tree(&roots);
        if upper.root() != root {
            bail!("anchor {id}: its batches no longer give its anchored root");
        }
        let anchor = AnchorRef {
            chain_id: self.book.chain_id,
            contract: self.book.receipt_anchor(),
            tx: tx_hash,
            block,
            anchored_root: root,
        };
        let mut written = Vec::new();
        for (k, b) in batches.iter().enumerate() {
            for receipt in b.batch.receipts(&b.table, &anchor, &upper.proof(k)) {
                receipt.check().map_err(|e| eyre!("receipt of batch {} sub-table {}: {e}", b.id, receipt.index))?;
                written.push((b.id, receipt));
            }
        }
        receipts::confirm(&self.pool, id, tx_hash, block, written).await?;
        for b in batches {
            self.cut_batches.remove(&b.id);
        }
        self.metrics.anchors_confirmed.inc();
        if let Some(sent) = self.sent_at.remove(&id) {
            self.metrics.anchor_confirmation.observe(sent.elapsed().as_secs_f64());
        }
        info!(anchor = id, tx = %tx_hash, block, batches = batches.len(), "anchor confirmed; receipts written");
        Ok(())
    }
}
