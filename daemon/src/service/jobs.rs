//! The service's job-market API (docs/market.md, "Serving batches" and "The service daemon"):
//! the kept spec of a job (`GET /v1/jobs/specs/{paramHash}`, public: it is checked against the
//! chain's paramHash), workers' proposals (`POST /v1/jobs/proposals`, accepted on chain when
//! `[market] accept_proposals`), the batches of a job (`POST /v1/jobs/batches`) and the delivered
//! model (`POST /v1/jobs/results`, judged and the job ended when `[market] evaluate_results`).
//!
//! Batches: the worker assigned to one of this service's jobs fetches its dataset one batch at a
//! time, each request signed by its online key; anyone else gets 403. The batch is built from the
//! store and carries its own proof, so the worker checks it against h_S and the chain — the API
//! vouches for nothing.
//!
//! | status | when |
//! |---|---|
//! | 200 | the batch (`DatasetBatch` JSON); the spec; the proposal accepted on chain; the delivery judged and the job ended (the verdict in the body) |
//! | 400 | not a signed request, proposal or delivery; a paramHash that is not 32-byte hex |
//! | 403 | stale or future batch request, another market, a signer that is not the job's worker's current key, a job not in progress, a proposer that is not an active worker or scores below `min_worker_score`, a delivery not signed by the worker over this file, acceptance or evaluation by hand only |
//! | 404 | no such job of this service, no such batch, or the job's spec is not kept here |
//! | 409 | the job takes no proposal or awaits no verdict (its state), or the chain refused the transaction (its error name) |
//! | 422 | a malformed signature, or a proposal not signed by its worker key |
//! | 500 | the store no longer gives the job's dataset root (receipts changed or lost) |
//! | 503 | the chain or the database is unreachable, or the held-out rows cannot be read or verified |

use super::config::MarketConfig;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use alloy::sol_types::Eip712Domain;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iotegrity_core::chain;
use iotegrity_core::contracts::{IdentityRegistry, JobMarket, Role};
use iotegrity_core::evaluate::EvaluateError;
use iotegrity_core::job_spec::JobSpec;
use iotegrity_core::market::{BATCH_REQUEST_WINDOW_SECS, JobStatus, SignedBatchRequest, SignedProposal, SignedResult};
use iotegrity_core::store::{TableRef, dataset as store};
use iotegrity_core::wire::{ErrorBody, path};
use sqlx::PgPool;
use std::sync::Arc;
use tracing::{info, warn};

/// Shared state of the batch API.
pub struct Jobs {
    pool: PgPool,
    provider: DynProvider,
    domain: Eip712Domain,
    market: Address,
    registry: Address,
    /// This service's online key (its identity is looked up per request: keys rotate).
    service_key: Address,
    /// The key column of each watched table (`[[tables]] key`); `id` for others.
    keys: std::collections::HashMap<String, String>,
    cfg: MarketConfig,
    book: iotegrity_core::AddressBook,
}

impl Jobs {
    /// The API's state for the service whose online key is `service_key`.
    pub fn new(
        pool: PgPool,
        provider: DynProvider,
        book: &iotegrity_core::AddressBook,
        service_key: Address,
        keys: std::collections::HashMap<String, String>,
        cfg: MarketConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            provider,
            domain: iotegrity_core::signatures::domain_of(book),
            market: book.job_market(),
            registry: book.identity_registry(),
            service_key,
            keys,
            cfg,
            book: book.clone(),
        })
    }
}

struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1, step: None })).into_response()
    }
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Refusal {
    Refusal(status, why.into())
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Refusal {
    warn!(error = %e, "job API: {what} failed");
    refuse(StatusCode::SERVICE_UNAVAILABLE, format!("{what} is unavailable; retry later"))
}

async fn batch(State(api): State<Arc<Jobs>>, body: Result<Json<SignedBatchRequest>, JsonRejection>) -> Response {
    match serve(&api, body).await {
        Ok(resp) => resp,
        Err(r) => r.into_response(),
    }
}

async fn serve(api: &Jobs, body: Result<Json<SignedBatchRequest>, JsonRejection>) -> Result<Response, Refusal> {
    let Json(signed) = body.map_err(|e| refuse(StatusCode::BAD_REQUEST, e.body_text()))?;
    let r = &signed.request;
    let now = iotegrity_core::signatures::unix_now();
    if r.issuedAt.abs_diff(now) > BATCH_REQUEST_WINDOW_SECS {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "the request was issued at {}, more than {BATCH_REQUEST_WINDOW_SECS} s from now ({now})",
                r.issuedAt
            ),
        ));
    }
    if r.market != api.market {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("the request is for market {}, this is {}", r.market, api.market),
        ));
    }
    let signer = signed
        .signer(&api.domain)
        .ok_or_else(|| refuse(StatusCode::UNPROCESSABLE_ENTITY, "malformed signature (65 bytes r‖s‖v, low s)"))?;
    let (job, status) = api.own_job(r.jobId).await?;
    if status != JobStatus::InProgress {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("job {} is {}: batches are served only while it is in progress", r.jobId, status.name()),
        ));
    }
    let registry = IdentityRegistry::new(api.registry, &api.provider);
    let who = chain::call(registry.activeIdentityOf(signer)).await.map_err(|e| unavailable("the chain", e))?;
    if who.offline != job.worker || Role::try_from(who.role).ok() != Some(Role::Worker) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("{signer} is not a current key of job {}'s worker {}", r.jobId, job.worker),
        ));
    }
    let spec = api.spec_of(r.jobId, job.paramHash).await?;
    let d = &spec.dataset;
    if r.index >= d.sub_tables {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("job {} has {} batches (0..{})", r.jobId, d.sub_tables, d.sub_tables),
        ));
    }
    let table = api.key_table(&d.table)?;
    let dataset = match store::select(&api.pool, &table, d.first_key, d.last_key).await {
        Ok(dataset) => dataset,
        Err(store::SelectError::Store(e)) => return Err(unavailable("the database", e)),
        Err(e) => {
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the store no longer gives the dataset: {e}"),
            ));
        }
    };
    if dataset.root() != d.root {
        warn!(job = %r.jobId, "the store's receipts give another dataset root than the job's: receipts changed or lost");
        return Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the store's receipts give root {}, job {}'s root is {}: receipts were changed or lost",
                dataset.root(),
                r.jobId,
                d.root
            ),
        ));
    }
    let batch = store::batch(&api.pool, &table, &dataset, r.index as usize)
        .await
        .map_err(|e| unavailable("the database", e))?;
    info!(job = %r.jobId, index = r.index, worker = %job.worker, rows = batch.rows.len(), "batch served");
    Ok((StatusCode::OK, Json(batch)).into_response())
}

/// A delivered model with its signed result: the body of `POST /v1/jobs/results`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// The worker's signed result.
    pub result: SignedResult,
    /// The model file, hex.
    pub model: Bytes,
}

/// Largest delivery body (a linear model is a few hundred bytes; this leaves room for others).
const MAX_DELIVERY_BYTES: usize = 4 << 20;

impl Jobs {
    fn key_table(&self, table: &str) -> Result<TableRef, Refusal> {
        let key = self.keys.get(table).map_or("id", String::as_str);
        TableRef::new(table, key).map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e))
    }

    /// Job `id` if it is one of this service's jobs, with its status under the time rules.
    async fn own_job(&self, id: U256) -> Result<(iotegrity_core::contracts::IJobMarket::Job, JobStatus), Refusal> {
        let market = JobMarket::new(self.market, &self.provider);
        let registry = IdentityRegistry::new(self.registry, &self.provider);
        let job = chain::call(market.jobOf(id)).await.map_err(|e| unavailable("the chain", e))?;
        let me =
            chain::call(registry.activeIdentityOf(self.service_key)).await.map_err(|e| unavailable("the chain", e))?;
        if job.service == Address::ZERO || job.service != me.offline {
            return Err(refuse(StatusCode::NOT_FOUND, format!("job {id} is not one of this service's jobs")));
        }
        let status = JobStatus::from(chain::call(market.statusOf(id)).await.map_err(|e| unavailable("the chain", e))?);
        Ok((job, status))
    }

    async fn spec_of(&self, id: U256, param_hash: B256) -> Result<JobSpec, Refusal> {
        let spec = store::get_spec(&self.pool, param_hash).await.map_err(|e| unavailable("the database", e))?;
        spec.and_then(|bytes| JobSpec::parse(&bytes).ok()).ok_or_else(|| {
            refuse(StatusCode::NOT_FOUND, format!("the spec of job {id} (paramHash {param_hash}) is not kept here"))
        })
    }

    /// Sends a transaction from the service's key, under the key's lock (the anchoring loop sends
    /// from the same key).
    async fn send<D: alloy::contract::CallDecoder>(
        &self,
        call: alloy::contract::CallBuilder<&&DynProvider, D>,
    ) -> Result<B256, Refusal> {
        let mut conn = self.pool.acquire().await.map_err(|e| unavailable("the database", e))?;
        let receipt = super::with_key_lock(&mut conn, self.service_key, chain::send(call))
            .await
            .map_err(|e| unavailable("the database", e))?
            .map_err(|e| match e {
                iotegrity_core::Error::Reverted { reason } => {
                    refuse(StatusCode::CONFLICT, format!("the chain refused: {reason}"))
                }
                other => unavailable("the chain", other),
            })?;
        Ok(receipt.transaction_hash)
    }
}

