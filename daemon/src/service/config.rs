//! The service daemon's configuration: a TOML file (docs/daemon.md, `iotegrityd.example.toml`),
//! every field with a documented default; secrets may come from the environment instead.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `iotegrityd service` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Postgres.
    pub database: DatabaseConfig,
    /// The chain and the anchoring key.
    pub chain: ChainConfig,
    /// Receipt making.
    #[serde(default)]
    pub receipts: ReceiptsConfig,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// Limits of the HTTP servers (ingest API, metrics).
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// The HTTP ingest API for signed readings.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// The job market: what the batch API does with workers' proposals and deliveries.
    #[serde(default)]
    pub market: MarketConfig,
    /// Federated learning: pin the models of this service's trainings. Default: off.
    pub learning: Option<LearningConfig>,
    /// The tables to watch.
    #[serde(default)]
    pub tables: Vec<TableConfig>,
}

/// `[learning]` (docs/learning.md, "The service daemon"): pin, on this IPFS node, the initial
/// model of each federated training the service's identity created, each round's local models
/// and global model once the round's scores are final, and the final model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningConfig {
    /// Kubo RPC API base URL, e.g. `http://127.0.0.1:5001`.
    pub ipfs: String,
    /// Give up on one IPFS request after this many seconds. Default 30.
    #[serde(default = "default_ipfs_timeout")]
    pub timeout_secs: u64,
    /// How often the chain is read, milliseconds. Default 2 000.
    #[serde(default = "default_learning_poll")]
    pub poll_interval_ms: u64,
}

fn default_ipfs_timeout() -> u64 {
    30
}
fn default_learning_poll() -> u64 {
    2_000
}

/// `[market]` (docs/market.md, "The service daemon"). Without it, proposals and deliveries are
/// refused by the API and taken by hand (`iotegrity market accept`, `market evaluate`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketConfig {
    /// Assign a job to the first worker whose valid proposal arrives (`POST /v1/jobs/proposals`).
    /// Default false.
    #[serde(default)]
    pub accept_proposals: bool,
    /// Refuse workers whose reputation score is below this (points, −100..100). Default: none.
    pub min_worker_score: Option<f64>,
    /// Judge a delivered model (`POST /v1/jobs/results`) on the held-out rows and end the job
    /// Success or Failed. Default false.
    #[serde(default)]
    pub evaluate_results: bool,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL, e.g. `postgres://postgres@127.0.0.1:5432/iot` (env `IOTEGRITYD_DATABASE_URL` wins).
    pub url: String,
}

