//! Training and scoring models on dataset rows (feature `learning`), shared by the job market's
//! worker and service and by federated learning: rows in their canonical `COPY` text become
//! examples ([`examples`]), a model is trained (centrally, or locally from a global model),
//! stored as a canonical safetensors file and scored ([`model`]); [`fedavg`] aggregates a round's
//! local models into the same bytes for everyone; [`diabetes`] is the public table the tests and
//! the demo train on. Formats: docs/market.md, "Training and the model file"; docs/learning.md.

pub mod diabetes;
pub mod examples;
pub mod fedavg;
pub mod model;
pub mod train;

pub use examples::{DataError, Examples};
pub use model::{LinearModel, ModelError};
pub use train::{TrainError, Trained, train_verified};
