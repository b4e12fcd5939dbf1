//! `iotegrity reading`: one stored reading of `iot.readings` with its chain of signatures, each
//! step verified against the IdentityRegistry now, and every signature exported as
//! `eth_signTypedData_v4` JSON (typed data, signature, signer) so standard Ethereum tools — an
//! `eth_signTypedData_v4` verifier, ethers' `verifyTypedData`, viem's `recoverTypedDataAddress` —
//! can check it without iotegrity.

use crate::Report;
use crate::opts::ChainOpts;
use alloy::primitives::keccak256;
use clap::Args;
use eyre::{Result, WrapErr, bail};
use iotegrity_core::registry_cache::RegistryCache;
use iotegrity_core::signatures::domain_of;
use serde_json::json;
use std::path::PathBuf;

/// Show a stored reading's chain of signatures and export it as `eth_signTypedData_v4` JSON.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  iotegrity reading --db postgres://… --id 42 --out reading-42.typed.json\n\
    Exit status 1 when the payload or a signature does not verify (now).")]
pub struct ReadingArgs {
    /// Postgres URL of the service's database.
    #[arg(long, env = "IOTEGRITY_DATABASE_URL", value_name = "URL")]
    pub db: String,
    /// The reading's `id` in `iot.readings`.
    #[arg(long)]
    pub id: i64,
    /// Write the typed data of every signature (a JSON array, device first) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Chain and deployment (the signing domain, the registry).
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl ReadingArgs {
    /// Loads, verifies and exports the reading.
    pub async fn run(self) -> Result<Report> {
        let pool = iotegrity_core::store::connect(&self.db, 1).await.wrap_err("cannot connect to Postgres")?;
        let page = iotegrity_core::store::iot::readings_page(&pool, self.id.saturating_sub(1), 1).await?;
        let Some(stored) = page.into_iter().find(|r| r.key == self.id) else {
            bail!("no reading with id {} in iot.readings", self.id);
        };
        let conn = self.chain.connect().await?;
        let domain = domain_of(&conn.book);
        let signed = &stored.signed;
        let steps = signed.export(&domain).map_err(|e| eyre::eyre!("cannot export: {e}"))?;
        let mut registry = RegistryCache::new(conn.book.identity_registry(), conn.book.deployed_block);
        registry.sync(&conn.provider).await?;
        let verdict = signed.verify(&domain, &registry);
        let payload_ok = keccak256(&stored.payload) == signed.reading.payloadHash;
        if let Some(path) = &self.out {
            std::fs::write(path, serde_json::to_vec_pretty(&steps)?)
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
        }
        let r = &signed.reading;
        let mut text = format!(
            "reading {}: device {} sequence {} time {}\n  payload hash: {}\n",
            self.id,
            r.device,
            r.sequence,
            r.timestamp,
            if payload_ok { "matches the signed hash" } else { "DOES NOT match the signed hash" }
        );
        for (k, step) in steps.as_array().into_iter().flatten().enumerate() {
            let who = if k == 0 { "device".to_string() } else { format!("gateway hop {k}") };
            text += &format!("  signature {k} ({who}): {}\n", step["signer"].as_str().unwrap_or("?"));
        }
        text += &match &verdict {
            Ok(_) => "  chain of signatures: verifies (every signer an active key with its role, now)".to_string(),
            Err(e) => format!("  chain of signatures: FAILS: {e}"),
        };
        if let Some(path) = &self.out {
            text += &format!("\n  eth_signTypedData_v4 JSON of each signature → {}", path.display());
        }
        let report = Report::new(
            text,
            json!({ "id": self.id, "reading": r, "payloadOk": payload_ok, "verifies": verdict.is_ok(),
                    "error": verdict.as_ref().err().map(ToString::to_string), "signatures": steps }),
        );
        Ok(if payload_ok && verdict.is_ok() { report } else { report.negative() })
    }
}
