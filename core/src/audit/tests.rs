//! Unit tests of the audit's logic: the chain's history is built by hand here; the end-to-end
//! tests (`tests/tests/it/tamper.rs`) do the same attacks against a real chain and database.

use super::*;
use crate::anchors::TableAnchors;
use crate::receipt::{AnchorRef, row_hash};

const TABLE: &str = "public.t";

fn row(key: i64, content: &str) -> RowHash {
    RowHash { key, hash: row_hash(content.as_bytes()) }
}

fn rows(keys: impl IntoIterator<Item = i64>) -> Vec<RowHash> {
    keys.into_iter().map(|k| row(k, &format!("r{k}"))).collect()
}

/// A world: batches anchored by `owner` (one transaction each), their receipts, the live rows.
struct World {
    owner: Address,
    anchors: TableAnchors,
    receipts: Vec<Receipt>,
    live: Vec<RowHash>,
}

impl World {
    fn new() -> Self {
        let anchors = TableAnchors { table_id: table_id(TABLE), complete_at: 100, ..Default::default() };
        Self { owner: Address::repeat_byte(0xaa), anchors, receipts: vec![], live: vec![] }
    }

    /// Anchors `batch_rows` in `n` sub-tables as `owner` of `table`; returns the receipts (also
    /// kept as stored ones when `owner` is the world's and `table` is TABLE).
    fn anchor_as(&mut self, owner: Address, table: &str, batch_rows: Vec<RowHash>, n: usize) -> Vec<Receipt> {
        let b = Batch::new(batch_rows, n);
        let block = 10 + self.anchors.by_owner.values().map(|h| h.batches.len() as u64).sum::<u64>();
        let anchored_root = crate::merkle::tag_batch_root(b.root());
        let anchor = AnchorRef {
            chain_id: 1,
            contract: Address::ZERO,
            tx: B256::repeat_byte(block as u8),
            block,
            anchored_root,
        };
        let (first_key, last_key) = b.key_range();
        if table == TABLE {
            self.anchors.by_owner.entry(owner).or_default().batches.push(AnchoredBatch {
                owner,
                table_id: table_id(table),
                root: b.root(),
                anchored_root,
                first_key,
                last_key,
                m: b.rows.len() as u32,
                n: b.ranges.len() as u32,
                block,
                tx: anchor.tx,
            });
        }
        b.receipts(table, &anchor, &[])
    }

    /// Anchors as the world's owner, stores the receipts and makes the rows live.
    fn anchor(&mut self, batch_rows: Vec<RowHash>, n: usize) {
        self.live.extend_from_slice(&batch_rows);
        let receipts = self.anchor_as(self.owner, TABLE, batch_rows, n);
        self.receipts.extend(receipts);
    }

    fn audit_with(&self, pinned: Option<Address>, pending: Option<&PendingHints>) -> AuditReport {
        let mut live = self.live.clone();
        live.sort_by_key(|r| r.key);
        let mut receipts = self.receipts.clone();
        receipts.sort_by_key(|r| r.first_key);
        audit(&AuditInput {
            table: TABLE,
            receipts: &receipts,
            live: &live,
            anchors: &self.anchors,
            store_block: self.anchors.complete_at,
            pinned,
            pending,
            max_wait: None,
            grace_secs: 0,
        })
    }

    fn audit(&self) -> AuditReport {
        self.audit_with(Some(self.owner), None)
    }
}

