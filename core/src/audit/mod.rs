//! The audit: a table's live rows and its stored receipts, held against the chain's record of its
//! anchors, and every difference named (docs/receipts.md). This is the one audit: `iotegrity
//! audit`, `verify-bundle` and `receipt verify` all come here.
//!
//! Nothing the service's database holds is evidence by itself. The chain is: the trusted
//! identity's anchored batches ([`crate::anchors::TableHistory`]) say which key ranges are
//! anchored, under which roots, with which m and n, at which block. So:
//! 1. each stored receipt is checked on its own ([`Receipt::check`]) and then against the chain
//!    batch whose root it names — a receipt the chain does not back proves nothing;
//! 2. each chain batch needs its n receipts; one without them is **receipt-missing** (and its live
//!    rows are checked against the anchored root as a whole, when they can be);
//! 3. the rows the receipts prove are merged with the live rows in key order: **altered**,
//!    **deleted**, **inserted** (any live row at or below the table's last anchored key that no
//!    receipt holds: the daemon anchors every key in order, so nothing can arrive there later);
//! 4. rows above the last anchored key are pending — **awaiting-anchor** or **unanchored**, and
//!    **overdue** (a warning) when they have waited longer than the table's `max_wait_secs`.
//!
//! [`run`] feeds this from a database and a chain.

pub mod run;

use crate::anchors::{AnchoredBatch, OtherAnchorer, TableAnchors, TableHistory, Trust};
use crate::merkle::MerkleTree;
use crate::receipt::{Batch, Receipt, RowHash, table_id};
use crate::signatures::WhileActive;
use crate::store::iot::StoredReading;
use crate::store::receipts::PendingHints;
use alloy::primitives::{Address, B256};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// What is wrong (or pending) with a row, a receipt or a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", rename_all_fields = "camelCase")]
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
    /// A row appeared where the chain says everything was anchored.
    Inserted {
        /// Row key.
        key: i64,
    },
    /// A receipt fails its own checks (its rows, leaf or proof were changed), names another
    /// table, or repeats a sub-table.
    ReceiptTampered {
        /// First key of the sub-table.
        first_key: i64,
        /// Last key of the sub-table.
        last_key: i64,
        /// Which check failed.
        reason: String,
    },
    /// A receipt claims an anchor that the trusted identity never made for this table (or made
    /// with another range, m, n or anchored root).
    RootNotOnChain {
        /// First key of the sub-table.
        first_key: i64,
        /// Last key of the sub-table.
        last_key: i64,
        /// The batch root it names.
        root: B256,
        /// What the chain says instead.
        reason: String,
    },
    /// A batch anchored on chain has no receipt (for some or all of its sub-tables).
    ReceiptMissing {
        /// First key of the batch.
        first_key: i64,
        /// Last key of the batch.
        last_key: i64,
        /// The batch root on chain.
        root: B256,
        /// Block of its anchor.
        block: u64,
        /// The sub-tables without a receipt.
        missing: Vec<u32>,
        /// Live rows in the batch's range that no receipt holds (not checked row by row).
        live_rows: usize,
        /// With every receipt gone: whether the live rows of the range still give the anchored
        /// root (true: rows intact, only the receipts are gone). None when it cannot be told.
        rows_match: Option<bool>,
    },
    /// A batch anchored on chain whose receipts the store did not hold yet — anchored after the
    /// store was read, or recorded there as sent and not yet confirmed (the daemon writes receipts
    /// `confirmations` blocks after the anchor). A warning, given only while the live rows of the
    /// range still give the anchored root; otherwise it is receipt-missing.
    ReceiptPending {
        /// First key of the batch.
        first_key: i64,
        /// Last key of the batch.
        last_key: i64,
        /// The batch root on chain.
        root: B256,
        /// Block of its anchor.
        block: u64,
    },
    /// Several identities anchored this table and none was pinned: the audit cannot choose.
    AnchorerAmbiguous {
        /// Their offline addresses.
        owners: Vec<Address>,
    },
    /// Cut into a batch (per the database), anchor not on chain yet.
    AwaitingAnchor {
        /// Row key.
        key: i64,
    },
    /// Not yet cut into a batch.
    Unanchored {
        /// Row key.
        key: i64,
    },
    /// Unanchored rows waited longer than the table's `max_wait_secs`: the daemon may be down —
    /// or stopped on purpose. A warning: rows changed before their anchor leave no trace.
    Overdue {
        /// First pending key.
        first_key: i64,
        /// Last pending key.
        last_key: i64,
        /// Pending rows.
        rows: usize,
        /// Why they count as overdue.
        reason: String,
    },
    /// A stored reading's chain of signatures does not verify (at the block where its row was
    /// anchored, or now if it is not anchored yet): forged, or signed by a key that was not active.
    BadSignature {
        /// Row key.
        key: i64,
        /// Why, naming the step.
        reason: String,
    },
    /// A stored reading whose chain verifies only with a key that ended (rotated out, or its
    /// identity closed) before the row was anchored — or before now, if it is not anchored yet.
    /// Suspect, not proof: it may have arrived while the key was active and been anchored later
    /// (an honest service anchors a batch after up to `max_wait_secs`), or have been signed with
    /// the key after it ended (a leaked key is what gets closed). The database cannot tell which:
    /// when it arrived is the database's word.
    KeyClosedBeforeAnchor {
        /// Row key.
        key: i64,
        /// The step signed by that key.
        step: String,
        /// The key.
        signer: Address,
        /// The block at which it ended.
        ended_at: u64,
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
        device: Address,
        /// Its sequence number.
        sequence: u64,
    },
    /// Sequence numbers of a device skip: readings were dropped (or never sent).
    SequenceGap {
        /// The device.
        device: Address,
        /// Last sequence seen before the gap.
        after: u64,
        /// Next sequence seen.
        next: u64,
    },
}

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Not anchored yet: information.
    Info,
    /// Worth a look, not evidence of tampering (overdue rows).
    Warning,
    /// Evidence of tampering or loss, or an audit that cannot vouch for the table.
    Failure,
}

