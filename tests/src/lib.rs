//! End-to-end harness: a real Anvil per test (native binary from node_modules), a real
//! PostgreSQL cluster where needed ([`pg`]), the real `iotegrity` and `iotegrityd` binaries,
//! temporary directories for keys and address books.

pub mod ipfs;
pub mod mutate;
pub mod pg;
pub mod proxy;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use iotegrity_core::AddressBook;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// A built binary of the workspace (`make test` builds them before running the tests;
/// `IOTEGRITY_BIN_DIR` points elsewhere, e.g. `target/release` for benchmarks). Fails if it is
/// missing or older than any source it is built from: a test must never pass or fail on a stale
/// binary.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("IOTEGRITY_BIN_DIR").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target")).join("debug")
    });
    let path = dir.join(name);
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap_or_else(|_| {
        panic!("{} is missing: run `cargo build --workspace` first (make test does)", path.display())
    });
    if let Some((source, _)) = newest_source(name).filter(|(_, at)| *at > built) {
        panic!(
            "{} is older than {}: run `cargo build --workspace` first (make test does)",
            path.display(),
            source.display()
        );
    }
    path
}

/// The most recently modified source binary `name` is built from (core's and its own crate's
/// `src/`, and the contract artifacts core embeds: what cargo rebuilds on), looked up once per
/// binary and test process.
fn newest_source(name: &str) -> Option<(PathBuf, std::time::SystemTime)> {
    type Newest = Option<(PathBuf, std::time::SystemTime)>;
    static NEWEST: std::sync::Mutex<Vec<(String, Newest)>> = std::sync::Mutex::new(Vec::new());
    let mut known = NEWEST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, newest)) = known.iter().find(|(n, _)| n == name) {
        return newest.clone();
    }
    let own = if name == "iotegrityd" { "daemon" } else { "cli" };
    let root = root();
    let mut newest: Newest = None;
    let mut visit = |path: PathBuf| {
        if let Ok(at) = std::fs::metadata(&path).and_then(|m| m.modified())
            && newest.as_ref().is_none_or(|(_, n)| at > *n)
        {
            newest = Some((path, at));
        }
    };
    let mut dirs: Vec<PathBuf> =
        ["core/src", "core/artifacts", &format!("{own}/src")].iter().map(|d| root.join(d)).collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { dirs.push(path) } else { visit(path) }
        }
    }
    known.push((name.to_string(), newest.clone()));
    newest
}

/// The native anvil binary (not the npm wrapper).
pub fn anvil_path() -> PathBuf {
    std::env::var_os("IOTEGRITY_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"))
}

/// Password used for every test keystore.
pub const PASSWORD: &str = "correct horse battery staple";

/// One test's world: a fresh chain, a deployment, a temp dir.
pub struct World {
    /// The chain (killed on drop).
    pub anvil: AnvilInstance,
    /// Scratch space.
    pub dir: tempfile::TempDir,
    /// The address book of the deployment.
    pub book: PathBuf,
    /// File holding [`PASSWORD`].
    pub password_file: PathBuf,
}

/// A registered (or just generated) two-key identity.
#[derive(Debug, Clone)]
pub struct Ident {
    /// Offline address.
    pub offline: Address,
    /// Online address.
    pub online: Address,
    /// Directory with offline.json and online.json.
    pub dir: PathBuf,
}

impl Ident {
    /// The online key (decrypted from `online.json`).
    pub fn online_key(&self) -> alloy::signers::local::PrivateKeySigner {
        iotegrity_core::keys::open_keystore(&self.dir.join("online.json"), PASSWORD).expect("test keystore opens")
    }

    /// `--keystore <offline> --password-file <pw>` for commands signed by this identity.
    pub fn wallet(&self, w: &World) -> Vec<String> {
        vec![
            "--keystore".into(),
            self.dir.join("offline.json").display().to_string(),
            "--password-file".into(),
            w.password_file.display().to_string(),
        ]
    }
}

