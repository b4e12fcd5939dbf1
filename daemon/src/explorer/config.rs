//! The explorer's configuration: one TOML file (docs/explorer.md, `iotegrityd-explorer.example.toml`),
//! every field with a documented default. It names no key: the explorer never signs anything.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `iotegrityd explorer` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorerConfig {
    /// The web server and the index.
    #[serde(default)]
    pub explorer: ExplorerSection,
    /// The deployment to show.
    pub chain: crate::files::ChainSection,
    /// A service's database, for the table and receipt pages (read only). Default: none (those
    /// pages then show what the chain holds).
    pub database: Option<DatabaseSection>,
    /// The tables the database holds and their key columns, for the table and receipt pages.
    #[serde(default)]
    pub tables: Vec<TableEntry>,
    /// Limits of the web server.
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
}

/// `[explorer]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorerSection {
    /// Where the pages are served. Default `127.0.0.1:8090`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where the index of the chain's events is kept between runs (`index.jsonl`, appended); a restart then
    /// reads only the blocks since. Default: none (the index is rebuilt from the deployment block).
    pub state_dir: Option<PathBuf>,
    /// How often the chain is read for new events, ms. Default 1 000.
    #[serde(default = "default_poll")]
    pub poll_interval_ms: u64,
    /// Blocks behind the latest one that the index stays, so that a reorganisation of the chain
    /// never reaches what it holds. Default 0 (a local chain; 12 or more on a public one).
    #[serde(default)]
    pub confirmations: u64,
    /// The identity whose anchors of a table are trusted when several anchored it (offline or
    /// online address), as `iotegrity audit --anchorer`. Default: the only one that anchored.
    pub anchorer: Option<alloy::primitives::Address>,
}

impl Default for ExplorerSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            state_dir: None,
            poll_interval_ms: default_poll(),
            confirmations: 0,
            anchorer: None,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// Postgres URL of the service's database (a read-only role is enough).
    pub url: String,
}

/// `[[tables]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// `schema.table`.
    pub name: String,
    /// Its increasing integer key column. Default `id`.
    #[serde(default = "default_key")]
    pub key: String,
}

fn default_listen() -> String {
    "127.0.0.1:8090".into()
}
fn default_poll() -> u64 {
    1_000
}
fn default_key() -> String {
    "id".into()
}

impl ExplorerConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let cfg: Self = crate::files::read_toml(path)?;
        eyre::ensure!(cfg.explorer.poll_interval_ms >= 50, "explorer.poll_interval_ms must be >= 50");
        cfg.http.check()?;
        for t in &cfg.tables {
            iotegrity_core::store::TableRef::new(&t.name, &t.key)
                .map_err(|e| eyre::eyre!("[[tables]] {}: {e}", t.name))?;
        }
        eyre::ensure!(
            cfg.tables.is_empty() || cfg.database.is_some(),
            "[[tables]] are read from [database]: set its url"
        );
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_is_valid_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../iotegrityd-explorer.example.toml");
        let cfg = ExplorerConfig::load(&path).unwrap();
        let minimal: ExplorerConfig = toml::from_str("[chain]\ndeployments = \"d.json\"\n").unwrap();
        let (e, m) = (&cfg.explorer, &minimal.explorer);
        assert_eq!((&e.listen, e.poll_interval_ms, e.confirmations), (&m.listen, m.poll_interval_ms, m.confirmations));
        assert_eq!(cfg.tables[0].key, "id");
        assert!(minimal.database.is_none() && minimal.tables.is_empty());
    }

    #[test]
    fn bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let load = |text: &str| {
            let p = dir.path().join("e.toml");
            std::fs::write(&p, text).unwrap();
            ExplorerConfig::load(&p).map_err(|e| e.to_string())
        };
        let base = "[chain]\ndeployments = \"d.json\"\n";
        assert!(load(base).is_ok());
        assert!(load(&format!("{base}[explorer]\npoll_interval_ms = 1\n")).unwrap_err().contains("poll_interval_ms"));
        assert!(load(&format!("{base}[[tables]]\nname = \"public.t\"\n")).unwrap_err().contains("[database]"));
        let bad = format!("{base}[database]\nurl = \"postgres://x\"\n[[tables]]\nname = \"no schema\"\n");
        assert!(load(&bad).is_err());
        assert!(load(&format!("{base}[explorer]\nlisen = \"x\"\n")).is_err(), "a typo is an error");
    }
}
