//! A throwaway PostgreSQL cluster per test (Debian's packages; initdb refuses root, so the server
//! runs as `postgres`), on a free port with its socket in the cluster's own directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster; stopped (immediate) and deleted on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
}

fn pg_bin() -> PathBuf {
    let base = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(base)
        .expect("PostgreSQL is installed (make test installs it)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version").join("bin")
}

fn as_postgres(bin: &Path, tool: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join(tool))
        .args(args)
        .output()
        .expect("runuser runs");
    assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range: a port the system hands out
/// itself (`bind(0)`) can be taken as the source port of an outgoing connection between the probe
/// and the server's bind — or before a server binds it again after a restart. Never the same port
/// twice in one test process.
pub fn free_port() -> u16 {
    use rand::Rng;
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(10_000..ephemeral_start.max(10_001));
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

impl Postgres {
    /// Stops the server (fast: open connections are cut).
    pub fn stop(&self) {
        let data = self.dir.path().join("data").display().to_string();
        as_postgres(&self.bin, "pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Starts the stopped server again on the same port.
    pub fn start_again(&self) {
        let d = self.dir.path().display().to_string();
        let opts = format!("-p {} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50", self.port);
        as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", &format!("{d}/data"), "-w", "-l", &format!("{d}/log"), "-o", &opts, "start"],
        );
    }

    /// Stops the server and starts it again after `down_for`.
    pub fn restart_after(&self, down_for: std::time::Duration) {
        self.stop();
        std::thread::sleep(down_for);
        self.start_again();
    }

    /// initdb + start; ready when this returns.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("iotegrity-pg").tempdir().unwrap();
        let bin = pg_bin();
        let d = dir.path().display().to_string();
        Command::new("chown").args(["-R", "postgres:postgres", &d]).status().unwrap();
        let data = format!("{d}/data");
        as_postgres(
            &bin,
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        );
        let port = free_port();
        let opts = format!("-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50");
        as_postgres(&bin, "pg_ctl", &["-D", &data, "-w", "-l", &format!("{d}/log"), "-o", &opts, "start"]);
        Self { dir, bin, port }
    }

    /// URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL through psql (as the superuser) and returns its output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", &self.url(db), "-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A PostgreSQL client tool (pg_dump, pg_restore, …).
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}
