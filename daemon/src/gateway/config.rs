//! The gateway's configuration: one TOML file (docs/gateway.md, `iotegrityd-gateway.example.toml`),
//! every field with a documented default; the keystore password may come from the environment.

use super::sensors::SensorConfig;
use iotegrity_core::wire::MAX_BATCH;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `iotegrityd gateway` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The gateway itself: its key and where it keeps its journal.
    pub gateway: GatewaySection,
    /// The deployment (for the signing domain and, for commands, the IdentityRegistry).
    pub chain: ChainSection,
    /// The service the readings go to.
    pub service: ServiceSection,
    /// The local HTTP API: commands in, status out.
    #[serde(default)]
    pub api: ApiSection,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// Limits of the HTTP servers (command API, metrics).
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// The traffic profile.
    #[serde(default)]
    pub profile: ProfileSection,
    /// The devices (sensors) behind this gateway.
    pub devices: Vec<DeviceConfig>,
    /// Groups of devices whose readings are delivered as aggregates.
    #[serde(default)]
    pub aggregates: Vec<AggregateConfig>,
    /// GPIO outputs that commands may set.
    #[serde(default)]
    pub outputs: Vec<OutputConfig>,
}

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// Keystore of the gateway's ONLINE key (it countersigns and aggregates).
    pub keystore: PathBuf,
    /// File with the password of every keystore in this config (or env `IOTEGRITYD_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Directory of the journal and the delivery cursor. Default `/var/lib/iotegrityd`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Journal segment size, bytes. Default 4 MiB.
    #[serde(default = "default_segment")]
    pub segment_bytes: u64,
    /// Delivered segments kept on disk (the local copy of the originals). Default 64.
    #[serde(default = "default_keep")]
    pub keep_delivered_segments: usize,
}

/// `[chain]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// Address book of the deployment (chain id and IdentityRegistry: the signing domain).
    pub deployments: PathBuf,
    /// JSON-RPC endpoint, used to check the keys of commands. Default `http://127.0.0.1:8545`.
    #[serde(default = "default_rpc")]
    pub rpc_url: String,
}

/// `[service]`: the service is a `name` on chain (the pinned TLS channel) or a plain `url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// The service's name on chain, e.g. `svc.iot`: readings go over TLS 1.3 to the name's address
    /// on chain, and only to a server whose certificate key the chain accepts for the name at the
    /// latest block (docs/secure-channel.md). Set this or `url`.
    pub name: Option<String>,
    /// The TCP port of the named service's ingest API (the chain holds no port). Default 443.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Mutual TLS, for a named service that asks for client certificates (`[ingest]
    /// client_names`): this gateway's certificate (PEM), its key pinned under the gateway's own
    /// name, and `tls_key`. Default: none.
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM). Required with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Base URL of the service's ingest API for local work, e.g. `http://127.0.0.1:8080`: plain
    /// HTTP, nothing pinned. Set this or `name`.
    pub url: Option<String>,
    /// Readings per delivery request (`POST /v1/readings/batch`, at most 1000). Default 100.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest pause between delivery attempts while the service is unreachable, ms. Default 30 000.
    #[serde(default = "default_retry")]
    pub retry_max_ms: u64,
    /// Per-request timeout, ms. Default 10 000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Address of the local API (`POST /v1/commands`, `GET /v1/status`), e.g. `127.0.0.1:8090`. Default: off.
    pub listen: Option<String>,
    /// Accept commands only from these service online keys (empty: any active service key).
    #[serde(default)]
    pub trusted_services: Vec<alloy::primitives::Address>,
    /// Serve the API over TLS 1.3 with this certificate (PEM; its key pinned on chain under the
    /// gateway's name), and `tls_key`. Default: plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM). Required with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS (with `tls_cert`): let in only clients whose certificate key the chain accepts
    /// now under one of these names, e.g. `["svc.iot"]`. Default empty: no client certificate
    /// asked for.
    #[serde(default)]
    pub client_names: Vec<String>,
}

/// What happens to a reading outside its device's traffic profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileAction {
    /// Signed, delivered, and flagged in the journal, the log and the metrics.
    #[default]
    Flag,
    /// Signed and kept in the journal, never delivered.
    Quarantine,
    /// Not signed, not kept: counted and logged only.
    Drop,
}

