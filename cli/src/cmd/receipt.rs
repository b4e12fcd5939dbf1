//! `iotegrity receipt`: show the receipt of a row, and verify a receipt file offline and against
//! the chain's record of its table's anchors (which identity, range, m, n and block: the chain's,
//! never the receipt's).

use crate::Report;
use crate::opts::{ChainOpts, TableOpts};
use alloy::primitives::Address;
use clap::{Args, Subcommand};
use eyre::{Result, WrapErr, bail};
use iotegrity_core::anchors::TableAnchors;
use iotegrity_core::audit::{match_receipt, run::resolve_owner};
use iotegrity_core::chain;
use iotegrity_core::contracts::ReceiptAnchor;
use iotegrity_core::receipt::Receipt;
use iotegrity_core::store::receipts;
use serde_json::json;
use std::path::PathBuf;

/// Receipt commands.
#[derive(Debug, Subcommand)]
pub enum ReceiptCmd {
    /// Print the receipt (JSON) covering one row.
    Show(ShowArgs),
    /// Verify a receipt file: its rows give its leaf, its proof reaches its root, and the table's
    /// identity anchored that very batch on chain.
    Verify(VerifyArgs),
}

/// `receipt show`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity receipt show --db postgres://… --table public.readings --row 42 > r42.json"
)]
pub struct ShowArgs {
    /// The table and its database.
    #[command(flatten)]
    pub target: TableOpts,
    /// The row key.
    #[arg(long, allow_hyphen_values = true)]
    pub row: i64,
}

/// `receipt verify`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  iotegrity receipt verify r42.json --anchorer 0x<service offline address>")]
pub struct VerifyArgs {
    /// Receipt JSON file (as `receipt show` prints it).
    pub file: PathBuf,
    /// The identity whose anchors to trust (offline address, or its online key) [default: the only
    /// identity that anchored the table, said as such].
    #[arg(long, env = "IOTEGRITY_ANCHORER", value_name = "ADDRESS")]
    pub anchorer: Option<Address>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl ReceiptCmd {
    /// Runs the receipt subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Show(a) => {
                let (table, pool) = a.target.open().await?;
                let receipts = receipts::load_receipts(&pool, &table.name()).await?;
                let Some(r) = iotegrity_core::audit::covering(&receipts, a.row) else {
                    bail!("no receipt covers row {} of {} (not anchored yet?)", a.row, table.name());
                };
                let value = serde_json::to_value(r)?;
                Ok(Report::new(serde_json::to_string_pretty(&value)?, value))
            }
            Self::Verify(a) => {
                let text =
                    std::fs::read_to_string(&a.file).wrap_err_with(|| format!("cannot read {}", a.file.display()))?;
                let r: Receipt =
                    serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a receipt", a.file.display()))?;
                let conn = a.chain.connect().await?;
                let pinned = match a.anchorer {
                    Some(addr) => Some(resolve_owner(&conn.provider, &conn.book, addr).await?),
                    None => None,
                };
                let anchors = TableAnchors::read(&conn.provider, &conn.book, r.table_id, None).await?;
                let trust = anchors.trust(pinned);
                let history = anchors.history(trust.owner());
                let matched = match_receipt(&r.table, &r, &history);
                let contract_says = match trust.owner() {
                    Some(owner) => {
                        let anchor = ReceiptAnchor::new(conn.book.receipt_anchor(), &conn.provider);
                        let batch_proof: Vec<_> = r.proof.iter().map(|p| p.sibling).collect();
                        let anchor_proof: Vec<_> = r.anchor_proof.iter().map(|p| p.sibling).collect();
                        let sub_table = alloy::primitives::keccak256(iotegrity_core::receipt::pack_rows(&r.rows));
                        chain::call(anchor.verifyReceipt(
                            owner,
                            r.anchor.anchored_root,
                            sub_table,
                            batch_proof,
                            anchor_proof,
                        ))
                        .await?
                    }
                    None => false,
                };
                let valid = matched.is_ok() && contract_says;
                let mut text = format!(
                    "receipt {}..{} of {}: {}\n  {trust}",
                    r.first_key,
                    r.last_key,
                    r.table,
                    if valid { "valid" } else { "NOT valid" }
                );
                match &matched {
                    Ok(b) => {
                        text += &format!(
                            "\n  anchored on chain: batch {}..{} (m={}, n={}) at block {}, tx {}",
                            b.first_key, b.last_key, b.m, b.n, b.block, b.tx
                        );
                        if b.block != r.anchor.block || b.tx != r.anchor.tx {
                            text += &format!(
                                "\n  (the receipt says block {}, tx {}: the chain's record is the one that counts)",
                                r.anchor.block, r.anchor.tx
                            );
                        }
                    }
                    Err(finding) => text += &format!("\n  {finding}"),
                }
                text += &format!("\n  ReceiptAnchor.verifyReceipt: {contract_says}");
                for other in anchors.others(trust.owner()) {
                    text += &format!("\n  also anchored by {} ({} batches): not trusted", other.owner, other.batches);
                }
                let report = Report::new(
                    text,
                    json!({ "valid": valid, "anchorer": trust, "anchored": matched.as_ref().ok(),
                            "finding": matched.as_ref().err(), "contractVerifies": contract_says,
                            "table": r.table, "firstKey": r.first_key, "lastKey": r.last_key }),
                );
                Ok(if valid { report } else { report.negative() })
            }
        }
    }
}
