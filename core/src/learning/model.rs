//! Linear regression: trained with linfa's ordinary least squares (pure Rust, no BLAS), scored by
//! R², and stored as a canonical safetensors file — the bytes whose keccak256 the worker reports on
//! chain (`h_W`), so one model has one hash.
//!
//! The file: tensors `intercept` (F64, `[1]`) and `weights` (F64, `[features]`, in the spec's
//! feature order), little-endian, in name order (safetensors' own order for one dtype), and one
//! metadata entry `iotegrity`, a JSON object `{format, features, label, examples}`. One metadata
//! key keeps the header's bytes fixed (safetensors writes its metadata map in hash order).

use super::examples::Examples;
use linfa::prelude::{Fit, Predict};
use ndarray::{Array1, ArrayView1};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `format` of a linear model file.
pub const LINEAR_FORMAT: &str = "iotegrity-linear-regression/1";
const METADATA_KEY: &str = "iotegrity";

/// Why a model cannot be trained, read or scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The solver failed (e.g. fewer examples than parameters).
    #[error("training failed: {0}")]
    Training(String),
    /// The file is not a model of this format.
    #[error("not an iotegrity linear model file: {0}")]
    File(String),
    /// The examples do not fit the model.
    #[error("the model reads {model} features, the examples have {examples}")]
    Shape {
        /// The model's feature count.
        model: usize,
        /// The examples'.
        examples: usize,
    },
    /// R² is undefined when every label is the same.
    #[error("R² is undefined: all {0} labels are equal")]
    ConstantLabels(usize),
}

/// What the file's metadata says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    features: Vec<String>,
    label: String,
    examples: u64,
}

/// A trained linear model: `label ≈ intercept + Σ weights[i] · features[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// Feature columns, in the order of `weights`.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
    /// Examples it was trained on (FedAvg weighs by it).
    pub examples: u64,
}

impl LinearModel {
    /// Ordinary least squares with an intercept on `examples`.
    pub fn train(features: &[String], label: &str, examples: &Examples) -> Result<Self, ModelError> {
        if examples.x.ncols() != features.len() {
            return Err(ModelError::Shape { model: features.len(), examples: examples.x.ncols() });
        }
        if examples.len() <= features.len() {
            return Err(ModelError::Training(format!(
                "{} examples for {} parameters",
                examples.len(),
                features.len() + 1
            )));
        }
        let data = linfa::Dataset::new(examples.x.clone(), examples.y.clone());
        let fitted =
            linfa_linear::LinearRegression::new().fit(&data).map_err(|e| ModelError::Training(e.to_string()))?;
        let model = Self {
            features: features.to_vec(),
            label: label.to_string(),
            weights: fitted.params().to_vec(),
            intercept: fitted.intercept(),
            examples: examples.len() as u64,
        };
        if !model.weights.iter().chain([&model.intercept]).all(|v| v.is_finite()) {
            return Err(ModelError::Training("the solution is not finite (collinear features?)".into()));
        }
        // linfa's prediction and ours must agree: the file is what gets scored.
        debug_assert!({
            let theirs: Array1<f64> = fitted.predict(&examples.x);
            theirs.iter().zip(model.predict(examples)?.iter()).all(|(a, b)| (a - b).abs() <= 1e-9 * (1.0 + a.abs()))
        });
        Ok(model)
    }

    /// A participant's local training in a federated round: least squares pulled toward the
    /// round's `global` model — FedProx's proximal step (Li et al. 2020) solved exactly: θ
    /// minimises Σ (y − θ₀ − x·θ)² + μ·n·‖θ − θ_global‖² over the intercept θ₀ and the weights,
    /// with n the local example count. μ = 0 is plain OLS; a larger μ keeps a participant with
    /// skewed data nearer the consensus.
    pub fn train_from(global: &LinearModel, examples: &Examples, mu: f64) -> Result<Self, ModelError> {
        let (n, p) = (examples.len(), global.weights.len());
        if examples.x.ncols() != p {
            return Err(ModelError::Shape { model: p, examples: examples.x.ncols() });
        }
        if !(mu.is_finite() && mu >= 0.0) {
            return Err(ModelError::Training(format!("μ = {mu} is not a finite non-negative number")));
        }
        // The data rows with a column of ones, then one row √(μn)·e_j per parameter.
        let k = (mu * n as f64).sqrt();
        let mut x = ndarray::Array2::<f64>::zeros((n + p + 1, p + 1));
        let mut y = Array1::<f64>::zeros(n + p + 1);
        for i in 0..n {
            x[[i, 0]] = 1.0;
            for j in 0..p {
                x[[i, j + 1]] = examples.x[[i, j]];
            }
            y[i] = examples.y[i];
        }
        let centre = std::iter::once(global.intercept).chain(global.weights.iter().copied());
        for (j, c) in centre.enumerate() {
            x[[n + j, j]] = k;
            y[n + j] = k * c;
        }
        let data = linfa::Dataset::new(x, y);
        let fitted = linfa_linear::LinearRegression::new()
            .with_intercept(false)
            .fit(&data)
            .map_err(|e| ModelError::Training(e.to_string()))?;
        let theta = fitted.params();
        let model = Self {
            features: global.features.clone(),
            label: global.label.clone(),
            intercept: theta[0],
            weights: theta.iter().skip(1).copied().collect(),
            examples: n as u64,
        };
        if !model.weights.iter().chain([&model.intercept]).all(|v| v.is_finite()) {
            return Err(ModelError::Training("the solution is not finite".into()));
        }
        Ok(model)
    }

