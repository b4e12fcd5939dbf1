//! Deterministic FedAvg (McMahan et al. 2017) over linear model files (docs/learning.md,
//! "Aggregation"): every participant that aggregates the same local model files gets the same
//! global model file, byte for byte, whatever the order the files arrived in and whatever the
//! machine. Each parameter `v` of a model trained on `n` examples becomes the integer
//! `t = round_half_even(v · n · 2^24)` — one IEEE-754 multiplication (`n · 2^24` is exact), so the
//! same bits everywhere — the `t` of all models are summed in 64-bit integers (order-free), and the
//! sum is divided by the total example count rounding toward −∞; the result, in units of 2^−24, is
//! exact as f64 again.
//!
//! A file that is not a valid model of the training (unreadable, other features or label, no
//! examples, a parameter with `|v| · n ≥ 2^27`) is left out — by everyone alike, since validity
//! depends on the bytes alone — and named in [`Aggregate::left_out`].

use super::model::LinearModel;

/// Fractional bits of the fixed-point parameters (a resolution of 6·10^−8).
pub const FRACTION_BITS: i32 = 24;
/// The bound on `|parameter| · examples` of a local model (each term stays below 2^51).
pub const MAX_WEIGHTED_PARAMETER: f64 = 134_217_728.0; // 2^27
/// Most models in one aggregation (their terms' sum stays below 2^62).
pub const MAX_MODELS: usize = 2048;
/// The proximal weight μ of [`LinearModel::train_from`] for the diabetes table's scaled features
/// (each column of unit norm over the table): the tests and the demo train with it.
pub const PROXIMAL_MU: f64 = 1e-3;

/// 1.5 · 2^52: adding it rounds any |x| < 2^51 to an integer (ties to even) whose value is the
/// difference of the bit patterns.
const MAGIC: f64 = 6_755_399_441_055_744.0;
const TERM_LIMIT: f64 = 2_251_799_813_685_248.0; // 2^51

/// The global model and what went into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    /// The global model; its `examples` is the total of the models used.
    pub model: LinearModel,
    /// Indices (into the input) of the models aggregated.
    pub used: Vec<usize>,
    /// Indices of the files left out, with the reason.
    pub left_out: Vec<(usize, String)>,
}

/// Why no global model can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregateError {
    /// Every input was left out (or there was none).
    #[error("no valid local model to aggregate ({} left out)", left_out.len())]
    NothingToAggregate {
        /// The files left out (index, reason).
        left_out: Vec<(usize, String)>,
    },
    /// More than [`MAX_MODELS`] models, or more than 2^63 examples in all.
    #[error("more than {MAX_MODELS} models or 2^63 examples in one aggregation")]
    TooMany,
}

/// Adds model `params` (trained on `n` examples) to `sums` under the fixed-point rule; false (and
/// `sums` unusable) if a term reaches 2^51. Written to vectorise: one multiply, one add, a
/// bit-pattern difference and a range flag per parameter.
fn add_terms(sums: &mut [i64], n: u64, params: &[f64]) -> bool {
    let scale = n as f64 * 2f64.powi(FRACTION_BITS); // exact for n < 2^53
    let magic = MAGIC.to_bits() as i64;
    let mut ok = true;
    for (s, &v) in sums.iter_mut().zip(params) {
        let x = v * scale;
        ok &= x.abs() < TERM_LIMIT; // false for NaN and infinities too
        *s = s.wrapping_add((x + MAGIC).to_bits() as i64 - magic);
    }
    ok && n < (1 << 53)
}

/// The arithmetic of [`aggregate`] on tensors in memory: the example-weighted mean of `inputs`
/// (each an example count and its parameters, all of one length) under the fixed-point rule.
/// `None` if a term is out of range, the lengths differ, there are more than [`MAX_MODELS`]
/// inputs, or no examples at all.
pub fn fixed_point_mean(inputs: &[(u64, &[f64])]) -> Option<Vec<f64>> {
    let len = inputs.first()?.1.len();
    if inputs.len() > MAX_MODELS {
        return None;
    }
    let mut sums = vec![0i64; len];
    let mut total: u64 = 0;
    for &(n, params) in inputs {
        if params.len() != len || !add_terms(&mut sums, n, params) {
            return None;
        }
        total = total.checked_add(n)?;
    }
    let total = i64::try_from(total).ok().filter(|&t| t > 0)?;
    let unit = 2f64.powi(-FRACTION_BITS);
    // |mean| < 2^51: exact as f64.
    Some(sums.iter().map(|s| s.div_euclid(total) as f64 * unit).collect())
}