impl Finding {
    /// How much the finding weighs.
    pub fn severity(&self) -> Severity {
        match self {
            Self::AwaitingAnchor { .. } | Self::Unanchored { .. } => Severity::Info,
            Self::Overdue { .. } | Self::ReceiptPending { .. } | Self::KeyClosedBeforeAnchor { .. } => {
                Severity::Warning
            }
            _ => Severity::Failure,
        }
    }

    /// True for evidence of tampering or loss (and for a table whose anchorer cannot be chosen).
    pub fn is_integrity_failure(&self) -> bool {
        self.severity() == Severity::Failure
    }

    /// The one row the finding is about, if it is about one row (the explorer links its receipt).
    pub fn row(&self) -> Option<i64> {
        match self {
            Self::Altered { key }
            | Self::Deleted { key }
            | Self::Inserted { key }
            | Self::AwaitingAnchor { key }
            | Self::Unanchored { key }
            | Self::BadSignature { key, .. }
            | Self::KeyClosedBeforeAnchor { key, .. }
            | Self::PayloadMismatch { key }
            | Self::Replayed { key, .. } => Some(*key),
            _ => None,
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Altered { key } => write!(f, "row {key}: ALTERED since it was anchored"),
            Self::Deleted { key } => write!(f, "row {key}: DELETED after it was anchored"),
            Self::Inserted { key } => write!(f, "row {key}: INSERTED into an anchored range"),
            Self::ReceiptTampered { first_key, last_key, reason } => {
                write!(f, "receipt {first_key}..{last_key}: TAMPERED ({reason})")
            }
            Self::RootNotOnChain { first_key, last_key, reason, .. } => {
                write!(f, "receipt {first_key}..{last_key}: NOT ON CHAIN ({reason})")
            }
            Self::ReceiptMissing { first_key, last_key, block, missing, live_rows, rows_match, .. } => {
                write!(
                    f,
                    "rows {first_key}..{last_key}: RECEIPT MISSING for {} sub-table(s) of the batch anchored at block {block}",
                    missing.len()
                )?;
                match rows_match {
                    Some(true) => write!(f, "; its {live_rows} live rows still give the anchored root"),
                    Some(false) => write!(f, "; its {live_rows} live rows do NOT give the anchored root"),
                    None if *live_rows > 0 => write!(f, "; {live_rows} live rows there cannot be checked"),
                    None => Ok(()),
                }
            }
            Self::ReceiptPending { first_key, last_key, block, .. } => write!(
                f,
                "rows {first_key}..{last_key}: anchored at block {block}, receipts not written yet (the rows give the anchored root)"
            ),
            Self::AnchorerAmbiguous { owners } => {
                let list: Vec<String> = owners.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "ANCHORER AMBIGUOUS: {} identities anchored this table ({}); pin the one you trust with --anchorer",
                    owners.len(),
                    list.join(", ")
                )
            }
            Self::AwaitingAnchor { key } => write!(f, "row {key}: batched, awaiting its anchor"),
            Self::Unanchored { key } => write!(f, "row {key}: not anchored yet"),
            Self::Overdue { first_key, last_key, rows, reason } => {
                write!(f, "rows {first_key}..{last_key}: OVERDUE, {rows} row(s) not anchored in time ({reason})")
            }
            Self::BadSignature { key, reason } => write!(f, "row {key}: BAD SIGNATURE: {reason}"),
            Self::KeyClosedBeforeAnchor { key, step, signer, ended_at } => write!(
                f,
                "row {key}: SUSPECT: {step} by {signer}, a key rotated out or closed at block {ended_at}, before the row \
                 was anchored; it may have arrived while the key was active, or been signed after it ended"
            ),
            Self::PayloadMismatch { key } => write!(f, "row {key}: payload does not match its signed hash"),
            Self::Replayed { key, device, sequence } => {
                write!(f, "row {key}: REPLAY of device {device} sequence {sequence}")
            }
            Self::SequenceGap { device, after, next } => {
                write!(f, "device {device}: sequence jumps from {after} to {next} ({} missing)", next - after - 1)
            }
        }
    }
}