impl Ident {
    /// `--keystore <online> --password-file <pw>`: the online key sends (job market steps).
    pub fn online_wallet(&self, w: &World) -> Vec<String> {
        vec![
            "--keystore".into(),
            self.dir.join("online.json").display().to_string(),
            "--password-file".into(),
            w.password_file.display().to_string(),
        ]
    }
}

/// What a CLI run gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and parses stdout as JSON (the run must have used --json).
    #[track_caller]
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "command failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// Asserts failure with a clean error (no panic) and returns stderr.
    #[track_caller]
    pub fn failure(&self) -> &str {
        assert_ne!(self.code, 0, "command should have failed:\nstdout: {}", self.stdout);
        assert!(!self.stderr.contains("panicked"), "panic instead of an error: {}", self.stderr);
        &self.stderr
    }
}

impl World {
    /// Starts Anvil and deploys with `iotegrity deploy` (extra deploy flags in `deploy_args`).
    pub fn new(deploy_args: &[&str]) -> Self {
        let anvil = Anvil::new().path(anvil_path()).try_spawn().expect("anvil starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let book = dir.path().join("book.json");
        let password_file = dir.path().join("pw.txt");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let w = Self { anvil, dir, book, password_file };
        let key = format!("0x{}", alloy::primitives::hex::encode(w.anvil.keys()[0].to_bytes()));
        let mut args = vec!["deploy", "--private-key", &key, "--out"];
        let out = w.book.display().to_string();
        args.push(&out);
        args.extend_from_slice(deploy_args);
        w.cli(&args).json();
        w
    }

    /// Runs `iotegrity --json <args>` against this world's chain and deployment.
    pub fn cli<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let out = Command::new(bin("iotegrity"))
            .arg("--json")
            .args(args)
            .env("ETH_RPC_URL", self.anvil.endpoint())
            .env("IOTEGRITY_DEPLOYMENTS", &self.book)
            .env_remove("ETH_KEYSTORE")
            .env_remove("ETH_PASSWORD")
            .env_remove("IOTEGRITY_PRIVATE_KEY")
            .current_dir(self.dir.path())
            .output()
            .expect("iotegrity runs");
        Run::from(out)
    }

    /// Runs the CLI with `args`, signing with `id`'s offline keystore.
    pub fn run_as(&self, id: &Ident, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(id.wallet(self));
        self.cli(&all)
    }

    /// Runs the CLI with `args`, signing with `id`'s online keystore.
    pub fn run_online(&self, id: &Ident, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(id.online_wallet(self));
        self.cli(&all)
    }

    /// Generates keys with `identity keygen` and funds the offline address.
    pub async fn keys(&self, label: &str) -> Ident {
        let dir = self.dir.path().join(label);
        let j = self
            .cli(&[
                "identity",
                "keygen",
                "--dir",
                &dir.display().to_string(),
                "--password-file",
                &self.password_file.display().to_string(),
            ])
            .json();
        let offline: Address = j["offline"].as_str().unwrap().parse().unwrap();
        let online: Address = j["online"].as_str().unwrap().parse().unwrap();
        self.fund(offline).await;
        Ident { offline, online, dir }
    }

    /// Generates keys and registers them with `role`; a notary or CA is appointed first by the
    /// governance (the deploying key), through `identity appoint`, as a deployment would.
    pub async fn identity(&self, label: &str, role: &str) -> Ident {
        let id = self.keys(label).await;
        if matches!(role, "notary" | "ca") {
            self.as_governance(&["identity", "appoint", &id.offline.to_string(), "--role", role]).json();
        }
        let online_ks = id.dir.join("online.json").display().to_string();
        self.run_as(&id, &["identity", "register", "--role", role, "--online-keystore", &online_ks]).json();
        id
    }

    /// The governance's key (the deploying key, Anvil's first account), hex.
    pub fn governance_key(&self) -> String {
        format!("0x{}", alloy::primitives::hex::encode(self.anvil.keys()[0].to_bytes()))
    }

    /// Runs the CLI with `args`, signing with the governance's key.
    pub fn as_governance(&self, args: &[&str]) -> Run {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--private-key".to_string(), self.governance_key()]);
        self.cli(&all)
    }

    /// Gives `who` 100 ether.
    pub async fn fund(&self, who: Address) {
        self.set_balance(who, "0x56BC75E2D63100000").await;
    }