fn in_range(n: u64, params: &[f64]) -> bool {
    params.iter().all(|v| (v.abs() * n as f64) < MAX_WEIGHTED_PARAMETER)
}

/// Aggregates the local model `files` of a round for the training whose global model reads
/// `features` and `label`.
pub fn aggregate(features: &[String], label: &str, files: &[&[u8]]) -> Result<Aggregate, AggregateError> {
    let mut used = Vec::new();
    let mut left_out = Vec::new();
    let mut params: Vec<(u64, Vec<f64>)> = Vec::new(); // the intercept first, then the weights
    for (i, file) in files.iter().enumerate() {
        let model = match LinearModel::from_safetensors(file) {
            Ok(m) if m.features != features || m.label != label => {
                left_out.push((i, "its features or label are not the training's".to_string()));
                continue;
            }
            Ok(m) if m.examples == 0 => {
                left_out.push((i, "it was trained on no examples".to_string()));
                continue;
            }
            Ok(m) => m,
            Err(e) => {
                left_out.push((i, e.to_string()));
                continue;
            }
        };
        let p: Vec<f64> = std::iter::once(model.intercept).chain(model.weights.iter().copied()).collect();
        if !in_range(model.examples, &p) {
            left_out.push((i, format!("a parameter times its example count is beyond ±{MAX_WEIGHTED_PARAMETER}")));
            continue;
        }
        params.push((model.examples, p));
        used.push(i);
    }
    if used.is_empty() {
        return Err(AggregateError::NothingToAggregate { left_out });
    }
    let total = params.iter().try_fold(0u64, |t, (n, _)| t.checked_add(*n)).ok_or(AggregateError::TooMany)?;
    let inputs: Vec<(u64, &[f64])> = params.iter().map(|(n, p)| (*n, p.as_slice())).collect();
    let mean = fixed_point_mean(&inputs).ok_or(AggregateError::TooMany)?;
    let model = LinearModel {
        features: features.to_vec(),
        label: label.to_string(),
        intercept: mean[0],
        weights: mean[1..].to_vec(),
        examples: total,
    };
    Ok(Aggregate { model, used, left_out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning::{Examples, diabetes};

    fn local(range: std::ops::Range<usize>) -> LinearModel {
        let (features, label, examples) = diabetes::examples(range);
        LinearModel::train(&features, &label, &examples).unwrap()
    }

    #[test]
    fn any_order_of_the_same_files_gives_the_same_bytes() {
        let models = [local(0..120), local(120..240), local(240..360), local(0..50)];
        let files: Vec<Vec<u8>> = models.iter().map(LinearModel::to_safetensors).collect();
        let (features, label) = (&models[0].features, &models[0].label);
        let reference = aggregate(features, label, &files.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap();
        let expected = reference.model.to_safetensors();
        // Every permutation of four (Heap's algorithm would do; 24 is few enough to list by index).
        let mut seen = 0;
        let mut naive = std::collections::HashSet::new();
        for a in 0..4 {
            for b in 0..4 {
                for c in 0..4 {
                    for d in 0..4 {
                        let order = [a, b, c, d];
                        if (0..4).any(|i| !order.contains(&i)) {
                            continue;
                        }
                        let input: Vec<&[u8]> = order.iter().map(|&i| files[i].as_slice()).collect();
                        let got = aggregate(features, label, &input).unwrap();
                        assert_eq!(got.model.to_safetensors(), expected, "order {order:?}");
                        seen += 1;
                        // A plain f64 weighted sum in arrival order, for contrast.
                        let n: f64 = order.iter().map(|&i| models[i].examples as f64).sum();
                        let w0: f64 =
                            order.iter().map(|&i| models[i].examples as f64 * models[i].weights[0]).sum::<f64>() / n;
                        naive.insert(w0.to_bits());
                    }
                }
            }
        }
        assert_eq!(seen, 24);
        assert!(naive.len() > 1, "these inputs are order-sensitive in plain f64 (else the test proves nothing)");
        assert_eq!(reference.model.examples, 410);
    }

    #[test]
    fn the_mean_is_weighted_by_example_counts_within_one_fixed_point_step() {
        let (a, b) = (local(0..300), local(300..400));
        let files = [a.to_safetensors(), b.to_safetensors()];
        let got = aggregate(&a.features, &a.label, &[&files[0], &files[1]]).unwrap().model;
        let step = 2f64.powi(-FRACTION_BITS);
        let want = (300.0 * a.intercept + 100.0 * b.intercept) / 400.0;
        assert!((got.intercept - want).abs() <= 2.0 * step, "{} vs {want}", got.intercept);
        for (i, w) in got.weights.iter().enumerate() {
            let want = (300.0 * a.weights[i] + 100.0 * b.weights[i]) / 400.0;
            assert!((w - want).abs() <= 2.0 * step, "weight {i}: {w} vs {want}");
        }
        // Exactly on the fixed-point grid.
        assert_eq!((got.intercept * 2f64.powi(FRACTION_BITS)).fract(), 0.0);
    }

    /// Three participants, each with patients of one age band (non-IID), three rounds from a zero
    /// model: the global model's R² on the held-out rows against OLS on the union of their rows.
    pub(crate) fn federated_vs_central(rounds: usize, mu: f64) -> (f64, f64) {
        let (features, label, held_out) = diabetes::examples(360..441);
        let (_, _, union) = diabetes::examples(0..360);
        let central = LinearModel::train(&features, &label, &union).unwrap().r2(&held_out).unwrap();
        let shards = diabetes::shards_by_age(0..360, 3);
        let mut global = LinearModel {
            features: features.clone(),
            label: label.clone(),
            weights: vec![0.0; features.len()],
            intercept: 0.0,
            examples: 0,
        };
        for _ in 0..rounds {
            let files: Vec<Vec<u8>> =
                shards.iter().map(|s| LinearModel::train_from(&global, s, mu).unwrap().to_safetensors()).collect();
            global = aggregate(&features, &label, &files.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap().model;
        }
        (global.r2(&held_out).unwrap(), central)
    }

    #[test]
    fn non_iid_participants_come_close_to_central_training_in_three_rounds() {
        let shards = diabetes::shards_by_age(0..360, 3);
        assert_eq!(shards.iter().map(Examples::len).collect::<Vec<_>>(), vec![120, 120, 120]);
        assert!(shards[0].x[[119, 0]] <= shards[1].x[[0, 0]], "age bands do not overlap");
        // μ for features scaled to unit column norm (docs/learning.md, "Local training").
        let (one, central) = federated_vs_central(1, PROXIMAL_MU);
        let (three, _) = federated_vs_central(3, PROXIMAL_MU);
        assert!(three / central >= 0.95, "federated R² {three:.4} vs central {central:.4}");
        assert!(three > one, "the rounds converge: {one:.4} after one, {three:.4} after three");
        // One-shot averaging of local OLS (μ = 0) does not improve with rounds, and ends below.
        let (plain, _) = federated_vs_central(3, 0.0);
        assert!(plain < three, "plain averaging {plain:.4} vs proximal {three:.4}");
    }

    #[test]
    fn invalid_files_are_left_out_by_everyone_and_named() {
        let good = local(0..200);
        let mut scaled = good.clone();
        scaled.weights[2] = 1e9; // a poisoned, scaled model
        let mut other = good.clone();
        other.label = "bmi".into();
        let empty = LinearModel { examples: 0, ..good.clone() };
        let files = [
            good.to_safetensors(),
            scaled.to_safetensors(),
            other.to_safetensors(),
            empty.to_safetensors(),
            b"junk".to_vec(),
        ];
        let input: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        let got = aggregate(&good.features, &good.label, &input).unwrap();
        assert_eq!(got.used, vec![0]);
        let reasons: Vec<&str> = got.left_out.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(got.left_out.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert!(reasons[0].contains("beyond"), "{reasons:?}");
        assert!(reasons[1].contains("label"), "{reasons:?}");
        assert!(reasons[2].contains("no examples"), "{reasons:?}");
        assert!(reasons[3].contains("not an iotegrity linear model"), "{reasons:?}");
        // One valid model: the global model is that model on the fixed-point grid.
        assert!((got.model.weights[0] - good.weights[0]).abs() <= 2.0 * 2f64.powi(-FRACTION_BITS));
        match aggregate(&good.features, &good.label, &input[1..]) {
            Err(AggregateError::NothingToAggregate { left_out }) => assert_eq!(left_out.len(), 4),
            other => panic!("{other:?}"),
        }
    }
}
