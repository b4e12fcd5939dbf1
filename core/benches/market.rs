//! Job-market measurements for docs/benchmarks.md (`make bench`): the worker's batch verification
//! (`dataset::Verifier`) against the audit's verification of the same rows (row hashes from the
//! same canonical text, then `audit::audit`), and training on the diabetes table (OLS fit time, R²
//! on the held-out rows). In memory, one core; run in release. Prints one line per figure.

use alloy::primitives::{Address, B256};
use iotegrity_core::anchors::{AnchoredBatch, TableAnchors, TableHistory};
use iotegrity_core::audit::{AuditInput, audit};
use iotegrity_core::dataset::{BatchRow, Dataset, DatasetBatch, Verifier};
use iotegrity_core::learning::{LinearModel, diabetes};
use iotegrity_core::merkle::anchor_tree;
use iotegrity_core::receipt::{AnchorRef, Batch, RowHash, row_hash, table_id};
use std::hint::black_box;
use std::time::Duration;

mod common;
use common::rate;

const TABLE: &str = "public.bench";
const OWNER: Address = Address::repeat_byte(7);
const ROWS: i64 = 100_000;
const M: i64 = 1_000;
const N: usize = 10;

/// A row as the diabetes table prints it: a key and eleven doubles.
fn line(k: i64) -> String {
    let mut s = k.to_string();
    for c in 0..11 {
        s.push('\t');
        s.push_str(&format!("{:.17}", ((k * 31 + c * 7) % 1000) as f64 / 997.0 - 0.5));
    }
    s
}

fn main() {
    let window = Duration::from_secs(2);
    // --- 100 000 rows anchored in batches of 1 000 (10 sub-tables each), one transaction each.
    let lines: Vec<String> = (1..=ROWS).map(line).collect();
    let (mut receipts, mut history) = (Vec::new(), TableHistory::default());
    for (t, chunk) in lines.chunks(M as usize).enumerate() {
        let first = t as i64 * M + 1;
        let rows: Vec<RowHash> = chunk
            .iter()
            .enumerate()
            .map(|(i, l)| RowHash { key: first + i as i64, hash: row_hash(l.as_bytes()) })
            .collect();
        let batch = Batch::new(rows, N);
        let tree = anchor_tree(&[batch.root()]);
        let anchor = AnchorRef {
            chain_id: 1,
            contract: Address::ZERO,
            tx: B256::repeat_byte(1),
            block: t as u64 + 1,
            anchored_root: tree.root(),
        };
        receipts.extend(batch.receipts(TABLE, &anchor, &tree.proof(0)));
        let (first_key, last_key) = batch.key_range();
        history.batches.push(AnchoredBatch {
            owner: OWNER,
            table_id: table_id(TABLE),
            root: batch.root(),
            anchored_root: tree.root(),
            first_key,
            last_key,
            m: M as u32,
            n: N as u32,
            block: anchor.block,
            tx: anchor.tx,
        });
    }

    // The audit: hash every live row from its text (as the COPY stream does), then hold the
    // receipts against the rows and the chain's history.
    let anchors =
        TableAnchors { table_id: table_id(TABLE), complete_at: u64::MAX, by_owner: [(OWNER, history.clone())].into() };
    let audit_rate = rate(window, ROWS as usize, || {
        let live: Vec<RowHash> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| RowHash { key: i as i64 + 1, hash: row_hash(l.as_bytes()) })
            .collect();
        let report = audit(&AuditInput {
            table: TABLE,
            receipts: &receipts,
            live: &live,
            anchors: &anchors,
            store_block: u64::MAX,
            pinned: Some(OWNER),
            pending: None,
            max_wait: None,
            grace_secs: 0,
        });
        assert!(report.is_clean());
        black_box(report);
    });

    // The worker: the same rows as 1 000 batches of a dataset over the whole table.
    let dataset = Dataset::select(TABLE, &receipts, 1, ROWS).expect("consecutive receipts");
    let reference = dataset.reference(OWNER);
    let columns: Vec<String> = (0..12).map(|c| format!("c{c}")).collect();
    let batches: Vec<DatasetBatch> = dataset
        .receipts
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rows =
                (r.first_key..=r.last_key).map(|k| BatchRow { key: k, line: lines[k as usize - 1].clone() }).collect();
            dataset.batch(i, columns.clone(), rows)
        })
        .collect();
    let worker_rate = rate(window, ROWS as usize, || {
        let mut v = Verifier::new(&reference, &history);
        for b in &batches {
            black_box(v.verify(b).expect("a genuine batch verifies"));
        }
        v.finish().expect("complete");
    });
    println!("audit_rows_per_s {audit_rate:.0}");
    println!("worker_batch_verify_rows_per_s {worker_rate:.0}");
    println!("worker_over_audit {:.2}", worker_rate / audit_rate);

    // --- Training on the diabetes table: 360 rows, ten features; scored on the other 81.
    let (features, label, train) = diabetes::examples(0..360);
    let (_, _, held_out) = diabetes::examples(360..441);
    let fits = rate(window, 1, || {
        black_box(LinearModel::train(&features, &label, &train).unwrap());
    });
    let model = LinearModel::train(&features, &label, &train).unwrap();
    println!("diabetes_ols_fit_us {:.1}", 1e6 / fits);
    println!("diabetes_holdout_r2 {:.4}", model.r2(&held_out).unwrap());
    println!("diabetes_train_r2 {:.4}", model.r2(&train).unwrap());
}
