//! Training and scoring models on dataset rows (feature `learning`), shared by the job market's
//! worker and service and, later, federated learning: rows in their canonical `COPY` text become
//! examples ([`examples`]), a model is trained, stored as a canonical safetensors file and scored
//! ([`model`]); [`diabetes`] is the public table the tests and the demo train on. Formats:
//! docs/market.md, "Training and the model file".

pub mod diabetes;
pub mod examples;
pub mod model;
pub mod train;

pub use examples::{DataError, Examples};
pub use model::{LinearModel, ModelError};
pub use train::{TrainError, Trained, train_verified};
