//! Gateway hot path for docs/benchmarks.md (`make bench`): readings signed (device + gateway) and
//! durably stored (journal append + fsync) per second on one core, with one fsync per reading and
//! with group commit; the DSMR telegram parse; and the bytes a chain of signatures adds per
//! reading, raw and on the wire. Prints one line per figure; run in release.

use alloy::primitives::keccak256;
use alloy::signers::local::PrivateKeySigner;
use iotegrity_core::keys::domain;
use iotegrity_core::signatures::SignedReading;
use iotegrity_core::wire::ReadingSubmission;
use iotegrity_daemon::gateway::journal::Journal;
use iotegrity_daemon::gateway::sensors::Sensor;
use iotegrity_daemon::gateway::sensors::dsmr::{Framer, Version};
use iotegrity_daemon::gateway::sensors::simulated::{Meter, MeterSource};
use iotegrity_daemon::gateway::{Checkpoint, Record};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn main() {
    let d = domain(31337, alloy::primitives::Address::repeat_byte(1));
    let (device, gateway) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let mut meter = Meter::new(1, None);
    let payload = meter.next(Duration::ZERO).expect("a telegram");
    let sign = |seq: u64| {
        let mut r = SignedReading::new(&device, seq, 1_700_000_000 + seq, keccak256(&payload), &d);
        r.countersign(&gateway, &d);
        Record::Reading { device: "meter".into(), flag: None, submission: ReadingSubmission::new(&r, &payload) }
    };

    // Signing alone, one core.
    let n = 2_000u64;
    let t = Instant::now();
    for seq in 0..n {
        black_box(sign(seq));
    }
    let sign_rate = n as f64 / t.elapsed().as_secs_f64();
    println!("gateway/sign (device + gateway signature): {sign_rate:.0} readings/s on one core");

    // Signed and durably stored: an fsync per reading, and group commit of 64.
    let dir = tempfile::tempdir_in(std::env::var_os("BENCH_DIR").unwrap_or_else(|| ".".into())).expect("temp dir");
    for (batch, label) in [(1usize, "fsync per reading"), (64, "group commit, 64 per fsync")] {
        let path = dir.path().join(format!("j{batch}"));
        let (mut j, _) = Journal::open(&path, 64 << 20, || Record::Checkpoint(Checkpoint::default())).unwrap();
        let total = if batch == 1 { 500 } else { 4_096 };
        let t = Instant::now();
        let mut seq = 0;
        while seq < total {
            let records: Vec<Record> = (seq..seq + batch as u64).map(sign).collect();
            j.append(&records).unwrap();
            seq += batch as u64;
        }
        let rate = total as f64 / t.elapsed().as_secs_f64();
        println!("gateway/sign+journal ({label}): {rate:.0} readings/s on one core");
    }

    // The telegram path of the P1 driver: frame + CRC + parse.
    let mut source = MeterSource::new(2, None);
    let telegrams: Vec<Vec<u8>> = (0..1_000).map(|_| source.telegram()).collect();
    let bytes: usize = telegrams.iter().map(Vec::len).sum();
    let t = Instant::now();
    let mut framer = Framer::new(Version::V5);
    for tg in &telegrams {
        for r in framer.push(tg) {
            black_box(r.unwrap().reading().unwrap());
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "dsmr/frame+crc+parse: {:.0} telegrams/s ({:.0} MB/s, {} bytes each)",
        1_000.0 / secs,
        bytes as f64 / secs / 1e6,
        bytes / 1_000
    );

    // What the chain adds per reading.
    let Record::Reading { submission, .. } = sign(7) else { unreachable!() };
    let raw_chain = submission.signed.signatures.iter().map(|s| s.len()).sum::<usize>();
    let wire = serde_json::to_vec(&submission).unwrap().len();
    let bare = serde_json::to_vec(&serde_json::json!({ "payload": submission.payload })).unwrap().len();
    let mut journal_frame = Vec::new();
    journal_frame.extend(serde_json::to_vec(&sign(7)).unwrap());
    println!(
        "chain/bytes: payload {} B; signatures {} B raw (65 per signer: device + 1 gateway); \
         signed fields 68 B (device 20, sequence 8, time 8, payload hash 32); \
         on the wire (JSON) {} B per reading vs {} B for the payload alone (+{} B); journal record {} B + 8 B frame",
        submission.payload.len(),
        raw_chain,
        wire,
        bare,
        wire - bare,
        journal_frame.len()
    );
}
