//! Sensors of the gateway role, behind one [`Sensor`] trait: a DSMR P1 smart meter on a UART, a
//! BME280 on I2C, a debounced GPIO input (all through rppal), and simulated sensors —
//! deterministic from a seed — for machines without the hardware. Each sensor yields a JSON
//! payload; the gateway adds the device's sequence number and time when it signs.

pub mod bme280;
pub mod dsmr;
pub mod gpio;
pub mod p1;
pub mod simulated;

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Why a sensor gave no sample this time.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// The input was read but refused (e.g. a telegram with a bad CRC): counted, never signed.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The hardware could not be read (retried after a pause).
    #[error("cannot read the sensor: {0}")]
    Io(String),
}

impl From<std::io::Error> for SensorError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// A source of readings. `next` blocks until the next sample; `interval` is the sampling interval
/// in force (a service command may change it between calls).
pub trait Sensor: Send {
    /// The next sample's payload (compact JSON bytes).
    fn next(&mut self, interval: Duration) -> Result<Vec<u8>, SensorError>;
}

/// Serializes a sample the same way everywhere: compact JSON, fields in declaration order.
pub fn payload<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("sensor samples serialize")
}

/// `[devices.sensor]`: which sensor a device reads, tagged by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SensorConfig {
    /// A DSMR P1 meter on a serial port.
    DsmrP1 {
        /// Serial device. Default `/dev/ttyAMA0` (the Pi's PL011 UART; a USB cable is `/dev/ttyUSB0`).
        #[serde(default = "default_port")]
        port: PathBuf,
        /// DSMR version: `"2.2"` (9600 7E1, no CRC), `"4"` or `"5"` (115200 8N1, CRC). Default `"5"`.
        #[serde(default = "default_version")]
        version: dsmr::Version,
    },
    /// A Bosch BME280 on I2C.
    Bme280 {
        /// I2C bus number. Default 1 (pins 3 and 5).
        #[serde(default = "default_bus")]
        bus: u8,
        /// 7-bit address: 0x76 (SDO low, default) or 0x77.
        #[serde(default = "default_bme_address")]
        address: u16,
    },
    /// A GPIO input with debouncing: a door contact, a motion sensor or a pulse counter.
    Gpio {
        /// BCM pin number.
        pin: u8,
        /// `up`, `down` or `none`. Default `up`.
        #[serde(default)]
        pull: gpio::Pull,
        /// The level must hold this long to count, ms. Default 20.
        #[serde(default = "default_debounce")]
        debounce_ms: u64,
    },
    /// A simulated environment sensor.
    Simulated {
        /// Seed of the deterministic values. Default 1.
        #[serde(default = "default_seed")]
        seed: u64,
        /// After this many samples, ignore the interval and flood (a misbehaving device; for tests
        /// of the traffic profile). Default: never.
        flood_after: Option<u64>,
    },
    /// A simulated DSMR 5 meter: writes valid telegrams that go through the real framer and CRC.
    SimulatedP1 {
        /// Seed of the deterministic values. Default 1.
        #[serde(default = "default_seed")]
        seed: u64,
        /// Corrupt every n-th telegram on the "wire" (it must be rejected by the CRC). Default: never.
        corrupt_every: Option<u64>,
    },
}

fn default_port() -> PathBuf {
    "/dev/ttyAMA0".into()
}
fn default_version() -> dsmr::Version {
    dsmr::Version::V5
}
fn default_bus() -> u8 {
    1
}
fn default_bme_address() -> u16 {
    0x76
}
fn default_debounce() -> u64 {
    20
}
fn default_seed() -> u64 {
    1
}

impl SensorConfig {
    /// Opens the sensor (the hardware ones fail here on a machine without the device).
    pub fn open(&self) -> Result<Box<dyn Sensor>, SensorError> {
        Ok(match self {
            Self::DsmrP1 { port, version } => Box::new(p1::P1::open(port, *version)?),
            Self::Bme280 { bus, address } => Box::new(bme280::Bme280::open(*bus, *address)?),
            Self::Gpio { pin, pull, debounce_ms } => {
                Box::new(gpio::GpioInput::open(*pin, *pull, Duration::from_millis(*debounce_ms))?)
            }
            Self::Simulated { seed, flood_after } => Box::new(simulated::Environment::new(*seed, *flood_after)),
            Self::SimulatedP1 { seed, corrupt_every } => Box::new(simulated::Meter::new(*seed, *corrupt_every)),
        })
    }
}