/// Everything one audit compares.
#[derive(Debug, Clone, Copy)]
pub struct AuditInput<'a> {
    /// `schema.table`.
    pub table: &'a str,
    /// The receipts as stored (untrusted), sorted by first key.
    pub receipts: &'a [Receipt],
    /// The live rows (key and hash), sorted by key.
    pub live: &'a [RowHash],
    /// Every identity's anchors of the table, from the chain (read after the store).
    pub anchors: &'a TableAnchors,
    /// The latest block before the store was read: receipts of batches anchored after it may not
    /// be in what was read.
    pub store_block: u64,
    /// The identity the auditor pinned, if any.
    pub pinned: Option<Address>,
    /// The database's hints about pending rows (None for a bundle).
    pub pending: Option<&'a PendingHints>,
    /// How long rows may wait before they are overdue, overriding the recorded `max_wait_secs`,
    /// plus a grace for the anchor to confirm.
    pub max_wait: Option<u64>,
    /// Seconds beyond `max_wait` before pending rows are overdue.
    pub grace_secs: u64,
}

/// The outcome of an audit.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// `schema.table`.
    pub table: String,
    /// The identity whose anchors were trusted, and why.
    pub anchorer: Trust,
    /// Other identities that anchored this table id, with their batch counts (not trusted).
    pub other_anchorers: Vec<OtherAnchorer>,
    /// The chain block the anchors were read up to.
    pub complete_at: u64,
    /// Live rows.
    pub rows: usize,
    /// Rows the trusted identity anchored, per the chain.
    pub anchored_rows: u64,
    /// Batches the trusted identity anchored, per the chain.
    pub anchored_batches: usize,
    /// Receipts in the store.
    pub receipts: usize,
    /// What was found, in key order within each kind of check.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Findings that are evidence of tampering or loss.
    pub fn failures(&self) -> usize {
        self.findings.iter().filter(|f| f.is_integrity_failure()).count()
    }

    /// Findings that are warnings.
    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.severity() == Severity::Warning).count()
    }

    /// True if nothing is evidence of tampering.
    pub fn is_clean(&self) -> bool {
        self.failures() == 0
    }
}

impl std::fmt::Display for AuditReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows; {} rows anchored on chain in {} batches up to block {}; {} receipts\n  {}",
            self.table,
            self.rows,
            self.anchored_rows,
            self.anchored_batches,
            self.complete_at,
            self.receipts,
            self.anchorer
        )?;
        for other in &self.other_anchorers {
            write!(f, "\n  also anchored by {} ({} batches): not trusted", other.owner, other.batches)?;
        }
        for finding in &self.findings {
            write!(f, "\n  {finding}")?;
        }
        if self.is_clean() {
            write!(f, "\nclean: every anchored row matches its receipt and the chain")?;
            if self.warnings() > 0 {
                write!(f, " ({} warning(s))", self.warnings())?;
            }
            Ok(())
        } else {
            write!(f, "\nTAMPERED: {} finding(s)", self.failures())
        }
    }
}

