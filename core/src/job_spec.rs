//! The job spec (paper §5.1 step 2): the machine-checkable offer a job commits to on chain —
//! its keccak256 is the job's `paramHash`, so the dataset, the model, the metric and the target are
//! fixed when the reward is escrowed. Format: docs/market.md, "The job spec".

use crate::dataset::DatasetRef;
use alloy::primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

/// The spec format this build reads.
pub const SPEC_VERSION: u32 = 1;

/// What the model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Predict a real-valued label.
    Regression,
}

/// The model the worker trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Ordinary least squares with an intercept.
    LinearRegression,
}

/// How the service scores a delivered model on its held-out rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Coefficient of determination, 1 − SS_res / SS_tot; the model passes at R² ≥ target.
    R2,
}

/// A job's spec, as the file whose keccak256 is the job's `paramHash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// [`SPEC_VERSION`].
    pub version: u32,
    /// What is learnt.
    pub task: Task,
    /// The rows the worker trains on; its `root` is the job's root h_S.
    pub dataset: DatasetRef,
    /// Feature columns, by name, in the order the model's weights follow.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// The model to train.
    pub model: ModelKind,
    /// The score the service computes on the held-out rows.
    pub metric: Metric,
    /// The model passes iff its score on the held-out rows is at least this.
    pub target: f64,
    /// The service's held-out rows: anchored sub-tables of the same table, disjoint from the
    /// dataset, committed by their root, so a notary (or the worker, after the verdict) can check
    /// the evaluation on rows the chain vouches for. The worker never receives them.
    pub holdout: DatasetRef,
}

/// Why a spec file is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Not JSON of the spec's shape.
    #[error("not a job spec: {0}")]
    Malformed(String),
    /// A rule of docs/market.md is broken.
    #[error("invalid job spec: {0}")]
    Invalid(String),
    /// The file is not the one the job committed to.
    #[error("the spec's keccak256 is {actual}, the job's paramHash is {expected}: not this job's spec")]
    WrongHash {
        /// The job's paramHash.
        expected: B256,
        /// keccak256 of the file.
        actual: B256,
    },
}

