//! Store-and-forward delivery: the journal goes to the service's ingest API strictly in order —
//! runs of readings as one `POST /v1/readings/batch`, aggregates to `/v1/aggregates`, feedback to
//! `/v1/feedback` — and the cursor moves only past what the service acknowledged. Stored (201) and
//! already stored (409, a redelivery after a crash) both count as delivered, so every item lands
//! exactly once. An item refused for good (422, or 413 alone) is written to `refused.jsonl` and passed; a
//! refused key (403) or an unreachable service is retried with backoff, keeping the order. A
//! service known by name is reached over the pinned TLS channel, each request on a connection
//! checked against the chain of its time; a server the chain does not accept for the name is
//! treated as an unreachable service: nothing is sent to it, and the cause is logged.

use super::journal::{Entry, Position};
use super::{Gateway, Record};
use eyre::{Result, WrapErr, eyre};
use iotegrity_core::tls::{Peer, ReloadingCert, Target};
use iotegrity_core::wire::{BatchAnswer, ReadingSubmission, path};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// How far one request got: the position up to which everything is settled (delivered, or
/// refused for good and kept aside), how many items the service took, and why it stopped early.
#[derive(Default)]
struct Progress {
    upto: Option<Position>,
    sent: u64,
    stall: Option<String>,
}

/// The first delivery retry pause; it doubles up to `retry_max_ms`.
const FIRST_RETRY: Duration = Duration::from_millis(200);

/// The service's ingest API as `[service]` names it: a name on chain (pinned TLS) or a URL.
pub fn service_peer(gw: &Gateway) -> Result<Peer> {
    let s = &gw.cfg.service;
    let target =
        Target::from_config(s.name.as_deref(), s.port, s.url.as_deref()).map_err(|e| eyre!("[service] {e}"))?;
    let client_cert = ReloadingCert::open_pair(s.tls_cert.as_deref(), s.tls_key.as_deref())
        .wrap_err("[service] client certificate")?;
    let provider = iotegrity_core::chain::reader(&gw.cfg.chain.rpc_url)?;
    Ok(Peer::new(target, provider, gw.book().clone(), Duration::from_millis(s.timeout_ms), client_cert))
}

