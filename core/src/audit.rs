//! The audit: compares a table's live rows with its receipts and names every row that differs.
//! Pure logic; the CLI feeds it rows from Postgres and roots checked on chain.
//!
//! Each receipt is first checked on its own (its rows hash to its leaf, its proof reaches its
//! anchored root — [`Receipt::check`]) and its root against the chain; then the receipts' rows and
//! the live rows are merged in key order:
//! - in both with different hashes → **altered**;
//! - only in a receipt → **deleted**;
//! - live, inside a receipt's key range, but not in it → **inserted**;
//! - live, not covered by any receipt → **awaiting anchor** (already cut into a batch: key at or
//!   below the watermark) or **unanchored** (not yet batched) — information, not tampering.

use crate::receipt::{Receipt, RowHash};
use alloy::primitives::B256;
use serde::Serialize;

/// What is wrong (or pending) with a row or receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Finding {
    /// The row's content differs from what was anchored.
    Altered {
        /// Row key.
        key: i64,
    },
    /// An anchored row is gone.
    Deleted {
        /// Row key.
        key: i64,
    },
    /// A row appeared inside an anchored range.
    Inserted {
        /// Row key.
        key: i64,
    },
    /// A receipt fails its own checks (its rows, leaf or proof were changed).
    ReceiptTampered {
        /// First key of the sub-table.
        first_key: i64,
        /// Last key of the sub-table.
        last_key: i64,
        /// Which check failed.
        reason: String,
    },
    /// A receipt's anchored root is not on chain.
    RootNotOnChain {
        /// First key of the sub-table.
        first_key: i64,
        /// Last key of the sub-table.
        last_key: i64,
        /// The root.
        root: B256,
    },
    /// Cut into a batch, anchor not confirmed yet.
    AwaitingAnchor {
        /// Row key.
        key: i64,
    },
    /// Not yet cut into a batch.
    Unanchored {
        /// Row key.
        key: i64,
    },
    /// A stored reading's chain of signatures does not verify (now): forged, or signed by a key
    /// that was rotated out or closed on chain.
    BadSignature {
        /// Row key.
        key: i64,
        /// Why, naming the step.
        reason: String,
    },
    /// A stored payload no longer hashes to its signed payload hash.
    PayloadMismatch {
        /// Row key.
        key: i64,
    },
    /// The same (device, sequence) is stored twice: a replay.
    Replayed {
        /// Row key of the second copy.
        key: i64,
        /// The device.
        device: alloy::primitives::Address,
        /// Its sequence number.
        sequence: u64,
    },
    /// Sequence numbers of a device skip: readings were dropped (or never sent).
    SequenceGap {
        /// The device.
        device: alloy::primitives::Address,
        /// Last sequence seen before the gap.
        after: u64,
        /// Next sequence seen.
        next: u64,
    },
}

impl Finding {
    /// True for evidence of tampering or loss (not for rows that are merely not anchored yet).
    pub fn is_integrity_failure(&self) -> bool {
        !matches!(self, Self::AwaitingAnchor { .. } | Self::Unanchored { .. })
    }
}

/// A stored reading as the audit reads it back from `iot.readings`.
#[derive(Debug, Clone)]
pub struct StoredReading {
    /// Row key.
    pub key: i64,
    /// The signed chain as stored.
    pub signed: crate::signatures::SignedReading,
    /// The stored payload.
    pub payload: Vec<u8>,
}

/// Checks stored readings: each chain of signatures against `dir_for(row key)` — the registry as it
/// was when the row was anchored, or now if it is not anchored yet — each payload against its
/// signed hash, replays of a (device, sequence), and per-device sequence gaps.
pub fn check_readings<D: crate::signatures::KeyDirectory>(
    readings: &[StoredReading],
    domain: &alloy::sol_types::Eip712Domain,
    dir_for: impl Fn(i64) -> D,
) -> Vec<Finding> {
    use std::collections::BTreeMap;
    let mut findings = Vec::new();
    let mut sequences: BTreeMap<alloy::primitives::Address, Vec<(u64, i64)>> = BTreeMap::new();
    for r in readings {
        if alloy::primitives::keccak256(&r.payload) != r.signed.reading.payloadHash {
            findings.push(Finding::PayloadMismatch { key: r.key });
        }
        if let Err(e) = r.signed.verify(domain, &dir_for(r.key)) {
            findings.push(Finding::BadSignature { key: r.key, reason: e.to_string() });
        }
        sequences.entry(r.signed.reading.device).or_default().push((r.signed.reading.sequence, r.key));
    }
    for (device, mut seqs) in sequences {
        seqs.sort_unstable();
        for w in seqs.windows(2) {
            let ((a, _), (b, key)) = (w[0], w[1]);
            if a == b {
                findings.push(Finding::Replayed { key, device, sequence: b });
            } else if b > a + 1 {
                findings.push(Finding::SequenceGap { device, after: a, next: b });
            }
        }
    }
    findings
}