/// Runs the audit of one table (the signature checks of `iot.readings` are added by [`run`]).
pub fn audit(input: &AuditInput<'_>) -> AuditReport {
    let trust = input.anchors.trust(input.pinned);
    let history = input.anchors.history(trust.owner());
    let mut findings = Vec::new();
    if let Trust::Ambiguous { owners } = &trust {
        findings.push(Finding::AnchorerAmbiguous { owners: owners.clone() });
    }
    let proven = check_receipts(input.table, input.receipts, &history);
    findings.extend(proven.findings.iter().cloned());
    let unconfirmed: &[B256] = input.pending.map_or(&[], |p| &p.unconfirmed_roots);
    let late = |b: &AnchoredBatch| b.block > input.store_block || unconfirmed.contains(&b.anchored_root);
    let pending = compare_rows(&proven, input.live, &history, late, &mut findings);
    let watermark = input.pending.and_then(|p| p.watermark);
    for &key in &pending {
        findings.push(if watermark.is_some_and(|w| key <= w) {
            Finding::AwaitingAnchor { key }
        } else {
            Finding::Unanchored { key }
        });
    }
    if let Some(f) = overdue(&pending, input) {
        findings.push(f);
    }
    AuditReport {
        table: input.table.to_owned(),
        other_anchorers: input.anchors.others(trust.owner()),
        anchorer: trust,
        complete_at: input.anchors.complete_at,
        rows: input.live.len(),
        anchored_rows: history.rows(),
        anchored_batches: history.batches.len(),
        receipts: input.receipts.len(),
        findings,
    }
}

/// Checks one receipt against a table's chain history: its own checks, its table, and the chain
/// batch it names. Returns that batch (the anchor as the chain records it) or why not.
pub fn match_receipt<'h>(table: &str, r: &Receipt, history: &'h TableHistory) -> Result<&'h AnchoredBatch, Finding> {
    r.check().map_err(|e| Finding::ReceiptTampered {
        first_key: r.first_key,
        last_key: r.last_key,
        reason: e.to_string(),
    })?;
    let i = locate(table, r, history, |root| history.batches.iter().position(|b| b.root == root))?;
    Ok(&history.batches[i])
}

/// The index of the chain batch that backs receipt `r` (already checked offline), found by its
/// batch root with `find`; or the finding that says why none does.
fn locate(
    table: &str,
    r: &Receipt,
    history: &TableHistory,
    find: impl Fn(B256) -> Option<usize>,
) -> Result<usize, Finding> {
    if r.table != table || r.table_id != table_id(table) {
        return Err(Finding::ReceiptTampered {
            first_key: r.first_key,
            last_key: r.last_key,
            reason: format!("it names table {} ({}), not {table}", r.table, r.table_id),
        });
    }
    let not_on_chain = |reason: String| Finding::RootNotOnChain {
        first_key: r.first_key,
        last_key: r.last_key,
        root: r.batch_root,
        reason,
    };
    let i = find(r.batch_root).ok_or_else(|| {
        not_on_chain(format!("the trusted identity never anchored batch root {} for {table}", r.batch_root))
    })?;
    match history.batches[i].disagreement(r) {
        Some(why) => Err(not_on_chain(why)),
        None => Ok(i),
    }
}

/// What the receipts prove, held against the chain.
struct Proven {
    findings: Vec<Finding>,
    /// Rows proven by receipts that the chain backs, in key order.
    rows: Vec<RowHash>,
    /// Key ranges of those receipts, in key order.
    ranges: Vec<(i64, i64)>,
    /// Per chain batch (by index in the history): whether all its receipts are there.
    complete: Vec<bool>,
    /// Per chain batch: the index of its ReceiptMissing finding in `findings`.
    missing_finding: HashMap<usize, usize>,
}

