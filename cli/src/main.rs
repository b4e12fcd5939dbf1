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
            let message = causes(&err);
            if json {
                println!("{}", serde_json::json!({ "error": message }));
            }
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the one before already
/// quotes (transport errors often print their source inside their own message).
fn causes(err: &eyre::Report) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}
