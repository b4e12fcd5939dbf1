//! `iotegrity command`: a service signs a command for a device with its ONLINE key (paper Figure
//! 5d). The gateway verifies and applies it; the device's signed feedback comes back through the
//! gateway to the service's ingest API (`POST /v1/feedback`).

use crate::Report;
use crate::opts::{ChainOpts, ClientCertOpts, read_password};
use alloy::primitives::{Address, Bytes, keccak256};
use clap::Args;
use eyre::{Result, WrapErr};
use iotegrity_core::keys::open_keystore;
use iotegrity_core::registry_cache::RegistryCache;
use iotegrity_core::signatures::{CommandExchange, domain_of, unix_now};
use iotegrity_core::tls::Peer;
use iotegrity_core::wire::{FeedbackSubmission, SignedCommand, path};
use serde_json::json;
use std::path::PathBuf;

/// Sign a command for a device as the service.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity command --online-keystore keys/svc/online.json --password-file pw.txt \\\n    \
    --device 0xDeviceOnline --sequence 1 --payload '{\"interval_ms\":60000}' --out cmd.json \\\n    \
    --to gw.iot:8090 --tls-cert svc.pem --tls-key svc.key\n\
`--to` takes a name on chain (NAME[:PORT], the pinned TLS channel: the gateway's certificate key must be\n\
one the chain accepts for the name now) or a URL for local work (http://pi.local:8090).\n\
Actions a gateway applies: {\"interval_ms\": N} (sampling interval), {\"gpio\": {\"pin\": P, \"level\": \"high\"}}\n\
(a configured output). Anything else is answered with signed feedback {\"ok\": false, ...}."
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
    /// Also send it to this gateway's API (`iotegrityd gateway`, `[api] listen`) and print the
    /// device's signed feedback: a name on chain, `NAME[:PORT]` (pinned TLS 1.3, e.g.
    /// `gw.iot:8090`), or a URL (`http://pi.local:8090`, plain, for local work).
    #[arg(long, value_name = "NAME[:PORT]|URL", value_parser = iotegrity_core::tls::Target::parse)]
    pub to: Option<iotegrity_core::tls::Target>,
    /// Mutual TLS: this client's certificate, for a server that lets in only named clients.
    #[command(flatten)]
    pub client_cert: ClientCertOpts,
    /// Chain and deployment (for the signing domain).
    #[command(flatten)]
    pub chain: ChainOpts,
}

impl CommandArgs {
    /// Signs and writes the command.
    pub async fn run(self) -> Result<Report> {
        let service = open_keystore(&self.online_keystore, &read_password(Some(&self.password_file), None)?)?;
        let conn = self.chain.connect().await?;
        let now = unix_now();
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
        let mut text = format!(
            "command {} for {} signed by service {} → {}",
            self.sequence,
            self.device,
            service.address(),
            self.out.display()
        );
        let mut feedback = serde_json::Value::Null;
        if let Some(gateway) = self.to {
            let client_cert = self.client_cert.load()?;
            let timeout = std::time::Duration::from_secs(30);
            let peer = Peer::new(gateway, conn.provider.clone(), conn.book.clone(), timeout, client_cert);
            let url = peer.url_of(path::COMMANDS);
            let answer: FeedbackSubmission =
                peer.post(path::COMMANDS, &signed).await.wrap_err("the gateway gave no signed feedback")?;
            let exchange = &answer.exchange;
            if exchange.command != signed.command || keccak256(&answer.feedback_payload) != exchange.feedback_hash {
                eyre::bail!("the gateway answered feedback for another command or with a wrong hash");
            }
            // Every signature of the answer, against the registry as it is now.
            let mut registry = RegistryCache::new(conn.book.identity_registry(), conn.book.deployed_block);
            registry.sync(&conn.provider).await?;
            let relay = exchange
                .verify(&domain_of(&conn.book), &registry)
                .map_err(|e| eyre::eyre!("the gateway's answer does not verify: {e}"))?;
            feedback = serde_json::from_slice(&answer.feedback_payload)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&answer.feedback_payload)));
            text += &format!("\nsent to {url}; feedback signed by the device, relayed by gateway {relay}: {feedback}");
        }
        Ok(Report::new(
            text,
            json!({ "service": service.address(), "device": self.device, "sequence": self.sequence, "out": self.out,
                    "feedback": feedback }),
        ))
    }
}
