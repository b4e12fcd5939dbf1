//! `iotegrity deploy`: deploy the contracts and write the address book.

use crate::Report;
use crate::opts::{RpcOpts, WalletOpts, parse_amount};
use clap::{Args, ValueEnum};
use eyre::Result;
use iotegrity_core::{AddressBook, chain};
use serde_json::json;
use std::path::PathBuf;

/// Who may submit names (paper §3.2.1).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NameMode {
    /// Owners submit their own names; trust comes from vouching.
    Decentralized,
    /// Only CA identities submit names, for owners they checked.
    QuasiCentralized,
}

/// Deploy IdentityRegistry, NameRegistry, Reputation, ReceiptAnchor, JobMarket and FederatedLearning, then write the address
/// book that every other command reads. The governance and the penalty sink are fixed for good.
#[derive(Debug, Args)]
#[command(after_help = "Example (local Anvil, its first dev account):\n  \
    iotegrity deploy --private-key 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")]
pub struct DeployArgs {
    /// The endpoint.
    #[command(flatten)]
    pub rpc: RpcOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
    /// NameRegistry mode.
    #[arg(long, value_enum, default_value = "decentralized")]
    pub name_mode: NameMode,
    /// The governance that appoints and dismisses notaries and CAs, fixed for good [default: the
    /// deploying key's address]. In production: a multisig contract.
    #[arg(long, value_name = "ADDRESS")]
    pub governance: Option<alloy::primitives::Address>,
    /// Where slashed stakes and struck deposits go, fixed for good [default: 0x…dEaD, burnt].
    #[arg(long, value_name = "ADDRESS")]
    pub penalty_sink: Option<alloy::primitives::Address>,
    /// Deposit posted with every reputation vote.
    #[arg(long, default_value = "0.01ether", value_name = "AMOUNT")]
    pub vote_deposit: String,
    /// Voting period in seconds (one vote per voter per subject per period).
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS")]
    pub vote_period: u64,
    /// Time a notary has to strike a false vote, in seconds.
    #[arg(long, default_value_t = 7 * 86_400, value_name = "SECONDS")]
    pub dispute_window: u64,
    /// Age at which a vote weighs half as much as a new one, in seconds.
    #[arg(long, default_value_t = 30 * 86_400, value_name = "SECONDS")]
    pub half_life: u64,
    /// Job market: time the service has for its verdict after a report, in seconds; past it the
    /// worker is paid.
    #[arg(long, default_value_t = chain::MarketWindows::default().review, value_name = "SECONDS")]
    pub review_window: u64,
    /// Job market: time the worker has to dispute a Failed verdict, in seconds.
    #[arg(long, default_value_t = chain::MarketWindows::default().dispute, value_name = "SECONDS")]
    pub market_dispute_window: u64,
    /// Job market: time a notary has to rule on a dispute, in seconds; past it the disputant loses.
    #[arg(long, default_value_t = chain::MarketWindows::default().ruling, value_name = "SECONDS")]
    pub ruling_window: u64,
    /// Federated learning: time the service has to close a training after its final scoring, in
    /// seconds; past it the reward is split equally among the contributors.
    #[arg(long, default_value_t = chain::DEFAULT_FL_CLOSE_GRACE, value_name = "SECONDS")]
    pub fl_close_grace: u64,
    /// Where to write the address book [default: anvil/deployments/<chain id>.json in the project
    /// around the current directory, as for --deployments].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

impl DeployArgs {
    /// Deploys.
    pub async fn run(self) -> Result<Report> {
        let signer = self.wallet.signer()?;
        let params = chain::DeployParams {
            governance: self.governance.unwrap_or(signer.address()),
            penalty_sink: self.penalty_sink.unwrap_or(chain::BURN),
            quasi_centralized: matches!(self.name_mode, NameMode::QuasiCentralized),
            vote_deposit: parse_amount(&self.vote_deposit)?,
            vote_period: self.vote_period,
            dispute_window: self.dispute_window,
            half_life: self.half_life,
            market: chain::MarketWindows {
                review: self.review_window,
                dispute: self.market_dispute_window,
                ruling: self.ruling_window,
            },
            fl_close_grace: self.fl_close_grace,
        };
        let provider = chain::writer(&self.rpc.rpc_url, signer)?;
        let book = chain::deploy(&provider, &params).await?;
        let path = self.out.unwrap_or_else(|| AddressBook::default_path(book.chain_id));
        book.save(&path)?;
        let text = format!(
            "deployed on chain {} ({} names)\n  IdentityRegistry {}\n  NameRegistry     {}\n  Reputation       {}\n  ReceiptAnchor    {}\n  JobMarket        {}\n  FederatedLearning {}\n  governance       {} (appoints notaries and CAs)\n  penalty sink     {}\naddress book: {}",
            book.chain_id,
            book.name_mode,
            book.identity_registry(),
            book.name_registry(),
            book.reputation(),
            book.receipt_anchor(),
            book.job_market(),
            book.federated_learning(),
            book.governance,
            book.penalty_sink,
            path.display()
        );
        Ok(Report::new(text, json!({ "addressBook": path, "deployment": book })))
    }
}
