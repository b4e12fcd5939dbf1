//! `iotegrity receipt`: show the receipt of a row, and verify a receipt file offline and on chain.

use crate::Report;
use crate::opts::{ChainOpts, TableOpts};
use clap::{Args, Subcommand};
use eyre::{Result, WrapErr, bail};
use iotegrity_core::chain;
use iotegrity_core::contracts::ReceiptAnchor;
use iotegrity_core::pg;
use iotegrity_core::receipt::Receipt;
use serde_json::json;
use std::path::PathBuf;

/// Receipt commands.
#[derive(Debug, Subcommand)]
pub enum ReceiptCmd {
    /// Print the receipt (JSON) covering one row.
    Show(ShowArgs),
    /// Verify a receipt file: its rows give its leaf, its proof reaches its root, the root is on chain.
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
pub struct VerifyArgs {
    /// Receipt JSON file (as `receipt show` prints it).
    pub file: PathBuf,
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
                let receipts = pg::load_receipts(&pool, &table.name()).await?;
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
                let offline = r.check();
                let conn = a.chain.connect().await?;
                let anchor = ReceiptAnchor::new(conn.book.receipt_anchor, &conn.provider);
                let on_chain: bool = chain::call(anchor.verifyRootHash(r.anchor.anchored_root)).await?;
                let proof: Vec<_> = r.proof.iter().map(|p| p.sibling).collect();
                let contract_says: bool =
                    chain::call(anchor.verifyReceipt(r.anchor.anchored_root, r.leaf, proof)).await?;
                let valid = offline.is_ok() && on_chain && contract_says;
                let text = format!(
                    "receipt {}..{} of {}: {}\n  rows → leaf → root: {}\n  root on chain: {on_chain}\n  ReceiptAnchor.verifyReceipt: {contract_says}",
                    r.first_key,
                    r.last_key,
                    r.table,
                    if valid { "valid" } else { "NOT valid" },
                    offline.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into())
                );
                let report = Report::new(
                    text,
                    json!({ "valid": valid, "offline": offline.err().map(|e| e.to_string()), "rootOnChain": on_chain,
                            "contractVerifies": contract_says, "table": r.table, "firstKey": r.first_key, "lastKey": r.last_key }),
                );
                Ok(if valid { report } else { report.negative() })
            }
        }
    }
}