    /// Sets `who`'s balance (wei, hex), e.g. "0x0" to make its transactions fail for want of gas.
    pub async fn set_balance(&self, who: Address, wei_hex: &str) {
        let p = ProviderBuilder::new().connect_http(self.anvil.endpoint_url());
        let _: Value = p.raw_request("anvil_setBalance".into(), (who, wei_hex)).await.expect("anvil_setBalance");
    }

    /// Moves chain time forward and mines a block.
    pub async fn advance(&self, seconds: u64) {
        let p = ProviderBuilder::new().connect_http(self.anvil.endpoint_url());
        let _: Value = p.raw_request("evm_increaseTime".into(), (seconds,)).await.expect("evm_increaseTime");
        let _: Value = p.raw_request("evm_mine".into(), ()).await.expect("evm_mine");
    }

    /// A path inside the world's temp dir, as a string.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// A service world: chain + deployment + Postgres + a registered service identity whose online
/// key anchors, and a daemon config watching `public.readings`.
pub struct ServiceWorld {
    /// The chain world.
    pub w: World,
    /// The database.
    pub pg: pg::Postgres,
    /// The service identity.
    pub svc: Ident,
    /// The daemon's config file.
    pub config: PathBuf,
}

impl ServiceWorld {
    /// Sets everything up; `table_toml` is the `[[tables]]` body (name, m, n, max_wait_secs…).
    pub async fn new(table_toml: &str) -> Self {
        Self::with_extra(table_toml, "").await
    }

    /// As [`ServiceWorld::new`], with extra TOML appended to the config (e.g. an `[ingest]` section).
    pub async fn with_extra(table_toml: &str, extra_toml: &str) -> Self {
        let w = World::new(&[]);
        let pg = pg::Postgres::start();
        // Several column types, so the canonical encoding is exercised (and must survive pg_dump).
        pg.psql(
            "postgres",
            "CREATE TABLE readings (id bigserial PRIMARY KEY, device text NOT NULL, value double precision, \
             amount numeric(12,3), payload jsonb, raw bytea, at timestamptz NOT NULL DEFAULT now())",
        );
        let svc = w.identity("svc", "service").await;
        w.fund(svc.online).await; // the online key pays for anchoring
        let config = w.dir.path().join("iotegrityd.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{}\"\n[chain]\nrpc_url = \"{}\"\ndeployments = \"{}\"\nkeystore = \"{}\"\npassword_file = \"{}\"\n\
                 [receipts]\npoll_interval_ms = 100\n{extra_toml}\n[[tables]]\n{table_toml}\n",
                pg.url("postgres"),
                w.anvil.endpoint(),
                w.book.display(),
                svc.dir.join("online.json").display(),
                w.password_file.display()
            ),
        )
        .unwrap();
        Self { w, pg, svc, config }
    }

    /// Starts `iotegrityd service` (logs to `daemon-<n>.log` in the temp dir).
    pub fn spawn_daemon(&self, n: usize) -> Daemon {
        Daemon::spawn("service", &self.config, &self.w.dir.path().join(format!("daemon-{n}.log")))
    }

    /// Starts daemon `n` with this world's config but `tables_toml` in place of its `[[tables]]`
    /// section (whole `[[tables]]` entries; empty for a daemon that only serves ingest) and, if
    /// given, its ingest API on `ingest_port` instead.
    pub fn spawn_daemon_with(&self, n: usize, tables_toml: &str, ingest_port: Option<u16>) -> Daemon {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let mut head = text[..text.find("[[tables]]").expect("a [[tables]] section")].to_string();
        if let Some(port) = ingest_port {
            let at = head.find("listen = \"127.0.0.1:").expect("an [ingest] listen line");
            let end = at + head[at..].find('\n').expect("a line");
            head.replace_range(at..end, &format!("listen = \"127.0.0.1:{port}\""));
        }
        let config = self.w.dir.path().join(format!("iotegrityd-{n}.toml"));
        std::fs::write(&config, format!("{head}{tables_toml}\n")).unwrap();
        Daemon::spawn("service", &config, &self.w.dir.path().join(format!("daemon-{n}.log")))
    }

