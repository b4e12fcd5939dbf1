//! The `iotegrity` CLI as a library: argument parsing and one module per subcommand, so the
//! binary stays thin and the end-to-end tests drive exactly what users run.

pub mod cmd;
pub mod opts;
pub mod output;

use clap::{Parser, Subcommand};
pub use output::Report;

/// iotegrity — keep IoT data honest from sensor to model.
///
/// Manage two-key identities, domain names, certificates and reputation on any EVM chain
/// (a local Anvil by default), and audit IoT tables against their blockchain receipts. Every command takes --json for scripting; reverts are shown
/// by their contract error name with what it means.
#[derive(Debug, Parser)]
#[command(name = "iotegrity", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Quick start on a local chain:\n  \
    make up                                   # Anvil on 127.0.0.1:8545, contracts deployed\n  \
    iotegrity identity keygen --dir keys/gw --password-file pw.txt   # offline + online keys, encrypted\n  \
    iotegrity identity register --role gateway --keystore keys/gw/offline.json \\\n      \
    --online-keystore keys/gw/online.json --password-file pw.txt\n\n\
    Environment: ETH_RPC_URL, IOTEGRITY_DEPLOYMENTS, ETH_KEYSTORE, ETH_PASSWORD, IOTEGRITY_LOG.")]
pub struct Cli {
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy the contracts and write the address book.
    Deploy(cmd::deploy::DeployArgs),
    /// Two-key identities: keys, registration, rotation, closing, vouching.
    #[command(subcommand)]
    Identity(cmd::identity::IdentityCmd),
    /// Domain names: register, resolve, update, backup and recovery.
    #[command(subcommand)]
    Name(cmd::name::NameCmd),
    /// Certificates pinned on chain per name.
    #[command(subcommand)]
    Cert(cmd::cert::CertCmd),
    /// The secure channel: handshake with a name's server, pinned on chain.
    #[command(subcommand)]
    Tls(cmd::tls::TlsCmd),
    /// Reputation votes and scores.
    #[command(subcommand)]
    Reputation(cmd::reputation::ReputationCmd),
    /// Blockchain receipts of table rows: show one, verify one.
    #[command(subcommand)]
    Receipt(cmd::receipt::ReceiptCmd),
    /// Audit a table against its receipts and the chain; names every altered, deleted or inserted row.
    Audit(cmd::audit::AuditArgs),
    /// A stored reading's chain of signatures, verified now and exported as eth_signTypedData_v4 JSON.
    Reading(cmd::reading::ReadingArgs),
    /// Export a table's rows, receipts and anchors as a self-contained audit bundle.
    Export(cmd::bundle::ExportArgs),
    /// Verify an audit bundle offline and (unless --offline) against the chain.
    VerifyBundle(cmd::bundle::VerifyBundleArgs),
    /// The data a job is offered on: load the diabetes table, write a job spec, verify its batches.
    #[command(subcommand)]
    Dataset(cmd::dataset::DatasetCmd),
    /// The job market: offer, propose, accept, report, evaluate, end, dispute, rule, claim, vote.
    #[command(subcommand)]
    Market(cmd::market::MarketCmd),
    /// Federated learning: offer a training, register, train, submit, score, derive a round's model, close, claim.
    #[command(subcommand)]
    Fl(cmd::fl::FlCmd),
    /// Sign a command for a device as a service (its feedback comes back to the ingest API).
    Command(cmd::command::CommandArgs),
    /// A simulated meter and gateway: sign readings and deliver them to a service's ingest API.
    Simulate(cmd::simulate::SimulateArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> eyre::Result<Report> {
        match self.command {
            Command::Deploy(args) => args.run().await,
            Command::Identity(cmd) => cmd.run().await,
            Command::Name(cmd) => cmd.run().await,
            Command::Cert(cmd) => cmd.run().await,
            Command::Tls(cmd) => cmd.run().await,
            Command::Reputation(cmd) => cmd.run().await,
            Command::Receipt(cmd) => cmd.run().await,
            Command::Audit(args) => args.run(self.json).await,
            Command::Simulate(args) => args.run().await,
            Command::Command(args) => args.run().await,
            Command::Dataset(cmd) => cmd.run().await,
            Command::Market(cmd) => cmd.run().await,
            Command::Fl(cmd) => cmd.run().await,
            Command::Export(args) => args.run().await,
            Command::Reading(args) => args.run().await,
            Command::VerifyBundle(args) => args.run().await,
        }
    }
}
