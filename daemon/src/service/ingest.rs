//! The ingest API of `iotegrityd service` (docs/ingest.md): gateways POST signed readings,
//! aggregates and the feedback to this service's commands as JSON; the whole chain of signatures is verified (every signer an active key with
//! the right role, per the IdentityRegistry's events) before anything is stored, and nothing of a
//! rejected item is stored. Replays are refused by the unique (device, sequence) of `iot.readings`.
//!
//! | status | when |
//! |---|---|
//! | 201 | stored |
//! | 400 | not JSON, or missing/mistyped fields |
//! | 413 | body larger than `max_body_bytes` |
//! | 422 | payload does not match its hash, too large, too many hops, a signature that is malformed, by the wrong signer, or an inconsistent aggregate |
//! | 403 | a signer that is unknown, rotated out, closed, or has the wrong role |
//! | 409 | a (device, sequence) already stored: a replay |
//! | 503 | the database is unreachable (nothing stored; retry) |

use super::config::IngestConfig;
use crate::metrics::Metrics;
use alloy::primitives::{Address, keccak256};
use alloy::providers::DynProvider;
use alloy::sol_types::Eip712Domain;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iotegrity_core::registry_cache::RegistryCache;
use iotegrity_core::signatures::{AggregateSigners, SignedAggregate, SignedReading, VerifyError};
use iotegrity_core::store::{StoreError, iot};
use iotegrity_core::wire::{
    self, AggregateStored, AggregateSubmission, BatchAnswer, ErrorBody, FeedbackStored, FeedbackSubmission, ItemResult,
    MAX_BATCH, ReadingStored, ReadingSubmission, path,
};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};
use tracing::{info, warn};

/// Largest sequence number: what Postgres' int8 holds.
const MAX_SEQUENCE: u64 = i64::MAX as u64;

/// Least time between two registry syncs caused by requests with unknown or inactive keys.
const MIN_SYNC_GAP: Duration = Duration::from_millis(100);

/// Shared state of the API.
pub struct Ingest {
    pool: PgPool,
    service: Address,
    domain: Eip712Domain,
    provider: DynProvider,
    cache: RwLock<RegistryCache>,
    /// When the last successful sync started; held while syncing, so syncs never overlap.
    synced_from: Mutex<Instant>,
    cfg: IngestConfig,
    metrics: Arc<Metrics>,
}

/// An API error: status and a JSON [`ErrorBody`] `{ "error": …, "step": … }`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    step: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), step: None }
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        let status = StatusCode::from_u16(e.http_status()).expect("a valid status");
        Self { status, message: e.to_string(), step: Some(e.step.to_string()) }
    }
}

impl ApiError {
    /// This error, about member `i` of an aggregate: the member is named in the message and step.
    fn of_member(self, i: usize) -> Self {
        let step = match self.step {
            Some(step) if step.starts_with("member ") => step,
            Some(step) => format!("member {i}: {step}"),
            None => format!("member {i}"),
        };
        let message =
            if self.message.starts_with("member ") { self.message } else { format!("member {i}: {}", self.message) };
        Self { status: self.status, message, step: Some(step) }
    }

    /// This error as one item's result in a batch.
    fn item(self) -> ItemResult {
        ItemResult { status: self.status.as_u16(), id: None, error: Some(self.message), step: self.step }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::rejected(&r, r.status(), r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        Self::rejected(&r, r.status(), r.body_text())
    }
}

impl ApiError {
    /// A body axum could not read or decode: 408 when it missed its deadline, 413 over its limit,
    /// else 400 with axum's reason.
    fn rejected(r: &(dyn std::error::Error + 'static), status: StatusCode, reason: String) -> Self {
        if crate::http::is_body_timeout(r) {
            return Self::new(StatusCode::REQUEST_TIMEOUT, "the request body did not arrive in time (body_timeout_ms)");
        }
        let status = if status == StatusCode::PAYLOAD_TOO_LARGE { status } else { StatusCode::BAD_REQUEST };
        Self::new(status, explain(reason))
    }
}

/// One batch item decoded on its own, its error prefixed with the failing field's path.
fn decode_item(slice: &[u8]) -> Result<ReadingSubmission, String> {
    let mut de = serde_json::Deserializer::from_slice(slice);
    let item: ReadingSubmission = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!("{path}: ") };
        format!("{at}{}", e.into_inner())
    })?;
    de.end().map_err(|e| e.to_string())?;
    Ok(item)
}

