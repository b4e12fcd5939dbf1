//! `iotegrity export` and `iotegrity verify-bundle`: a self-contained audit bundle of a table — its
//! rows in canonical form, its receipts and where they were anchored — that an auditor verifies
//! offline (rows → hashes → receipts → proofs) and, unless `--offline`, against the chain.

use crate::Report;
use crate::opts::{ChainOpts, TableOpts};
use alloy::primitives::Address;
use clap::Args;
use eyre::{Result, WrapErr, eyre};
use iotegrity_core::audit::{Finding, check_receipts, compare_rows};
use iotegrity_core::chain;
use iotegrity_core::contracts::ReceiptAnchor;
use iotegrity_core::pg;
use iotegrity_core::receipt::{Receipt, RowHash, row_hash};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;

/// The bundle format this build writes and reads (2: rows in COPY text form, receipt format 2).
pub const BUNDLE_VERSION: u32 = 2;

/// The bundle format (docs/receipts.md).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bundle {
    /// Format version ([`BUNDLE_VERSION`]).
    pub version: u32,
    /// `schema.table`.
    pub table: String,
    /// Chain of the anchors.
    pub chain_id: u64,
    /// ReceiptAnchor address.
    pub receipt_anchor: Address,
    /// Every row: key and canonical text (`to_jsonb(row)::text`).
    pub rows: Vec<BundleRow>,
    /// Every receipt of the table.
    pub receipts: Vec<Receipt>,
}

/// One row of a bundle.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleRow {
    /// Key.
    pub key: i64,
    /// Canonical text.
    pub canonical: String,
}

/// `export`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity export --db postgres://… --table iot.readings --out readings.bundle.json"
)]
pub struct ExportArgs {
    /// The table and its database.
    #[command(flatten)]
    pub target: TableOpts,
    /// Output file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Chain and deployment (recorded in the bundle).
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `verify-bundle`.
#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The bundle file.
    pub file: PathBuf,
    /// Skip the chain: check only rows, receipts and proofs.
    #[arg(long)]
    pub offline: bool,
    /// Chain (unless --offline).
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl ExportArgs {
    /// Writes the bundle.
    pub async fn run(self) -> Result<Report> {
        let (table, pool) = self.target.open().await?;
        let conn = self.chain.connect().await?;
        let rows = table.all_canonical_rows(&pool).await.wrap_err_with(|| format!("cannot read {}", table.name()))?;
        let receipts = pg::load_receipts(&pool, &table.name()).await?;
        let bundle = Bundle {
            version: BUNDLE_VERSION,
            table: table.name(),
            chain_id: conn.chain_id,
            receipt_anchor: conn.book.receipt_anchor,
            rows: rows.into_iter().map(|(key, canonical)| BundleRow { key, canonical }).collect(),
            receipts,
        };
        std::fs::write(&self.out, serde_json::to_vec(&bundle)?)
            .wrap_err_with(|| format!("cannot write {}", self.out.display()))?;
        Ok(Report::new(
            format!(
                "{}: {} rows and {} receipts → {}",
                bundle.table,
                bundle.rows.len(),
                bundle.receipts.len(),
                self.out.display()
            ),
            json!({ "table": bundle.table, "rows": bundle.rows.len(), "receipts": bundle.receipts.len(), "out": self.out }),
        ))
    }
}

impl VerifyBundleArgs {
    /// Verifies the bundle.
    pub async fn run(self) -> Result<Report> {
        let text =
            std::fs::read_to_string(&self.file).wrap_err_with(|| format!("cannot read {}", self.file.display()))?;
        let b: Bundle = serde_json::from_str(&text)
            .wrap_err_with(|| format!("{} is not an iotegrity bundle", self.file.display()))?;
        if b.version != BUNDLE_VERSION {
            return Err(eyre!(
                "{} is bundle format {}; this build reads format {BUNDLE_VERSION} (rows in COPY text form, receipt format 2)",
                self.file.display(),
                b.version
            ));
        }
        let mut on_chain: HashMap<_, bool> = HashMap::new();
        if !self.offline {
            let conn = self.chain.connect().await?;
            if conn.chain_id != b.chain_id {
                return Err(eyre!(
                    "the bundle was anchored on chain {}, the RPC endpoint is chain {}",
                    b.chain_id,
                    conn.chain_id
                ));
            }
            let anchor = ReceiptAnchor::new(b.receipt_anchor, &conn.provider);
            for r in &b.receipts {
                if let std::collections::hash_map::Entry::Vacant(slot) = on_chain.entry(r.anchor.anchored_root) {
                    slot.insert(chain::call(anchor.verifyRootHash(r.anchor.anchored_root)).await?);
                }
            }
        }
        let mut findings =
            check_receipts(&b.receipts, |root| self.offline || on_chain.get(&root).copied().unwrap_or(false));
        let live = b.rows.iter().map(|r| RowHash { key: r.key, hash: row_hash(r.canonical.as_bytes()) });
        findings.extend(compare_rows(&b.receipts, live, None));
        let failures = findings.iter().filter(|f| f.is_integrity_failure()).count();
        let unanchored = findings.iter().filter(|f| matches!(f, Finding::Unanchored { .. })).count();
        let text = format!(
            "{}: {} rows, {} receipts, {}: {}{}",
            b.table,
            b.rows.len(),
            b.receipts.len(),
            if self.offline { "offline" } else { "checked on chain" },
            if failures == 0 { "valid".to_string() } else { format!("NOT valid ({failures} finding(s))") },
            if unanchored > 0 { format!(", {unanchored} row(s) not anchored") } else { String::new() }
        );
        let report =
            Report::new(text, json!({ "valid": failures == 0, "offline": self.offline, "findings": findings }));
        Ok(if failures == 0 { report } else { report.negative() })
    }
}