fn check_receipts(table: &str, receipts: &[Receipt], history: &TableHistory) -> Proven {
    let mut findings = Vec::new();
    let by_root: HashMap<B256, usize> = history.batches.iter().enumerate().map(|(i, b)| (b.root, i)).collect();
    let mut claims: Vec<BTreeMap<u32, &Receipt>> = vec![BTreeMap::new(); history.batches.len()];
    for (r, offline) in receipts.iter().zip(offline_checks(receipts)) {
        let tampered =
            |reason: String| Finding::ReceiptTampered { first_key: r.first_key, last_key: r.last_key, reason };
        if let Err(e) = offline {
            findings.push(tampered(e.to_string()));
            continue;
        }
        match locate(table, r, history, |root| by_root.get(&root).copied()) {
            Err(f) => findings.push(f),
            Ok(i) => match claims[i].get(&r.index) {
                Some(earlier) if *earlier == r => {} // the same receipt stored twice proves nothing more
                Some(_) => findings.push(tampered(format!("a second, different receipt for sub-table {}", r.index))),
                None => {
                    claims[i].insert(r.index, r);
                }
            },
        }
    }
    let (mut rows, mut ranges, mut complete, mut missing_finding) =
        (Vec::new(), Vec::new(), Vec::new(), HashMap::new());
    for (i, (b, present)) in history.batches.iter().zip(&claims).enumerate() {
        let leaves: Vec<B256> = present.values().map(|r| r.leaf).collect();
        let whole = present.len() == b.n as usize && MerkleTree::new(&leaves).root() == b.root;
        complete.push(whole);
        for r in present.values() {
            rows.extend_from_slice(&r.rows);
            ranges.push((r.first_key, r.last_key));
        }
        if !whole {
            missing_finding.insert(i, findings.len());
            findings.push(Finding::ReceiptMissing {
                first_key: b.first_key,
                last_key: b.last_key,
                root: b.root,
                block: b.block,
                missing: (0..b.n).filter(|k| !present.contains_key(k)).collect(),
                live_rows: 0,
                rows_match: None,
            });
        }
    }
    Proven { findings, rows, ranges, complete, missing_finding }
}

/// Merges the proven rows with the live rows; pushes altered, deleted and inserted rows (and the
/// live rows of batches without their receipts) to `findings`; returns the keys of live rows above
/// the table's anchored history (pending).
fn compare_rows(
    proven: &Proven,
    live: &[RowHash],
    history: &TableHistory,
    late: impl Fn(&AnchoredBatch) -> bool,
    findings: &mut Vec<Finding>,
) -> Vec<i64> {
    let anchored_up_to = history.last_key();
    let in_receipt = |key: i64| {
        let i = proven.ranges.partition_point(|r| r.1 < key);
        proven.ranges.get(i).is_some_and(|r| r.0 <= key)
    };
    let mut unverified: BTreeMap<usize, Vec<RowHash>> = BTreeMap::new();
    let mut pending = Vec::new();
    let mut a = proven.rows.iter().peekable();
    for row in live {
        while let Some(gone) = a.peek().filter(|r| r.key < row.key) {
            findings.push(Finding::Deleted { key: gone.key });
            a.next();
        }
        if let Some(anchored) = a.peek().filter(|r| r.key == row.key) {
            if anchored.hash != row.hash {
                findings.push(Finding::Altered { key: row.key });
            }
            a.next();
            continue;
        }
        let batch = history.batches.partition_point(|b| b.last_key < row.key);
        let in_batch = history.batches.get(batch).is_some_and(|b| b.first_key <= row.key);
        if in_receipt(row.key) || (in_batch && proven.complete[batch]) {
            findings.push(Finding::Inserted { key: row.key });
        } else if in_batch {
            unverified.entry(batch).or_default().push(*row);
        } else if anchored_up_to.is_some_and(|last| row.key <= last) {
            findings.push(Finding::Inserted { key: row.key }); // below the first batch, or between two
        } else {
            pending.push(row.key);
        }
    }
    findings.extend(a.map(|r| Finding::Deleted { key: r.key }));
    for (batch, &at) in &proven.missing_finding {
        let rows = unverified.remove(batch).unwrap_or_default();
        let b = &history.batches[*batch];
        let Finding::ReceiptMissing { live_rows, rows_match, missing, .. } = &mut findings[at] else { continue };
        *live_rows = rows.len();
        if missing.len() == b.n as usize {
            let intact = rows.len() == b.m as usize && Batch::new(rows, b.n as usize).root() == b.root;
            *rows_match = Some(intact);
            if intact && late(b) {
                findings[at] = Finding::ReceiptPending {
                    first_key: b.first_key,
                    last_key: b.last_key,
                    root: b.root,
                    block: b.block,
                };
            }
        }
    }
    pending
}