/// Checks receipts on their own; `on_chain(root)` answers `ReceiptAnchor.verifyRootHash`.
pub fn check_receipts(receipts: &[Receipt], mut on_chain: impl FnMut(B256) -> bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (r, offline) in receipts.iter().zip(offline_checks(receipts)) {
        if let Err(e) = offline {
            findings.push(Finding::ReceiptTampered {
                first_key: r.first_key,
                last_key: r.last_key,
                reason: e.to_string(),
            });
        } else if !on_chain(r.anchor.anchored_root) {
            findings.push(Finding::RootNotOnChain {
                first_key: r.first_key,
                last_key: r.last_key,
                root: r.anchor.anchored_root,
            });
        }
    }
    findings
}

/// Each receipt's offline check ([`Receipt::check`]: every row hash of the table goes into a leaf
/// again), spread over the cores when there are many.
fn offline_checks(receipts: &[Receipt]) -> Vec<Result<(), crate::receipt::ReceiptError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || receipts.len() < 64 {
        return receipts.iter().map(Receipt::check).collect();
    }
    std::thread::scope(|s| {
        let parts: Vec<_> = receipts
            .chunks(receipts.len().div_ceil(threads))
            .map(|part| s.spawn(move || part.iter().map(Receipt::check).collect::<Vec<_>>()))
            .collect();
        parts.into_iter().flat_map(|p| p.join().expect("a receipt check does not panic")).collect()
    })
}

/// The receipt whose key range holds `key`, in receipts sorted by key with disjoint ranges
/// (as the receipts store returns them). Binary search: audits call this per row.
pub fn covering(receipts: &[Receipt], key: i64) -> Option<&Receipt> {
    let i = receipts.partition_point(|r| r.last_key < key);
    receipts.get(i).filter(|r| r.first_key <= key)
}

