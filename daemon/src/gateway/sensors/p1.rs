//! The DSMR P1 driver: a UART through rppal at the version's line settings (115200 8N1 for DSMR 4
//! and 5, 9600 7E1 for 2.2), raw bytes into the [`Framer`]; a telegram is passed on at most once per
//! sampling interval (meters send one every 1 s or 10 s), and a refused one never is.

use super::dsmr::{Framer, Telegram, TelegramError, Version};
use super::{Sensor, SensorError, payload};
use rppal::uart::{Parity, Uart};
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// A P1 port.
pub struct P1 {
    uart: Uart,
    frames: Telegrams,
}

impl P1 {
    /// Opens the serial port with the line settings of `version`.
    pub fn open(port: &Path, version: Version) -> Result<Self, SensorError> {
        let (baud, parity, bits) = match version {
            Version::V2 => (9_600, Parity::Even, 7),
            Version::V4 | Version::V5 => (115_200, Parity::None, 8),
        };
        let mut uart = Uart::with_path(port, baud, parity, bits, 1)
            .map_err(|e| SensorError::Io(format!("{}: {e}", port.display())))?;
        uart.set_read_mode(1, Duration::ZERO).map_err(|e| SensorError::Io(e.to_string()))?;
        Ok(Self { uart, frames: Telegrams::new(version) })
    }
}

impl Sensor for P1 {
    fn next(&mut self, interval: Duration) -> Result<Vec<u8>, SensorError> {
        let uart = &mut self.uart;
        self.frames.next(interval, |buf| uart.read(buf).map_err(|e| SensorError::Io(e.to_string())))
    }
}

/// Framing and pacing shared by the real and the simulated meter.
#[derive(Debug)]
pub struct Telegrams {
    framer: Framer,
    ready: VecDeque<Result<Telegram, TelegramError>>,
    last: Option<Instant>,
}

impl Telegrams {
    /// For a meter of `version`.
    pub fn new(version: Version) -> Self {
        Self { framer: Framer::new(version), ready: VecDeque::new(), last: None }
    }

    /// The next telegram due (one per `interval`), reading more bytes with `read` as needed.
    pub fn next(
        &mut self,
        interval: Duration,
        mut read: impl FnMut(&mut [u8]) -> Result<usize, SensorError>,
    ) -> Result<Vec<u8>, SensorError> {
        let mut buf = [0u8; 512];
        loop {
            match self.ready.pop_front() {
                Some(Err(e)) => return Err(SensorError::Rejected(e.to_string())),
                Some(Ok(t)) => {
                    if self.last.is_some_and(|at| at.elapsed() < interval) {
                        continue; // the meter sends more often than we sample
                    }
                    let reading = t.reading().map_err(|e| SensorError::Rejected(e.to_string()))?;
                    self.last = Some(Instant::now());
                    return Ok(payload(&reading));
                }
                None => {
                    let n = read(&mut buf)?;
                    self.ready.extend(self.framer.push(&buf[..n]));
                }
            }
        }
    }
}
