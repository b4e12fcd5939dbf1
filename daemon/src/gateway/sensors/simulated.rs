//! Simulated sensors for machines without hardware: deterministic from a seed, paced by the
//! sampling interval like real ones. The simulated meter writes real DSMR 5 telegrams (CRC
//! included) and reads them back through the same framer and parser as the P1 driver.

use super::bme280::Environment as EnvSample;
use super::dsmr::{MeterReading, Version, write_v5};
use super::p1::Telegrams;
use super::{Sensor, SensorError, payload};
use std::time::Duration;

/// SplitMix64: a tiny, well-known deterministic generator.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A simulated temperature/humidity/pressure sensor; may start flooding after a number of samples.
#[derive(Debug)]
pub struct Environment {
    rng: SplitMix,
    taken: u64,
    flood_after: Option<u64>,
}

/// The pause between samples of a flooding device.
const FLOOD_PAUSE: Duration = Duration::from_millis(2);

impl Environment {
    /// Seeded; floods after `flood_after` samples if given.
    pub fn new(seed: u64, flood_after: Option<u64>) -> Self {
        Self { rng: SplitMix::new(seed), taken: 0, flood_after }
    }

    /// The next sample's values (no waiting).
    pub fn sample(&mut self) -> EnvSample {
        self.taken += 1;
        EnvSample {
            kind: "simulated",
            temperature_centi_c: 1_800 + self.rng.below(800) as i32,
            pressure_pa: 100_000 + self.rng.below(3_000) as u32,
            humidity_milli_pct: 35_000 + self.rng.below(30_000) as u32,
        }
    }
}

impl Sensor for Environment {
    fn next(&mut self, interval: Duration) -> Result<Vec<u8>, SensorError> {
        let flooding = self.flood_after.is_some_and(|n| self.taken >= n);
        std::thread::sleep(if flooding { FLOOD_PAUSE } else { interval });
        Ok(payload(&self.sample()))
    }
}

/// A simulated DSMR 5 meter: its counters only go up, its telegrams carry a valid CRC unless the
/// "wire" corrupts every n-th one. Read through [`Telegrams`], as the P1 driver reads a UART.
#[derive(Debug)]
pub struct Meter {
    source: MeterSource,
    telegrams: Telegrams,
    wire: Vec<u8>,
}

/// What the simulated meter puts on the wire.
#[derive(Debug)]
pub struct MeterSource {
    rng: SplitMix,
    state: MeterReading,
    sent: u64,
    corrupt_every: Option<u64>,
}

impl MeterSource {
    /// Seeded; corrupts every `corrupt_every`-th telegram if given.
    pub fn new(seed: u64, corrupt_every: Option<u64>) -> Self {
        let mut rng = SplitMix::new(seed);
        let state = MeterReading {
            kind: "dsmr",
            delivered_wh: [1_000_000 + rng.below(1_000_000), 800_000 + rng.below(1_000_000)],
            returned_wh: [rng.below(100_000), 0],
            gas_dm3: Some(500_000 + rng.below(100_000)),
            ..Default::default()
        };
        Self { rng, state, sent: 0, corrupt_every }
    }

    /// The next telegram's bytes.
    pub fn telegram(&mut self) -> Vec<u8> {
        self.sent += 1;
        let s = &mut self.state;
        s.power_w = 150 + self.rng.below(3_000);
        let tariff = 1 + usize::from(self.sent.is_multiple_of(2));
        s.delivered_wh[tariff - 1] += s.power_w / 60 + 1;
        s.tariff = Some(tariff as u8);
        if let Some(g) = s.gas_dm3.as_mut() {
            *g += self.rng.below(3);
        }
        // A fixed calendar: one telegram per simulated minute from 2026-01-01 00:00 (winter time).
        let minute = self.sent;
        let time = format!("2601{:02}{:02}{:02}00W", 1 + (minute / 1440) % 28, (minute / 60) % 24, minute % 60);
        let mut bytes = write_v5("SIM5\\2SIMULATED-P1", "53494D554C41544544", &time, s);
        if self.corrupt_every.is_some_and(|n| n > 0 && self.sent.is_multiple_of(n)) {
            let at = bytes.iter().position(|&b| b == b'*').unwrap_or(1) - 1;
            bytes[at] = if bytes[at] == b'9' { b'0' } else { b'9' }; // one digit flipped on the wire
        }
        bytes
    }
}

impl Meter {
    /// Seeded; corrupts every `corrupt_every`-th telegram if given.
    pub fn new(seed: u64, corrupt_every: Option<u64>) -> Self {
        Self { source: MeterSource::new(seed, corrupt_every), telegrams: Telegrams::new(Version::V5), wire: Vec::new() }
    }
}

impl Sensor for Meter {
    fn next(&mut self, interval: Duration) -> Result<Vec<u8>, SensorError> {
        let Self { source, telegrams, wire } = self;
        telegrams.next(Duration::ZERO, |buf| {
            if wire.is_empty() {
                std::thread::sleep(interval);
                *wire = source.telegram();
            }
            let n = buf.len().min(wire.len());
            buf[..n].copy_from_slice(&wire[..n]);
            wire.drain(..n);
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_meter_is_deterministic_and_rejects_what_the_wire_corrupts() {
        let mut a = Meter::new(7, Some(3));
        let mut b = Meter::new(7, Some(3));
        let mut ok = 0;
        let mut rejected = 0;
        let mut last_delivered = 0;
        for _ in 0..9 {
            let (x, y) = (a.next(Duration::ZERO), b.next(Duration::ZERO));
            match (x, y) {
                (Ok(x), Ok(y)) => {
                    assert_eq!(x, y, "same seed, same payloads");
                    let v: serde_json::Value = serde_json::from_slice(&x).unwrap();
                    let total = v["delivered_wh"][0].as_u64().unwrap() + v["delivered_wh"][1].as_u64().unwrap();
                    assert!(total > last_delivered, "energy counters only go up");
                    last_delivered = total;
                    ok += 1;
                }
                (Err(SensorError::Rejected(why)), Err(_)) => {
                    assert!(why.contains("CRC"), "{why}");
                    rejected += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((ok, rejected), (6, 3));
        assert_ne!(
            Meter::new(8, None).next(Duration::ZERO).unwrap(),
            Meter::new(7, None).next(Duration::ZERO).unwrap()
        );
    }

    #[test]
    fn flooding_environment_sensor_stops_waiting() {
        let mut s = Environment::new(1, Some(2));
        let t = std::time::Instant::now();
        s.next(Duration::from_millis(30)).unwrap();
        s.next(Duration::from_millis(30)).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(60));
        let t = std::time::Instant::now();
        for _ in 0..5 {
            s.next(Duration::from_secs(3600)).unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(60), "a flooding device ignores its interval");
    }
}
