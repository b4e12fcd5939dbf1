//! A real IPFS node per test: js-ipfs (tools/ipfs), offline on a free 127.0.0.1 port, in a
//! temporary directory, started and stopped by `scripts/ipfs.sh`; stopped on drop.

use std::process::Command;
use tempfile::TempDir;

/// A running js-ipfs node speaking Kubo's RPC API.
pub struct IpfsNode {
    /// Its repo and log.
    pub dir: TempDir,
    /// Its RPC API port.
    pub port: u16,
}

impl IpfsNode {
    /// Starts a node (~4 s).
    pub fn start() -> Self {
        let node = Self { dir: tempfile::tempdir().unwrap(), port: crate::pg::free_port() };
        node.up();
        node
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new(crate::root().join("scripts/ipfs.sh"))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("scripts/ipfs.sh runs: {e}"));
        assert!(
            out.status.success(),
            "scripts/ipfs.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again (same repo, same port).
    pub fn up(&self) {
        self.script(&["start", &self.dir.path().display().to_string(), &self.port.to_string()]);
    }

    /// Stops it (the repo stays).
    pub fn stop(&self) {
        self.script(&["stop", &self.dir.path().display().to_string()]);
    }

    /// Its RPC API base URL.
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for IpfsNode {
    fn drop(&mut self) {
        let _ = Command::new(crate::root().join("scripts/ipfs.sh"))
            .args(["stop", &self.dir.path().display().to_string()])
            .output();
    }
}