/// The overdue warning for `pending` rows, if they waited too long by the database's hints.
fn overdue(pending: &[i64], input: &AuditInput<'_>) -> Option<Finding> {
    let (&first_key, &last_key) = (pending.first()?, pending.last()?);
    let hints = input.pending?;
    let warn = |reason: String| Some(Finding::Overdue { first_key, last_key, rows: pending.len(), reason });
    if !hints.watched {
        return warn("no iotegrityd has recorded watching this table".into());
    }
    let max_wait = input.max_wait.or(hints.max_wait_secs)?;
    let limit = (max_wait + input.grace_secs) as f64;
    if let Some(ago) = hints.seen_secs_ago.filter(|&s| s > limit) {
        return warn(format!("iotegrityd last looked at this table {ago:.0} s ago; max_wait_secs is {max_wait}"));
    }
    if let Some(age) = hints.oldest_cut_secs.filter(|&s| s > limit) {
        return warn(format!("a batch cut {age:.0} s ago is still not anchored; max_wait_secs is {max_wait}"));
    }
    if let Some(waited) = hints.waiting_secs.filter(|&s| s > limit) {
        return warn(format!("rows have waited {waited:.0} s to be cut; max_wait_secs is {max_wait}"));
    }
    None
}

/// Checks stored readings: each chain of signatures against `dir_for(row key)` — the registry as it
/// was when the row was anchored, or now if it is not anchored yet (a chain whose only fault is a
/// key that ended before then is [`Finding::KeyClosedBeforeAnchor`]) — each payload against its
/// signed hash, replays of a (device, sequence), and per-device sequence gaps.
pub fn check_readings<D: crate::signatures::KeyDirectory>(
    readings: &[StoredReading],
    domain: &alloy::sol_types::Eip712Domain,
    dir_for: impl Fn(i64) -> D,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut sequences: BTreeMap<Address, Vec<(u64, i64)>> = BTreeMap::new();
    for r in readings {
        if alloy::primitives::keccak256(&r.payload) != r.signed.reading.payloadHash {
            findings.push(Finding::PayloadMismatch { key: r.key });
        }
        let dir = dir_for(r.key);
        if let Err(e) = r.signed.verify(domain, &dir) {
            // Would it verify while each key that has ended was still active? Then the only fault
            // is a key that ended before the anchor: suspect. Otherwise the chain never verified.
            let finding = match r.signed.verify(domain, &WhileActive(&dir)) {
                Ok(signers) => {
                    signers.iter().find_map(|s| dir.ended(*s).map(|(_, at)| (*s, at))).map(|(signer, ended_at)| {
                        Finding::KeyClosedBeforeAnchor { key: r.key, step: e.step.to_string(), signer, ended_at }
                    })
                }
                Err(real) => Some(Finding::BadSignature { key: r.key, reason: real.to_string() }),
            };
            findings.push(finding.unwrap_or(Finding::BadSignature { key: r.key, reason: e.to_string() }));
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
/// (as the receipts store returns them). Binary search.
pub fn covering(receipts: &[Receipt], key: i64) -> Option<&Receipt> {
    let i = receipts.partition_point(|r| r.last_key < key);
    receipts.get(i).filter(|r| r.first_key <= key)
}

/// The history the receipts themselves claim (as if the chain had anchored exactly what they
/// say): for checking a bundle offline, where receipts can only be held against each other.
pub fn claimed_history(receipts: &[Receipt]) -> TableHistory {
    let mut seen = std::collections::HashSet::new();
    let mut batches: Vec<AnchoredBatch> = Vec::new();
    for r in receipts.iter().filter(|r| seen.insert(r.batch_root)) {
        batches.push(AnchoredBatch {
            owner: Address::ZERO,
            table_id: r.table_id,
            root: r.batch_root,
            anchored_root: r.anchor.anchored_root,
            first_key: r.batch_first_key,
            last_key: r.batch_last_key,
            m: r.m,
            n: r.n,
            block: r.anchor.block,
            tx: r.anchor.tx,
        });
    }
    batches.sort_by_key(|b| b.first_key);
    TableHistory { batches }
}

#[cfg(test)]
mod tests;
