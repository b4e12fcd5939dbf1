//! The worker's whole step 10–11 (paper §5.2.1): verify every batch of a job's dataset, in order,
//! against h_S and the chain ([`crate::dataset::Verifier`]), and only then train the spec's model
//! on exactly the text it verified. One procedure for `iotegrity market train` and
//! `iotegrityd worker`.

use super::{DataError, Examples, LinearModel, ModelError};
use crate::anchors::TableHistory;
use crate::dataset::{BatchError, DatasetBatch, Verifier};
use crate::job_spec::JobSpec;
use std::time::{Duration, Instant};

/// A model trained on verified batches.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The model.
    pub model: LinearModel,
    /// Its canonical file (keccak256 = the h_W to report).
    pub file: Vec<u8>,
    /// Rows trained on.
    pub rows: usize,
    /// R² on its own training rows.
    pub fit_r2: f64,
    /// Time spent fitting.
    pub took: Duration,
}

/// Why nothing was trained.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// The batch at `position` (0-based, in the order given; the count for a missing one) does
    /// not verify: nothing is trained on data that cannot be proved.
    #[error("{error}")]
    Batch {
        /// Where in the sequence.
        position: u32,
        /// Why.
        error: BatchError,
    },
    /// Batch `index` names other columns than batch 0.
    #[error("batch {0}: its columns are not batch 0's")]
    Columns(u32),
    /// The verified rows cannot be read as the spec's examples.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The solver failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Verifies `batches` (all of the spec's dataset, in order) against `history` — the spec owner's
/// anchors of the table, from the chain — then trains the spec's model.
pub fn train_verified(spec: &JobSpec, history: &TableHistory, batches: &[DatasetBatch]) -> Result<Trained, TrainError> {
    let mut verifier = Verifier::new(&spec.dataset, history);
    let refused = |position: usize, error| TrainError::Batch { position: position as u32, error };
    for (position, batch) in batches.iter().enumerate() {
        verifier.verify(batch).map_err(|e| refused(position, e))?;
        if batch.columns != batches[0].columns {
            return Err(TrainError::Columns(batch.index));
        }
    }
    verifier.finish().map_err(|e| refused(batches.len(), e))?;
    let started = Instant::now();
    let examples = Examples::from_rows(spec, &batches[0].columns, batches.iter().flat_map(|b| &b.rows))?;
    let model = LinearModel::train(&spec.features, &spec.label, &examples)?;
    let took = started.elapsed();
    let fit_r2 = model.r2(&examples)?;
    Ok(Trained { file: model.to_safetensors(), model, rows: examples.len(), fit_r2, took })
}