/// Merges receipts (sorted by key, non-overlapping) with live rows (sorted by key).
/// `watermark` is the last key cut into a batch (None if none).
pub fn compare_rows(
    receipts: &[Receipt],
    live: impl IntoIterator<Item = RowHash>,
    watermark: Option<i64>,
) -> Vec<Finding> {
    let anchored: Vec<(RowHash, usize)> =
        receipts.iter().enumerate().flat_map(|(i, r)| r.rows.iter().map(move |row| (*row, i))).collect();
    let covered = |key: i64| covering(receipts, key).is_some();
    let mut findings = Vec::new();
    let mut a = anchored.iter().peekable();
    let missing_live = |key: i64, findings: &mut Vec<Finding>| {
        findings.push(if covered(key) {
            Finding::Inserted { key }
        } else if watermark.is_some_and(|w| key <= w) {
            Finding::AwaitingAnchor { key }
        } else {
            Finding::Unanchored { key }
        });
    };
    for row in live {
        while let Some((anchored_row, _)) = a.peek().filter(|(r, _)| r.key < row.key) {
            findings.push(Finding::Deleted { key: anchored_row.key });
            a.next();
        }
        match a.peek() {
            Some((anchored_row, _)) if anchored_row.key == row.key => {
                if anchored_row.hash != row.hash {
                    findings.push(Finding::Altered { key: row.key });
                }
                a.next();
            }
            _ => missing_live(row.key, &mut findings),
        }
    }
    findings.extend(a.map(|(r, _)| Finding::Deleted { key: r.key }));
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{AnchorRef, Batch, row_hash};
    use alloy::primitives::Address;

    fn row(key: i64, content: &str) -> RowHash {
        RowHash { key, hash: row_hash(content.as_bytes()) }
    }

    fn receipts_for(rows: Vec<RowHash>, n: usize) -> Vec<Receipt> {
        let b = Batch::new(rows, n);
        b.receipts(
            "public.t",
            &AnchorRef { chain_id: 1, contract: Address::ZERO, tx: B256::ZERO, block: 1, anchored_root: b.root() },
            &[],
        )
    }

    #[test]
    fn clean_table_has_no_findings() {
        let rows: Vec<_> = (1..=10).map(|k| row(k * 10, &format!("r{k}"))).collect();
        let receipts = receipts_for(rows.clone(), 3);
        assert!(check_receipts(&receipts, |_| true).is_empty());
        assert!(compare_rows(&receipts, rows, Some(100)).is_empty());
    }

    #[test]
    fn many_receipts_are_checked_in_parallel_and_findings_keep_their_receipt() {
        let rows: Vec<_> = (1..=500).map(|k| row(k, &format!("r{k}"))).collect();
        let mut receipts = receipts_for(rows, 250);
        receipts[77].rows[0].hash = row_hash(b"forged");
        receipts[201].anchor.anchored_root = B256::repeat_byte(9);
        let findings = check_receipts(&receipts, |_| true);
        let named: Vec<(i64, &str)> = findings
            .iter()
            .map(|f| match f {
                Finding::ReceiptTampered { first_key, reason, .. } => (*first_key, reason.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            named,
            vec![(155, "its rows do not hash to its leaf"), (403, "its proof does not lead to the anchored root")]
        );
    }

    #[test]
    fn each_kind_of_change_is_named_by_key() {
        let rows: Vec<_> = (1..=10).map(|k| row(k * 10, &format!("r{k}"))).collect();
        let receipts = receipts_for(rows.clone(), 3);
        let mut live = rows.clone();
        live[2] = row(30, "changed"); // altered 30
        live.remove(5); // deleted 60
        live.insert(1, row(15, "injected")); // inserted 15
        live.push(row(110, "new")); // not batched yet
        live.push(row(120, "new")); // not batched yet
        let findings = compare_rows(&receipts, live, Some(110));
        assert_eq!(
            findings,
            vec![
                Finding::Inserted { key: 15 },
                Finding::Altered { key: 30 },
                Finding::Deleted { key: 60 },
                Finding::AwaitingAnchor { key: 110 },
                Finding::Unanchored { key: 120 },
            ]
        );
        assert_eq!(findings.iter().filter(|f| f.is_integrity_failure()).count(), 3);
    }

    #[test]
    fn covering_finds_the_receipt_of_a_key() {
        let rows: Vec<_> = (1..=10).map(|k| row(k * 10, "x")).collect();
        let receipts = receipts_for(rows, 3); // 10..40, 50..70, 80..100
        assert_eq!(covering(&receipts, 10).map(|r| r.first_key), Some(10));
        assert_eq!(covering(&receipts, 45).map(|r| r.first_key), None, "between two ranges");
        assert_eq!(covering(&receipts, 70).map(|r| r.first_key), Some(50));
        assert_eq!(covering(&receipts, 100).map(|r| r.first_key), Some(80));
        assert!(covering(&receipts, 5).is_none() && covering(&receipts, 101).is_none());
        assert!(covering(&[], 1).is_none());
    }

    #[test]
    fn trailing_deletions_and_swapped_contents() {
        let rows: Vec<_> = (1..=4).map(|k| row(k, &format!("r{k}"))).collect();
        let receipts = receipts_for(rows.clone(), 2);
        // Rows 1 and 2 swapped their contents (a reorder); 4 deleted.
        let live = vec![row(1, "r2"), row(2, "r1"), row(3, "r3")];
        assert_eq!(
            compare_rows(&receipts, live, Some(4)),
            vec![Finding::Altered { key: 1 }, Finding::Altered { key: 2 }, Finding::Deleted { key: 4 }]
        );
    }

    #[test]
    fn readings_checks_name_replays_gaps_and_bad_chains() {
        use crate::signatures::{KeyDirectory, KeyStatus, SignedReading, role};
        use alloy::signers::local::PrivateKeySigner;
        struct Dir(Address);
        impl KeyDirectory for &Dir {
            fn status(&self, online: Address) -> KeyStatus {
                if online == self.0 { KeyStatus::Active { role: role::DEVICE } } else { KeyStatus::Unknown }
            }
        }
        let dev = PrivateKeySigner::random();
        let d = crate::keys::domain(1, Address::ZERO);
        let stored = |key: i64, seq: u64, payload: &[u8]| StoredReading {
            key,
            signed: SignedReading::new(&dev, seq, seq, alloy::primitives::keccak256(payload), &d),
            payload: payload.to_vec(),
        };
        let mut readings = vec![stored(1, 1, b"a"), stored(2, 2, b"b"), stored(3, 5, b"c"), stored(4, 2, b"b")];
        readings[1].payload = b"changed".to_vec();
        let stranger = PrivateKeySigner::random();
        readings.push(StoredReading {
            key: 5,
            signed: SignedReading::new(&stranger, 1, 1, alloy::primitives::keccak256(b"s"), &d),
            payload: b"s".to_vec(),
        });
        let dir = Dir(dev.address());
        let findings = check_readings(&readings, &d, |_| &dir);
        assert!(findings.contains(&Finding::PayloadMismatch { key: 2 }));
        assert!(findings.contains(&Finding::Replayed { key: 4, device: dev.address(), sequence: 2 }));
        assert!(findings.contains(&Finding::SequenceGap { device: dev.address(), after: 2, next: 5 }));
        assert!(findings.iter().any(|f| matches!(f, Finding::BadSignature { key: 5, .. })));
        assert_eq!(findings.len(), 4);
    }

    #[test]
    fn tampered_receipts_and_missing_roots() {
        let rows: Vec<_> = (1..=6).map(|k| row(k, "x")).collect();
        let mut receipts = receipts_for(rows, 2);
        receipts[0].rows[1].hash = row_hash(b"forged");
        let root = receipts[1].anchor.anchored_root;
        let findings = check_receipts(&receipts, |_| false);
        assert!(matches!(findings[0], Finding::ReceiptTampered { first_key: 1, last_key: 3, .. }));
        assert_eq!(findings[1], Finding::RootNotOnChain { first_key: 4, last_key: 6, root });
    }
}
