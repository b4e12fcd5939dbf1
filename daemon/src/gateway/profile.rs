//! The traffic profile (seed 001, Algorithm 4, run at the gateway): each device's feature vector
//! is (time between readings, payload size). The model learns the mean of both over the first
//! `learn` readings; afterwards a reading is outside the profile when the recent rate exceeds the
//! learned one by `rate_factor` — a device flooding to drain its battery or the network — or its
//! payload is `size_factor` times the learned size. Readings inside the profile keep refining the
//! model slowly, so a drift is followed and a burst is not learned.

use std::time::Instant;

/// The thresholds `t` of Algorithm 4.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Readings to learn from first.
    pub learn: u32,
    /// Rate factor that counts as a discrepancy.
    pub rate_factor: f64,
    /// Size factor that counts as a discrepancy.
    pub size_factor: f64,
}

/// The verdict on one reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Still learning this device.
    Learning,
    /// Inside the profile (`traffic_proven`).
    Normal,
    /// Outside it: why.
    Outlier(String),
}

/// One device's model.
#[derive(Debug, Clone, Default)]
pub struct DeviceProfile {
    seen: u32,
    last: Option<Instant>,
    mean_gap: f64,
    mean_size: f64,
    recent_gap: f64,
}

/// Weight of a new gap in the short-term average (about the last five readings).
const RECENT: f64 = 0.3;
/// Weight of a normal reading in the long-term model.
const DRIFT: f64 = 0.02;

impl DeviceProfile {
    /// Judges a reading of `size` bytes arriving at `now`, and learns from it if it is normal.
    pub fn observe(&mut self, t: &Thresholds, size: usize, now: Instant) -> Verdict {
        let size = size as f64;
        let gap = self.last.map(|at| now.duration_since(at).as_secs_f64());
        self.last = Some(now);
        self.seen += 1;
        if self.seen <= t.learn {
            let n = f64::from(self.seen);
            self.mean_size += (size - self.mean_size) / n;
            if let Some(gap) = gap {
                self.mean_gap += (gap - self.mean_gap) / (n - 1.0);
                self.recent_gap = self.mean_gap;
            }
            return Verdict::Learning;
        }
        let gap = gap.unwrap_or(self.mean_gap);
        self.recent_gap += RECENT * (gap - self.recent_gap);
        let rate = self.mean_gap / self.recent_gap.max(1e-6);
        let verdict = if rate > t.rate_factor {
            Verdict::Outlier(format!("rate {rate:.1}x the learned rate (limit {}x)", t.rate_factor))
        } else if size > self.mean_size * t.size_factor {
            Verdict::Outlier(format!(
                "payload {size} bytes, {:.1}x the learned size (limit {}x)",
                size / self.mean_size,
                t.size_factor
            ))
        } else {
            Verdict::Normal
        };
        if verdict == Verdict::Normal {
            self.mean_gap += DRIFT * (gap - self.mean_gap);
            self.mean_size += DRIFT * (size - self.mean_size);
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const T: Thresholds = Thresholds { learn: 10, rate_factor: 4.0, size_factor: 4.0 };

    #[test]
    fn a_steady_device_is_normal_a_flood_and_a_bloat_are_not() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = DeviceProfile::default();
        let mut ms = 0;
        for _ in 0..10 {
            assert_eq!(p.observe(&T, 100, at(ms)), Verdict::Learning);
            ms += 1000;
        }
        // Jitter of ±30 % is normal.
        for k in 0..30u64 {
            ms += if k % 2 == 0 { 700 } else { 1300 };
            assert_eq!(p.observe(&T, 100 + (k % 7) as usize, at(ms)), Verdict::Normal, "reading {k}");
        }
        // One early reading does not make a flood.
        ms += 300;
        assert_eq!(p.observe(&T, 100, at(ms)), Verdict::Normal);
        ms += 1000;
        p.observe(&T, 100, at(ms));
        // A flood: a reading every 20 ms is flagged within a few readings, and stays flagged.
        let mut flagged = 0;
        for _ in 0..20 {
            ms += 20;
            if matches!(p.observe(&T, 100, at(ms)), Verdict::Outlier(ref why) if why.contains("rate")) {
                flagged += 1;
            }
        }
        assert!(flagged >= 15, "flagged {flagged} of 20");
        // After the flood the device calms down and is normal again: the flood was not learned.
        for _ in 0..10 {
            ms += 1000;
            p.observe(&T, 100, at(ms));
        }
        ms += 1000;
        assert_eq!(p.observe(&T, 100, at(ms)), Verdict::Normal);
        // A payload five times the usual size.
        ms += 1000;
        assert!(matches!(p.observe(&T, 500, at(ms)), Verdict::Outlier(ref why) if why.contains("payload")));
    }
}
