//! `iotegrity simulate`: a simulated meter behind a gateway. The device key signs each reading
//! (its payload a deterministic smart-meter sample), the gateway key countersigns, and the chain is
//! delivered to a service's ingest API — one by one, and optionally the last readings as one
//! aggregate. For demos and load tests; real gateways run `iotegrityd gateway`.

use crate::Report;
use crate::opts::{ChainOpts, read_password};
use alloy::primitives::{B256, Bytes, keccak256};
use alloy::transports::http::reqwest;
use clap::Args;
use eyre::{Result, WrapErr, bail};
use iotegrity_core::keys::open_keystore;
use iotegrity_core::signatures::{CommandExchange, SignedAggregate, SignedReading, domain_of, unix_now};
use iotegrity_core::wire::{
    self, AggregateStored, AggregateSubmission, FeedbackStored, FeedbackSubmission, ReadingStored, ReadingSubmission,
    SignedCommand, path,
};
use serde_json::json;
use std::path::PathBuf;

/// Sign simulated readings as a device, countersign them as a gateway, and POST them.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity simulate --url http://127.0.0.1:8080 --device-keystore keys/dev/online.json \\\n    \
    --gateway-keystore keys/gw/online.json --password-file pw.txt --count 100 --aggregate 10"
)]
pub struct SimulateArgs {
    /// Base URL of the service's ingest API.
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The device's ONLINE keystore.
    #[arg(long, value_name = "FILE")]
    pub device_keystore: PathBuf,
    /// The gateway's ONLINE keystore.
    #[arg(long, value_name = "FILE")]
    pub gateway_keystore: PathBuf,
    /// Password file of both keystores.
    #[arg(long, value_name = "FILE")]
    pub password_file: PathBuf,
    /// Readings to send one by one.
    #[arg(long, default_value_t = 10)]
    pub count: u64,
    /// Then this many more, sent as one aggregate.
    #[arg(long, default_value_t = 0)]
    pub aggregate: u64,
    /// The device's first sequence number (they must not repeat: the service refuses replays).
    #[arg(long, default_value_t = 1)]
    pub first_sequence: u64,
    /// Then answer this signed command (from `iotegrity command`): the device signs its feedback,
    /// the gateway relays it to `POST /v1/feedback`.
    #[arg(long, value_name = "FILE")]
    pub answer: Option<PathBuf>,
    /// The device's feedback to the command.
    #[arg(long, default_value = "{\"ok\":true}")]
    pub feedback: String,
    /// Chain and deployment (for the signing domain).
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// A deterministic smart-meter sample (cumulative kWh, instantaneous W) for a sequence number.
fn sample(sequence: u64) -> Vec<u8> {
    let kwh = 1_000.0 + sequence as f64 * 0.125;
    let watts = 400 + (sequence * 7_919) % 2_600;
    format!("{{\"kwh\":{kwh:.3},\"w\":{watts}}}").into_bytes()
}

impl SimulateArgs {
    /// Runs the simulation.
    pub async fn run(self) -> Result<Report> {
        let password = read_password(Some(&self.password_file), None)?;
        let device = open_keystore(&self.device_keystore, &password)?;
        let gateway = open_keystore(&self.gateway_keystore, &password)?;
        let conn = self.chain.connect().await?;
        let domain = domain_of(&conn.book);
        let client = reqwest::Client::new();
        let base = self.url.trim_end_matches('/');
        let now = unix_now();
        let sign = |seq: u64| {
            let payload = sample(seq);
            let mut r = SignedReading::new(&device, seq, now, keccak256(&payload), &domain);
            r.countersign(&gateway, &domain);
            (r, payload)
        };
        let url = |path: &str| format!("{base}{path}");
        let last = self.first_sequence + self.count;
        for seq in self.first_sequence..last {
            let (r, payload) = sign(seq);
            let _: ReadingStored =
                wire::post(&client, &url(path::READINGS), &ReadingSubmission::new(&r, &payload)).await?;
        }
        let mut aggregate_id = None;
        if self.aggregate > 0 {
            let members: Vec<(SignedReading, Vec<u8>)> = (last..last + self.aggregate).map(sign).collect();
            let total: Vec<u8> = members.iter().flat_map(|(_, p)| p.clone()).collect();
            let agg = SignedAggregate::new(
                &gateway,
                keccak256(&total),
                B256::from(keccak256(format!("group-{last}"))),
                members.iter().map(|(r, _)| r.clone()).collect(),
                &domain,
            );
            let body = AggregateSubmission {
                aggregate: agg.aggregate,
                members: members.iter().map(|(r, p)| ReadingSubmission::new(r, p)).collect(),
                signature: agg.signature,
            };
            let stored: AggregateStored = wire::post(&client, &url(path::AGGREGATES), &body).await?;
            aggregate_id = Some(stored.aggregate_id);
        }
        let mut feedback_id = None;
        if let Some(path) = &self.answer {
            let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
            let cmd: SignedCommand =
                serde_json::from_str(&text).wrap_err_with(|| format!("{} is not a signed command", path.display()))?;
            if cmd.command.device != device.address() {
                bail!("this command is for device {}, not {}", cmd.command.device, device.address());
            }
            let feedback = Bytes::from(self.feedback.clone().into_bytes());
            let ex = CommandExchange::answer(
                cmd.command,
                cmd.command_signature,
                keccak256(&feedback),
                &device,
                &gateway,
                &domain,
            );
            let body =
                FeedbackSubmission { exchange: ex, command_payload: cmd.command_payload, feedback_payload: feedback };
            let stored: FeedbackStored = wire::post(&client, &url(path::FEEDBACK), &body).await?;
            feedback_id = Some(stored.id);
        }
        let sent = self.count + self.aggregate;
        let mut text = format!("device {} → gateway {} → {base}:", device.address(), gateway.address());
        if sent > 0 {
            text += &format!(
                " {sent} signed readings stored (sequences {}..={})",
                self.first_sequence,
                last + self.aggregate - 1
            );
        }
        if let Some(id) = aggregate_id {
            text += &format!(", the last {} as aggregate {id}", self.aggregate);
        }
        if let Some(id) = feedback_id {
            text += &format!(" command answered; feedback stored as {id}");
        }
        Ok(Report::new(
            text,
            json!({ "device": device.address(), "gateway": gateway.address(), "stored": sent, "aggregateId": aggregate_id,
                    "feedbackId": feedback_id, "nextSequence": last + self.aggregate }),
        ))
    }
}
