//! A GPIO digital input through rppal with software debouncing: a level counts only after it
//! held for the debounce time. A sample is taken on every debounced change (door, motion) and at
//! least once per interval, carrying the level and the count of rising edges (pulse counter).

use super::{Sensor, SensorError, payload};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Pull resistor of an input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pull {
    /// Pull-up (a contact to ground reads low when closed).
    #[default]
    Up,
    /// Pull-down.
    Down,
    /// None (the circuit drives the line).
    None,
}

/// Debounces a sampled level: changes shorter than `hold` are ignored.
#[derive(Debug, Clone)]
pub struct Debouncer {
    hold: Duration,
    stable: bool,
    candidate: Option<(bool, Instant)>,
    /// Debounced rising edges so far.
    pub rising_edges: u64,
}

impl Debouncer {
    /// Starts at `level`.
    pub fn new(level: bool, hold: Duration) -> Self {
        Self { hold, stable: level, candidate: None, rising_edges: 0 }
    }

    /// The debounced level.
    pub fn level(&self) -> bool {
        self.stable
    }

    /// Feeds a raw sample taken at `now`; returns the new level when a change became stable.
    pub fn feed(&mut self, raw: bool, now: Instant) -> Option<bool> {
        if raw == self.stable {
            self.candidate = None;
            return None;
        }
        match self.candidate {
            Some((level, since)) if level == raw && now.duration_since(since) >= self.hold => {
                self.stable = raw;
                self.candidate = None;
                self.rising_edges += u64::from(raw);
                Some(raw)
            }
            Some((level, _)) if level == raw => None,
            _ => {
                self.candidate = Some((raw, now));
                None
            }
        }
    }
}

/// What a GPIO sample says.
#[derive(Debug, Serialize)]
struct GpioSample {
    kind: &'static str,
    pin: u8,
    level: u8,
    rising_edges: u64,
}

/// A debounced input pin.
pub struct GpioInput {
    pin: rppal::gpio::InputPin,
    number: u8,
    debouncer: Debouncer,
    last_sample: Instant,
}

/// How often the pin is polled.
const POLL: Duration = Duration::from_millis(1);

impl GpioInput {
    /// Claims BCM pin `pin` as an input with `pull`.
    pub fn open(pin: u8, pull: Pull, debounce: Duration) -> Result<Self, SensorError> {
        let gpio = rppal::gpio::Gpio::new().map_err(|e| SensorError::Io(format!("gpio: {e}")))?;
        let p = gpio.get(pin).map_err(|e| SensorError::Io(format!("gpio {pin}: {e}")))?;
        let input = match pull {
            Pull::Up => p.into_input_pullup(),
            Pull::Down => p.into_input_pulldown(),
            Pull::None => p.into_input(),
        };
        let level = input.is_high();
        Ok(Self { pin: input, number: pin, debouncer: Debouncer::new(level, debounce), last_sample: Instant::now() })
    }
}

impl Sensor for GpioInput {
    fn next(&mut self, interval: Duration) -> Result<Vec<u8>, SensorError> {
        loop {
            let changed = self.debouncer.feed(self.pin.is_high(), Instant::now()).is_some();
            if changed || self.last_sample.elapsed() >= interval {
                self.last_sample = Instant::now();
                return Ok(payload(&GpioSample {
                    kind: "gpio",
                    pin: self.number,
                    level: u8::from(self.debouncer.level()),
                    rising_edges: self.debouncer.rising_edges,
                }));
            }
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounces_are_ignored_and_held_changes_count() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut d = Debouncer::new(false, Duration::from_millis(20));
        // Contact bounce: high/low flicker for 15 ms never holds 20 ms.
        for (i, raw) in [true, false, true, false, true, false].into_iter().enumerate() {
            assert_eq!(d.feed(raw, ms(i as u64 * 3)), None);
        }
        assert!(!d.level());
        // High from 30 ms on: stable at 50 ms, not before.
        assert_eq!(d.feed(true, ms(30)), None);
        assert_eq!(d.feed(true, ms(49)), None);
        assert_eq!(d.feed(true, ms(50)), Some(true));
        assert_eq!(d.feed(true, ms(80)), None, "no second event for the same level");
        // A 10 ms dip is a glitch; a 25 ms one is a falling edge.
        assert_eq!(d.feed(false, ms(100)), None);
        assert_eq!(d.feed(true, ms(110)), None);
        assert_eq!(d.feed(false, ms(200)), None);
        assert_eq!(d.feed(false, ms(225)), Some(false));
        assert_eq!(d.rising_edges, 1);
        // Three clean pulses count three.
        for k in 0..3u64 {
            let base = 300 + k * 100;
            d.feed(true, ms(base));
            d.feed(true, ms(base + 20));
            d.feed(false, ms(base + 50));
            d.feed(false, ms(base + 70));
        }
        assert_eq!(d.rising_edges, 4);
    }
}
