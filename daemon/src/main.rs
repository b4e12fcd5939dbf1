//! `iotegrityd`: the iotegrity daemon. Role `service` makes blockchain receipts for Postgres
//! tables and takes signed readings in; role `gateway` (Raspberry Pi) reads sensors, signs,
//! journals and forwards; role `worker` takes jobs of the market and trains on verified data;
//! role `learner` takes part in federated trainings; role `explorer` serves the auditor's web page.
//! Each role is a cargo feature; the slim Pi build has only `gateway`.

use clap::{Parser, Subcommand};
use eyre::{Result, WrapErr};
use std::path::PathBuf;
use std::process::ExitCode;

/// iotegrityd — the iotegrity daemon: the service, the job-market worker, the federated learner, the explorer and the gateway.
#[derive(Debug, Parser)]
#[command(name = "iotegrityd", version, max_term_width = 100)]
#[command(after_help = "Logs: RUST_LOG / IOTEGRITY_LOG (default info). Stops cleanly on SIGTERM or Ctrl-C.")]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    #[cfg(feature = "service")]
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
    #[cfg(feature = "worker")]
    /// Job-market worker: propose for jobs, verify every batch, train, report, deliver, claim.
    #[command(
        after_help = "Example: iotegrityd worker --config iotegrityd-worker.toml\nSee iotegrityd-worker.example.toml and docs/market.md."
    )]
    Worker {
        /// TOML configuration file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only check the configuration (the key is an active worker's, the chain is reachable), then exit.
        #[arg(long)]
        check_config: bool,
    },
    #[cfg(feature = "learner")]
    /// Federated-learning participant (a device or gateway): join trainings, score, aggregate, train, submit, claim.
    #[command(
        after_help = "Example: iotegrityd learner --config iotegrityd-learner.toml\nSee iotegrityd-learner.example.toml and docs/learning.md."
    )]
    Learner {
        /// TOML configuration file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only check the configuration (the key is an active device's or gateway's, the chain is reachable), then exit.
        #[arg(long)]
        check_config: bool,
    },
    #[cfg(feature = "explorer")]
    /// The auditor's web page: identities, names, tables, receipts, jobs and trainings, verified against the chain (read only).
    #[command(
        after_help = "Example: iotegrityd explorer --config iotegrityd-explorer.toml\nSee iotegrityd-explorer.example.toml and docs/explorer.md."
    )]
    Explorer {
        /// TOML configuration file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only check the configuration (the chain, the address book, the database if set), then exit.
        #[arg(long)]
        check_config: bool,
    },
    #[cfg(feature = "gateway")]
    /// Raspberry Pi gateway: read sensors, sign as device, countersign, journal, forward; take commands.
    #[command(
        after_help = "Example: iotegrityd gateway --config /etc/iotegrityd/gateway.toml\nSee iotegrityd-gateway.example.toml, docs/gateway.md and docs/raspberry-pi.md."
    )]
    Gateway {
        /// TOML configuration file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only check the configuration, keys, journal and sensors, then exit.
        #[arg(long)]
        check_config: bool,
    },
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when it is
/// first polled, so a signal that arrives while the daemon is still starting up is not lost (and
/// does not kill the process the default way).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(feature = "service")]
async fn service(config: PathBuf, check_only: bool) -> Result<()> {
    use iotegrity_daemon::metrics::Metrics;
    use iotegrity_daemon::service::Service;
    use iotegrity_daemon::service::config::ServiceConfig;
    let shutdown = shutdown_signal();
    let cfg = ServiceConfig::load(&config)?;
    let metrics = std::sync::Arc::new(Metrics::default());
    iotegrity_daemon::metrics::serve(&cfg.metrics.listen, metrics.clone(), &cfg.http).await?;
    let svc = Service::connect(cfg, metrics).await?;
    if check_only {
        println!("configuration ok: database, chain and key reachable");
        return Ok(());
    }
    svc.run(shutdown).await
}

