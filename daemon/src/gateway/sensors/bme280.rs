//! The Bosch BME280 driver over I2C (rppal): reads the factory calibration once, then takes a
//! forced-mode measurement per sample and compensates it with the datasheet's integer formulas
//! (temperature in 0.01 °C, pressure in Pa, humidity in 0.001 %RH).

use super::{Sensor, SensorError, payload};
use serde::Serialize;
use std::time::Duration;

/// Register access; rppal's I2C implements it on a Pi.
pub trait Registers: Send {
    /// Reads `buf.len()` bytes starting at register `reg`.
    fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), SensorError>;
    /// Writes one register.
    fn write(&mut self, reg: u8, value: u8) -> Result<(), SensorError>;
}

impl Registers for rppal::i2c::I2c {
    fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), SensorError> {
        self.write_read(&[reg], buf).map_err(|e| SensorError::Io(format!("i2c read 0x{reg:02x}: {e}")))
    }
    fn write(&mut self, reg: u8, value: u8) -> Result<(), SensorError> {
        self.smbus_write_byte(reg, value).map_err(|e| SensorError::Io(format!("i2c write 0x{reg:02x}: {e}")))
    }
}

const CHIP_ID: u8 = 0x60;
const REG_ID: u8 = 0xD0;
const REG_CALIB_TP: u8 = 0x88;
const REG_CALIB_H: u8 = 0xE1;
const REG_CTRL_HUM: u8 = 0xF2;
const REG_STATUS: u8 = 0xF3;
const REG_CTRL_MEAS: u8 = 0xF4;
const REG_DATA: u8 = 0xF7;

/// The factory calibration (datasheet §4.2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Calibration {
    pub t1: u16,
    pub t2: i16,
    pub t3: i16,
    pub p1: u16,
    pub p2: i16,
    pub p3: i16,
    pub p4: i16,
    pub p5: i16,
    pub p6: i16,
    pub p7: i16,
    pub p8: i16,
    pub p9: i16,
    pub h1: u8,
    pub h2: i16,
    pub h3: u8,
    pub h4: i16,
    pub h5: i16,
    pub h6: i8,
}

impl Calibration {
    /// From registers 0x88..=0xA1 (26 bytes) and 0xE1..=0xE7 (7 bytes).
    pub fn parse(tp: &[u8; 26], h: &[u8; 7]) -> Self {
        let u = |i: usize| u16::from_le_bytes([tp[i], tp[i + 1]]);
        let s = |i: usize| i16::from_le_bytes([tp[i], tp[i + 1]]);
        Self {
            t1: u(0),
            t2: s(2),
            t3: s(4),
            p1: u(6),
            p2: s(8),
            p3: s(10),
            p4: s(12),
            p5: s(14),
            p6: s(16),
            p7: s(18),
            p8: s(20),
            p9: s(22),
            h1: tp[25],
            h2: i16::from_le_bytes([h[0], h[1]]),
            h3: h[2],
            // H4 = E4[7:0] << 4 | E5[3:0]; H5 = E6[7:0] << 4 | E5[7:4] (12-bit signed via the i8 top byte).
            h4: (i16::from(h[3] as i8) << 4) | i16::from(h[4] & 0x0F),
            h5: (i16::from(h[5] as i8) << 4) | i16::from(h[4] >> 4),
            h6: h[6] as i8,
        }
    }

    /// Temperature in 0.01 °C and `t_fine` for the other two.
    pub fn temperature(&self, adc_t: i32) -> (i32, i32) {
        let (t1, t2, t3) = (i32::from(self.t1), i32::from(self.t2), i32::from(self.t3));
        let var1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11;
        let var2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14;
        let t_fine = var1 + var2;
        ((t_fine * 5 + 128) >> 8, t_fine)
    }

    /// Pressure in Pa as Q24.8 (divide by 256), or `None` for a zero divisor (no valid calibration).
    pub fn pressure_q24_8(&self, adc_p: i32, t_fine: i32) -> Option<u32> {
        let mut var1 = i64::from(t_fine) - 128_000;
        let mut var2 = var1 * var1 * i64::from(self.p6);
        var2 += (var1 * i64::from(self.p5)) << 17;
        var2 += i64::from(self.p4) << 35;
        var1 = ((var1 * var1 * i64::from(self.p3)) >> 8) + ((var1 * i64::from(self.p2)) << 12);
        var1 = (((1i64 << 47) + var1) * i64::from(self.p1)) >> 33;
        if var1 == 0 {
            return None;
        }
        let mut p = 1_048_576 - i64::from(adc_p);
        p = (((p << 31) - var2) * 3125) / var1;
        let var1 = (i64::from(self.p9) * (p >> 13) * (p >> 13)) >> 25;
        let var2 = (i64::from(self.p8) * p) >> 19;
        u32::try_from(((p + var1 + var2) >> 8) + (i64::from(self.p7) << 4)).ok()
    }

