//! `iotegrityd`: the iotegrity daemon. Its roles arrive with their issues — `service` (watch a
//! Postgres table, build and anchor Merkle receipts, ingest signed readings) and `gateway` (Pi
//! sensors, signing, store-and-forward). Until then it refuses to start rather than pretend.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// iotegrityd — the iotegrity service and gateway daemon.
#[derive(Debug, Parser)]
#[command(name = "iotegrityd", version)]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Receipts daemon: watch a Postgres table, anchor Merkle roots on chain, ingest readings.
    Service,
    /// Raspberry Pi gateway: read sensors, sign, countersign, store and forward.
    Gateway,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let role = match args.role {
        Role::Service => "service",
        Role::Gateway => "gateway",
    };
    eprintln!("Error: the {role} role is not in this release of iotegrityd yet (see README: Roadmap)");
    ExitCode::from(2)
}
