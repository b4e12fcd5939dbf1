//! `iotegrityd`: the iotegrity daemon. Role `service` makes blockchain receipts for Postgres
//! tables; role `gateway` (Raspberry Pi) arrives with its issue and refuses to start until then.

use clap::{Parser, Subcommand};
use eyre::{Result, WrapErr};
use iotegrity_daemon::config::ServiceConfig;
use iotegrity_daemon::metrics::Metrics;
use iotegrity_daemon::service::Service;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// iotegrityd — the iotegrity service and gateway daemon.
#[derive(Debug, Parser)]
#[command(name = "iotegrityd", version, max_term_width = 100)]
#[command(after_help = "Logs: RUST_LOG / IOTEGRITY_LOG (default info). Stops cleanly on SIGTERM or Ctrl-C.")]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Watch Postgres tables, anchor Merkle roots of every m rows on chain, write receipts.
    #[command(
        after_help = "Example: iotegrityd service --config iotegrityd.toml\nSee iotegrityd.example.toml and docs/daemon.md."
    )]
    Service {
        /// TOML configuration file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only check the configuration (and the key, database and chain it names), then exit.
        #[arg(long)]
        check_config: bool,
    },
    /// Raspberry Pi gateway: read sensors, sign, countersign, store and forward (not in this release).
    Gateway,
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn service(config: PathBuf, check_only: bool) -> Result<()> {
    let cfg = ServiceConfig::load(&config)?;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = &cfg.metrics.listen {
        let listener =
            tokio::net::TcpListener::bind(addr).await.wrap_err_with(|| format!("cannot listen on {addr}"))?;
        tokio::spawn(iotegrity_daemon::metrics::serve(metrics.clone(), listener));
    }
    let svc = Service::connect(cfg, metrics).await?;
    if check_only {
        println!("configuration ok: database, chain and key reachable");
        return Ok(());
    }
    svc.run(shutdown_signal()).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("IOTEGRITY_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match args.role {
        Role::Service { config, check_config } => service(config, check_config).await,
        Role::Gateway => {
            eprintln!("Error: the gateway role is not in this release of iotegrityd yet (see README: Roadmap)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
