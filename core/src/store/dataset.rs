//! A job's dataset as the service's store holds it: the receipts that make it
//! ([`crate::dataset::Dataset::select`]) and its batches with the rows' canonical text, read in one
//! COPY. The store is not evidence: whoever offers or evaluates a job checks these batches with
//! [`crate::dataset::Verifier`] against the chain, as the worker does.

use super::StoreError;
use super::receipts::load_receipts;
use super::table::TableRef;
use crate::dataset::{BatchRow, Dataset, DatasetBatch, DatasetError};
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
}

/// The dataset of the anchored sub-tables of `table` that lie wholly inside `first..=last`.
pub async fn select(pool: &PgPool, table: &TableRef, first: i64, last: i64) -> Result<Dataset, SelectError> {
    let receipts = load_receipts(pool, &table.name()).await?;
    Ok(Dataset::select(&table.name(), &receipts, first, last)?)
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