    /// Predictions for `examples`.
    pub fn predict(&self, examples: &Examples) -> Result<Array1<f64>, ModelError> {
        if examples.x.ncols() != self.weights.len() {
            return Err(ModelError::Shape { model: self.weights.len(), examples: examples.x.ncols() });
        }
        Ok(examples.x.dot(&ArrayView1::from(&self.weights[..])) + self.intercept)
    }

    /// R² = 1 − SS_res / SS_tot on `examples`.
    pub fn r2(&self, examples: &Examples) -> Result<f64, ModelError> {
        let predicted = self.predict(examples)?;
        let mean = examples.y.mean().expect("examples are never empty");
        let ss_tot: f64 = examples.y.iter().map(|y| (y - mean).powi(2)).sum();
        if ss_tot == 0.0 {
            return Err(ModelError::ConstantLabels(examples.len()));
        }
        let ss_res: f64 = examples.y.iter().zip(predicted.iter()).map(|(y, p)| (y - p).powi(2)).sum();
        Ok(1.0 - ss_res / ss_tot)
    }

    /// The model file (canonical bytes: one model, one hash).
    pub fn to_safetensors(&self) -> Vec<u8> {
        let header = Header {
            format: LINEAR_FORMAT.into(),
            features: self.features.clone(),
            label: self.label.clone(),
            examples: self.examples,
        };
        let weights: Vec<u8> = self.weights.iter().flat_map(|w| w.to_le_bytes()).collect();
        let intercept = self.intercept.to_le_bytes();
        let tensors = [
            ("intercept", TensorView::new(Dtype::F64, vec![1], &intercept).expect("8 bytes for [1]")),
            ("weights", TensorView::new(Dtype::F64, vec![self.weights.len()], &weights).expect("8 bytes per weight")),
        ];
        let metadata = HashMap::from([(METADATA_KEY.to_string(), serde_json::to_string(&header).expect("serialises"))]);
        safetensors::serialize(tensors, Some(metadata)).expect("a small model serialises")
    }

