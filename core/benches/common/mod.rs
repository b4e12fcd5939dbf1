//! What every benchmark of this crate shares: the timing loop.

use std::time::{Duration, Instant};

/// Runs `f` repeatedly for at least `min` and returns operations per second (`ops` per call).
pub(crate) fn rate(min: Duration, ops: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut calls = 0usize;
    while start.elapsed() < min {
        f();
        calls += 1;
    }
    (calls * ops) as f64 / start.elapsed().as_secs_f64()
}
