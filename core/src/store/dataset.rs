//! A job's dataset as the service's store holds it: the receipts that make it
//! ([`crate::dataset::Dataset::select`]), its batches with the rows' canonical text, and the specs
//! of the jobs offered (`iotegrity.job_specs`). The store is not evidence: whoever offers or
//! evaluates a job checks these batches with [`crate::dataset::Verifier`] against the chain, as the
//! worker does, and a spec read back against the job's paramHash.

use super::StoreError;
use super::receipts::load_receipts;
use super::table::TableRef;
use crate::dataset::{BatchError, BatchRow, Dataset, DatasetBatch, DatasetError, DatasetRef, Verifier};
use alloy::primitives::{B256, keccak256};
use sqlx::PgPool;

/// Why the store cannot give a dataset.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The receipts in the range do not make a dataset.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// The chain could not be read.
    #[error(transparent)]
    Chain(#[from] crate::Error),
    /// A batch the store gives does not verify against the chain.
    #[error("the store's batch does not verify: {0}")]
    Batch(#[from] BatchError),
}

/// The batches of `part` as the store holds them, each checked with the worker's [`Verifier`]
/// against the table's anchors on chain (the history of `part.owner`): what a service scores a
/// model on, so that it scores only on rows the chain vouches for.
pub async fn verified_batches(
    pool: &PgPool,
    table: &TableRef,
    provider: &alloy::providers::DynProvider,
    book: &crate::AddressBook,
    part: &DatasetRef,
) -> Result<Vec<DatasetBatch>, SelectError> {
    let dataset = select(pool, table, part.first_key, part.last_key).await?;
    let batches = batches(pool, table, &dataset).await?;
    let anchors =
        crate::anchors::TableAnchors::read(provider, book, crate::receipt::table_id(&part.table), None).await?;
    let history = anchors.history(Some(part.owner));
    let mut verifier = Verifier::new(part, &history);
    for batch in &batches {
        verifier.verify(batch)?;
    }
    verifier.finish()?;
    Ok(batches)
}

/// The dataset of the anchored sub-tables of `table` that lie wholly inside `first..=last`.
pub async fn select(pool: &PgPool, table: &TableRef, first: i64, last: i64) -> Result<Dataset, SelectError> {
    let receipts = load_receipts(pool, &table.name()).await?;
    Ok(Dataset::select(&table.name(), &receipts, first, last)?)
}

/// Batch `index` of `dataset`, with the rows the table holds now.
pub async fn batch(
    pool: &PgPool,
    table: &TableRef,
    dataset: &Dataset,
    index: usize,
) -> Result<DatasetBatch, StoreError> {
    let columns = table.columns(pool).await?;
    let r = &dataset.receipts[index];
    let rows = table.canonical_rows(pool, r.first_key.saturating_sub(1), r.last_key).await?;
    Ok(dataset.batch(index, columns, rows.into_iter().map(|(key, line)| BatchRow { key, line }).collect()))
}

/// Keeps a job spec file (keyed by its keccak256, the job's paramHash) for the batch API.
pub async fn put_spec(pool: &PgPool, spec: &[u8]) -> Result<B256, StoreError> {
    let hash = keccak256(spec);
    sqlx::query(
        "INSERT INTO iotegrity.job_specs (param_hash, spec) VALUES ($1, $2) ON CONFLICT (param_hash) DO NOTHING",
    )
    .bind(hash.as_slice())
    .bind(spec)
    .execute(pool)
    .await?;
    Ok(hash)
}

/// The spec file of `param_hash`, if kept and unaltered (a row whose bytes do not hash to its key
/// is treated as missing: the store is not evidence).
pub async fn get_spec(pool: &PgPool, param_hash: B256) -> Result<Option<Vec<u8>>, StoreError> {
    let spec: Option<Vec<u8>> = sqlx::query_scalar("SELECT spec FROM iotegrity.job_specs WHERE param_hash = $1")
        .bind(param_hash.as_slice())
        .fetch_optional(pool)
        .await?;
    Ok(spec.filter(|s| keccak256(s) == param_hash))
}

/// Every batch of `dataset`, with the rows the table holds now (whatever they are: the verifier
/// judges them).
pub async fn batches(pool: &PgPool, table: &TableRef, dataset: &Dataset) -> Result<Vec<DatasetBatch>, StoreError> {
    let columns = table.columns(pool).await?;
    let (first, last) = (dataset.receipts[0].first_key, dataset.receipts[dataset.receipts.len() - 1].last_key);
    let rows = table.canonical_rows(pool, first.saturating_sub(1), last).await?;
    let mut rows = rows.into_iter().peekable();
    let mut out = Vec::with_capacity(dataset.receipts.len());
    for (index, receipt) in dataset.receipts.iter().enumerate() {
        let mut batch = Vec::new();
        while let Some((key, _)) = rows.peek() {
            if *key > receipt.last_key {
                break;
            }
            let (key, line) = rows.next().expect("peeked");
            if key >= receipt.first_key {
                batch.push(BatchRow { key, line });
            }
        }
        out.push(dataset.batch(index, columns.clone(), batch));
    }
    Ok(out)
}