/// `[chain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint. Default `http://127.0.0.1:8545`.
    #[serde(default = "default_rpc")]
    pub rpc_url: String,
    /// Address book of the deployment (ReceiptAnchor address, chain id, deployment block).
    pub deployments: PathBuf,
    /// Keystore of the service's ONLINE key, which sends the anchoring transactions
    /// (or env `IOTEGRITYD_PRIVATE_KEY`).
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (or env `IOTEGRITYD_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Blocks to wait after the anchoring block before receipts are written. Default 1.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
}

/// `[receipts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsConfig {
    /// How often the daemon looks for new rows (one index lookup per table) when no NOTIFY
    /// arrives, ms. Default 1000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Most batches anchored in one transaction. Default 16 (contract maximum 256).
    #[serde(default = "default_max_batches")]
    pub max_batches_per_anchor: usize,
    /// Create an AFTER INSERT trigger on each table that wakes the daemon via NOTIFY (on about
    /// one insert statement in ⌈m / 4⌉) instead of waiting for the next poll. Off by default: a
    /// statement trigger costs every insert statement a function call (~15% more time per
    /// single-row insert, docs/benchmarks.md), to save at most one poll interval. Default false.
    #[serde(default)]
    pub install_triggers: bool,
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Address of the ingest API, e.g. `127.0.0.1:8080`. Default: off.
    pub listen: Option<String>,
    /// Serve the API over TLS 1.3 with this certificate (PEM; its key pinned on chain for the
    /// service's name: `iotegrity cert issue`, `cert add`), and `tls_key`. Default: plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM). Required with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS (with `tls_cert`): let in only clients whose certificate key the chain accepts
    /// now under one of these names, e.g. `["gw1.iot", "gw2.iot"]`. Default empty: no client
    /// certificate asked for.
    #[serde(default)]
    pub client_names: Vec<String>,
    /// Largest request body accepted by the single-item routes (a reading, an aggregate, a
    /// feedback), bytes. Default 262 144.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest body of `POST /v1/readings/batch`, bytes: room for the 1 000 items a batch may hold
    /// (a reading with two signatures is ~470 bytes of JSON plus twice its payload in hex, so 1 000
    /// with payloads up to 600 bytes fit). Default 2 097 152.
    #[serde(default = "default_max_batch")]
    pub max_batch_bytes: usize,
    /// Largest reading payload accepted, bytes. Default 16 384.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    /// Most gateway hops in one chain. Default 8.
    #[serde(default = "default_max_hops")]
    pub max_hops: usize,
    /// Most seconds a reading's or command's timestamp may lie ahead of this service's clock.
    /// Default 300.
    #[serde(default = "default_max_future")]
    pub max_future_secs: u64,
    /// Most seconds a timestamp may lie behind it (a gateway's backlog after an outage is older
    /// than now, a clock at 0 is not). Default 315 360 000 (ten years).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: None,
            tls_cert: None,
            tls_key: None,
            client_names: Vec::new(),
            max_body_bytes: default_max_body(),
            max_batch_bytes: default_max_batch(),
            max_payload_bytes: default_max_payload(),
            max_hops: default_max_hops(),
            max_future_secs: default_max_future(),
            max_age_secs: default_max_age(),
        }
    }
}

fn default_max_body() -> usize {
    262_144
}
fn default_max_batch() -> usize {
    2_097_152
}
fn default_max_payload() -> usize {
    16_384
}
fn default_max_hops() -> usize {
    8
}
fn default_max_future() -> u64 {
    300
}
fn default_max_age() -> u64 {
    315_360_000
}

/// `[[tables]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// `schema.table` (or `table` for `public.table`).
    pub name: String,
    /// Increasing integer key column. Default `id`.
    #[serde(default = "default_key")]
    pub key: String,
    /// Rows per batch (the paper's m). Default 100.
    #[serde(default = "default_m")]
    pub m: usize,
    /// Sub-tables per batch (the paper's n). Default 4.
    #[serde(default = "default_n")]
    pub n: usize,
    /// Anchor a shorter batch when rows have waited this long, seconds. Default 60.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
}

impl TableConfig {
    /// The NOTIFY trigger (if installed) wakes the daemon on about one insert statement in this
    /// many, a random draw: ⌈m / 4⌉, so single-row inserts wake it about four times per batch
    /// (polling covers the rest).
    pub fn wake_every(&self) -> u64 {
        self.m.div_ceil(4).max(1) as u64
    }
}

fn default_rpc() -> String {
    "http://127.0.0.1:8545".into()
}
fn default_confirmations() -> u64 {
    1
}
fn default_poll() -> u64 {
    1000
}
fn default_max_batches() -> usize {
    16
}
fn default_key() -> String {
    "id".into()
}
fn default_m() -> usize {
    100
}
fn default_n() -> usize {
    4
}
fn default_max_wait() -> u64 {
    60
}

impl Default for ReceiptsConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: default_poll(),
            max_batches_per_anchor: default_max_batches(),
            install_triggers: false,
        }
    }
}