/// Whether the request says its body is JSON, as axum's `Json` extractor requires
/// (`application/json`, or a `+json` type, parameters allowed).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// serde's message for a number that is no u64 ("invalid type: floating point", for 2^64 and
/// beyond) does not say the range: add it.
fn explain(mut message: String) -> String {
    if message.contains("expected u64") {
        message += &format!(
            " (sequence and timestamp are whole numbers: a sequence in 1..={MAX_SEQUENCE}, a timestamp in unix seconds)"
        );
    }
    message
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Database(db) = &e
            && let Some(db) = db.as_database_error()
            && db.code().as_deref() == Some("23505")
        {
            return Self::new(StatusCode::CONFLICT, format!("already stored: {}", db.message()));
        }
        warn!(error = %e, "ingest: database error");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "database unavailable; nothing was stored, retry later")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message, step: self.step })).into_response()
    }
}

impl Ingest {
    /// Builds the API state for the service whose online key is `service`; the cache starts from
    /// the deployment block and is synced now.
    pub async fn new(
        pool: PgPool,
        provider: DynProvider,
        book: &iotegrity_core::AddressBook,
        service: Address,
        cfg: IngestConfig,
        metrics: Arc<Metrics>,
    ) -> eyre::Result<Arc<Self>> {
        let mut cache = RegistryCache::new(book.identity_registry(), book.deployed_block);
        cache.sync(&provider).await?;
        Ok(Arc::new(Self {
            pool,
            service,
            domain: iotegrity_core::signatures::domain_of(book),
            provider,
            cache: RwLock::new(cache),
            synced_from: Mutex::new(Instant::now()),
            cfg,
            metrics,
        }))
    }

    /// Applies new registry events (called periodically, so rotations and closings take effect).
    pub async fn sync(&self) -> eyre::Result<()> {
        let mut synced_from = self.synced_from.lock().await;
        self.sync_locked(&mut synced_from).await
    }

    async fn sync_locked(&self, synced_from: &mut Instant) -> eyre::Result<()> {
        let started = Instant::now();
        self.cache.write().await.sync(&self.provider).await?;
        *synced_from = started;
        Ok(())
    }

    /// Runs `check` against the cache; on a key problem, makes sure the cache holds every event
    /// mined before the request arrived — a sync that started after it (its own, or one another
    /// request started meanwhile; at most one per [`MIN_SYNC_GAP`]) — and checks again. So a key
    /// registered just before its first reading is never refused as unknown.
    async fn verify<T>(&self, check: impl Fn(&RegistryCache) -> Result<T, VerifyError>) -> Result<T, ApiError> {
        let arrived = Instant::now();
        let first = check(&*self.cache.read().await); // a statement of its own: the read lock ends here
        match first {
            Err(e) if e.is_key_problem() => {
                let mut synced_from = self.synced_from.lock().await;
                if *synced_from < arrived {
                    if let Some(wait) = MIN_SYNC_GAP.checked_sub(synced_from.elapsed()) {
                        tokio::time::sleep(wait).await; // bounds the RPC calls a flood of bad keys causes
                    }
                    if let Err(err) = self.sync_locked(&mut synced_from).await {
                        warn!(error = %format!("{err:#}"), "registry sync failed; answering from the cache");
                        return Err(e.into());
                    }
                }
                drop(synced_from);
                check(&*self.cache.read().await).map_err(ApiError::from)
            }
            other => other.map_err(ApiError::from),
        }
    }

