//! `iotegrity command`: a service signs a command for a device with its ONLINE key (paper Figure
//! 5d). The gateway verifies and applies it; the device's signed feedback comes back through the
//! gateway to the service's ingest API (`POST /v1/feedback`).

use crate::Report;
use crate::opts::{ChainOpts, read_password};
use alloy::primitives::{Address, Bytes, keccak256};
use clap::Args;
use eyre::{Result, WrapErr};
use iotegrity_core::keys::open_keystore;
use iotegrity_core::signatures::{CommandExchange, SignedCommand, domain_of};
use serde_json::json;
use std::path::PathBuf;

/// Sign a command for a device as the service.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity command --online-keystore keys/svc/online.json --password-file pw.txt \\\n    \
    --device 0xDeviceOnline --sequence 1 --payload '{\"interval\":60}' --out cmd.json"
)]
pub struct CommandArgs {
    /// The service's ONLINE keystore.
    #[arg(long, value_name = "FILE")]
    pub online_keystore: PathBuf,
    /// Its password file.
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// The device's online address.
    #[arg(long)]
    pub device: Address,
    /// The command's sequence number for this device (must not repeat).
    #[arg(long)]
    pub sequence: u64,
    /// The command itself (bytes, e.g. JSON).
    #[arg(long)]
    pub payload: String,
    /// Where to write the signed command.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Chain and deployment (for the signing domain).
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl CommandArgs {
    /// Signs and writes the command.
    pub async fn run(self) -> Result<Report> {
        let service = open_keystore(&self.online_keystore, &read_password(Some(&self.password_file), None)?)?;
        let conn = self.chain.connect().await?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let payload = Bytes::from(self.payload.into_bytes());
        let (command, command_signature) = CommandExchange::command(
            &service,
            self.device,
            self.sequence,
            now,
            keccak256(&payload),
            &domain_of(&conn.book),
        );
        let signed = SignedCommand { command, command_signature, command_payload: payload };
        std::fs::write(&self.out, serde_json::to_vec_pretty(&signed)?)
            .wrap_err_with(|| format!("cannot write {}", self.out.display()))?;
        Ok(Report::new(
            format!(
                "command {} for {} signed by service {} → {}",
                self.sequence,
                self.device,
                service.address(),
                self.out.display()
            ),
            json!({ "service": service.address(), "device": self.device, "sequence": self.sequence, "out": self.out }),
        ))
    }
}