/// `[profile]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSection {
    /// What to do with readings outside the profile. Default `flag`.
    #[serde(default)]
    pub action: ProfileAction,
    /// Samples a device's profile learns from before it judges. Default 20.
    #[serde(default = "default_learn")]
    pub learn: u32,
    /// Flag when readings arrive this many times faster than learned. Default 4.
    #[serde(default = "default_factor")]
    pub rate_factor: f64,
    /// Flag when a payload is this many times larger than learned. Default 4.
    #[serde(default = "default_factor")]
    pub size_factor: f64,
}

impl Default for ProfileSection {
    fn default() -> Self {
        Self { action: ProfileAction::Flag, learn: default_learn(), rate_factor: 4.0, size_factor: 4.0 }
    }
}

/// `[[devices]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// A short name, used in logs, aggregates and the status API.
    pub name: String,
    /// Keystore of the device's ONLINE key.
    pub keystore: PathBuf,
    /// Sampling interval, ms (a command may change it). Default 10 000.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// The sensor.
    pub sensor: SensorConfig,
}

/// `[[aggregates]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Group name; the group id is keccak256 of it.
    pub group: String,
    /// Names of the member devices (each in at most one group).
    pub devices: Vec<String>,
    /// Readings per aggregate. Default 10.
    #[serde(default = "default_size")]
    pub size: usize,
}

/// `[[outputs]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// BCM pin a command may set.
    pub pin: u8,
}

fn default_state_dir() -> PathBuf {
    "/var/lib/iotegrityd".into()
}
fn default_segment() -> u64 {
    4 << 20
}
fn default_keep() -> usize {
    64
}
fn default_rpc() -> String {
    "http://127.0.0.1:8545".into()
}
fn default_port() -> u16 {
    443
}
fn default_batch() -> usize {
    100
}
fn default_retry() -> u64 {
    30_000
}
fn default_timeout() -> u64 {
    10_000
}
fn default_learn() -> u32 {
    20
}
fn default_factor() -> f64 {
    4.0
}
fn default_interval() -> u64 {
    10_000
}
fn default_size() -> usize {
    10
}

/// Shortest sampling interval a device or a command may set, ms.
pub const MIN_INTERVAL_MS: u64 = 10;

