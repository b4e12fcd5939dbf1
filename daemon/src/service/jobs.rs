//! The service's batch API for the job market (docs/market.md, "Serving batches"): the worker
//! assigned to one of this service's jobs fetches its dataset one batch at a time, each request
//! signed by its online key; anyone else gets 403. The batch is built from the store and carries
//! its own proof, so the worker checks it against h_S and the chain — the API vouches for nothing.
//!
//! | status | when |
//! |---|---|
//! | 200 | the batch (`DatasetBatch` JSON) |
//! | 400 | not a signed batch request |
//! | 403 | stale or future request, another market, a signer that is not the job's worker's current key, a job not in progress |
//! | 404 | no such job of this service, no such batch, or the job's spec is not kept here |
//! | 422 | a malformed signature |
//! | 500 | the store no longer gives the job's dataset root (receipts changed or lost) |
//! | 503 | the chain or the database is unreachable |

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::sol_types::Eip712Domain;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use iotegrity_core::chain;
use iotegrity_core::contracts::{IdentityRegistry, JobMarket, Role};
use iotegrity_core::job_spec::JobSpec;
use iotegrity_core::market::{BATCH_REQUEST_WINDOW_SECS, JobStatus, SignedBatchRequest};
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
}

impl Jobs {
    /// The API's state for the service whose online key is `service_key`.
    pub fn new(
        pool: PgPool,
        provider: DynProvider,
        book: &iotegrity_core::AddressBook,
        service_key: Address,
        keys: std::collections::HashMap<String, String>,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            provider,
            domain: iotegrity_core::signatures::domain_of(book),
            market: book.job_market(),
            registry: book.identity_registry(),
            service_key,
            keys,
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
    warn!(error = %e, "batch API: {what} failed");
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
    let market = JobMarket::new(api.market, &api.provider);
    let registry = IdentityRegistry::new(api.registry, &api.provider);
    let job = chain::call(market.jobOf(r.jobId)).await.map_err(|e| unavailable("the chain", e))?;
    let me = chain::call(registry.activeIdentityOf(api.service_key)).await.map_err(|e| unavailable("the chain", e))?;
    if job.service == Address::ZERO || job.service != me.offline {
        return Err(refuse(StatusCode::NOT_FOUND, format!("job {} is not one of this service's jobs", r.jobId)));
    }
    let status = JobStatus::from(chain::call(market.statusOf(r.jobId)).await.map_err(|e| unavailable("the chain", e))?);
    if status != JobStatus::InProgress {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("job {} is {}: batches are served only while it is in progress", r.jobId, status.name()),
        ));
    }
    let who = chain::call(registry.activeIdentityOf(signer)).await.map_err(|e| unavailable("the chain", e))?;
    if who.offline != job.worker || Role::try_from(who.role).ok() != Some(Role::Worker) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("{signer} is not a current key of job {}'s worker {}", r.jobId, job.worker),
        ));
    }
    let spec = store::get_spec(&api.pool, job.paramHash).await.map_err(|e| unavailable("the database", e))?;
    let spec = spec.and_then(|bytes| JobSpec::parse(&bytes).ok()).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            format!("the spec of job {} (paramHash {}) is not kept here", r.jobId, job.paramHash),
        )
    })?;
    let d = &spec.dataset;
    if r.index >= d.sub_tables {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("job {} has {} batches (0..{})", r.jobId, d.sub_tables, d.sub_tables),
        ));
    }
    let key = api.keys.get(&d.table).map_or("id", String::as_str);
    let table = TableRef::new(&d.table, key).map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e))?;
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

/// The batch API's route (on the ingest API's listener).
pub fn router(api: Arc<Jobs>) -> Router {
    Router::new().route(path::JOB_BATCHES, post(batch)).with_state(api)
}