    /// The checks of a submission that need no chain: sizes, hop count, payload hash, ranges.
    fn check_submission<'s>(&self, s: &'s ReadingSubmission) -> Result<&'s SignedReading, ApiError> {
        if s.payload.len() > self.cfg.max_payload_bytes {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("payload larger than {} bytes", self.cfg.max_payload_bytes),
            ));
        }
        let (reading, signatures) = (&s.signed.reading, &s.signed.signatures);
        if signatures.is_empty() || signatures.len() > 1 + self.cfg.max_hops {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("a chain has 1 to {} signatures", 1 + self.cfg.max_hops),
            ));
        }
        if keccak256(&s.payload) != reading.payloadHash {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "payload does not match reading.payloadHash"));
        }
        self.check_sequence_and_time(reading.sequence, reading.timestamp)?;
        Ok(&s.signed)
    }

    /// Sequences count from 1 and fit Postgres' int8; a timestamp lies in the plausibility window
    /// around this service's clock (`max_age_secs` behind, `max_future_secs` ahead).
    fn check_sequence_and_time(&self, sequence: u64, timestamp: u64) -> Result<(), ApiError> {
        let unprocessable = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m);
        if !(1..=MAX_SEQUENCE).contains(&sequence) {
            return Err(unprocessable(format!("sequence {sequence} is not in 1..={MAX_SEQUENCE}")));
        }
        let now = iotegrity_core::signatures::unix_now();
        let (earliest, latest) =
            (now.saturating_sub(self.cfg.max_age_secs), now.saturating_add(self.cfg.max_future_secs));
        if !(earliest..=latest).contains(&timestamp) {
            return Err(unprocessable(format!(
                "timestamp {timestamp} is outside the plausible window {earliest}..={latest} \
                 (max_age_secs {} behind this service's clock, max_future_secs {} ahead)",
                self.cfg.max_age_secs, self.cfg.max_future_secs
            )));
        }
        Ok(())
    }
}

async fn submit_reading(
    State(api): State<Arc<Ingest>>,
    body: Result<Json<ReadingSubmission>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(s) = body?;
    let signed = api.check_submission(&s)?;
    let signers = api.verify(|cache| signed.verify(&api.domain, cache)).await?;
    let id = iot::insert_readings(&api.pool, &[(&s, &signers)]).await?.pop().flatten().ok_or_else(replay)?;
    info!(id, device = %s.reading().device, sequence = s.reading().sequence, hops = signers.len() - 1, "reading stored");
    Ok((StatusCode::CREATED, Json(ReadingStored { id, signers })).into_response())
}

async fn submit_aggregate(
    State(api): State<Arc<Ingest>>,
    body: Result<Json<AggregateSubmission>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(a) = body?;
    if a.members.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "an aggregate needs members"));
    }
    let members = a
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| api.check_submission(m).cloned().map_err(|e| e.of_member(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = SignedAggregate { aggregate: a.aggregate.clone(), members, signature: a.signature.clone() };
    let AggregateSigners { gateway, members: member_signers } =
        api.verify(|cache| signed.verify(&api.domain, cache)).await?;
    let (aggregate_id, ids) = match iot::insert_aggregate(&api.pool, &a, gateway, &member_signers).await? {
        iot::AggregateInsert::Stored(id, ids) => (id, ids),
        iot::AggregateInsert::Replay { member } => return Err(replay().of_member(member)),
    };
    info!(aggregate_id, members = ids.len(), gateway = %gateway, "aggregate stored");
    Ok((StatusCode::CREATED, Json(AggregateStored { aggregate_id, reading_ids: ids })).into_response())
}

async fn submit_feedback(
    State(api): State<Arc<Ingest>>,
    body: Result<Json<FeedbackSubmission>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(f) = body?;
    let ex = &f.exchange;
    let unprocessable = |m: &str| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m);
    if ex.command.service != api.service {
        return Err(unprocessable("this command was not issued by this service"));
    }
    if keccak256(&f.command_payload) != ex.command.commandHash {
        return Err(unprocessable("commandPayload does not match command.commandHash"));
    }
    if keccak256(&f.feedback_payload) != ex.feedback_hash {
        return Err(unprocessable("feedbackPayload does not match feedbackHash"));
    }
    if f.feedback_payload.len() > api.cfg.max_payload_bytes || f.command_payload.len() > api.cfg.max_payload_bytes {
        return Err(unprocessable("payload too large"));
    }
    api.check_sequence_and_time(ex.command.sequence, ex.command.timestamp)?;
    let gateway = api.verify(|cache| ex.verify(&api.domain, cache)).await?;
    let id = iot::insert_feedback(&api.pool, &f, gateway).await?;
    info!(id, device = %ex.command.device, sequence = ex.command.sequence, gateway = %gateway, "command feedback stored");
    Ok((StatusCode::CREATED, Json(FeedbackStored { id, gateway })).into_response())
}