    /// The advisory locks held now: `(locks, sessions holding them)`.
    pub fn advisory_locks(&self) -> (usize, usize) {
        let out = self.pg.psql(
            "postgres",
            "SELECT count(*) || ' ' || count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        );
        let (locks, sessions) = out.split_once(' ').expect("two counts");
        (locks.parse().unwrap(), sessions.parse().unwrap())
    }

    /// Starts `iotegrityd service` as daemon 0 and waits until it is active.
    pub fn start_service(&self) -> Daemon {
        let daemon = self.spawn_daemon(0);
        self.wait_active(0);
        daemon
    }

    /// The EIP-712 domain of the deployment.
    pub fn domain(&self) -> alloy::sol_types::Eip712Domain {
        iotegrity_core::signatures::domain_of(&AddressBook::load(&self.w.book).expect("address book"))
    }

    /// Points the daemon's config at another RPC URL (e.g. a [`proxy::Proxy`]).
    pub fn set_rpc_url(&self, url: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text = text.replace(&format!("rpc_url = \"{}\"", self.w.anvil.endpoint()), &format!("rpc_url = \"{url}\""));
        std::fs::write(&self.config, text).unwrap();
    }

    /// Waits until daemon `n` logs that it is active (lock held, triggers installed).
    pub fn wait_active(&self, n: usize) {
        self.wait_log(n, "active: watching");
    }

    /// Waits until daemon `n`'s log contains `text` (panics after 60 s, with the log).
    pub fn wait_log(&self, n: usize, text: &str) {
        let path = self.w.dir.path().join(format!("daemon-{n}.log"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !std::fs::read_to_string(&path).unwrap_or_default().contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "daemon {n} did not log {text:?} in 60s:\n{}",
                std::fs::read_to_string(&path).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Inserts `count` readings.
    pub fn insert(&self, count: usize) {
        self.pg.psql(
            "postgres",
            &format!(
                "INSERT INTO readings (device, value, amount, payload, raw) SELECT 'dev-' || (g % 3), g * 0.1, g * 1.005, \
                 jsonb_build_object('t', g, 'ok', g % 2 = 0), decode(md5(g::text), 'hex') FROM generate_series(1, {count}) g"
            ),
        );
    }

    /// Every receipt, in key order.
    pub fn receipts(&self) -> Vec<iotegrity_core::receipt::Receipt> {
        if self.pg.psql("postgres", "SELECT to_regclass('iotegrity.receipt_documents') IS NOT NULL") != "t" {
            return vec![]; // the daemon has not migrated yet (the view comes with a later migration than the table)
        }
        let text = self.pg.psql("postgres", "SELECT receipt::text FROM iotegrity.receipt_documents ORDER BY first_key");
        text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).expect("receipt JSON")).collect()
    }

    /// The last lines of every daemon log of this world (for failure messages).
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.w.dir.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("daemon-") && name.ends_with(".log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                out += &format!("--- {name}\n{}\n", lines[lines.len().saturating_sub(15)..].join("\n"));
            }
        }
        out
    }

    /// Waits until receipts cover `rows` rows (panics after `secs`), returns them.
    pub fn wait_for_rows(&self, rows: usize, secs: u64) -> Vec<iotegrity_core::receipt::Receipt> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let receipts = self.receipts();
            let covered: usize = receipts.iter().map(|r| r.rows.len()).sum();
            if covered >= rows {
                return receipts;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {covered} of {rows} rows have receipts after {secs}s; daemon logs:\n{}",
                self.log_tails()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Polls `done` every 100 ms until it holds; panics after `secs` with `logs()` (a wait on an
/// event or a count, never on a rate).
pub fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool, logs: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what} not within {secs}s; logs:\n{}", logs());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A running `iotegrityd`; killed (SIGKILL) and reaped on drop, so no test leaves one behind.
pub struct Daemon(std::process::Child);

impl Daemon {
    /// Starts `iotegrityd <role> --config <config>`, stdout and stderr to `log`.
    pub fn spawn(role: &str, config: &Path, log: &Path) -> Self {
        Self::spawn_with_env(role, config, log, &[])
    }

    /// As [`Daemon::spawn`], with extra environment variables (e.g. `IOTEGRITYD_CRASH_AT`).
    pub fn spawn_with_env(role: &str, config: &Path, log: &Path, env: &[(&str, &str)]) -> Self {
        let log = std::fs::File::create(log).unwrap();
        Self(
            Command::new(bin("iotegrityd"))
                .args([role, "--config"])
                .arg(config)
                .env("IOTEGRITY_LOG", "info,sqlx=warn")
                .envs(env.iter().copied())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("iotegrityd {role} starts: {e}")),
        )
    }

    /// Sends a signal (`"-9"`, `"-TERM"`, …) and waits for the exit status.
    pub fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        Command::new("kill").args([sig, &self.0.id().to_string()]).status().expect("kill runs");
        self.0.wait().expect("daemon reaped")
    }

