//! The service's judgement of a delivered model (paper §5.2.1 steps 13–15; features `postgres`
//! and `learning`), one procedure for `iotegrity market evaluate` and the service daemon: the
//! delivery is checked before the model is parsed (the message is the job's, its signer a current
//! key of the job's worker, the file the one signed and reported on chain), then the model is
//! scored on the spec's held-out rows — read from the store and verified against the chain like
//! any worker's batch, so the service scores only on rows the chain vouches for.

use crate::AddressBook;
use crate::contracts::{IJobMarket, IdentityRegistry};
use crate::job_spec::JobSpec;
use crate::learning::{Examples, LinearModel};
use crate::market::{JobStatus, ResultError, SignedResult};
use crate::store::TableRef;
use crate::store::dataset::{SelectError, verified_batches};
use alloy::primitives::U256;
use alloy::providers::DynProvider;
use serde::Serialize;
use sqlx::PgPool;

/// The verdict on a delivery and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// Success or Failed.
    pub verdict: JobStatus,
    /// Why, in one sentence.
    pub why: String,
    /// The model's score on the held-out rows, when it was scored.
    pub score: Option<f64>,
}

/// Why no judgement could be made: the delivery is not the worker's (so it says nothing about
/// the job — anyone can send bytes), or a cause to retry once it is gone.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The delivery is not authenticated as the job's worker's: signed by another key, for
    /// another job, or a file other than the one the worker signed. Nothing is judged.
    #[error("the delivery is not the job's worker's, nothing is judged: {0}")]
    NotTheWorkers(String),
    /// The store or the chain failed, or the held-out rows do not verify.
    #[error("the held-out rows: {0}")]
    HeldOut(#[from] SelectError),
    /// The held-out rows cannot be read as the spec's examples.
    #[error("the held-out rows: {0}")]
    Data(#[from] crate::learning::DataError),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] crate::Error),
}

/// Judges job `job_id` (as the chain holds it: `job`) on the delivered `file` and `signed` result.
/// A delivery that is not authenticated as the worker's is refused without a verdict
/// ([`EvaluateError::NotTheWorkers`]: a third party must not be able to fail a job). An
/// authenticated delivery whose file is not the one reported on chain, or whose model is not the
/// spec's, is a Failed verdict with its reason; a model is Success iff its score meets the target.
#[allow(clippy::too_many_arguments)]
pub async fn judge(
    pool: &PgPool,
    table: &TableRef,
    provider: &DynProvider,
    book: &AddressBook,
    job_id: U256,
    job: &IJobMarket::Job,
    spec: &JobSpec,
    signed: &SignedResult,
    file: &[u8],
) -> Result<Judgement, EvaluateError> {
    let failed = |why: String| Judgement { verdict: JobStatus::Failed, why, score: None };
    let registry = IdentityRegistry::new(book.identity_registry(), provider);
    let key = signed.result.worker;
    let signer = crate::chain::call(registry.activeIdentityOf(key)).await?;
    if signer.offline != job.worker {
        return Err(EvaluateError::NotTheWorkers(format!(
            "signed by {key}, not a current key of the job's worker {}",
            job.worker
        )));
    }
    let domain = crate::signatures::domain_of(book);
    match signed.verify(&domain, book.job_market(), job_id, job.paramHash, key, job.resultHash, file) {
        Ok(()) => {}
        // The worker signed this very file, and it is not the one it reported: its own fault.
        Err(e @ ResultError::NotReported { .. }) => return Ok(failed(format!("delivery refused: {e}"))),
        Err(e) => return Err(EvaluateError::NotTheWorkers(e.to_string())),
    }
    let model = match LinearModel::from_safetensors(file) {
        Ok(m) if m.features == spec.features && m.label == spec.label => m,
        Ok(_) => return Ok(failed("model refused: its features or label are not the spec's".into())),
        Err(e) => return Ok(failed(format!("model refused: {e}"))),
    };
    let batches = verified_batches(pool, table, provider, book, &spec.holdout).await?;
    let held_out = Examples::from_rows(spec, &batches[0].columns, batches.iter().flat_map(|b| &b.rows))?;
    Ok(match model.r2(&held_out) {
        Err(e) => failed(format!("model refused: {e}")),
        Ok(score) => Judgement {
            verdict: if spec.passes(score) { JobStatus::Success } else { JobStatus::Failed },
            why: format!("R² {score:.4} on {} held-out rows, target {}", held_out.len(), spec.target),
            score: Some(score),
        },
    })
}