/// `POST /v1/readings/batch`: many readings at once, as a store-and-forward gateway delivers its
/// backlog. The body must be a JSON array of at most [`MAX_BATCH`] items within `max_batch_bytes`;
/// each item is then decoded and checked on its own — a malformed one gets its own 400 with its
/// path, it does not fail the others — and every valid, new item is stored in one statement. The
/// answer lists a status per item (201 stored, 409 replay, 400/422/403 refused), so a gateway
/// redelivering after a crash learns which ones the service already has.
async fn submit_batch(
    State(api): State<Arc<Ingest>>,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    if !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected request with `Content-Type: application/json`",
        ));
    }
    let body = body?;
    let raw = wire::array_items(&body).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    if raw.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "an empty batch"));
    }
    if raw.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a batch of {} readings is over the item limit of {MAX_BATCH}", raw.len()),
        ));
    }
    let mut results: Vec<Option<ItemResult>> = Vec::with_capacity(raw.len());
    let mut items = Vec::with_capacity(raw.len());
    let mut valid = Vec::with_capacity(raw.len());
    for (i, slice) in raw.into_iter().enumerate() {
        let item: ReadingSubmission = match decode_item(slice) {
            Ok(item) => item,
            Err(e) => {
                results.push(Some(ApiError::new(StatusCode::BAD_REQUEST, explain(format!("item {i}: {e}"))).item()));
                continue;
            }
        };
        let checked = match api.check_submission(&item) {
            Ok(signed) => api.verify(|cache| signed.verify(&api.domain, cache)).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(signers) => {
                valid.push((i, items.len(), signers));
                results.push(None);
            }
            Err(e) => results.push(Some(e.item())),
        }
        items.push(item);
    }
    let new: Vec<_> = valid.iter().map(|(_, k, signers)| (&items[*k], signers.as_slice())).collect();
    let ids = iot::insert_readings(&api.pool, &new).await?;
    let mut stored = 0;
    for ((i, _, _), id) in valid.iter().zip(ids) {
        results[*i] = Some(match id {
            Some(id) => {
                stored += 1;
                ItemResult { status: 201, id: Some(id), error: None, step: None }
            }
            None => replay().item(),
        });
    }
    info!(items = results.len(), stored, "reading batch stored");
    let results = results.into_iter().map(|r| r.expect("every item has a result")).collect();
    Ok((StatusCode::OK, Json(BatchAnswer { stored, results })).into_response())
}

fn replay() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, wire::REPLAY)
}

/// Times every request into `iotegrity_ingest_request_seconds`, by route and status.
async fn timed(State(api): State<Arc<Ingest>>, route: MatchedPath, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let resp = next.run(req).await;
    api.metrics.ingest_request(route.as_str(), resp.status().as_u16(), started.elapsed());
    resp
}

/// The API's routes, with the body limit applied and every request timed.
pub fn router(api: Arc<Ingest>) -> Router {
    let (one, batch) = (api.cfg.max_body_bytes, api.cfg.max_batch_bytes);
    let singles = Router::new()
        .route(path::READINGS, post(submit_reading))
        .route(path::AGGREGATES, post(submit_aggregate))
        .route(path::FEEDBACK, post(submit_feedback))
        .layer(middleware::from_fn(move |req, next| crate::http::refuse_oversized(one, "max_body_bytes", req, next)))
        .layer(DefaultBodyLimit::max(one));
    let batches = Router::new()
        .route(path::BATCH, post(submit_batch))
        .layer(middleware::from_fn(move |req, next| crate::http::refuse_oversized(batch, "max_batch_bytes", req, next)))
        .layer(DefaultBodyLimit::max(batch));
    Router::new()
        .merge(singles)
        .merge(batches)
        .route_layer(middleware::from_fn_with_state(api.clone(), timed))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(api)
}