impl JobSpec {
    /// Parses and validates a spec file.
    pub fn parse(bytes: &[u8]) -> Result<Self, SpecError> {
        let spec: Self = serde_json::from_slice(bytes).map_err(|e| SpecError::Malformed(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses a spec file and checks that it is the one behind `param_hash`.
    pub fn parse_for(bytes: &[u8], param_hash: B256) -> Result<Self, SpecError> {
        let actual = param_hash_of(bytes);
        if actual != param_hash {
            return Err(SpecError::WrongHash { expected: param_hash, actual });
        }
        Self::parse(bytes)
    }

    /// The spec as the file a service publishes (pretty JSON with a final newline); its keccak256
    /// is the job's `paramHash`.
    pub fn to_file(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a spec serialises");
        out.push(b'\n');
        out
    }

    /// Checks the rules of docs/market.md.
    pub fn validate(&self) -> Result<(), SpecError> {
        let invalid = |why: String| Err(SpecError::Invalid(why));
        if self.version != SPEC_VERSION {
            return invalid(format!("version {} (this build reads version {SPEC_VERSION})", self.version));
        }
        if self.features.is_empty() {
            return invalid("no feature columns".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for name in self.features.iter().chain(std::iter::once(&self.label)) {
            if name.is_empty() {
                return invalid("an empty column name".into());
            }
            if !seen.insert(name) {
                return invalid(format!("column {name:?} is named twice (the label cannot be a feature)"));
            }
        }
        if !self.target.is_finite() {
            return invalid("the target is not a finite number".into());
        }
        if self.metric == Metric::R2 && self.target > 1.0 {
            return invalid(format!("R² is at most 1, the target is {}", self.target));
        }
        for (what, d) in [("dataset", &self.dataset), ("holdout", &self.holdout)] {
            if d.sub_tables == 0 || d.first_key > d.last_key || d.root == B256::ZERO {
                return invalid(format!("the {what} range is empty or has no root"));
            }
        }
        let (d, h) = (&self.dataset, &self.holdout);
        if h.table != d.table || h.owner != d.owner {
            return invalid("the holdout must be rows of the dataset's table, anchored by the same owner".into());
        }
        if h.first_key <= d.last_key && d.first_key <= h.last_key {
            return invalid(format!(
                "the holdout keys {}..={} overlap the dataset keys {}..={}",
                h.first_key, h.last_key, d.first_key, d.last_key
            ));
        }
        Ok(())
    }

    /// The columns the model reads, features then label.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(String::as_str).chain(std::iter::once(self.label.as_str()))
    }

    /// Whether a score meets the target.
    pub fn passes(&self, score: f64) -> bool {
        score >= self.target
    }
}

/// A job's `paramHash`: keccak256 of the spec file's bytes, exactly as published.
pub fn param_hash_of(bytes: &[u8]) -> B256 {
    keccak256(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;

    fn range(first: i64, last: i64, root: u8) -> DatasetRef {
        DatasetRef {
            table: "public.diabetes".into(),
            owner: Address::repeat_byte(7),
            first_key: first,
            last_key: last,
            sub_tables: 4,
            root: B256::repeat_byte(root),
        }
    }

    fn spec() -> JobSpec {
        JobSpec {
            version: SPEC_VERSION,
            task: Task::Regression,
            dataset: range(1, 360, 1),
            features: vec!["age".into(), "bmi".into()],
            label: "target".into(),
            model: ModelKind::LinearRegression,
            metric: Metric::R2,
            target: 0.3,
            holdout: range(361, 441, 2),
        }
    }

    #[test]
    fn a_spec_file_round_trips_and_its_hash_is_the_param_hash() {
        let file = spec().to_file();
        let hash = param_hash_of(&file);
        assert_eq!(JobSpec::parse_for(&file, hash).unwrap(), spec());
        let text = String::from_utf8(file.clone()).unwrap();
        for field in
            ["\"task\": \"regression\"", "\"model\": \"linear-regression\"", "\"metric\": \"r2\"", "\"firstKey\": 1"]
        {
            assert!(text.contains(field), "{field} in {text}");
        }
        // One changed byte is another spec.
        let mut other = file.clone();
        let at = text.find("0.3").unwrap();
        other[at + 2] = b'4';
        assert_eq!(
            JobSpec::parse_for(&other, hash),
            Err(SpecError::WrongHash { expected: hash, actual: param_hash_of(&other) })
        );
        assert_eq!(JobSpec::parse(&other).unwrap().target, 0.4);
    }

    #[test]
    fn specs_that_break_a_rule_are_refused_by_name() {
        type Edit = Box<dyn Fn(&mut JobSpec)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|s| s.version = 2), "version 2"),
            (Box::new(|s| s.features.clear()), "no feature columns"),
            (Box::new(|s| s.label = "age".into()), "\"age\" is named twice"),
            (Box::new(|s| s.features.push(String::new())), "empty column name"),
            (Box::new(|s| s.target = f64::NAN), "not a finite number"),
            (Box::new(|s| s.target = 1.5), "R² is at most 1"),
            (Box::new(|s| s.holdout = range(300, 441, 2)), "overlap the dataset keys 1..=360"),
            (Box::new(|s| s.holdout.table = "public.other".into()), "rows of the dataset's table"),
            (Box::new(|s| s.holdout.owner = Address::ZERO), "same owner"),
            (Box::new(|s| s.dataset.sub_tables = 0), "dataset range is empty"),
            (Box::new(|s| s.holdout.root = B256::ZERO), "holdout range is empty or has no root"),
        ];
        for (break_it, expected) in cases {
            let mut s = spec();
            break_it(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
        }
    }

    #[test]
    fn unknown_fields_kinds_and_garbage_are_malformed() {
        let text = String::from_utf8(spec().to_file()).unwrap();
        for bad in [
            text.replace("\"label\"", "\"lable\""),
            text.replace("linear-regression", "deep-net"),
            text.replace("\"r2\"", "\"accuracy\""),
            "{".to_string(),
            String::new(),
        ] {
            assert!(
                matches!(JobSpec::parse(bad.as_bytes()), Err(SpecError::Malformed(_))),
                "{bad:?} should be malformed"
            );
        }
    }
}