async fn spec(State(api): State<Arc<Jobs>>, Path(param_hash): Path<String>) -> Response {
    let Ok(hash) = param_hash.parse::<B256>() else {
        return refuse(StatusCode::BAD_REQUEST, format!("{param_hash:?} is not a 32-byte hex hash")).into_response();
    };
    match store::get_spec(&api.pool, hash).await {
        Ok(Some(bytes)) => {
            (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Ok(None) => {
            refuse(StatusCode::NOT_FOUND, format!("no spec with paramHash {hash} is kept here")).into_response()
        }
        Err(e) => unavailable("the database", e).into_response(),
    }
}

async fn proposal(State(api): State<Arc<Jobs>>, body: Result<Json<SignedProposal>, JsonRejection>) -> Response {
    match accept(&api, body).await {
        Ok(resp) => resp,
        Err(r) => r.into_response(),
    }
}

async fn accept(api: &Jobs, body: Result<Json<SignedProposal>, JsonRejection>) -> Result<Response, Refusal> {
    let Json(signed) = body.map_err(|e| refuse(StatusCode::BAD_REQUEST, e.body_text()))?;
    if !api.cfg.accept_proposals {
        return Err(refuse(StatusCode::FORBIDDEN, "this service accepts proposals by hand (iotegrity market accept)"));
    }
    let p = &signed.proposal;
    if p.market != api.market {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("the proposal is for market {}, this is {}", p.market, api.market),
        ));
    }
    if signed.signer(&api.domain) != Some(p.worker) {
        return Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("the signature is not {}'s", p.worker)));
    }
    let (job, status) = api.own_job(p.jobId).await?;
    if status != JobStatus::Unprocessed {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!("job {} is {}: it takes no proposals", p.jobId, status.name()),
        ));
    }
    if p.root != job.root || p.paramHash != job.paramHash {
        return Err(refuse(StatusCode::FORBIDDEN, "the proposal is for another root or spec than the job's"));
    }
    let registry = IdentityRegistry::new(api.registry, &api.provider);
    let who = chain::call(registry.activeIdentityOf(p.worker)).await.map_err(|e| unavailable("the chain", e))?;
    if Role::try_from(who.role).ok() != Some(Role::Worker) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("{} is not the online key of an active worker identity", p.worker),
        ));
    }
    if let Some(min) = api.cfg.min_worker_score {
        let (score, votes) = iotegrity_core::reputation::score_of(&api.provider, &api.book, who.offline)
            .await
            .map_err(|e| unavailable("the chain", e))?;
        if score < min {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "worker {} scores {score:.2} from {votes} vote(s), below this service's minimum {min}",
                    who.offline
                ),
            ));
        }
    }
    let market = JobMarket::new(api.market, &api.provider);
    let tx =
        api.send(market.acceptTrainingOffer(p.jobId, p.worker, p.terms, p.expiresAt, signed.signature.clone())).await?;
    info!(job = %p.jobId, worker = %who.offline, %tx, "proposal accepted");
    Ok((StatusCode::OK, Json(serde_json::json!({ "job": p.jobId, "worker": who.offline, "tx": tx }))).into_response())
}

async fn result(State(api): State<Arc<Jobs>>, body: Result<Json<Delivery>, JsonRejection>) -> Response {
    match judge(&api, body).await {
        Ok(resp) => resp,
        Err(r) => r.into_response(),
    }
}

async fn judge(api: &Jobs, body: Result<Json<Delivery>, JsonRejection>) -> Result<Response, Refusal> {
    let Json(delivery) = body.map_err(|e| refuse(StatusCode::BAD_REQUEST, e.body_text()))?;
    if !api.cfg.evaluate_results {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "this service evaluates results by hand (iotegrity market evaluate)",
        ));
    }
    let id = delivery.result.result.jobId;
    let (job, status) = api.own_job(id).await?;
    if status != JobStatus::InProgress || job.resultHash == B256::ZERO || job.failedAt != 0 || job.disputedAt != 0 {
        return Err(refuse(StatusCode::CONFLICT, format!("job {id} awaits no verdict (it is {})", status.name())));
    }
    let spec = api.spec_of(id, job.paramHash).await?;
    let table = api.key_table(&spec.holdout.table)?;
    let judged = iotegrity_core::evaluate::judge(
        &api.pool,
        &table,
        &api.provider,
        &api.book,
        id,
        &job,
        &spec,
        &delivery.result,
        &delivery.model,
    )
    .await
    .map_err(|e| match e {
        EvaluateError::NotTheWorkers(_) => refuse(StatusCode::FORBIDDEN, e.to_string()),
        other => unavailable("evaluation", other),
    })?;
    let market = JobMarket::new(api.market, &api.provider);
    let tx = api.send(market.endJob(id, judged.verdict as u8)).await?;
    info!(job = %id, verdict = judged.verdict.name(), why = %judged.why, %tx, "job ended");
    Ok((StatusCode::OK, Json(serde_json::json!({ "job": id, "judgement": judged, "tx": tx }))).into_response())
}

/// The job-market routes (on the ingest API's listener).
pub fn router(api: Arc<Jobs>) -> Router {
    Router::new()
        .route(path::JOB_BATCHES, post(batch))
        .route(path::JOB_PROPOSALS, post(proposal))
        .route(path::JOB_RESULTS, post(result).layer(DefaultBodyLimit::max(MAX_DELIVERY_BYTES)))
        .route(path::JOB_SPECS, get(spec))
        .with_state(api)
}