    /// Waits for the daemon to exit by itself, at most `secs` seconds (then panics).
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(status) = self.0.try_wait().expect("daemon polled") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "the daemon did not exit within {secs}s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A service world with the ingest API on a free port, and a registered device and gateway.
pub struct IngestWorld {
    /// The service world (daemon not started yet).
    pub s: ServiceWorld,
    /// The ingest API's port.
    pub port: u16,
    /// A device identity.
    pub dev: Ident,
    /// A gateway identity.
    pub gw: Ident,
}

impl IngestWorld {
    /// `table_toml` as for [`ServiceWorld::new`]; `ingest_toml` extra lines of the `[ingest]` section.
    pub async fn new(table_toml: &str, ingest_toml: &str) -> Self {
        let port = pg::free_port();
        let s =
            ServiceWorld::with_extra(table_toml, &format!("[ingest]\nlisten = \"127.0.0.1:{port}\"\n{ingest_toml}"))
                .await;
        let dev = s.w.identity("dev", "device").await;
        let gw = s.w.identity("gw", "gateway").await;
        Self { s, port, dev, gw }
    }
}

/// The Prometheus text a daemon serves on `GET /metrics` at `port`.
pub async fn metrics(port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    alloy::transports::http::reqwest::get(&url).await.expect("metrics answer").text().await.expect("metrics text")
}

/// The value of metric line `name` (e.g. `iotegrity_rows_batched_total`) in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// POSTs a JSON body; returns the status and the body (JSON, or the text as a JSON string).
pub async fn post_json(url: &str, body: String) -> (u16, Value) {
    let client = alloy::transports::http::reqwest::Client::new();
    let answer = iotegrity_core::wire::send(&client, url, body).await.expect("the daemon answers");
    (answer.status, answer.body)
}

/// A gateway world: a service with its ingest API (behind a [`proxy::Proxy`] that tests can cut),
/// a registered gateway identity, one registered device identity per device, and a gateway config.
pub struct GatewayWorld {
    /// The service side.
    pub i: IngestWorld,
    /// The proxy in front of the ingest API (the gateway's `service.url`).
    pub proxy: proxy::Proxy,
    /// The gateway's config file.
    pub config: PathBuf,
    /// The gateway's state directory (journal).
    pub state_dir: PathBuf,
    /// The gateway API's port.
    pub api_port: u16,
    /// The devices, by name.
    pub devices: Vec<(String, Ident)>,
}

impl GatewayWorld {
    /// The gateway keeps every delivered journal segment here (`keep_delivered_segments`), so
    /// [`GatewayWorld::journaled_readings`] sees all it ever signed, however long a slow machine
    /// lets the sensors run.
    ///
    /// `devices`: (name, TOML lines of its `[[devices]]` entry after name and keystore, e.g.
    /// `interval_ms = 20` and `sensor = { kind = "simulated" }`). `extra_toml` goes before the
    /// devices (e.g. `[profile]`, `[[aggregates]]`).
    pub async fn new(devices: &[(&str, &str)], extra_toml: &str) -> Self {
        Self::with_ingest(devices, extra_toml, "").await
    }

