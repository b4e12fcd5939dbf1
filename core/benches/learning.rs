//! Federated-learning measurements for docs/benchmarks.md (`make bench`): the fixed-point FedAvg
//! kernel (`fedavg::fixed_point_mean`) against a plain f64 example-weighted sum of the same tensors
//! (parameters per second, one core, in memory), whole-file aggregation of the diabetes models, and
//! the federated model's held-out R² against central training. Prints one line per figure.

use iotegrity_core::learning::fedavg::{PROXIMAL_MU, aggregate, fixed_point_mean};
use iotegrity_core::learning::{LinearModel, diabetes};
use std::hint::black_box;
use std::time::Duration;

mod common;
use common::rate;

fn plain_mean(inputs: &[(u64, &[f64])]) -> Vec<f64> {
    let mut sums = vec![0.0f64; inputs[0].1.len()];
    let mut total = 0.0;
    for &(n, p) in inputs {
        let n = n as f64;
        total += n;
        for (s, v) in sums.iter_mut().zip(p) {
            *s += n * v;
        }
    }
    sums.iter().map(|s| s / total).collect()
}

fn main() {
    let window = Duration::from_secs(2);
    // Ten models of 100 000 parameters each (values like a trained model's, spread over ±1000).
    let (models, params) = (10usize, 100_000usize);
    let tensors: Vec<Vec<f64>> = (0..models)
        .map(|m| (0..params).map(|j| ((j * 7919 + m * 104_729) % 200_003) as f64 / 100.0 - 1000.0).collect())
        .collect();
    let inputs: Vec<(u64, &[f64])> =
        tensors.iter().enumerate().map(|(m, t)| (100 + m as u64 * 13, t.as_slice())).collect();
    let fixed = rate(window, models * params, || {
        black_box(fixed_point_mean(black_box(&inputs)).unwrap());
    });
    let plain = rate(window, models * params, || {
        black_box(plain_mean(black_box(&inputs)));
    });
    println!("fedavg fixed-point kernel: {fixed:.0} parameters/s");
    println!("plain f64 weighted sum:    {plain:.0} parameters/s");
    println!("ratio fixed / plain:       {:.2} (goal >= 0.5)", fixed / plain);

    // Whole-file aggregation of three diabetes models (parse, check, aggregate, 11 parameters).
    let shards = diabetes::shards_by_age(0..360, 3);
    let (features, label, held_out) = diabetes::examples(360..441);
    let zero = LinearModel {
        features: features.clone(),
        label: label.clone(),
        weights: vec![0.0; 10],
        intercept: 0.0,
        examples: 0,
    };
    let files: Vec<Vec<u8>> =
        shards.iter().map(|s| LinearModel::train_from(&zero, s, PROXIMAL_MU).unwrap().to_safetensors()).collect();
    let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    let per_sec = rate(window, 1, || {
        black_box(aggregate(&features, &label, black_box(&refs)).unwrap());
    });
    println!("aggregate 3 diabetes model files: {:.1} µs", 1e6 / per_sec);

    // Three non-IID participants (age bands), rounds from a zero model, against OLS on the union.
    let (_, _, union) = diabetes::examples(0..360);
    let central = LinearModel::train(&features, &label, &union).unwrap().r2(&held_out).unwrap();
    let mut global = zero;
    for round in 1..=5 {
        let files: Vec<Vec<u8>> =
            shards.iter().map(|s| LinearModel::train_from(&global, s, PROXIMAL_MU).unwrap().to_safetensors()).collect();
        global = aggregate(&features, &label, &files.iter().map(Vec::as_slice).collect::<Vec<_>>()).unwrap().model;
        let r2 = global.r2(&held_out).unwrap();
        println!("round {round}: federated R² {r2:.4}, central {central:.4}, ratio {:.3}", r2 / central);
    }
}