/// Runs forever: wakes on new records or a retry timer, and delivers the backlog to `client`.
pub async fn run(gw: Arc<Gateway>, client: Peer) {
    info!(service = %client.url_of(""), "delivering to the service");
    let max_pause = Duration::from_millis(gw.cfg.service.retry_max_ms);
    let mut pause = FIRST_RETRY;
    loop {
        match deliver_backlog(&gw, &client).await {
            Ok(()) => {
                pause = FIRST_RETRY;
                // Sleep until something new is journaled (or re-check now and then).
                let _ = tokio::time::timeout(Duration::from_secs(5), gw.journaled.notified()).await;
            }
            Err(e) => {
                gw.metrics.delivery_errors.inc();
                let backlog = gw.core().journal.backlog();
                warn!(backlog, retry_in_ms = pause.as_millis() as u64, "delivery paused: {e:#}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(max_pause);
            }
        }
    }
}

/// Delivers until the journal is caught up, or fails with the reason to pause.
async fn deliver_backlog(gw: &Arc<Gateway>, client: &Peer) -> Result<()> {
    loop {
        let (g, batch) = (gw.clone(), gw.cfg.service.batch);
        let entries = tokio::task::spawn_blocking(move || g.core().journal.peek(batch)).await??;
        let Some(first) = entries.first() else { return Ok(()) };
        let progress = match &first.record {
            Record::Reading { .. } => {
                let run: Vec<_> = entries.iter().take_while(|e| matches!(e.record, Record::Reading { .. })).collect();
                send_readings(gw, client, &run).await?
            }
            Record::Aggregate { submission, .. } => {
                single(gw, client, path::AGGREGATES, serde_json::to_string(submission)?, first).await?
            }
            Record::Feedback { submission } => {
                single(gw, client, path::FEEDBACK, serde_json::to_string(submission)?, first).await?
            }
            // Local-only records (checkpoints, members, quarantined readings, commands): passed.
            _ => {
                let last = entries.iter().take_while(|e| !is_sent(&e.record)).last().expect("the first is local");
                Progress { upto: Some(last.next), ..Progress::default() }
            }
        };
        if let Some(pos) = progress.upto {
            let (g, keep) = (gw.clone(), gw.cfg.gateway.keep_delivered_segments);
            tokio::task::spawn_blocking(move || -> Result<()> {
                let mut core = g.core();
                core.journal.acknowledge(pos)?;
                core.journal.prune(keep)?;
                Ok(())
            })
            .await??;
            gw.metrics.records_delivered.inc_by(progress.sent);
            debug!(from = first.index, to = pos.index, sent = progress.sent, "acknowledged");
        }
        if let Some(why) = progress.stall {
            return Err(eyre!(why));
        }
    }
}

fn is_sent(r: &Record) -> bool {
    matches!(r, Record::Reading { .. } | Record::Aggregate { .. } | Record::Feedback { .. })
}

async fn post(gw: &Gateway, client: &Peer, path: &str, body: String) -> Result<(u16, Value)> {
    let started = std::time::Instant::now();
    let answer = client.send(path, body).await;
    gw.metrics.delivery.observe(started.elapsed().as_secs_f64());
    let answer = answer.wrap_err("the service is unreachable")?;
    Ok((answer.status, answer.body))
}

/// A run of readings as one batch; the per-item statuses decide how far the cursor moves. A batch
/// the service finds too large (413: over its item or byte limit) is sent again halved, down to
/// one reading — which, still too large, is refused for good.
async fn send_readings(gw: &Gateway, client: &Peer, run: &[&Entry<Record>]) -> Result<Progress> {
    let items: Vec<&ReadingSubmission> = run
        .iter()
        .filter_map(|e| match &e.record {
            Record::Reading { submission, .. } => Some(submission),
            _ => None,
        })
        .collect();
    let mut n = items.len();
    let (status, body) = loop {
        let (status, body) = post(gw, client, path::BATCH, serde_json::to_string(&items[..n])?).await?;
        match status {
            413 if n > 1 => {
                n = n.div_ceil(2);
                info!(readings = n, "the service found the batch too large; halving it");
            }
            413 => {
                refuse(gw, &run[0].record, &body);
                return Ok(Progress { upto: Some(run[0].next), ..Progress::default() });
            }
            _ => break (status, body),
        }
    };
    let run = &run[..n];
    if status != 200 {
        return Ok(Progress { stall: Some(format!("service answered {status}: {body}")), ..Progress::default() });
    }
    let answer: BatchAnswer =
        serde_json::from_value(body.clone()).wrap_err_with(|| format!("not a batch answer: {body}"))?;
    if answer.results.len() != run.len() {
        return Err(eyre!("service answered {} results for {} readings", answer.results.len(), run.len()));
    }
    let mut progress = Progress::default();
    for (entry, result) in run.iter().zip(&answer.results) {
        if result.delivered() {
            progress.sent += 1;
        } else if result.refused_for_good() {
            refuse(gw, &entry.record, &serde_json::to_value(result)?);
        } else {
            let why = result.error.as_deref().unwrap_or("no reason given");
            progress.stall = Some(format!("service refused reading {} ({}): {why}", entry.index, result.status));
            break;
        }
        progress.upto = Some(entry.next);
    }
    Ok(progress)
}

/// One aggregate or feedback.
async fn single(gw: &Gateway, client: &Peer, path: &str, body: String, entry: &Entry<Record>) -> Result<Progress> {
    let (status, answer) = post(gw, client, path, body).await?;
    Ok(match status {
        201 | 409 => Progress { upto: Some(entry.next), sent: 1, stall: None },
        422 | 413 => {
            refuse(gw, &entry.record, &answer);
            Progress { upto: Some(entry.next), ..Progress::default() }
        }
        _ => Progress { stall: Some(format!("{path}: service answered {status}: {answer}")), ..Progress::default() },
    })
}

/// Keeps an item the service refused for good beside the journal, and counts it.
fn refuse(gw: &Gateway, record: &Record, answer: &Value) {
    gw.metrics.items_refused.inc();
    warn!(answer = %answer, "the service refused an item for good; kept in refused.jsonl");
    let line = serde_json::json!({ "answer": answer, "record": record });
    let path = gw.cfg.gateway.state_dir.join("refused.jsonl");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}").and_then(|()| f.sync_data()));
    if let Err(e) = written {
        warn!(path = %path.display(), "cannot keep the refused item: {e}");
    }
}