    /// Reads a model file, refusing anything but this format with finite values.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, ModelError> {
        let bad = |why: String| ModelError::File(why);
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let header = meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| bad(format!("no {METADATA_KEY:?} metadata")))?;
        let header: Header = serde_json::from_str(header).map_err(|e| bad(format!("metadata: {e}")))?;
        if header.format != LINEAR_FORMAT {
            return Err(bad(format!("format {:?}, expected {LINEAR_FORMAT:?}", header.format)));
        }
        let file = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut names = file.names();
        names.sort_unstable();
        if names != ["intercept", "weights"] {
            return Err(bad(format!("tensors {names:?}, expected intercept and weights")));
        }
        let read = |name: &str, len: usize| -> Result<Vec<f64>, ModelError> {
            let t = file.tensor(name).map_err(|e| bad(e.to_string()))?;
            if t.dtype() != Dtype::F64 || t.shape() != [len] {
                return Err(bad(format!("{name} is {:?} {:?}, expected F64 [{len}]", t.dtype(), t.shape())));
            }
            let values: Vec<f64> =
                t.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(bad(format!("{name} holds a value that is not finite")));
            }
            Ok(values)
        };
        let weights = read("weights", header.features.len())?;
        let intercept = read("intercept", 1)?[0];
        Ok(Self { features: header.features, label: header.label, weights, intercept, examples: header.examples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning::diabetes;

    #[test]
    fn ols_recovers_a_known_plane_and_scores_it_perfectly() {
        // y = 3 + 2a − b on a small grid (exact data: OLS must find the plane).
        let x = ndarray::Array2::from_shape_fn((12, 2), |(i, j)| if j == 0 { i as f64 } else { (i * i % 7) as f64 });
        let y = x.column(0).mapv(|a| 3.0 + 2.0 * a) - x.column(1);
        let ex = Examples { x, y };
        let names = ["a".to_string(), "b".to_string()];
        let m = LinearModel::train(&names, "y", &ex).unwrap();
        assert!((m.weights[0] - 2.0).abs() < 1e-9 && (m.weights[1] + 1.0).abs() < 1e-9, "{:?}", m.weights);
        assert!((m.intercept - 3.0).abs() < 1e-9);
        assert!((m.r2(&ex).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(m.examples, 12);
        // A model that predicts the mean scores 0; one that predicts worse scores below.
        let mean = LinearModel { weights: vec![0.0, 0.0], intercept: ex.y.mean().unwrap(), ..m.clone() };
        assert!(mean.r2(&ex).unwrap().abs() < 1e-12);
        let bad = LinearModel { weights: vec![-2.0, 1.0], ..m.clone() };
        assert!(bad.r2(&ex).unwrap() < 0.0);
    }

    #[test]
    fn local_training_is_ols_without_the_pull_and_stays_near_the_global_model_with_it() {
        let (features, label, examples) = diabetes::examples(0..200);
        let ols = LinearModel::train(&features, &label, &examples).unwrap();
        let zero = LinearModel { weights: vec![0.0; 10], intercept: 0.0, examples: 0, ..ols.clone() };
        let free = LinearModel::train_from(&zero, &examples, 0.0).unwrap();
        assert!((free.intercept - ols.intercept).abs() < 1e-6 * ols.intercept.abs());
        for (a, b) in free.weights.iter().zip(&ols.weights) {
            assert!((a - b).abs() < 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
        assert_eq!(free.examples, 200);
        // A strong pull keeps it close to the global model; a weak one lets the data speak.
        let far = |m: &LinearModel| m.weights.iter().map(|w| w * w).sum::<f64>().sqrt();
        let pulled = LinearModel::train_from(&zero, &examples, 10.0).unwrap();
        let loose = LinearModel::train_from(&zero, &examples, 1e-3).unwrap();
        assert!(far(&pulled) < 0.1 * far(&loose), "{} vs {}", far(&pulled), far(&loose));
        assert!(LinearModel::train_from(&zero, &examples, f64::NAN).is_err());
        let (_, _, wrong) = diabetes::examples(0..20);
        let narrow = LinearModel { weights: vec![0.0; 3], ..zero };
        assert!(matches!(LinearModel::train_from(&narrow, &wrong, 0.1), Err(ModelError::Shape { .. })));
    }

    #[test]
    fn the_model_file_is_canonical_and_round_trips() {
        let (features, label, ex) = diabetes::examples(0..300);
        let m = LinearModel::train(&features, &label, &ex).unwrap();
        let file = m.to_safetensors();
        assert_eq!(file, m.to_safetensors(), "one model, one file");
        assert_eq!(file, LinearModel::train(&features, &label, &ex).unwrap().to_safetensors());
        assert_eq!(LinearModel::from_safetensors(&file).unwrap(), m);
        // Another tool reads it as an ordinary safetensors file.
        let st = SafeTensors::deserialize(&file).unwrap();
        assert_eq!(st.tensor("weights").unwrap().shape(), [10]);
    }

    #[test]
    fn files_that_are_not_our_models_are_refused_by_name() {
        let m = LinearModel {
            features: vec!["a".into(), "b".into()],
            label: "y".into(),
            weights: vec![1.0, 2.0],
            intercept: 0.5,
            examples: 3,
        };
        let file = m.to_safetensors();
        let text = |b: &[u8]| LinearModel::from_safetensors(b).unwrap_err().to_string();
        assert!(text(&file[..file.len() - 1]).contains("not an iotegrity linear model file"));
        assert!(text(b"garbage").contains("not an iotegrity"));
        let nan = LinearModel { intercept: f64::NAN, ..m.clone() }.to_safetensors();
        assert!(text(&nan).contains("intercept holds a value that is not finite"));
        let short = LinearModel { weights: vec![1.0], ..m.clone() }.to_safetensors();
        assert!(text(&short).contains("weights is F64 [1], expected F64 [2]"), "{}", text(&short));
        let other = safetensors::serialize(
            [("w", TensorView::new(Dtype::F32, vec![1], &[0u8; 4]).unwrap())],
            Some(HashMap::from([(METADATA_KEY.to_string(), "{}".to_string())])),
        )
        .unwrap();
        assert!(text(&other).contains("metadata"));
        let mut renamed = file.clone();
        let at = file.windows(LINEAR_FORMAT.len()).position(|w| w == LINEAR_FORMAT.as_bytes()).unwrap();
        renamed[at + LINEAR_FORMAT.len() - 1] = b'9';
        let err = text(&renamed);
        assert!(err.contains("format \"iotegrity-linear-regression/9\""), "{err}");
    }

    #[test]
    fn too_few_examples_and_constant_labels_are_errors_not_numbers() {
        let (features, label, ex) = diabetes::examples(0..10);
        assert!(matches!(LinearModel::train(&features, &label, &ex), Err(ModelError::Training(_))));
        let (_, _, ex) = diabetes::examples(0..100);
        let m = LinearModel::train(&features, &label, &ex).unwrap();
        let flat = Examples { y: ndarray::Array1::from_elem(ex.len(), 1.0), ..ex };
        assert_eq!(m.r2(&flat), Err(ModelError::ConstantLabels(100)));
    }
}
