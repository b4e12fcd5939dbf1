//! The learner daemon's configuration: a TOML file (docs/learning.md "The learner daemon",
//! `iotegrityd-learner.example.toml`), every field with a documented default.

use alloy::primitives::Address;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `iotegrityd learner` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerConfig {
    /// The participant's key, state, data and filters.
    pub learner: LearnerSection,
    /// The chain.
    pub chain: crate::files::ChainSection,
    /// The IPFS node.
    #[serde(default)]
    pub ipfs: IpfsSection,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
}

/// `[learner]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerSection {
    /// Keystore of the participant's ONLINE key (an active device or gateway identity): it
    /// registers, stores models, scores and claims (or env `IOTEGRITYD_PRIVATE_KEY`).
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (or env `IOTEGRITYD_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Directory of its state: one JSON file per training it registered for.
    pub state_dir: PathBuf,
    /// The rows it trains on: its age band `I/N` of the diabetes table's rows 1..=360.
    pub shard: String,
    /// The proximal weight μ of local training. Default 0.001.
    #[serde(default = "default_mu")]
    pub mu: f64,
    /// How often the chain is read, milliseconds. Default 2 000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Services (offline addresses) whose trainings it joins; empty: any. Default: any.
    #[serde(default)]
    pub services: Vec<Address>,
    /// Services scoring below this (points, −100..100) are not joined. Default: none.
    pub min_service_score: Option<f64>,
}

/// `[ipfs]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpfsSection {
    /// Kubo RPC API base URL. Default `http://127.0.0.1:5001`.
    #[serde(default = "default_ipfs")]
    pub url: String,
    /// Give up on one IPFS request after this many seconds. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

impl Default for IpfsSection {
    fn default() -> Self {
        Self { url: default_ipfs(), timeout_secs: default_timeout() }
    }
}

fn default_mu() -> f64 {
    iotegrity_core::learning::fedavg::PROXIMAL_MU
}
fn default_poll() -> u64 {
    2_000
}
fn default_ipfs() -> String {
    "http://127.0.0.1:5001".into()
}
fn default_timeout() -> u64 {
    30
}

impl LearnerConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let cfg: Self = crate::files::read_toml(path)?;
        eyre::ensure!(cfg.learner.poll_interval_ms >= 50, "learner.poll_interval_ms must be >= 50");
        eyre::ensure!(cfg.learner.mu.is_finite() && cfg.learner.mu >= 0.0, "learner.mu must be a number >= 0");
        cfg.shard()?;
        Ok(cfg)
    }

    /// `learner.shard` as (I, N).
    pub fn shard(&self) -> eyre::Result<(usize, usize)> {
        let s = &self.learner.shard;
        s.split_once('/')
            .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
            .filter(|&(i, n)| i >= 1 && i <= n && n <= 360)
            .ok_or_else(|| eyre::eyre!("learner.shard {s:?}: expected I/N with 1 <= I <= N <= 360"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid_and_bad_values_are_refused() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../iotegrityd-learner.example.toml");
        let cfg = LearnerConfig::load(&path).unwrap();
        assert_eq!(cfg.shard().unwrap(), (1, 3));
        assert_eq!(cfg.ipfs.url, "http://127.0.0.1:5001");
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let p = dir.path().join("l.toml");
            std::fs::write(&p, text).unwrap();
            LearnerConfig::load(&p)
        };
        let base = "[learner]\nstate_dir = \"s\"\nshard = \"2/3\"\n[chain]\ndeployments = \"d.json\"\n";
        let ok = write(base).unwrap();
        assert_eq!((ok.learner.poll_interval_ms, ok.ipfs.timeout_secs), (2_000, 30));
        assert!(write(&base.replace("2/3", "4/3")).is_err());
        assert!(write(&base.replace("2/3", "x")).is_err());
        assert!(write(&format!("{base}[ipfs]\nurl = \"x\"\nextra = 1\n")).is_err(), "unknown keys are errors");
    }
}