    /// Relative humidity in %RH as Q22.10 (divide by 1024), clamped to 0..=100 %.
    pub fn humidity_q22_10(&self, adc_h: i32, t_fine: i32) -> u32 {
        let (h1, h2, h3) = (i32::from(self.h1), i32::from(self.h2), i32::from(self.h3));
        let (h4, h5, h6) = (i32::from(self.h4), i32::from(self.h5), i32::from(self.h6));
        let mut v = t_fine - 76_800;
        v = (((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16_384) >> 15;
        v *= ((((((v * h6) >> 10) * (((v * h3) >> 11) + 32_768)) >> 10) + 2_097_152) * h2 + 8_192) >> 14;
        v -= ((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4;
        v = v.clamp(0, 419_430_400);
        (v >> 12) as u32
    }
}

/// One compensated measurement, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// Always `bme280` (or `simulated` for the simulated sensor).
    pub kind: &'static str,
    /// Temperature, 0.01 °C.
    pub temperature_centi_c: i32,
    /// Pressure, Pa.
    pub pressure_pa: u32,
    /// Relative humidity, 0.001 %RH.
    pub humidity_milli_pct: u32,
}

/// A BME280 on some register bus.
pub struct Bme280<R: Registers = rppal::i2c::I2c> {
    bus: R,
    cal: Calibration,
}

impl Bme280 {
    /// Opens I2C `bus` at `address` and reads the calibration.
    pub fn open(bus: u8, address: u16) -> Result<Self, SensorError> {
        let mut i2c = rppal::i2c::I2c::with_bus(bus).map_err(|e| SensorError::Io(format!("i2c bus {bus}: {e}")))?;
        i2c.set_slave_address(address).map_err(|e| SensorError::Io(format!("i2c address 0x{address:02x}: {e}")))?;
        Self::with_bus(i2c)
    }
}

impl<R: Registers> Bme280<R> {
    /// Checks the chip id and reads the calibration.
    pub fn with_bus(mut bus: R) -> Result<Self, SensorError> {
        let mut id = [0u8];
        bus.read(REG_ID, &mut id)?;
        if id[0] != CHIP_ID {
            return Err(SensorError::Io(format!("chip id 0x{:02x} is not a BME280 (0x60)", id[0])));
        }
        let (mut tp, mut h) = ([0u8; 26], [0u8; 7]);
        bus.read(REG_CALIB_TP, &mut tp)?;
        bus.read(REG_CALIB_H, &mut h)?;
        Ok(Self { bus, cal: Calibration::parse(&tp, &h) })
    }

    /// One forced-mode measurement (oversampling ×1 for all three).
    pub fn measure(&mut self) -> Result<Environment, SensorError> {
        self.bus.write(REG_CTRL_HUM, 0b001)?; // takes effect with the next ctrl_meas write
        self.bus.write(REG_CTRL_MEAS, (0b001 << 5) | (0b001 << 2) | 0b01)?;
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(2));
            let mut status = [0u8];
            self.bus.read(REG_STATUS, &mut status)?;
            if status[0] & 0b1000 == 0 {
                let mut d = [0u8; 8];
                self.bus.read(REG_DATA, &mut d)?;
                let adc_p = (i32::from(d[0]) << 12) | (i32::from(d[1]) << 4) | (i32::from(d[2]) >> 4);
                let adc_t = (i32::from(d[3]) << 12) | (i32::from(d[4]) << 4) | (i32::from(d[5]) >> 4);
                let adc_h = (i32::from(d[6]) << 8) | i32::from(d[7]);
                let (t, t_fine) = self.cal.temperature(adc_t);
                let p =
                    self.cal.pressure_q24_8(adc_p, t_fine).ok_or_else(|| SensorError::Io("bad calibration".into()))?;
                let h = self.cal.humidity_q22_10(adc_h, t_fine);
                return Ok(Environment {
                    kind: "bme280",
                    temperature_centi_c: t,
                    pressure_pa: p / 256,
                    humidity_milli_pct: ((u64::from(h) * 1000) / 1024) as u32,
                });
            }
        }
        Err(SensorError::Io("measurement did not finish in 100 ms".into()))
    }
}

impl<R: Registers> Sensor for Bme280<R> {
    fn next(&mut self, interval: Duration) -> Result<Vec<u8>, SensorError> {
        std::thread::sleep(interval);
        self.measure().map(|e| payload(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the Bosch BMP280/BME280 datasheets (same T and P formulas).
    fn datasheet() -> Calibration {
        Calibration {
            t1: 27504,
            t2: 26435,
            t3: -1000,
            p1: 36477,
            p2: -10685,
            p3: 3024,
            p4: 2855,
            p5: 140,
            p6: -7,
            p7: 15500,
            p8: -14600,
            p9: 6000,
            ..Default::default()
        }
    }

    #[test]
    fn datasheet_example_compensates_exactly() {
        let (t, t_fine) = datasheet().temperature(519_888);
        assert_eq!((t, t_fine), (2508, 128_422)); // 25.08 °C
        let p = datasheet().pressure_q24_8(415_148, t_fine).unwrap();
        assert_eq!(p / 256, 100_653); // 100 653.27 Pa
    }

    /// A register map standing in for the chip: what the I2C bus would return.
    struct Chip {
        regs: [u8; 256],
        writes: Vec<(u8, u8)>,
    }

    impl Registers for Chip {
        fn read(&mut self, reg: u8, buf: &mut [u8]) -> Result<(), SensorError> {
            let at = usize::from(reg);
            buf.copy_from_slice(&self.regs[at..at + buf.len()]);
            Ok(())
        }
        fn write(&mut self, reg: u8, value: u8) -> Result<(), SensorError> {
            self.writes.push((reg, value));
            Ok(())
        }
    }

    #[test]
    fn driver_reads_calibration_and_data_registers() {
        let cal = datasheet();
        let mut regs = [0u8; 256];
        regs[0xD0] = 0x60;
        let words: [u16; 12] = [
            cal.t1,
            cal.t2 as u16,
            cal.t3 as u16,
            cal.p1,
            cal.p2 as u16,
            cal.p3 as u16,
            cal.p4 as u16,
            cal.p5 as u16,
            cal.p6 as u16,
            cal.p7 as u16,
            cal.p8 as u16,
            cal.p9 as u16,
        ];
        for (i, w) in words.iter().enumerate() {
            regs[0x88 + 2 * i..0x88 + 2 * i + 2].copy_from_slice(&w.to_le_bytes());
        }
        // Humidity calibration of a typical part: H1=75 H2=362 H3=0 H4=324 H5=50 H6=30.
        regs[0xA1] = 75;
        regs[0xE1..0xE8].copy_from_slice(&[0x6A, 0x01, 0x00, 0x14, 0x24, 0x03, 0x1E]);
        // adc_P = 415148, adc_T = 519888, adc_H = 30000 packed as the chip does (20/20/16 bits).
        regs[0xF7..0xFF].copy_from_slice(&[0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x75, 0x30]);
        let mut dev = Bme280::with_bus(Chip { regs, writes: vec![] }).unwrap();
        assert_eq!(dev.cal.t1, 27504);
        assert_eq!((dev.cal.h1, dev.cal.h2, dev.cal.h4, dev.cal.h5, dev.cal.h6), (75, 362, 324, 50, 30));
        let e = dev.measure().unwrap();
        assert_eq!((e.temperature_centi_c, e.pressure_pa), (2508, 100_653));
        assert!((0..=100_000).contains(&e.humidity_milli_pct), "{e:?}");
        assert_eq!(dev.bus.writes, vec![(0xF2, 0x01), (0xF4, 0x25)], "forced mode, oversampling x1");
        // More moisture reads as more humidity.
        dev.bus.regs[0xFD..0xFF].copy_from_slice(&[0x80, 0x00]);
        assert!(dev.measure().unwrap().humidity_milli_pct > e.humidity_milli_pct);
        // Another chip on the address is refused.
        let mut other = [0u8; 256];
        other[0xD0] = 0x58; // a BMP280
        assert!(Bme280::with_bus(Chip { regs: other, writes: vec![] }).is_err());
    }
}