impl ServiceConfig {
    /// Reads and checks a config file; `IOTEGRITYD_DATABASE_URL` overrides the database URL.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let mut cfg: Self = crate::files::read_toml(path)?;
        if let Ok(url) = std::env::var("IOTEGRITYD_DATABASE_URL") {
            cfg.database.url = url;
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks the values that TOML types cannot.
    pub fn check(&self) -> eyre::Result<()> {
        eyre::ensure!(
            !self.tables.is_empty() || self.ingest.listen.is_some(),
            "configure at least one [[tables]] entry or [ingest] listen"
        );
        for t in &self.tables {
            iotegrity_core::store::TableRef::new(&t.name, &t.key).map_err(|e| eyre::eyre!("table {}: {e}", t.name))?;
            eyre::ensure!(
                t.m >= 1 && t.n >= 1 && t.n <= t.m,
                "table {}: need 1 <= n <= m (m = {}, n = {})",
                t.name,
                t.m,
                t.n
            );
            eyre::ensure!(t.m <= 1_000_000, "table {}: m = {} is more than 1 000 000 rows per batch", t.name, t.m);
        }
        eyre::ensure!(
            self.ingest.tls_cert.is_some() == self.ingest.tls_key.is_some(),
            "[ingest] tls_cert and tls_key go together"
        );
        eyre::ensure!(
            self.ingest.client_names.is_empty() || self.ingest.tls_cert.is_some(),
            "[ingest] client_names needs tls_cert and tls_key (mutual TLS)"
        );
        for name in &self.ingest.client_names {
            iotegrity_core::names::validate_name(name).map_err(|e| eyre::eyre!("[ingest] client_names: {e}"))?;
        }
        self.http.check()?;
        let max = self.receipts.max_batches_per_anchor;
        eyre::ensure!((1..=256).contains(&max), "max_batches_per_anchor must be 1..=256, not {max}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [database]
        url = "postgres://postgres@127.0.0.1/x"
        [chain]
        deployments = "anvil/deployments/31337.json"
        [[tables]]
        name = "public.readings"
    "#;

    #[test]
    fn defaults_fill_in() {
        let cfg: ServiceConfig = toml::from_str(MINIMAL).unwrap();
        cfg.check().unwrap();
        assert_eq!(cfg.chain.rpc_url, "http://127.0.0.1:8545");
        assert_eq!(cfg.chain.confirmations, 1);
        assert_eq!((cfg.tables[0].key.as_str(), cfg.tables[0].m, cfg.tables[0].n), ("id", 100, 4));
        assert_eq!(cfg.receipts.poll_interval_ms, 1000);
        assert!(!cfg.receipts.install_triggers);
        assert!(cfg.metrics.listen.is_none());
        assert!(cfg.learning.is_none(), "pinning is off without [learning]");
        let learning: ServiceConfig =
            toml::from_str(&format!("{MINIMAL}\n[learning]\nipfs = \"http://x:5001\"")).unwrap();
        let l = learning.learning.unwrap();
        assert_eq!((l.ipfs.as_str(), l.timeout_secs, l.poll_interval_ms), ("http://x:5001", 30, 2_000));
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../iotegrityd.example.toml");
        let cfg = ServiceConfig::load(&path).unwrap();
        assert_eq!(cfg.tables[0].name, "public.readings");
        assert!(!cfg.market.accept_proposals && !cfg.market.evaluate_results && cfg.market.min_worker_score.is_none());
        assert_eq!(cfg.learning.unwrap().ipfs, "http://127.0.0.1:5001");
    }

    #[test]
    fn bad_values_are_refused() {
        let bad_n = MINIMAL.replace("name = \"public.readings\"", "name = \"public.readings\"\nm = 2\nn = 3");
        assert!(toml::from_str::<ServiceConfig>(&bad_n).unwrap().check().is_err());
        let bad_name = MINIMAL.replace("public.readings", "Readings; drop");
        assert!(toml::from_str::<ServiceConfig>(&bad_name).unwrap().check().is_err());
        let unknown = format!("{MINIMAL}\n[extra]\nx = 1");
        assert!(toml::from_str::<ServiceConfig>(&unknown).is_err(), "unknown sections are errors, not ignored");
    }
}
