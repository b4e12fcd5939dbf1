//! The worker daemon's configuration: a TOML file (docs/market.md "The worker daemon",
//! `iotegrityd-worker.example.toml`), every field with a documented default.

use alloy::primitives::Address;
use iotegrity_core::job_spec::ModelKind;
use iotegrity_core::tls::Target;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `iotegrityd worker` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// The worker's key, state and job filters.
    pub worker: WorkerSection,
    /// The chain.
    pub chain: crate::files::ChainSection,
    /// The services this worker works for, and where their APIs are.
    #[serde(default)]
    pub services: Vec<ServiceEntry>,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
}

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// Keystore of the worker's ONLINE key: it signs proposals, batch requests and results, and
    /// sends the report and the claim (or env `IOTEGRITYD_PRIVATE_KEY`).
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (or env `IOTEGRITYD_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Directory of the worker's state: one JSON file per job it proposed for, its models and
    /// signed results. Written atomically, so a `kill -9` at any point loses nothing.
    pub state_dir: PathBuf,
    /// How often the market is looked at, milliseconds. Default 2 000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// The model kinds this worker trains (`"linear-regression"`); jobs of other kinds are
    /// skipped. Default: every kind this build trains.
    #[serde(default = "default_models")]
    pub models: Vec<ModelKind>,
    /// Jobs paying less (wei) are skipped. Default 0.
    #[serde(default)]
    pub min_reward_wei: u64,
    /// Services whose reputation score is below this (points, −100..100) are skipped. Default: none.
    pub min_service_score: Option<f64>,
    /// How long a proposal stands, seconds. Default 3 600.
    #[serde(default = "default_ttl")]
    pub proposal_ttl_secs: u64,
    /// Mutual TLS, for named services that ask for a client certificate: the worker's certificate
    /// (PEM), its key pinned under the worker's own name, and `tls_key`. Default: none.
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM). Required with `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

/// `[[services]]`: a service identity (offline address) and where its API is — its name on chain
/// (the pinned TLS channel) or a plain URL. Jobs of services not listed are skipped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    /// The service's offline address, as its jobs record it.
    pub identity: Address,
    /// Its API's name on chain, e.g. `svc.iot`: every request over TLS 1.3 to the name's address,
    /// only to a server whose certificate key the chain accepts for the name now. Set this or `url`.
    pub name: Option<String>,
    /// The named API's TCP port. Default 443.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Base URL of its API for local work, e.g. `http://127.0.0.1:8080` (plain, nothing pinned).
    pub url: Option<String>,
}

impl ServiceEntry {
    /// Where the service's API is (an error if the entry names both or neither).
    pub fn target(&self) -> eyre::Result<Target> {
        Target::from_config(self.name.as_deref(), self.port, self.url.as_deref())
            .map_err(|e| eyre::eyre!("[[services]] {}: {e}", self.identity))
    }
}

fn default_port() -> u16 {
    443
}

fn default_models() -> Vec<ModelKind> {
    vec![ModelKind::LinearRegression]
}
fn default_poll() -> u64 {
    2_000
}
fn default_ttl() -> u64 {
    3_600
}

impl WorkerConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let cfg: Self = crate::files::read_toml(path)?;
        eyre::ensure!(cfg.worker.poll_interval_ms >= 50, "worker.poll_interval_ms must be >= 50");
        eyre::ensure!(cfg.worker.proposal_ttl_secs >= 60, "worker.proposal_ttl_secs must be >= 60");
        eyre::ensure!(
            cfg.worker.tls_cert.is_some() == cfg.worker.tls_key.is_some(),
            "worker.tls_cert and worker.tls_key go together"
        );
        for s in &cfg.services {
            s.target()?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../iotegrityd-worker.example.toml");
        let cfg = WorkerConfig::load(&path).unwrap();
        assert_eq!(cfg.services.len(), 1);
        let minimal: WorkerConfig =
            toml::from_str("[worker]\nstate_dir = \"s\"\n[chain]\ndeployments = \"d.json\"\n").unwrap();
        let (w, m) = (&cfg.worker, &minimal.worker);
        assert_eq!(
            (w.poll_interval_ms, &w.models, w.min_reward_wei, w.min_service_score, w.proposal_ttl_secs),
            (m.poll_interval_ms, &m.models, m.min_reward_wei, m.min_service_score, m.proposal_ttl_secs)
        );
        assert_eq!(cfg.chain.rpc_url, minimal.chain.rpc_url);
        assert!(minimal.services.is_empty() && minimal.metrics.listen.is_none());
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let p = dir.path().join("w.toml");
            std::fs::write(&p, text).unwrap();
            WorkerConfig::load(&p)
        };
        let base = "[worker]\nstate_dir = \"s\"\n[chain]\ndeployments = \"d.json\"\n";
        assert!(write(base).is_ok());
        let err = write(&base.replace("state_dir", "poll_interval_ms = 10\nstate_dir")).unwrap_err();
        assert!(err.to_string().contains("poll_interval_ms"), "{err}");
        assert!(write(&base.replace("state_dir", "proposal_ttl_secs = 5\nstate_dir")).is_err());
        assert!(write(&format!("{base}[[services]]\nidentity = \"0x12\"\nurl = \"x\"\n")).is_err());
        let svc = "[[services]]\nidentity = \"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\"\n";
        let named = write(&format!("{base}{svc}name = \"svc.iot\"\nport = 8443\n")).unwrap();
        assert_eq!(named.services[0].target().unwrap(), Target::Name { name: "svc.iot".into(), port: 8443 });
        let both = write(&format!("{base}{svc}name = \"svc.iot\"\nurl = \"http://x\"\n")).unwrap_err();
        assert!(both.to_string().contains("either name"), "{both}");
        assert!(write(&format!("{base}{svc}port = 1\n")).unwrap_err().to_string().contains("either name"));
        assert!(write(&format!("{base}{svc}name = \"No Name\"\n")).is_err());
        assert!(write(&base.replace("state_dir", "tls_cert = \"c.pem\"\nstate_dir")).is_err(), "cert without key");
        assert!(write(&base.replace("state_dir", "min_rewards = 1\nstate_dir")).is_err(), "a typo is an error");
        assert!(write(&base.replace("state_dir", "models = [\"mlp\"]\nstate_dir")).is_err(), "a kind not built");
    }
}