#[cfg(feature = "worker")]
async fn worker(config: PathBuf, check_only: bool) -> Result<()> {
    use iotegrity_daemon::worker::config::WorkerConfig;
    use iotegrity_daemon::worker::{Worker, WorkerMetrics};
    let shutdown = shutdown_signal();
    let cfg = WorkerConfig::load(&config)?;
    let metrics = std::sync::Arc::new(WorkerMetrics::default());
    let listen = cfg.metrics.listen.clone();
    let worker = Worker::connect(cfg, metrics.clone()).await?;
    if check_only {
        println!("configuration ok: an active worker key, the chain reachable");
        return Ok(());
    }
    iotegrity_daemon::metrics::serve(&listen, metrics, &Default::default()).await?;
    worker.run(shutdown).await
}

#[cfg(feature = "learner")]
async fn learner(config: PathBuf, check_only: bool) -> Result<()> {
    use iotegrity_daemon::learner::config::LearnerConfig;
    use iotegrity_daemon::learner::{Learner, LearnerMetrics};
    let shutdown = shutdown_signal();
    let cfg = LearnerConfig::load(&config)?;
    let metrics = std::sync::Arc::new(LearnerMetrics::default());
    let listen = cfg.metrics.listen.clone();
    let learner = Learner::connect(cfg, metrics.clone()).await?;
    if check_only {
        println!("configuration ok: an active device or gateway key, the chain reachable");
        return Ok(());
    }
    iotegrity_daemon::metrics::serve(&listen, metrics, &Default::default()).await?;
    learner.run(shutdown).await
}

#[cfg(feature = "explorer")]
async fn explorer(config: PathBuf, check_only: bool) -> Result<()> {
    use iotegrity_daemon::explorer::config::ExplorerConfig;
    use iotegrity_daemon::explorer::{ExplorerMetrics, connect};
    let shutdown = shutdown_signal();
    let cfg = ExplorerConfig::load(&config)?;
    let metrics = std::sync::Arc::new(ExplorerMetrics::default());
    let (listen, http) = (cfg.metrics.listen.clone(), cfg.http.clone());
    let running = connect(cfg, metrics.clone()).await?;
    if check_only {
        println!("configuration ok: the chain and the deployment reachable (and the database, if set)");
        return Ok(());
    }
    iotegrity_daemon::metrics::serve(&listen, metrics, &http).await?;
    running.run(shutdown).await
}

#[cfg(feature = "gateway")]
async fn gateway(config: PathBuf, check_only: bool) -> Result<()> {
    use iotegrity_daemon::gateway::Gateway;
    use iotegrity_daemon::gateway::config::GatewayConfig;
    let shutdown = shutdown_signal();
    let cfg = GatewayConfig::load(&config)?;
    iotegrity_core::chain::reader(&cfg.chain.rpc_url).wrap_err("chain.rpc_url")?;
    let gw = Gateway::open(cfg)?;
    if check_only {
        for d in &gw.cfg.devices {
            d.sensor.open().map_err(|e| eyre::eyre!("device {}: {e}", d.name))?;
        }
        let core = gw.core();
        println!(
            "configuration ok: gateway {}, {} devices with keys and sensors, journal at record {} ({} undelivered)",
            gw.key.address(),
            gw.devices.len(),
            core.journal.next_index(),
            core.journal.backlog()
        );
        return Ok(());
    }
    iotegrity_daemon::metrics::serve(&gw.cfg.metrics.listen, gw.metrics.clone(), &gw.cfg.http).await?;
    gw.run(shutdown).await
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
        #[cfg(feature = "service")]
        Role::Service { config, check_config } => service(config, check_config).await,
        #[cfg(feature = "gateway")]
        Role::Gateway { config, check_config } => gateway(config, check_config).await,
        #[cfg(feature = "worker")]
        Role::Worker { config, check_config } => worker(config, check_config).await,
        #[cfg(feature = "learner")]
        Role::Learner { config, check_config } => learner(config, check_config).await,
        #[cfg(feature = "explorer")]
        Role::Explorer { config, check_config } => explorer(config, check_config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
