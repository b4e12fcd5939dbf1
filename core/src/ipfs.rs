//! A typed client of the Kubo RPC API (`/api/v0/…`, POST only) for federated learning's model
//! files (feature `ipfs`; docs/learning.md, "IPFS"): add, cat with a timeout, pin add/ls/rm,
//! version. It speaks to Kubo in production and to the js-ipfs node the tests and the demo run.
//!
//! A model file is one raw block (at most [`MAX_FILE`] bytes, added with `raw-leaves` and one
//! chunk), so its CIDv1 is `raw` + `sha2-256(file)`: the chain records the 32-byte digest, and
//! [`Ipfs::cat`] checks the downloaded bytes against it before handing them over — a node that
//! serves other bytes is named, never believed.

use alloy::primitives::B256;
use alloy::transports::http::reqwest;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The largest model file: one chunk (Kubo's largest chunker size), so one raw block.
pub const MAX_FILE: usize = 1 << 20;

/// A CIDv1 with the `raw` codec and a sha2-256 multihash — the only kind this client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid {
    /// sha2-256 of the block's bytes: what the chain records.
    pub digest: B256,
}

/// CIDv1 prefix: version 1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes.
const PREFIX: [u8; 4] = [0x01, 0x55, 0x12, 0x20];
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl Cid {
    /// The CID of `bytes` as one raw block.
    pub fn of(bytes: &[u8]) -> Self {
        Self { digest: B256::from_slice(&Sha256::digest(bytes)) }
    }
}

