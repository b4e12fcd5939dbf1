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
use alloy::primitives::{Address, keccak256};
use alloy::providers::DynProvider;
use alloy::sol_types::Eip712Domain;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iotegrity_core::registry_cache::RegistryCache;
use iotegrity_core::signatures::{
    AggregateSigners, AggregateSubmission, FeedbackSubmission, ReadingSubmission, SignedAggregate, SignedReading,
    VerifyError,
};
use iotegrity_core::store::{StoreError, iot};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};
use tracing::{info, warn};

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
}

/// An API error: status and a JSON body `{ "error": …, "step": … }`.
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
        let step = match &e {
            VerifyError::Malformed { step }
            | VerifyError::WrongSigner { step, .. }
            | VerifyError::UnknownKey { step, .. }
            | VerifyError::InactiveKey { step, .. }
            | VerifyError::WrongRole { step, .. }
            | VerifyError::Inconsistent { step, .. } => step.to_string(),
        };
        let status = if is_key_problem(&e) { StatusCode::FORBIDDEN } else { StatusCode::UNPROCESSABLE_ENTITY };
        Self { status, message: e.to_string(), step: Some(step) }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::new(status, r.body_text())
    }
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
        (self.status, Json(json!({ "error": self.message, "step": self.step }))).into_response()
    }
}

fn is_key_problem(e: &VerifyError) -> bool {
    matches!(e, VerifyError::UnknownKey { .. } | VerifyError::InactiveKey { .. } | VerifyError::WrongRole { .. })
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
            Err(e) if is_key_problem(&e) => {
                let mut synced_from = self.synced_from.lock().await;
                if *synced_from < arrived {
                    if let Some(wait) = MIN_SYNC_GAP.checked_sub(synced_from.elapsed()) {
                        tokio::time::sleep(wait).await; // bounds the RPC calls a flood of bad keys causes
                    }
                    if let Err(err) = self.sync_locked(&mut synced_from).await {
                        warn!(error = %err, "registry sync failed; answering from the cache");
                        return Err(e.into());
                    }
                }
                drop(synced_from);
                check(&*self.cache.read().await).map_err(ApiError::from)
            }
            other => other.map_err(ApiError::from),
        }
    }

    fn check_submission(&self, s: &ReadingSubmission) -> Result<SignedReading, ApiError> {
        if s.payload.len() > self.cfg.max_payload_bytes {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("payload larger than {} bytes", self.cfg.max_payload_bytes),
            ));
        }
        if s.signatures.is_empty() || s.signatures.len() > 1 + self.cfg.max_hops {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("a chain has 1 to {} signatures", 1 + self.cfg.max_hops),
            ));
        }
        if keccak256(&s.payload) != s.reading.payloadHash {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "payload does not match reading.payloadHash"));
        }
        if s.reading.sequence > i64::MAX as u64 || s.reading.timestamp > i64::MAX as u64 {
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "sequence or timestamp out of range"));
        }
        Ok(s.signed())
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
    info!(id, device = %s.reading.device, sequence = s.reading.sequence, hops = signers.len() - 1, "reading stored");
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "signers": signers }))).into_response())
}

async fn submit_aggregate(
    State(api): State<Arc<Ingest>>,
    body: Result<Json<AggregateSubmission>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(a) = body?;
    if a.members.is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "an aggregate needs members"));
    }
    let members = a.members.iter().map(|m| api.check_submission(m)).collect::<Result<Vec<_>, _>>()?;
    let signed = SignedAggregate { aggregate: a.aggregate.clone(), members, signature: a.signature.clone() };
    let AggregateSigners { gateway, members: member_signers } =
        api.verify(|cache| signed.verify(&api.domain, cache)).await?;
    let (aggregate_id, ids) =
        iot::insert_aggregate(&api.pool, &a, gateway, &member_signers).await?.ok_or_else(replay)?;
    info!(aggregate_id, members = ids.len(), gateway = %gateway, "aggregate stored");
    Ok((StatusCode::CREATED, Json(json!({ "aggregateId": aggregate_id, "readingIds": ids }))).into_response())
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
    if ex.command.sequence > i64::MAX as u64 || ex.command.timestamp > i64::MAX as u64 {
        return Err(unprocessable("sequence or timestamp out of range"));
    }
    let gateway = api.verify(|cache| ex.verify(&api.domain, cache)).await?;
    let id = iot::insert_feedback(&api.pool, &f, gateway).await?;
    info!(id, device = %ex.command.device, sequence = ex.command.sequence, gateway = %gateway, "command feedback stored");
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "gateway": gateway }))).into_response())
}

/// Most readings in one batch.
const MAX_BATCH: usize = 1_000;

/// `POST /v1/readings/batch`: many readings at once, as a store-and-forward gateway delivers its
/// backlog. Each item is checked on its own; every valid, new item is stored in one transaction;
/// the answer lists a status per item (201 stored, 409 replay, 422/403 refused), so a gateway
/// redelivering after a crash learns which ones the service already has.
async fn submit_batch(
    State(api): State<Arc<Ingest>>,
    body: Result<Json<Vec<ReadingSubmission>>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(items) = body?;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a batch holds 1 to {MAX_BATCH} readings"),
        ));
    }
    let mut results: Vec<serde_json::Value> = Vec::with_capacity(items.len());
    let mut valid = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let checked = match api.check_submission(item) {
            Ok(signed) => api.verify(|cache| signed.verify(&api.domain, cache)).await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(signers) => {
                valid.push((i, signers));
                results.push(serde_json::Value::Null);
            }
            Err(e) => results.push(json!({ "status": e.status.as_u16(), "error": e.message, "step": e.step })),
        }
    }
    let new: Vec<_> = valid.iter().map(|(i, signers)| (&items[*i], signers.as_slice())).collect();
    let ids = iot::insert_readings(&api.pool, &new).await?;
    let mut stored = 0;
    for ((i, _), id) in valid.iter().zip(ids) {
        results[*i] = match id {
            Some(id) => {
                stored += 1;
                json!({ "status": 201, "id": id })
            }
            None => json!({ "status": 409, "error": replay().message }),
        };
    }
    info!(items = items.len(), stored, "reading batch stored");
    Ok((StatusCode::OK, Json(json!({ "stored": stored, "results": results }))).into_response())
}

fn replay() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "replay: this (device, sequence) is already stored")
}

/// The API's routes, with the body limit applied.
pub fn router(api: Arc<Ingest>) -> Router {
    let limit = api.cfg.max_body_bytes;
    Router::new()
        .route("/v1/readings", post(submit_reading))
        .route("/v1/readings/batch", post(submit_batch))
        .route("/v1/aggregates", post(submit_aggregate))
        .route("/v1/feedback", post(submit_feedback))
        .route("/health", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}