fn kinds(report: &AuditReport) -> Vec<String> {
    report.findings.iter().map(|f| serde_json::to_value(f).unwrap()["kind"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_clean_table_with_pending_rows() {
    let mut w = World::new();
    w.anchor(rows(1..=10), 3);
    w.anchor(rows(11..=20), 2);
    w.live.extend(rows(21..=22));
    let report = w.audit();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.findings, vec![Finding::Unanchored { key: 21 }, Finding::Unanchored { key: 22 }]);
    assert_eq!((report.anchored_rows, report.anchored_batches, report.receipts), (20, 2, 5));
    assert_eq!(report.anchorer, Trust::Pinned { owner: w.owner });
}

#[test]
fn each_kind_of_row_change_is_named_by_key() {
    let mut w = World::new();
    w.anchor((1..=10).map(|k| row(k * 10, &format!("r{k}"))).collect(), 3);
    w.live[2] = row(30, "changed"); // altered 30
    w.live.remove(5); // deleted 60
    w.live.push(row(15, "injected")); // inserted 15 (inside a sub-table's range)
    w.live.push(row(5, "below")); // inserted 5: below the first anchored key
    w.live.push(row(45, "between")); // inserted 45: between two sub-tables of one batch
    w.live.push(row(110, "new")); // pending
    let report = w.audit();
    assert_eq!(
        report.findings,
        vec![
            Finding::Inserted { key: 5 },
            Finding::Inserted { key: 15 },
            Finding::Altered { key: 30 },
            Finding::Inserted { key: 45 },
            Finding::Deleted { key: 60 },
            Finding::Unanchored { key: 110 },
        ]
    );
    assert_eq!(report.failures(), 5);
}

#[test]
fn a_row_between_two_anchored_batches_is_inserted_not_pending() {
    let mut w = World::new();
    w.anchor(rows(1..=5), 1);
    w.anchor(rows(10..=15), 1);
    w.live.push(row(7, "slipped in"));
    assert_eq!(w.audit().findings, vec![Finding::Inserted { key: 7 }]);
}

/// Attack 2: deleting a batch's receipts. The chain still holds the batch: receipt-missing, its
/// rows not reported as awaiting; and whether they still give the anchored root.
#[test]
fn deleted_receipts_are_missing_and_the_rows_are_held_against_the_root() {
    let mut w = World::new();
    w.anchor(rows(1..=10), 3);
    w.anchor(rows(11..=20), 2);
    w.receipts.retain(|r| r.batch_first_key != 11);
    let report = w.audit();
    assert_eq!(kinds(&report), vec!["receipt-missing"], "{report}");
    let Finding::ReceiptMissing { first_key, last_key, missing, live_rows, rows_match, block, .. } =
        &report.findings[0]
    else {
        unreachable!()
    };
    assert_eq!((*first_key, *last_key, missing.clone(), *live_rows), (11, 20, vec![0, 1], 10));
    assert_eq!((*rows_match, *block), (Some(true), 11), "rows intact, only the receipts are gone");
    // And an altered row among them: the range no longer gives the root.
    w.live[14] = row(15, "changed");
    let report = w.audit();
    assert!(matches!(report.findings[0], Finding::ReceiptMissing { rows_match: Some(false), .. }), "{report}");
    assert!(!report.is_clean());
}

/// The daemon writes receipts after its anchor confirms: a batch anchored after the store was read,
/// or recorded there as sent, is pending while its rows give the root — and missing once they don't.
#[test]
fn receipts_not_written_yet_are_pending_while_the_rows_give_the_root() {
    let mut w = World::new();
    w.anchor(rows(1..=10), 2);
    w.anchor(rows(11..=20), 2); // anchored at block 11
    w.receipts.retain(|r| r.batch_first_key != 11);
    let live = w.live.clone();
    let receipts = w.receipts.clone();
    let run = |store_block: u64, hints: Option<&PendingHints>, live: &[RowHash]| {
        audit(&AuditInput {
            table: TABLE,
            receipts: &receipts,
            live,
            anchors: &w.anchors,
            store_block,
            pinned: Some(w.owner),
            pending: hints,
            max_wait: None,
            grace_secs: 0,
        })
    };
    assert_eq!(kinds(&run(10, None, &live)), vec!["receipt-pending"], "anchored after the store was read");
    assert_eq!(kinds(&run(11, None, &live)), vec!["receipt-missing"], "anchored before: its receipts must be there");
    let root = w.anchors.by_owner[&w.owner].batches[1].anchored_root;
    let sent = PendingHints { watched: true, unconfirmed_roots: vec![root], ..Default::default() };
    let report = run(11, Some(&sent), &live);
    assert_eq!(kinds(&report), vec!["receipt-pending"], "recorded as sent, not confirmed");
    assert!(report.is_clean());
    let mut altered = live.clone();
    altered[12] = row(13, "changed");
    let report = run(10, Some(&sent), &altered);
    assert_eq!(kinds(&report), vec!["receipt-missing"], "rows that no longer give the root are never pending");
}

#[test]
fn one_missing_sub_table_is_named_and_the_rest_still_checked() {
    let mut w = World::new();
    w.anchor(rows(1..=9), 3); // sub-tables 1..3, 4..6, 7..9
    w.receipts.remove(1);
    w.live[0] = row(1, "changed");
    let report = w.audit();
    assert_eq!(kinds(&report), vec!["receipt-missing", "altered"], "{report}");
    assert!(matches!(
        &report.findings[0],
        Finding::ReceiptMissing { missing, live_rows: 3, rows_match: None, .. } if missing == &vec![1]
    ));
}

/// Attack 1: alter a row, re-anchor the batch with a throwaway identity, rewrite the receipts.
#[test]
fn receipts_re_anchored_by_a_stranger_are_not_on_chain_for_the_pinned_identity() {
    let mut w = World::new();
    w.anchor(rows(1..=10), 2);
    let stranger = Address::repeat_byte(0x66);
    let mut forged_rows = rows(1..=10);
    forged_rows[3] = row(4, "altered");
    w.live[3] = row(4, "altered");
    w.receipts = w.anchor_as(stranger, TABLE, forged_rows, 2);
    let report = w.audit();
    assert_eq!(kinds(&report), vec!["root-not-on-chain", "root-not-on-chain", "receipt-missing"], "{report}");
    assert!(matches!(report.findings[2], Finding::ReceiptMissing { rows_match: Some(false), live_rows: 10, .. }));
    assert_eq!(report.other_anchorers, vec![crate::anchors::OtherAnchorer { owner: stranger, batches: 1 }]);
    // Without a pin, two identities anchored the table: the audit cannot choose.
    let unpinned = w.audit_with(None, None);
    assert_eq!(kinds(&unpinned)[0], "anchorer-ambiguous", "{unpinned}");
    assert!(!unpinned.is_clean());
}

#[test]
fn a_sole_anchorer_is_trusted_but_said_to_be_unpinned() {
    let mut w = World::new();
    w.anchor(rows(1..=4), 1);
    let report = w.audit_with(None, None);
    assert_eq!(report.anchorer, Trust::Sole { owner: w.owner });
    assert!(report.is_clean());
    assert!(report.to_string().contains("NOT pinned"), "{report}");
    // Pinning an identity that never anchored it: the receipt is unbacked, the rows unanchored.
    let report = w.audit_with(Some(Address::repeat_byte(1)), None);
    assert_eq!(kinds(&report), vec!["root-not-on-chain", "unanchored", "unanchored", "unanchored", "unanchored"]);
}

#[test]
fn a_receipt_pointed_at_another_tables_root_is_caught() {
    let mut w = World::new();
    w.anchor(rows(1..=4), 1);
    let other_rows = (1..=4).map(|k| row(k, "another table's row")).collect();
    let other = w.anchor_as(w.owner, "public.other", other_rows, 1);
    let mut forged = other[0].clone();
    forged.table = TABLE.into();
    forged.table_id = table_id(TABLE);
    w.receipts = vec![forged];
    let report = w.audit();
    assert_eq!(kinds(&report), vec!["root-not-on-chain", "receipt-missing"], "{report}");
    // Left naming the other table, it is refused for that.
    w.receipts = other;
    let report = w.audit();
    assert!(report.to_string().contains("names table public.other"), "{report}");
}

#[test]
fn a_receipt_that_lies_about_its_batch_is_not_backed() {
    let mut w = World::new();
    w.anchor(rows(1..=10), 2);
    w.receipts[0].m = 5; // the chain says m = 10
    let report = w.audit();
    assert_eq!(kinds(&report), vec!["root-not-on-chain", "receipt-missing"], "{report}");
    assert!(report.findings[0].to_string().contains("m=10"), "{}", report.findings[0]);
}

#[test]
fn duplicate_receipts_prove_nothing_more() {
    let mut w = World::new();
    w.anchor(rows(1..=6), 2);
    let copy = w.receipts[0].clone();
    w.receipts.push(copy);
    assert!(w.audit().is_clean(), "the same receipt twice is harmless");
}

#[test]
fn tampered_receipts_are_named() {
    let mut w = World::new();
    w.anchor(rows(1..=6), 2);
    w.receipts[0].rows[1].hash = row_hash(b"forged");
    let report = w.audit();
    assert_eq!(kinds(&report), vec!["receipt-tampered", "receipt-missing"], "{report}");
}

#[test]
fn overdue_is_a_warning_from_the_databases_hints() {
    let mut w = World::new();
    w.anchor(rows(1..=4), 1);
    w.live.extend(rows(5..=7));
    let hints = |seen: f64, waiting: Option<f64>| PendingHints {
        watched: true,
        max_wait_secs: Some(10),
        seen_secs_ago: Some(seen),
        waiting_secs: waiting,
        oldest_cut_secs: None,
        watermark: Some(4),
        unconfirmed_roots: vec![],
    };
    let fresh = hints(1.0, Some(2.0));
    assert_eq!(w.audit_with(Some(w.owner), Some(&fresh)).warnings(), 0, "waiting less than max_wait");
    let stale = hints(600.0, Some(2.0));
    let report = w.audit_with(Some(w.owner), Some(&stale));
    assert!(report.is_clean(), "a warning, not tampering");
    let over = report.findings.iter().find(|f| f.severity() == Severity::Warning).unwrap();
    assert!(
        matches!(over, Finding::Overdue { first_key: 5, last_key: 7, rows: 3, reason } if reason.contains("last looked")),
        "{over}"
    );
    let stuck = hints(1.0, Some(30.0));
    assert!(w.audit_with(Some(w.owner), Some(&stuck)).to_string().contains("waited 30 s"));
    let never = PendingHints::default();
    assert!(w.audit_with(Some(w.owner), Some(&never)).to_string().contains("no iotegrityd"));
}

#[test]
fn a_leaf_of_another_batch_of_the_same_anchor_is_tampered() {
    // Two batches in one anchor: batch A's sub-table passed off as batch B's.
    let a = Batch::new(rows(1..=2), 2);
    let b = Batch::new(rows(3..=4), 2);
    let upper = crate::merkle::anchor_tree(&[a.root(), b.root()]);
    let anchor =
        AnchorRef { chain_id: 1, contract: Address::ZERO, tx: B256::ZERO, block: 1, anchored_root: upper.root() };
    let mut r = a.receipts(TABLE, &anchor, &upper.proof(0)).remove(0);
    r.check().unwrap();
    r.batch_root = b.root();
    r.anchor_proof = upper.proof(1);
    assert_eq!(r.check(), Err(crate::receipt::ReceiptError::BadProof));
}

#[test]
fn offline_claims_check_receipts_against_each_other() {
    let mut w = World::new();
    w.anchor(rows(1..=6), 2);
    let claimed = claimed_history(&w.receipts);
    assert_eq!(claimed.batches.len(), 1);
    assert_eq!((claimed.batches[0].first_key, claimed.batches[0].last_key, claimed.batches[0].n), (1, 6, 2));
}

#[test]
fn readings_checks_name_replays_gaps_and_bad_chains() {
    use crate::contracts::Role;
    use crate::signatures::{KeyDirectory, KeyStatus, SignedReading};
    use alloy::signers::local::PrivateKeySigner;
    struct Dir(Address);
    impl KeyDirectory for &Dir {
        fn status(&self, online: Address) -> KeyStatus {
            if online == self.0 { KeyStatus::Active { role: Role::Device } } else { KeyStatus::Unknown }
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
fn many_receipts_are_checked_in_parallel_and_findings_keep_their_receipt() {
    let mut w = World::new();
    w.anchor(rows(1..=500), 250);
    w.receipts[77].rows[0].hash = row_hash(b"forged");
    w.receipts[201].anchor.anchored_root = B256::repeat_byte(9);
    let named: Vec<(i64, String)> = w
        .audit()
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::ReceiptTampered { first_key, reason, .. } => Some((*first_key, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        named,
        vec![
            (155, "its rows do not hash to its leaf".to_owned()),
            (403, "its anchor proof does not lead to the anchored root".to_owned())
        ]
    );
}

#[test]
fn covering_finds_the_receipt_of_a_key() {
    let mut w = World::new();
    w.anchor((1..=10).map(|k| row(k * 10, "x")).collect(), 3); // 10..40, 50..70, 80..100
    let receipts = &w.receipts;
    assert_eq!(covering(receipts, 10).map(|r| r.first_key), Some(10));
    assert_eq!(covering(receipts, 45).map(|r| r.first_key), None, "between two ranges");
    assert_eq!(covering(receipts, 70).map(|r| r.first_key), Some(50));
    assert_eq!(covering(receipts, 100).map(|r| r.first_key), Some(80));
    assert!(covering(receipts, 5).is_none() && covering(receipts, 101).is_none());
    assert!(covering(&[], 1).is_none());
}

#[test]
fn a_key_that_ended_before_the_anchor_is_suspect_not_tampering() {
    use crate::contracts::Role;
    use crate::signatures::{KeyDirectory, KeyStatus, SignedReading};
    use alloy::signers::local::PrivateKeySigner;
    /// The device's key ended at block 10; the gateway's is active.
    struct Dir(Address, Address);
    impl KeyDirectory for &Dir {
        fn status(&self, online: Address) -> KeyStatus {
            match online {
                a if a == self.0 => KeyStatus::Inactive,
                a if a == self.1 => KeyStatus::Active { role: Role::Gateway },
                _ => KeyStatus::Unknown,
            }
        }
        fn ended(&self, online: Address) -> Option<(Role, u64)> {
            (online == self.0).then_some((Role::Device, 10))
        }
    }
    let (dev, gw) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let d = crate::keys::domain(1, Address::ZERO);
    let reading = |key: i64, seq: u64, hop: &PrivateKeySigner| {
        let mut signed = SignedReading::new(&dev, seq, 1_700_000_000, alloy::primitives::keccak256(b"p"), &d);
        signed.countersign(hop, &d);
        StoredReading { key, signed, payload: b"p".to_vec() }
    };
    // Row 1: sound but for the ended device key. Row 2: the same key, countersigned by a stranger.
    let readings = vec![reading(1, 1, &gw), reading(2, 2, &PrivateKeySigner::random())];
    let dir = Dir(dev.address(), gw.address());
    let findings = check_readings(&readings, &d, |_| &dir);
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert_eq!(
        findings[0],
        Finding::KeyClosedBeforeAnchor { key: 1, step: "device signature".into(), signer: dev.address(), ended_at: 10 }
    );
    assert_eq!(findings[0].severity(), Severity::Warning, "suspect, not evidence of tampering");
    assert!(findings[0].to_string().contains("SUSPECT"), "{}", findings[0]);
    assert!(
        matches!(&findings[1], Finding::BadSignature { key: 2, reason } if reason.contains("gateway hop 1")),
        "the real fault is named, not the ended key: {findings:?}"
    );
}

#[test]
fn a_finding_names_its_row_only_when_it_is_about_one() {
    assert_eq!(Finding::Altered { key: 7 }.row(), Some(7));
    assert_eq!(Finding::Deleted { key: -3 }.row(), Some(-3));
    let range = Finding::ReceiptTampered { first_key: 1, last_key: 10, reason: "x".into() };
    assert_eq!(range.row(), None, "a range is not one row");
}
