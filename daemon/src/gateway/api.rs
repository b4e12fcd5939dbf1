//! The gateway's local HTTP API: `POST /v1/commands` takes a service's signed command (Figure
//! 5d), checks it — addressed to one of our devices, payload matching its hash, signed by an
//! active service key per the IdentityRegistry (and a trusted one, if configured), newer than the
//! last for that device — journals it, applies it, and answers with the device's signed feedback
//! relayed by the gateway (also journaled and delivered to the service). `GET /v1/status` shows
//! the devices, the backlog and the traffic-profile outliers, with the CLI command to report one.
//!
//! | status | when |
//! |---|---|
//! | 200 | applied (or refused by the device: `feedback.ok` is false); the body is the feedback |
//! | 400 | not a signed command |
//! | 403 | the signer is unknown, rotated out, closed, not a service, or not trusted here |
//! | 404 | the command is for a device this gateway does not have |
//! | 409 | a command sequence not newer than the last one for the device (a replay) |
//! | 422 | payload does not match its hash, a malformed signature, or one by another key than `command.service` |
//! | 503 | the chain cannot be asked about the service's key (nothing stored; retry) |

use super::config::MIN_INTERVAL_MS;
use super::{Gateway, Record};
use alloy::primitives::{Bytes, keccak256};
use alloy::providers::DynProvider;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iotegrity_core::registry_cache::RegistryCache;
use iotegrity_core::signatures::CommandExchange;
use iotegrity_core::wire::{ErrorBody, FeedbackSubmission, SignedCommand, path};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::Mutex;
use tracing::{info, warn};

/// Largest command body accepted.
const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// State of the API: the gateway and a registry cache for checking service keys.
pub struct Api {
    gw: Arc<Gateway>,
    provider: DynProvider,
    cache: Mutex<RegistryCache>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody { error: message.into(), step: None })).into_response()
}

/// What a command may ask for.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    /// Change the device's sampling interval, ms.
    IntervalMs(u64),
    /// Set a configured GPIO output.
    Gpio {
        /// BCM pin.
        pin: u8,
        /// `high` or `low`.
        level: String,
    },
}

impl Api {
    /// The command's signer is the service it names, trusted here if a list is configured, and an
    /// active service key on chain now (the cache syncs first: a key closed a block ago must not
    /// command). Statuses as the ingest API's ([`iotegrity_core::signatures::VerifyError::http_status`]):
    /// a signature that can never verify is 422, a signer that may not command 403.
    async fn check_service_key(&self, cmd: &SignedCommand) -> Result<(), Response> {
        let gw = &self.gw;
        let trusted = &gw.cfg.api.trusted_services;
        if !trusted.is_empty() && !trusted.contains(&cmd.command.service) {
            return Err(error(
                StatusCode::FORBIDDEN,
                format!("{} is not a trusted service of this gateway", cmd.command.service),
            ));
        }
        let mut cache = self.cache.lock().await;
        cache.sync(&self.provider).await.map_err(|e| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot check the service key on chain: {:#}", eyre::Report::new(e)),
            )
        })?;
        cmd.verify(&gw.domain, &*cache).map_err(|e| {
            let status = StatusCode::from_u16(e.http_status()).expect("a valid status");
            (status, Json(ErrorBody { error: e.to_string(), step: Some(e.step.to_string()) })).into_response()
        })
    }

    /// Applies an action to device `d`; the answer becomes the device's feedback.
    fn apply(&self, d: usize, payload: &[u8]) -> Value {
        let gw = &self.gw;
        let action: Action = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => return json!({ "ok": false, "error": format!("unsupported command: {e}") }),
        };
        match action {
            Action::IntervalMs(ms) if ms >= MIN_INTERVAL_MS => {
                gw.devices[d].interval_ms.store(ms, Ordering::Relaxed);
                gw.relearn(d);
                json!({ "ok": true, "interval_ms": ms })
            }
            Action::IntervalMs(_) => {
                json!({ "ok": false, "error": format!("interval_ms must be >= {MIN_INTERVAL_MS}") })
            }
            Action::Gpio { pin, level } => {
                if !gw.cfg.outputs.iter().any(|o| o.pin == pin) {
                    return json!({ "ok": false, "error": format!("pin {pin} is not a configured output") });
                }
                let high = match level.as_str() {
                    "high" => true,
                    "low" => false,
                    other => return json!({ "ok": false, "error": format!("level {other:?} is not high or low") }),
                };
                match set_output(pin, high) {
                    Ok(()) => json!({ "ok": true, "gpio": { "pin": pin, "level": level } }),
                    Err(e) => json!({ "ok": false, "error": e }),
                }
            }
        }
    }
}

/// Drives a GPIO output and leaves it set.
fn set_output(pin: u8, high: bool) -> Result<(), String> {
    let gpio = rppal::gpio::Gpio::new().map_err(|e| format!("gpio: {e}"))?;
    let mut out = gpio.get(pin).map_err(|e| format!("gpio {pin}: {e}"))?.into_output();
    out.set_reset_on_drop(false);
    if high {
        out.set_high()
    } else {
        out.set_low()
    }
    Ok(())
}

