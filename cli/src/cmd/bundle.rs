//! `iotegrity export` and `iotegrity verify-bundle`: a self-contained audit bundle of a table — its
//! rows in canonical form, its receipts, the identity that anchored them and the block up to which
//! the bundle is complete — that an auditor checks with no database: offline (rows → hashes →
//! receipts → proofs, receipts against each other) and, unless `--offline`, against the chain's
//! record of the table's anchors up to that block, exactly as `iotegrity audit` does.

use crate::Report;
use crate::opts::{ChainOpts, TableOpts};
use alloy::primitives::Address;
use clap::Args;
use eyre::{Result, WrapErr, bail, eyre};
use iotegrity_core::anchors::{TableAnchors, TableHistory, Trust};
use iotegrity_core::audit::{AuditInput, AuditReport, audit, claimed_history, match_receipt, run::resolve_owner};
use iotegrity_core::chain;
use iotegrity_core::receipt::{Receipt, RowHash, row_hash, table_id};
use iotegrity_core::store::receipts;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// The bundle format this build writes and reads (3: names its anchorer and `completeAt`).
pub const BUNDLE_VERSION: u32 = 3;

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
    /// The identity (offline address) whose anchors the receipts claim; None if nothing is anchored.
    pub anchorer: Option<Address>,
    /// The block up to which every batch that identity anchored has its receipts here.
    pub complete_at: u64,
    /// Every row: key and canonical text (its COPY line).
    pub rows: Vec<BundleRow>,
    /// The receipts of every batch anchored up to `complete_at`.
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
    /// The identity whose anchors to export (offline address, or its online key) [default: the only
    /// identity that anchored the table].
    #[arg(long, env = "IOTEGRITY_ANCHORER", value_name = "ADDRESS")]
    pub anchorer: Option<Address>,
    /// Chain and deployment (recorded in the bundle).
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `verify-bundle`.
#[derive(Debug, Args)]
pub struct VerifyBundleArgs {
    /// The bundle file.
    pub file: PathBuf,
    /// Skip the chain: check only rows, receipts and proofs, and receipts against each other
    /// (which says nothing about ranges left out: only the chain knows those).
    #[arg(long)]
    pub offline: bool,
    /// The identity whose anchors to trust (offline address, or its online key) [default: the only
    /// identity that anchored the table up to the bundle's block, said as such].
    #[arg(long, env = "IOTEGRITY_ANCHORER", value_name = "ADDRESS")]
    pub anchorer: Option<Address>,
    /// Chain (unless --offline).
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl ExportArgs {
    /// Writes the bundle: the receipts of every batch the table's identity anchored, up to the
    /// last block before the first batch whose receipts the store does not hold (yet).
    pub async fn run(self) -> Result<Report> {
        let (table, pool) = self.target.open().await?;
        let conn = self.chain.connect().await?;
        let name = table.name();
        let pinned = match self.anchorer {
            Some(a) => Some(resolve_owner(&conn.provider, &conn.book, a).await?),
            None => None,
        };
        let (receipts, _) = receipts::snapshot(&pool, &name).await.wrap_err_with(|| format!("cannot read {name}"))?;
        let rows =
            table.canonical_rows(&pool, i64::MIN, i64::MAX).await.wrap_err_with(|| format!("cannot read {name}"))?;
        let anchors = TableAnchors::read(&conn.provider, &conn.book, table_id(&name), None).await?;
        let trust = anchors.trust(pinned);
        if let Trust::Ambiguous { .. } = trust {
            bail!("{name}: {trust}");
        }
        let history = anchors.history(trust.owner());
        let (complete_at, receipts, short) = complete_part(&name, &history, receipts, anchors.complete_at);
        let bundle = Bundle {
            version: BUNDLE_VERSION,
            table: name,
            chain_id: conn.chain_id,
            receipt_anchor: conn.book.receipt_anchor(),
            anchorer: trust.owner(),
            complete_at,
            rows: rows.into_iter().map(|(key, canonical)| BundleRow { key, canonical }).collect(),
            receipts,
        };
        std::fs::write(&self.out, serde_json::to_vec(&bundle)?)
            .wrap_err_with(|| format!("cannot write {}", self.out.display()))?;
        let mut text = format!(
            "{}: {} rows and {} receipts, complete up to block {complete_at} → {}\n  {trust}",
            bundle.table,
            bundle.rows.len(),
            bundle.receipts.len(),
            self.out.display()
        );
        if let Some(b) = &short {
            text += &format!(
                "\n  the store lacks receipts of the batch {}..{} anchored at block {}: the bundle stops before it",
                b.0, b.1, b.2
            );
        }
        Ok(Report::new(
            text,
            json!({ "table": bundle.table, "rows": bundle.rows.len(), "receipts": bundle.receipts.len(),
                    "completeAt": complete_at, "anchorer": bundle.anchorer, "out": self.out,
                    "incompleteBatch": short.map(|(first, last, block)| json!({ "firstKey": first, "lastKey": last, "block": block })) }),
        ))
    }
}

/// The part of the anchored history whose receipts the store holds: the block before the first
/// batch without all its receipts (or `latest`), the receipts up to it (and those the chain does
/// not back at all, which the verifier will name), and that first short batch (keys, block).
fn complete_part(
    table: &str,
    history: &TableHistory,
    receipts: Vec<Receipt>,
    latest: u64,
) -> (u64, Vec<Receipt>, Option<(i64, i64, u64)>) {
    let mut held: BTreeMap<usize, HashSet<u32>> = BTreeMap::new();
    let index = |r: &Receipt| {
        match_receipt(table, r, history).ok().map(|b| history.batches.partition_point(|x| x.first_key < b.first_key))
    };
    for r in &receipts {
        if let Some(i) = index(r) {
            held.entry(i).or_default().insert(r.index);
        }
    }
    let short = history.batches.iter().enumerate().find(|(i, b)| held.get(i).map_or(0, HashSet::len) < b.n as usize);
    let complete_at = short.map_or(latest, |(_, b)| b.block.saturating_sub(1));
    let kept =
        receipts.into_iter().filter(|r| index(r).is_none_or(|i| history.batches[i].block <= complete_at)).collect();
    (complete_at, kept, short.map(|(_, b)| (b.first_key, b.last_key, b.block)))
}

impl VerifyBundleArgs {
    /// Verifies the bundle.
    pub async fn run(self) -> Result<Report> {
        let text =
            std::fs::read_to_string(&self.file).wrap_err_with(|| format!("cannot read {}", self.file.display()))?;
        let version = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["version"].as_u64());
        if let Some(v) = version.filter(|&v| v != u64::from(BUNDLE_VERSION)) {
            return Err(eyre!(
                "{} is bundle format {v}; this build reads format {BUNDLE_VERSION} (it names its anchorer and \
                 the block it is complete up to; export it again)",
                self.file.display()
            ));
        }
        let b: Bundle = serde_json::from_str(&text)
            .wrap_err_with(|| format!("{} is not an iotegrity bundle", self.file.display()))?;
        let mut live: Vec<RowHash> =
            b.rows.iter().map(|r| RowHash { key: r.key, hash: row_hash(r.canonical.as_bytes()) }).collect();
        live.sort_by_key(|r| r.key);
        let mut receipts = b.receipts;
        receipts.sort_by_key(|r| r.first_key);
        let (anchors, pinned, store_block) = if self.offline {
            let owner = b.anchorer.unwrap_or(Address::ZERO);
            let claimed = TableAnchors {
                table_id: table_id(&b.table),
                complete_at: b.complete_at,
                by_owner: [(owner, claimed_history(&receipts))].into(),
            };
            (claimed, Some(owner), u64::MAX)
        } else {
            let conn = self.chain.connect().await?;
            if conn.chain_id != b.chain_id {
                return Err(eyre!(
                    "the bundle was anchored on chain {}, the RPC endpoint is chain {}",
                    b.chain_id,
                    conn.chain_id
                ));
            }
            let mut book = conn.book.clone();
            book.contracts.insert("receiptAnchor".into(), b.receipt_anchor);
            let pinned = match self.anchorer {
                Some(a) => Some(resolve_owner(&conn.provider, &book, a).await?),
                None => None,
            };
            let anchors = TableAnchors::read(
                &conn.provider,
                &book,
                table_id(&b.table),
                Some(chain::latest_block(&conn.provider).await?.min(b.complete_at)),
            )
            .await?;
            (anchors, pinned, b.complete_at)
        };
        let report = audit(&AuditInput {
            table: &b.table,
            receipts: &receipts,
            live: &live,
            anchors: &anchors,
            store_block,
            pinned,
            pending: None,
            max_wait: None,
            grace_secs: 0,
        });
        let named_other =
            b.anchorer.is_some() && report.anchorer.owner().is_some() && b.anchorer != report.anchorer.owner();
        let valid = report.is_clean() && !named_other;
        let unanchored = report.findings.iter().filter(|f| !f.is_integrity_failure()).count();
        let mut text = format!(
            "{}: {} rows, {} receipts, {}: {}{}\n{}",
            b.table,
            b.rows.len(),
            receipts.len(),
            if self.offline {
                "offline (receipts against each other only: ranges left out are not seen)".to_string()
            } else {
                format!("checked on chain up to block {}", b.complete_at)
            },
            if valid { "valid".to_string() } else { format!("NOT valid ({} finding(s))", report.failures()) },
            if unanchored > 0 { format!(", {unanchored} row(s) not anchored") } else { String::new() },
            report_lines(&report)
        );
        if named_other {
            text += &format!(
                "\n  the bundle names anchorer {}, not the trusted one",
                b.anchorer.map(|a| a.to_string()).unwrap_or_default()
            );
        }
        let out = Report::new(
            text,
            json!({ "valid": valid, "offline": self.offline, "completeAt": b.complete_at, "anchorer": report.anchorer,
                    "bundleAnchorer": b.anchorer, "findings": report.findings }),
        );
        Ok(if valid { out } else { out.negative() })
    }
}

/// The audit report's lines after its header.
fn report_lines(report: &AuditReport) -> String {
    report.to_string().split_once('\n').map(|(_, rest)| rest.to_owned()).unwrap_or_default()
}
