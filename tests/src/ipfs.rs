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

/// A hostile "IPFS node" for the attack tests: it answers every RPC request with `body` (say, a
/// valid model file other than the one asked for). Returns its API URL; it serves until the
/// test process ends.
pub fn hostile(body: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("its port").port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(&body));
        }
    });
    format!("http://127.0.0.1:{port}")
}