async fn command(State(api): State<Arc<Api>>, body: Result<Json<SignedCommand>, JsonRejection>) -> Response {
    let gw = api.gw.clone();
    let refused = |r: Response| {
        gw.metrics.commands_refused.inc();
        warn!(status = r.status().as_u16(), "command refused");
        r
    };
    let cmd = match body {
        Ok(Json(cmd)) => cmd,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refused(error(StatusCode::PAYLOAD_TOO_LARGE, r.body_text()));
        }
        Err(r) => {
            let why = format!("not a signed command (see `iotegrity command`): {}", r.body_text());
            return refused(error(StatusCode::BAD_REQUEST, why));
        }
    };
    let Some(d) = gw.devices.iter().position(|d| d.key.address() == cmd.command.device) else {
        return refused(error(
            StatusCode::NOT_FOUND,
            format!("{} is not a device of this gateway", cmd.command.device),
        ));
    };
    if keccak256(&cmd.command_payload) != cmd.command.commandHash {
        return refused(error(StatusCode::UNPROCESSABLE_ENTITY, "commandPayload does not match command.commandHash"));
    }
    if let Err(r) = api.check_service_key(&cmd).await {
        return refused(r);
    }
    let device = cmd.command.device;
    // Journal the command (and so claim its sequence) before applying it.
    let journaled = {
        let gw = gw.clone();
        let cmd = cmd.clone();
        tokio::task::spawn_blocking(move || {
            let mut core = gw.core();
            if core.state.last_command.get(&device).is_some_and(|&last| cmd.command.sequence <= last) {
                return Ok(false);
            }
            core.commit(vec![Record::Command { command: cmd }]).map(|()| true)
        })
        .await
    };
    match journaled.map_err(eyre::Report::from).and_then(|r| r) {
        Ok(true) => {}
        Ok(false) => {
            return refused(error(
                StatusCode::CONFLICT,
                "replay: a command with this sequence or a newer one was applied",
            ));
        }
        Err(e) => return refused(error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot journal: {e:#}"))),
    }
    let feedback = api.apply(d, &cmd.command_payload);
    let feedback_payload = Bytes::from(serde_json::to_vec(&feedback).expect("json"));
    let exchange = CommandExchange::answer(
        cmd.command.clone(),
        cmd.command_signature.clone(),
        keccak256(&feedback_payload),
        &gw.devices[d].key,
        &gw.key,
        &gw.domain,
    );
    let submission = FeedbackSubmission { exchange, command_payload: cmd.command_payload.clone(), feedback_payload };
    let record = Record::Feedback { submission: submission.clone() };
    let g = gw.clone();
    let committed = tokio::task::spawn_blocking(move || g.core().commit(vec![record])).await;
    if let Err(e) = committed.map_err(eyre::Report::from).and_then(|r| r) {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("applied, but the feedback cannot be journaled: {e:#}"));
    }
    gw.journaled.notify_one();
    gw.metrics.commands_applied.inc();
    info!(device = %gw.devices[d].name, sequence = cmd.command.sequence, ok = %feedback["ok"], "command applied");
    (StatusCode::OK, Json(submission)).into_response()
}

async fn status(State(api): State<Arc<Api>>) -> Response {
    let gw = &api.gw;
    let core = gw.core();
    let devices: Vec<Value> = gw
        .devices
        .iter()
        .map(|d| {
            let addr = d.key.address();
            let outliers = d.outliers.load(Ordering::Relaxed);
            json!({
                "name": d.name,
                "address": addr,
                "intervalMs": d.interval_ms.load(Ordering::Relaxed),
                "nextSequence": core.state.next_sequence.get(&addr).copied().unwrap_or(super::FIRST_SEQUENCE),
                "outliers": outliers,
                "report": (outliers > 0).then(|| format!(
                    "iotegrity reputation vote --address {addr} --score -50 --keystore <gateway OFFLINE keystore>"
                )),
            })
        })
        .collect();
    Json(json!({
        "gateway": gw.key.address(),
        "devices": devices,
        "journal": { "next": core.journal.next_index(), "delivered": core.journal.cursor().index, "backlog": core.journal.backlog() },
    }))
    .into_response()
}

/// The API's routes.
pub async fn router(gw: Arc<Gateway>) -> Router {
    let book = gw.book();
    let provider = iotegrity_core::chain::reader(&gw.cfg.chain.rpc_url).expect("a valid RPC URL was checked");
    let cache = Mutex::new(RegistryCache::new(book.identity_registry(), book.deployed_block));
    let api = Arc::new(Api { gw, provider, cache });
    Router::new()
        .route(path::COMMANDS, post(command))
        .route("/v1/status", get(status))
        .route("/health", get(|| async { "ok\n" }))
        .layer(axum::middleware::from_fn(|req, next| {
            crate::http::refuse_oversized(MAX_COMMAND_BYTES, "64 KiB", req, next)
        }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_COMMAND_BYTES))
        .with_state(api)
}