    /// As [`GatewayWorld::new`], with extra lines for the service's `[ingest]` section.
    pub async fn with_ingest(devices: &[(&str, &str)], extra_toml: &str, ingest_toml: &str) -> Self {
        let i = IngestWorld::new("name = \"iot.readings\"\nm = 20\nn = 4\nmax_wait_secs = 1", ingest_toml).await;
        let proxy = proxy::Proxy::start(i.port);
        let api_port = pg::free_port();
        let w = &i.s.w;
        let state_dir = w.dir.path().join("gw-state");
        let mut text = format!(
            "[gateway]\nkeystore = \"{}\"\npassword_file = \"{}\"\nstate_dir = \"{}\"\nsegment_bytes = 65536\n\
             keep_delivered_segments = 1000000\n\
             [chain]\ndeployments = \"{}\"\nrpc_url = \"{}\"\n\
             [service]\nurl = \"http://127.0.0.1:{}\"\nbatch = 20\nretry_max_ms = 500\ntimeout_ms = 5000\n\
             [api]\nlisten = \"127.0.0.1:{api_port}\"\n{extra_toml}\n",
            i.gw.dir.join("online.json").display(),
            w.password_file.display(),
            state_dir.display(),
            w.book.display(),
            w.anvil.endpoint(),
            proxy.port,
        );
        let mut idents = Vec::new();
        for (name, body) in devices {
            let id = w.identity(name, "device").await;
            text += &format!(
                "[[devices]]\nname = \"{name}\"\nkeystore = \"{}\"\n{body}\n",
                id.dir.join("online.json").display()
            );
            idents.push((name.to_string(), id));
        }
        let config = w.dir.path().join("gateway.toml");
        std::fs::write(&config, text).unwrap();
        Self { i, proxy, config, state_dir, api_port, devices: idents }
    }

    /// Starts `iotegrityd gateway` (logs to `gateway-<n>.log` in the temp dir).
    pub fn spawn_gateway(&self, n: usize) -> Daemon {
        Daemon::spawn("gateway", &self.config, &self.log_path(n))
    }

    /// Path of gateway log `n`.
    pub fn log_path(&self, n: usize) -> PathBuf {
        self.i.s.w.dir.path().join(format!("gateway-{n}.log"))
    }

    /// `GET /v1/status` of the gateway API (None while it is not up).
    pub async fn status(&self) -> Option<Value> {
        use alloy::transports::http::reqwest;
        let resp = reqwest::get(format!("http://127.0.0.1:{}/v1/status", self.api_port)).await.ok()?;
        serde_json::from_str(&resp.text().await.ok()?).ok()
    }