impl GatewayConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let cfg: Self = crate::files::read_toml(path)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks what TOML types cannot.
    pub fn check(&self) -> eyre::Result<()> {
        use eyre::ensure;
        ensure!(!self.devices.is_empty(), "configure at least one [[devices]] entry");
        self.http.check()?;
        let mut names = std::collections::HashSet::new();
        for d in &self.devices {
            ensure!(names.insert(d.name.as_str()), "device name {:?} is used twice", d.name);
            ensure!(d.interval_ms >= MIN_INTERVAL_MS, "device {}: interval_ms must be >= {MIN_INTERVAL_MS}", d.name);
        }
        let mut grouped = std::collections::HashSet::new();
        for g in &self.aggregates {
            ensure!(g.size >= 1 && g.size <= 1000, "aggregate {}: size must be 1..=1000", g.group);
            for d in &g.devices {
                ensure!(names.contains(d.as_str()), "aggregate {}: no device named {d:?}", g.group);
                ensure!(grouped.insert(d.as_str()), "device {d:?} is in two aggregate groups");
            }
        }
        ensure!(
            (1..=MAX_BATCH).contains(&self.service.batch),
            "service.batch must be 1..={MAX_BATCH} (the ingest API's batch limit)"
        );
        ensure!(self.profile.rate_factor > 1.0 && self.profile.size_factor > 1.0, "profile factors must be > 1");
        ensure!(self.gateway.segment_bytes >= 4096, "gateway.segment_bytes must be >= 4096");
        let service = &self.service;
        iotegrity_core::tls::Target::from_config(service.name.as_deref(), service.port, service.url.as_deref())
            .map_err(|e| eyre::eyre!("[service] {e}"))?;
        ensure!(service.tls_cert.is_some() == service.tls_key.is_some(), "[service] tls_cert and tls_key go together");
        ensure!(service.tls_cert.is_none() || service.name.is_some(), "[service] tls_cert is for a named service");
        ensure!(self.api.tls_cert.is_some() == self.api.tls_key.is_some(), "[api] tls_cert and tls_key go together");
        ensure!(
            self.api.client_names.is_empty() || self.api.tls_cert.is_some(),
            "[api] client_names needs tls_cert and tls_key (mutual TLS)"
        );
        for name in &self.api.client_names {
            iotegrity_core::names::validate_name(name).map_err(|e| eyre::eyre!("[api] client_names: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [gateway]
        keystore = "keys/gateway.json"
        [chain]
        deployments = "anvil/deployments/31337.json"
        [service]
        url = "http://127.0.0.1:8080"
        [[devices]]
        name = "meter"
        keystore = "keys/meter.json"
        sensor = { kind = "simulated-p1" }
    "#;

    #[test]
    fn defaults_fill_in() {
        let cfg: GatewayConfig = toml::from_str(MINIMAL).unwrap();
        cfg.check().unwrap();
        assert_eq!(cfg.gateway.state_dir, PathBuf::from("/var/lib/iotegrityd"));
        assert_eq!((cfg.service.batch, cfg.devices[0].interval_ms), (100, 10_000));
        assert_eq!(cfg.profile.action, ProfileAction::Flag);
        assert!(cfg.api.listen.is_none());
        assert!(matches!(cfg.devices[0].sensor, SensorConfig::SimulatedP1 { seed: 1, corrupt_every: None }));
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../iotegrityd-gateway.example.toml");
        let cfg = GatewayConfig::load(&path).unwrap();
        assert_eq!(cfg.devices.len(), 3);
        assert!(matches!(
            cfg.devices[0].sensor,
            SensorConfig::DsmrP1 { version: crate::gateway::sensors::dsmr::Version::V5, .. }
        ));
        assert!(matches!(cfg.devices[1].sensor, SensorConfig::Bme280 { bus: 1, address: 0x76 }));
        assert_eq!(cfg.outputs[0].pin, 27);
        assert_eq!((cfg.service.name.as_deref(), cfg.service.port, cfg.service.url), (Some("svc.iot"), 8443, None));
    }

    #[test]
    fn bad_values_are_refused() {
        let twice =
            format!("{MINIMAL}\n[[devices]]\nname = \"meter\"\nkeystore = \"k\"\nsensor = {{ kind = \"simulated\" }}");
        assert!(toml::from_str::<GatewayConfig>(&twice).unwrap().check().unwrap_err().to_string().contains("twice"));
        let stranger = format!("{MINIMAL}\n[[aggregates]]\ngroup = \"g\"\ndevices = [\"nobody\"]");
        assert!(toml::from_str::<GatewayConfig>(&stranger).unwrap().check().is_err());
        let fast = MINIMAL.replace("name = \"meter\"", "name = \"meter\"\ninterval_ms = 1");
        assert!(toml::from_str::<GatewayConfig>(&fast).unwrap().check().is_err());
        let unknown_sensor = MINIMAL.replace("simulated-p1", "thermometer");
        assert!(toml::from_str::<GatewayConfig>(&unknown_sensor).is_err());
        let typo = MINIMAL.replace("[service]", "[service]\nbatchsize = 3");
        assert!(toml::from_str::<GatewayConfig>(&typo).is_err(), "unknown keys are errors, not ignored");
        let check =
            |toml_text: &str| toml::from_str::<GatewayConfig>(toml_text).unwrap().check().map_err(|e| e.to_string());
        let both = MINIMAL.replace("[service]", "[service]\nname = \"svc.iot\"");
        assert!(check(&both).unwrap_err().contains("either name"));
        let neither = MINIMAL.replace("url = \"http://127.0.0.1:8080\"", "port = 8443");
        assert!(check(&neither).unwrap_err().contains("either name"));
        let named = MINIMAL.replace("url = \"http://127.0.0.1:8080\"", "name = \"svc.iot\"\nport = 8443");
        check(&named).unwrap();
        let bad_name = MINIMAL.replace("url = \"http://127.0.0.1:8080\"", "name = \"Not A Name\"");
        assert!(check(&bad_name).unwrap_err().contains("[service] name"));
        let half = named.replace("port = 8443", "port = 8443\ntls_cert = \"gw.pem\"");
        assert!(check(&half).unwrap_err().contains("go together"));
        let mutual_plain = format!("{MINIMAL}\n[api]\nlisten = \"127.0.0.1:0\"\nclient_names = [\"svc.iot\"]");
        assert!(check(&mutual_plain).unwrap_err().contains("needs tls_cert"));
    }
}