impl std::fmt::Display for Cid {
    /// Multibase base32 (`b…`, lowercase, no padding), as Kubo prints CIDv1: `bafkrei…`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes: Vec<u8> = PREFIX.iter().chain(self.digest.as_slice()).copied().collect();
        let mut out = String::with_capacity(60);
        out.push('b');
        let (mut acc, mut bits) = (0u32, 0u32);
        for b in bytes {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(BASE32[((acc >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            out.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
        }
        f.write_str(&out)
    }
}

impl std::str::FromStr for Cid {
    type Err = IpfsError;

    /// Parses a `bafkrei…` CID (CIDv1, raw, sha2-256); anything else is refused by name.
    fn from_str(s: &str) -> Result<Self, IpfsError> {
        let bad = || IpfsError::NotARawCid(s.to_string());
        let body = s.strip_prefix('b').ok_or_else(bad)?;
        let (mut acc, mut bits, mut bytes) = (0u32, 0u32, Vec::with_capacity(36));
        for c in body.bytes() {
            let v = BASE32.iter().position(|&x| x == c).ok_or_else(bad)? as u32;
            acc = (acc << 5) | v;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((acc >> bits) as u8);
            }
        }
        if bytes.len() != 36 || bytes[..4] != PREFIX {
            return Err(bad());
        }
        Ok(Self { digest: B256::from_slice(&bytes[4..]) })
    }
}

/// What went wrong, naming the URL or the CID.
#[derive(Debug, thiserror::Error)]
pub enum IpfsError {
    /// The node did not answer.
    #[error("cannot reach the IPFS node at {url}: {source}")]
    Unreachable {
        /// The request.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The node did not answer within the timeout (a `cat` of a block nobody has hangs).
    #[error("the IPFS node did not answer {what} within {secs} s")]
    Timeout {
        /// The request.
        what: String,
        /// The timeout.
        secs: u64,
    },
    /// The node answered with an error.
    #[error("the IPFS node refused {url}: HTTP {status}: {message}")]
    Refused {
        /// The request.
        url: String,
        /// Its status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The node's answer is not what the RPC API says.
    #[error("the IPFS node's answer to {url} is not understood: {why}")]
    Malformed {
        /// The request.
        url: String,
        /// Why.
        why: String,
    },
    /// The node named or served other bytes than the CID's.
    #[error("the IPFS node's bytes for {cid} hash to {got}: refused")]
    Mismatch {
        /// The CID asked for (or expected).
        cid: String,
        /// What the bytes hash to, as a CID.
        got: String,
    },
    /// The file is more than [`MAX_FILE`] bytes.
    #[error("{0} bytes is more than one block ({MAX_FILE} bytes)")]
    TooLarge(usize),
    /// Not a CIDv1 raw sha2-256.
    #[error("{0:?} is not a CIDv1 of a raw sha2-256 block (bafkrei…)")]
    NotARawCid(String),
}

/// A Kubo RPC API endpoint.
#[derive(Debug, Clone)]
pub struct Ipfs {
    api: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl Ipfs {
    /// The node whose RPC API is at `api` (e.g. `http://127.0.0.1:5001`); every request gives up
    /// after `timeout`.
    pub fn new(api: &str, timeout: Duration) -> Self {
        Self { api: api.trim_end_matches('/').to_string(), client: reqwest::Client::new(), timeout }
    }

    /// The RPC API's base URL.
    pub fn api(&self) -> &str {
        &self.api
    }

    async fn call(&self, what: &str, query: &str, body: Option<(String, Vec<u8>)>) -> Result<Vec<u8>, IpfsError> {
        let url = format!("{}/api/v0/{what}{query}", self.api);
        let mut req = self.client.post(&url).timeout(self.timeout);
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let map = |e: reqwest::Error| {
            if e.is_timeout() {
                IpfsError::Timeout { what: format!("{what}{query}"), secs: self.timeout.as_secs() }
            } else {
                IpfsError::Unreachable { url: url.clone(), source: e }
            }
        };
        let resp = req.send().await.map_err(map)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(map)?.to_vec();
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&bytes);
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["Message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            return Err(IpfsError::Refused { url, status, message });
        }
        Ok(bytes)
    }

    async fn json(&self, what: &str, query: &str) -> Result<serde_json::Value, IpfsError> {
        let bytes = self.call(what, query, None).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| IpfsError::Malformed { url: format!("{}/api/v0/{what}", self.api), why: e.to_string() })
    }

    /// The node's version string.
    pub async fn version(&self) -> Result<String, IpfsError> {
        let v = self.json("version", "").await?;
        v["Version"].as_str().map(str::to_string).ok_or_else(|| IpfsError::Malformed {
            url: format!("{}/api/v0/version", self.api),
            why: format!("no Version in {v}"),
        })
    }

    /// Adds (and pins) `bytes` as one raw block; the node's CID must be the bytes' own.
    pub async fn add(&self, bytes: &[u8]) -> Result<Cid, IpfsError> {
        if bytes.len() > MAX_FILE {
            return Err(IpfsError::TooLarge(bytes.len()));
        }
        let boundary = format!("iotegrity-{}", Cid::of(bytes));
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"model\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let query = format!("?cid-version=1&raw-leaves=true&chunker=size-{MAX_FILE}&pin=true&cid-base=base32");
        let answer =
            self.call("add", &query, Some((format!("multipart/form-data; boundary={boundary}"), body))).await?;
        let url = format!("{}/api/v0/add", self.api);
        let last = String::from_utf8_lossy(&answer).lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string);
        let line = last.ok_or_else(|| IpfsError::Malformed { url: url.clone(), why: "an empty answer".into() })?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| IpfsError::Malformed { url: url.clone(), why: e.to_string() })?;
        let named = v["Hash"].as_str().ok_or_else(|| IpfsError::Malformed { url, why: format!("no Hash in {v}") })?;
        let want = Cid::of(bytes);
        match named.parse::<Cid>() {
            Ok(cid) if cid == want => Ok(cid),
            _ => Err(IpfsError::Mismatch { cid: want.to_string(), got: named.to_string() }),
        }
    }

    /// The bytes of `cid`, checked against it: other bytes are refused, never returned.
    pub async fn cat(&self, cid: &Cid) -> Result<Vec<u8>, IpfsError> {
        let bytes = self.call("cat", &format!("?arg={cid}&length={}", MAX_FILE + 1), None).await?;
        if bytes.len() > MAX_FILE {
            return Err(IpfsError::TooLarge(bytes.len()));
        }
        let got = Cid::of(&bytes);
        if got != *cid {
            return Err(IpfsError::Mismatch { cid: cid.to_string(), got: got.to_string() });
        }
        Ok(bytes)
    }

    /// Pins `cid` (recursively).
    pub async fn pin_add(&self, cid: &Cid) -> Result<(), IpfsError> {
        self.call("pin/add", &format!("?arg={cid}"), None).await.map(drop)
    }

    /// Unpins `cid`.
    pub async fn pin_rm(&self, cid: &Cid) -> Result<(), IpfsError> {
        self.call("pin/rm", &format!("?arg={cid}"), None).await.map(drop)
    }

    /// The raw-block CIDs pinned recursively (other pins are not this client's).
    pub async fn pin_ls(&self) -> Result<Vec<Cid>, IpfsError> {
        let v = self.json("pin/ls", "?type=recursive&cid-base=base32").await?;
        let keys = v["Keys"].as_object().ok_or_else(|| IpfsError::Malformed {
            url: format!("{}/api/v0/pin/ls", self.api),
            why: format!("no Keys in {v}"),
        })?;
        let mut cids: Vec<Cid> = keys.keys().filter_map(|k| k.parse().ok()).collect();
        cids.sort_unstable();
        Ok(cids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cids_are_kubos_and_parse_back() {
        // `echo -n hello | ipfs add --cid-version=1 --raw-leaves` (Kubo and js-ipfs agree).
        let cid = Cid::of(b"hello");
        assert_eq!(cid.to_string(), "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq");
        assert_eq!("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq".parse::<Cid>().unwrap(), cid);
        for bad in ["", "Qmabc", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "bafkrei!!"] {
            assert!(matches!(bad.parse::<Cid>(), Err(IpfsError::NotARawCid(_))), "{bad}");
        }
    }

    /// A node that serves other bytes than the CID's (a hostile or broken peer): refused.
    #[tokio::test]
    async fn bytes_that_are_not_the_cids_are_refused() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nevil");
        });
        let node = Ipfs::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
        let want = Cid::of(b"the model the chain records");
        let err = node.cat(&want).await.unwrap_err();
        assert!(matches!(&err, IpfsError::Mismatch { got, .. } if *got == Cid::of(b"evil").to_string()), "{err}");
    }

    #[tokio::test]
    async fn a_node_that_is_not_there_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let node = Ipfs::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
        let err = node.version().await.unwrap_err();
        assert!(matches!(err, IpfsError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(matches!(node.add(&vec![0; MAX_FILE + 1]).await, Err(IpfsError::TooLarge(_))));
    }
}
