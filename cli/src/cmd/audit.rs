//! `iotegrity audit`: holds a table and its receipts against the chain's record of its anchors and
//! names every altered, deleted or inserted row, every receipt the chain does not back, and every
//! anchored batch without its receipts (the audit itself: `iotegrity_core::audit`).

use crate::Report;
use crate::opts::{ChainOpts, TableOpts};
use alloy::primitives::Address;
use clap::Args;
use eyre::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use iotegrity_core::audit::run::{AuditOptions, audit_database};
use std::io::IsTerminal;

/// Audit a table: recompute every row hash, hold every receipt against the table's anchors as
/// the chain records them, and report each row that differs from what was anchored. Exits 1 if
/// anything was tampered with.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity audit --db postgres://postgres@127.0.0.1:5432/iot --table public.readings \\\n      \
    --anchorer 0x<service offline address>\n\n\
    Only the chain is evidence: which ranges were anchored, by whom, under which roots. Pin the\n\
    service identity you trust with --anchorer; without it the audit trusts the only identity that\n\
    ever anchored the table (and says so), and refuses to choose when there are several.\n\n\
    Findings (tampering): altered, deleted, inserted, receipt-tampered, root-not-on-chain,\n\
    receipt-missing, anchorer-ambiguous, bad-signature, payload-mismatch, replayed, sequence-gap.\n\
    Warnings: overdue, receipt-pending. Information: awaiting-anchor, unanchored."
)]
pub struct AuditArgs {
    /// The table and its database.
    #[command(flatten)]
    pub target: TableOpts,
    /// The identity whose anchors to trust: the service's offline address (or its online key).
    #[arg(long, env = "IOTEGRITY_ANCHORER", value_name = "ADDRESS")]
    pub anchorer: Option<Address>,
    /// Also verify each reading's chain of signatures (at the block its row was anchored) and
    /// per-device sequence numbers. Default: on for `iot.readings`, the ingest API's table.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub signatures: Option<bool>,
    /// Seconds rows may wait unanchored before they are reported overdue [default: the
    /// `max_wait_secs` the daemon recorded for the table].
    #[arg(long, value_name = "SECS")]
    pub max_wait: Option<u64>,
    /// Extra seconds beyond --max-wait for the anchor to be mined and confirmed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub grace: u64,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl AuditArgs {
    /// Runs the audit.
    pub async fn run(self, json_output: bool) -> Result<Report> {
        let (table, pool) = self.target.open().await?;
        let conn = self.chain.connect().await?;
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
        if let Ok(count) = table.count(&pool).await {
            bar.set_length(count as u64);
        }
        let opts = AuditOptions {
            anchorer: self.anchorer,
            signatures: self.signatures,
            max_wait: self.max_wait,
            grace_secs: self.grace,
        };
        let report = audit_database(&pool, &table, &conn.provider, &conn.book, &opts, |n| bar.set_position(n)).await?;
        bar.finish_and_clear();
        let clean = report.is_clean();
        let mut value = serde_json::to_value(&report)?;
        value["clean"] = clean.into();
        let out = Report::new(report.to_string(), value);
        Ok(if clean { out } else { out.negative() })
    }
}