    /// Polls the status until `done` holds (panics after `secs`), returns it.
    pub async fn wait_status(&self, secs: u64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(s) = self.status().await
                && done(&s)
            {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gateway: {what} not reached in {secs}s: {:?}",
                self.status().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Waits until everything the gateway had journaled when this was called is delivered: the
    /// delivery cursor passes that index. A fixed amount of work, so it does not depend on the
    /// machine delivering faster than the sensors sign (they keep signing meanwhile).
    pub async fn wait_caught_up(&self, secs: u64, what: &str) -> Value {
        let target =
            self.wait_status(secs, "the gateway's status", |_| true).await["journal"]["next"].as_u64().unwrap();
        self.wait_status(secs, what, |s| s["journal"]["delivered"].as_u64() >= Some(target)).await
    }

    /// The device named `name`.
    pub fn device(&self, name: &str) -> &Ident {
        &self.devices.iter().find(|(n, _)| n == name).expect("a configured device").1
    }

    /// The readings the gateway journaled (read from its journal files, oldest first), split at
    /// its delivery cursor: `(acknowledged by the service, not yet)`. Call with the gateway stopped.
    pub fn journaled_readings(
        &self,
    ) -> (Vec<iotegrity_core::wire::ReadingSubmission>, Vec<iotegrity_core::wire::ReadingSubmission>) {
        use iotegrity_daemon::gateway::{Checkpoint, Record, journal::Journal};
        let (journal, records) = Journal::<Record>::open(&self.state_dir.join("journal"), 65536, || {
            Record::Checkpoint(Checkpoint::default())
        })
        .expect("journal opens");
        let cursor = journal.cursor().index;
        let (mut delivered, mut pending) = (Vec::new(), Vec::new());
        for (index, r) in records {
            let readings = match r {
                Record::Reading { submission, .. } => vec![submission],
                Record::Aggregate { submission, .. } => submission.members,
                _ => vec![],
            };
            if index < cursor { delivered.extend(readings) } else { pending.extend(readings) }
        }
        (delivered, pending)
    }
}

/// A running `iotegrityd explorer` over a world's deployment.
pub struct ExplorerRun {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its log file.
    pub log: PathBuf,
    /// The process (killed on drop).
    pub daemon: Daemon,
    client: alloy::transports::http::reqwest::Client,
}

impl World {
    /// Starts `iotegrityd explorer` number `n` over this world's deployment, with `section` more
    /// lines of its `[explorer]` section and `extra` TOML (`[database]`, `[[tables]]`…), and waits
    /// until it serves.
    pub fn spawn_explorer(&self, n: usize, section: &str, extra: &str) -> ExplorerRun {
        self.spawn_explorer_via(n, &self.anvil.endpoint(), section, extra)
    }

    /// As [`World::spawn_explorer`], reading the chain at `rpc_url` (a [`proxy::Proxy`], say).
    pub fn spawn_explorer_via(&self, n: usize, rpc_url: &str, section: &str, extra: &str) -> ExplorerRun {
        let port = pg::free_port();
        let config = self.dir.path().join(format!("explorer-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                "[explorer]\nlisten = \"127.0.0.1:{port}\"\npoll_interval_ms = 100\n{section}\n\
                 [chain]\nrpc_url = \"{rpc_url}\"\ndeployments = \"{}\"\n{extra}\n",
                self.book.display()
            ),
        )
        .unwrap();
        let log = self.dir.path().join(format!("explorer-{n}.log"));
        let daemon = Daemon::spawn("explorer", &config, &log);
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        wait_for("the explorer serving", 60, || read().contains("explorer serving"), read);
        let client = alloy::transports::http::reqwest::Client::builder()
            .redirect(alloy::transports::http::reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        ExplorerRun { url: format!("http://127.0.0.1:{port}"), log, daemon, client }
    }
}

impl ExplorerRun {
    /// `GET path`: the status, the `Location` header (redirects are not followed) and the body.
    pub async fn get(&self, path: &str) -> (u16, Option<String>, String) {
        let resp = self.client.get(format!("{}{path}", self.url)).send().await.expect("the explorer answers");
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        (status, location, resp.text().await.unwrap_or_default())
    }

    /// `GET path` (an `/api` route), the body as JSON.
    pub async fn json(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.get(path).await;
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")))
    }

    /// `POST path` with no body: the status and the body.
    pub async fn post(&self, path: &str) -> (u16, String) {
        let resp = self.client.post(format!("{}{path}", self.url)).send().await.expect("the explorer answers");
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    }

    /// Waits until the index holds every block up to the chain's latest now.
    pub async fn wait_synced(&self, w: &World) {
        let provider = iotegrity_core::chain::reader(&w.anvil.endpoint()).unwrap();
        let latest = iotegrity_core::chain::latest_block(&provider).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (_, home) = self.json("/api/home").await;
            if home["syncedTo"].as_u64() >= Some(latest) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the explorer did not index block {latest}: {home}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// The lines of a streaming HTTP response (server-sent events), read as they come.
pub struct LineStream(tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>);

impl LineStream {
    /// The next line (empty at the end of the stream).
    pub async fn next_line(&mut self) -> String {
        self.0.next_line().await.ok().flatten().unwrap_or_default()
    }
}

impl ExplorerRun {
    /// `GET path` as a stream of lines, for `/events`: returns once the response's status line
    /// has come (the server has subscribed its stream by then).
    pub async fn client_stream(&self, path: &str) -> LineStream {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let host = self.url.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(host).await.expect("the explorer accepts");
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut lines = LineStream(tokio::io::BufReader::new(tcp).lines());
        let status = lines.next_line().await;
        assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status}");
        lines
    }
}
