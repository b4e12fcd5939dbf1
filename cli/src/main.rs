//! `iotegrity`: the command line of the iotegrity continued-integrity toolkit.

use clap::Parser;
use iotegrity_cli::Cli;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("IOTEGRITY_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    match cli.run().await {
        Ok(report) => {
            report.print(json);
            if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(err) => {
            if json {
                println!("{}", serde_json::json!({ "error": format!("{err:#}") }));
            }
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
