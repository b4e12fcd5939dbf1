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
use iotegrity_core::signatures::{CommandExchange, ReadingSubmission, SignedAggregate, SignedReading, domain_of};
use serde_json::{Value, json};
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

fn submission(r: &SignedReading, payload: &[u8]) -> Value {
    serde_json::to_value(ReadingSubmission::new(r, payload)).expect("a submission serializes")
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
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let sign = |seq: u64| {
            let payload = sample(seq);
            let mut r = SignedReading::new(&device, seq, now, keccak256(&payload), &domain);
            r.countersign(&gateway, &domain);
            (r, payload)
        };
        let post = |path: &'static str, body: Value| {
            let (client, url) = (client.clone(), format!("{base}{path}"));
            async move { crate::http::post_json(&client, &url, &body).await }
        };
        let last = self.first_sequence + self.count;
        for seq in self.first_sequence..last {
            let (r, payload) = sign(seq);
            post("/v1/readings", submission(&r, &payload)).await?;
        }
        let mut aggregate_id = Value::Null;
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
            let body = json!({ "aggregate": agg.aggregate, "members": members.iter().map(|(r, p)| submission(r, p)).collect::<Vec<_>>(),
                               "signature": agg.signature });
            aggregate_id = post("/v1/aggregates", body).await?["aggregateId"].clone();
        }
        let mut feedback_id = Value::Null;
        if let Some(path) = &self.answer {
            let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
            let cmd: iotegrity_core::signatures::SignedCommand =
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
            let mut body = serde_json::to_value(&ex)?;
            body["commandPayload"] = json!(cmd.command_payload);
            body["feedbackPayload"] = json!(feedback);
            feedback_id = post("/v1/feedback", body).await?["id"].clone();
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
        if self.aggregate > 0 {
            text += &format!(", the last {} as aggregate {aggregate_id}", self.aggregate);
        }
        if !feedback_id.is_null() {
            text += &format!(" command answered; feedback stored as {feedback_id}");
        }
        Ok(Report::new(
            text,
            json!({ "device": device.address(), "gateway": gateway.address(), "stored": sent, "aggregateId": aggregate_id,
                    "feedbackId": feedback_id, "nextSequence": last + self.aggregate }),
        ))
    }
}
