//! `iotegrity receipt`: show the receipt of a row, and verify a receipt file offline and against
//! the chain's record of its table's anchors (which identity, range, m, n and block: the chain's,
//! never the receipt's).

use crate::Report;
use crate::opts::{ChainOpts, TableOpts};
use alloy::primitives::Address;
use clap::{Args, Subcommand};
use eyre::{Result, WrapErr, bail};
use iotegrity_core::audit::run::check_receipt;
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
                let check = check_receipt(&conn.provider, &conn.book, &r, a.anchorer).await?;
                let (trust, matched, contract_says) = (&check.trust, &check.anchored, check.contract_verifies);
                let valid = check.valid();
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
                for other in &check.others {
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
