//! `iotegrity audit`: checks a table against its blockchain receipts and names every altered,
//! deleted or inserted row, every tampered receipt and every root missing on chain.

use crate::Report;
use crate::opts::{ChainOpts, TableOpts};
use alloy::primitives::B256;
use clap::Args;
use eyre::{Result, WrapErr};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use iotegrity_core::audit::{Finding, check_receipts, compare_rows, covering};
use iotegrity_core::chain;
use iotegrity_core::contracts::ReceiptAnchor;
use iotegrity_core::pg;
use serde_json::json;
use std::collections::HashMap;
use std::io::IsTerminal;

/// Rows per page of `iot.readings` while checking signatures.
const PAGE: i64 = 10_000;

/// Audit a table: recompute every row hash, check every receipt offline and its root on chain,
/// and report each row that differs from what was anchored. Exits 1 if anything was tampered.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity audit --db postgres://postgres@127.0.0.1:5432/iot --table public.readings\n\n\
    Findings: altered, deleted, inserted (tampering); receipt-tampered, root-not-on-chain;\n\
    awaiting-anchor, unanchored (rows not anchored yet: information only)."
)]
pub struct AuditArgs {
    /// The table and its database.
    #[command(flatten)]
    pub target: TableOpts,
    /// Also verify each reading's chain of signatures (against the registry now) and per-device
    /// sequence numbers. Default: on for `iot.readings`, the ingest API's table.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub signatures: Option<bool>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl AuditArgs {
    /// Runs the audit.
    pub async fn run(self, json_output: bool) -> Result<Report> {
        let (table, pool) = self.target.open().await?;
        let conn = self.chain.connect().await?;
        let anchor = ReceiptAnchor::new(conn.book.receipt_anchor, &conn.provider);
        let bar = ProgressBar::with_draw_target(
            None,
            if json_output || !std::io::stderr().is_terminal() {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("auditing {bar:40} {pos}/{len} rows ({per_sec})").expect("valid template"),
        );
        // The row count (for the bar) is read beside the receipts and the rows.
        let name = table.name();
        let ((receipts, live), _) = tokio::try_join!(pg::audit_inputs(&pool, &table, |n| bar.set_position(n)), async {
            bar.set_length(table.count(&pool).await? as u64);
            Ok(())
        },)
        .wrap_err_with(|| format!("cannot read {name}"))?;
        bar.finish_and_clear();
        let watermark = pg::watermark(&pool, &table.name()).await?;

        let mut on_chain: HashMap<B256, bool> = HashMap::new();
        for r in &receipts {
            let root = r.anchor.anchored_root;
            if let std::collections::hash_map::Entry::Vacant(slot) = on_chain.entry(root) {
                slot.insert(chain::call(anchor.verifyRootHash(root)).await?);
            }
        }
        let mut findings = check_receipts(&receipts, |root| on_chain.get(&root).copied().unwrap_or(false));
        findings.extend(compare_rows(&receipts, live.iter().copied(), watermark));
        if self.signatures.unwrap_or(table.name() == "iot.readings") {
            findings.extend(self.check_signatures(&pool, &conn, &receipts).await?);
        }

        let failures = findings.iter().filter(|f| f.is_integrity_failure()).count();
        let anchored_rows: usize = receipts.iter().map(|r| r.rows.len()).sum();
        let mut text = format!(
            "{}: {} rows, {anchored_rows} anchored in {} receipts under {} roots",
            table.name(),
            live.len(),
            receipts.len(),
            on_chain.len()
        );
        for f in &findings {
            text += &format!("\n  {}", describe(f));
        }
        text += &if failures == 0 {
            "\nclean: every anchored row matches its receipt".to_string()
        } else {
            format!("\nTAMPERED: {failures} finding(s)")
        };
        let report = Report::new(
            text,
            json!({ "table": table.name(), "rows": live.len(), "anchoredRows": anchored_rows, "receipts": receipts.len(),
                    "clean": failures == 0, "findings": findings }),
        );
        Ok(if failures == 0 { report } else { report.negative() })
    }
}

impl AuditArgs {
    /// Verifies every reading's chain of signatures — each signer active at the block where the
    /// row was anchored, or now if it is not anchored yet — and sequence numbers (`iot.readings`).
    async fn check_signatures(
        &self,
        pool: &sqlx::PgPool,
        conn: &crate::opts::Conn,
        receipts: &[iotegrity_core::receipt::Receipt],
    ) -> Result<Vec<Finding>> {
        let mut cache =
            iotegrity_core::registry_cache::RegistryCache::new(conn.book.identity_registry, conn.book.deployed_block);
        cache.sync(&conn.provider).await?;
        let domain = iotegrity_core::signatures::domain_of(&conn.book);
        let mut readings = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = pg::readings_page(pool, after, PAGE)
                .await
                .wrap_err("cannot read iot.readings (is this the ingest table?)")?;
            let Some(last) = page.last() else { break };
            after = last.key;
            readings.extend(page);
        }
        let now = cache.synced_to();
        let anchored_at = |key: i64| covering(receipts, key).map_or(now, |r| r.anchor.block);
        Ok(iotegrity_core::audit::check_readings(&readings, &domain, |key| cache.at_block(anchored_at(key))))
    }
}

fn describe(f: &Finding) -> String {
    match f {
        Finding::Altered { key } => format!("row {key}: ALTERED since it was anchored"),
        Finding::Deleted { key } => format!("row {key}: DELETED after it was anchored"),
        Finding::Inserted { key } => format!("row {key}: INSERTED into an anchored range"),
        Finding::ReceiptTampered { first_key, last_key, reason } => {
            format!("receipt {first_key}..{last_key}: TAMPERED ({reason})")
        }
        Finding::RootNotOnChain { first_key, last_key, root } => {
            format!("receipt {first_key}..{last_key}: root {root} is NOT on chain")
        }
        Finding::AwaitingAnchor { key } => format!("row {key}: batched, awaiting its anchor"),
        Finding::Unanchored { key } => format!("row {key}: not anchored yet"),
        Finding::BadSignature { key, reason } => format!("row {key}: BAD SIGNATURE: {reason}"),
        Finding::PayloadMismatch { key } => format!("row {key}: payload does not match its signed hash"),
        Finding::Replayed { key, device, sequence } => {
            format!("row {key}: REPLAY of device {device} sequence {sequence}")
        }
        Finding::SequenceGap { device, after, next } => {
            format!("device {device}: sequence jumps from {after} to {next} ({} missing)", next - after - 1)
        }
    }
}
