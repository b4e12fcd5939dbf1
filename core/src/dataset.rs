//! Datasets of the job market (paper §5.1, steps 1 and 10): a key range of an anchored table, its
//! root h_S, and the batches that carry their own proof — defined once, used by the service that
//! offers a job and by the worker that checks every batch before it trains. Format:
//! docs/market.md, "Dataset root and batches".
//!
//! A dataset is a run of consecutive anchored sub-tables of one table: its leaves are exactly the
//! receipts' sub-table leaves, in key order, and h_S is the OpenZeppelin-compatible tree over them
//! ([`crate::merkle`]). One batch is one sub-table: its rows as canonical text, its receipt (without
//! the row hashes, which the worker recomputes from the text) and the leaf's proof to h_S. So a batch
//! proves both that it belongs to h_S and — through its receipt and the table's anchors read from
//! the chain — that its rows are the rows the table's identity anchored.

use crate::anchors::TableHistory;
use crate::merkle::{MerkleTree, ProofStep, verify};
use crate::receipt::{Receipt, RowHash, row_hash, table_id};
use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// What a job spec says about its dataset: enough for the worker to know when it has all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatasetRef {
    /// Qualified table name (`schema.table`).
    pub table: String,
    /// The table's identity on chain: the offline address of the Service that anchors it.
    pub owner: Address,
    /// First key of the first sub-table.
    pub first_key: i64,
    /// Last key of the last sub-table.
    pub last_key: i64,
    /// Number of sub-tables (leaves of h_S, batches to fetch).
    pub sub_tables: u32,
    /// h_S, the root over the sub-table leaves.
    pub root: B256,
}

/// Why receipts do not make a dataset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    /// No anchored sub-table lies wholly inside the range.
    #[error("no anchored sub-table of {table} lies wholly inside keys {first}..={last}")]
    Empty {
        /// The table.
        table: String,
        /// The range asked for.
        first: i64,
        /// The range asked for.
        last: i64,
    },
    /// Two consecutive receipts leave anchored rows out between them, or overlap.
    #[error("the receipts are not consecutive: keys {after} and {next} are not neighbouring sub-tables")]
    Gap {
        /// Last key of the earlier receipt.
        after: i64,
        /// First key of the later one.
        next: i64,
    },
}

/// A dataset as the service holds it: its receipts (with their row hashes), in key order, and the
/// tree over their leaves.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The table.
    pub table: String,
    /// The covered receipts, one per sub-table, in key order.
    pub receipts: Vec<Receipt>,
    tree: MerkleTree,
}

impl Dataset {
    /// The dataset of the sub-tables of `receipts` (a table's receipts, any order) that lie wholly
    /// inside `first..=last`. They must be consecutive: a sub-table whose receipt is missing in
    /// the middle of the range is an error, not a hole in the data.
    pub fn select(table: &str, receipts: &[Receipt], first: i64, last: i64) -> Result<Self, DatasetError> {
        let mut covered: Vec<Receipt> =
            receipts.iter().filter(|r| r.first_key >= first && r.last_key <= last).cloned().collect();
        covered.sort_by_key(|r| r.first_key);
        if covered.is_empty() {
            return Err(DatasetError::Empty { table: table.into(), first, last });
        }
        for w in covered.windows(2) {
            if !consecutive(&w[0], &w[1]) {
                return Err(DatasetError::Gap { after: w[0].last_key, next: w[1].first_key });
            }
        }
        let leaves: Vec<B256> = covered.iter().map(|r| r.leaf).collect();
        Ok(Self { table: table.into(), tree: MerkleTree::new(&leaves), receipts: covered })
    }

    /// h_S.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The spec's description of this dataset, anchored by `owner`.
    pub fn reference(&self, owner: Address) -> DatasetRef {
        DatasetRef {
            table: self.table.clone(),
            owner,
            first_key: self.receipts[0].first_key,
            last_key: self.receipts[self.receipts.len() - 1].last_key,
            sub_tables: self.receipts.len() as u32,
            root: self.root(),
        }
    }

    /// Batch `index` with its rows' canonical text (`rows`, in key order, as the table holds them
    /// now) and the table's column names.
    pub fn batch(&self, index: usize, columns: Vec<String>, rows: Vec<BatchRow>) -> DatasetBatch {
        let mut receipt = self.receipts[index].clone();
        receipt.rows.clear(); // the worker recomputes them from the text
        DatasetBatch { index: index as u32, columns, rows, receipt, proof: self.tree.proof(index) }
    }
}

/// True iff `b` is the sub-table right after `a`: the next one of the same chain batch, or the
/// first of the batch right after it (one key range further; the chain says whether any batch lies
/// between — [`Verifier`] asks it).
fn consecutive(a: &Receipt, b: &Receipt) -> bool {
    if a.batch_root == b.batch_root {
        b.index == a.index + 1
    } else {
        a.index + 1 == a.n && b.index == 0 && b.batch_first_key > a.batch_last_key
    }
}

/// One row of a batch: its key and its canonical text (the `COPY` text line of docs/receipts.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRow {
    /// The row's key.
    pub key: i64,
    /// The row's canonical text, whose keccak256 is the row hash its receipt proves.
    pub line: String,
}

/// One batch of a job's dataset, as the service sends it to the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetBatch {
    /// The batch's place among the dataset's sub-tables (0-based).
    pub index: u32,
    /// The table's column names, in table order (the order of the fields of each line).
    pub columns: Vec<String>,
    /// The sub-table's rows, in key order.
    pub rows: Vec<BatchRow>,
    /// The sub-table's receipt, without its row hashes.
    pub receipt: Receipt,
    /// The proof from the receipt's leaf to h_S.
    pub proof: Vec<ProofStep>,
}

/// Why a batch is refused. The worker never trains on a refused batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Its rows do not hash to its receipt's leaf, or the receipt's own proofs fail.
    #[error("batch {index}: {reason}")]
    Receipt {
        /// The batch.
        index: u32,
        /// What the receipt check found.
        reason: String,
    },
    /// The receipt is for another table.
    #[error("batch {index}: its receipt is for table {table}, the job's dataset is {expected}")]
    WrongTable {
        /// The batch.
        index: u32,
        /// The receipt's table.
        table: String,
        /// The dataset's.
        expected: String,
    },
    /// Its leaf is not under h_S.
    #[error("batch {index} (keys {first_key}..={last_key}): its sub-table is not under the job's dataset root {root}")]
    NotUnderRoot {
        /// The batch.
        index: u32,
        /// Its first key.
        first_key: i64,
        /// Its last key.
        last_key: i64,
        /// h_S.
        root: B256,
    },
    /// The chain does not back its receipt.
    #[error("batch {index} (keys {first_key}..={last_key}): the chain does not back its receipt: {reason}")]
    NotOnChain {
        /// The batch.
        index: u32,
        /// Its first key.
        first_key: i64,
        /// Its last key.
        last_key: i64,
        /// Why.
        reason: String,
    },
    /// It is not the sub-table that comes next in the dataset.
    #[error("batch {index} (keys {first_key}..={last_key}) is out of place: {reason}")]
    OutOfPlace {
        /// The batch.
        index: u32,
        /// Its first key.
        first_key: i64,
        /// Its last key.
        last_key: i64,
        /// Why.
        reason: String,
    },
    /// Fewer batches came than the dataset has.
    #[error("the dataset has {expected} sub-tables, {got} arrived")]
    Incomplete {
        /// Sub-tables in the dataset.
        expected: u32,
        /// Batches verified.
        got: u32,
    },
}

/// Checks a dataset's batches, in order, against h_S and the table's anchors as the chain records
/// them ([`crate::anchors::TableAnchors::read`], the history of [`DatasetRef::owner`]).
#[derive(Debug)]
pub struct Verifier<'h> {
    dataset: &'h DatasetRef,
    history: &'h TableHistory,
    /// (position in the history, sub-table index, last key) of the last verified batch.
    last: Option<(usize, u32, i64)>,
    verified: u32,
}

impl<'h> Verifier<'h> {
    /// A verifier for `dataset` over `history`.
    pub fn new(dataset: &'h DatasetRef, history: &'h TableHistory) -> Self {
        Self { dataset, history, last: None, verified: 0 }
    }

    /// Verifies the next batch and returns its rows' hashes; any failure names the batch and
    /// what is wrong with it.
    pub fn verify(&mut self, batch: &DatasetBatch) -> Result<Vec<RowHash>, BatchError> {
        let index = batch.index;
        let mut receipt = batch.receipt.clone();
        let (first_key, last_key) = (receipt.first_key, receipt.last_key);
        let out_of_place = |reason: String| BatchError::OutOfPlace { index, first_key, last_key, reason };
        if index != self.verified || index >= self.dataset.sub_tables {
            return Err(out_of_place(format!(
                "expected batch {} of the dataset's {}",
                self.verified, self.dataset.sub_tables
            )));
        }
        if receipt.table != self.dataset.table || receipt.table_id != table_id(&self.dataset.table) {
            return Err(BatchError::WrongTable { index, table: receipt.table, expected: self.dataset.table.clone() });
        }
        receipt.rows = batch.rows.iter().map(|r| RowHash { key: r.key, hash: row_hash(r.line.as_bytes()) }).collect();
        receipt.check().map_err(|e| BatchError::Receipt { index, reason: format!("its receipt fails: {e}") })?;
        if !verify(self.dataset.root, receipt.leaf, &batch.proof) {
            return Err(BatchError::NotUnderRoot { index, first_key, last_key, root: self.dataset.root });
        }
        let not_on_chain = |reason: String| BatchError::NotOnChain { index, first_key, last_key, reason };
        // The chain batch that holds the sub-table's keys (binary search: the history is in key
        // order) must be the receipt's batch.
        let at = self
            .history
            .covering_index(first_key)
            .filter(|&i| self.history.batches[i].root == receipt.batch_root)
            .ok_or_else(|| {
                not_on_chain(format!(
                    "{} never anchored batch root {} for {}",
                    self.dataset.owner, receipt.batch_root, self.dataset.table
                ))
            })?;
        if let Some(why) = self.history.batches[at].disagreement(&receipt) {
            return Err(not_on_chain(why));
        }
        let follows = match self.last {
            None => first_key == self.dataset.first_key,
            Some((prev_at, prev_index, _)) => {
                (at == prev_at && receipt.index == prev_index + 1)
                    || (at == prev_at + 1 && prev_index + 1 == self.history.batches[prev_at].n && receipt.index == 0)
            }
        };
        if !follows {
            let after = match self.last {
                None => format!("the dataset starts at key {}", self.dataset.first_key),
                Some((_, _, k)) => format!("it is not the anchored sub-table right after key {k}"),
            };
            return Err(out_of_place(after));
        }
        if index + 1 == self.dataset.sub_tables && last_key != self.dataset.last_key {
            return Err(out_of_place(format!("the dataset ends at key {}", self.dataset.last_key)));
        }
        self.last = Some((at, receipt.index, last_key));
        self.verified += 1;
        Ok(receipt.rows)
    }

    /// Batches verified so far.
    pub fn verified(&self) -> u32 {
        self.verified
    }

    /// Succeeds once every sub-table of the dataset has been verified.
    pub fn finish(&self) -> Result<(), BatchError> {
        if self.verified == self.dataset.sub_tables {
            Ok(())
        } else {
            Err(BatchError::Incomplete { expected: self.dataset.sub_tables, got: self.verified })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anchors::AnchoredBatch;
    use crate::merkle::{anchor_tree, tag_batch_root};
    use crate::receipt::{AnchorRef, Batch};

    const TABLE: &str = "public.t";
    const OWNER: Address = Address::repeat_byte(7);

    fn line(k: i64) -> String {
        format!("{k}\t{}.5\t\\N", k * 3)
    }

    /// Three batches of 10 rows (keys 1..=30), 3 sub-tables each, the first two anchored in one
    /// transaction: their receipts and the chain history.
    fn anchored() -> (Vec<Receipt>, TableHistory) {
        anchored_ranges(&[1..=10, 11..=20, 21..=30])
    }

    /// Batches of the key ranges (3 sub-tables each), the first two anchored in one transaction
    /// and each later one alone.
    fn anchored_ranges(ranges: &[std::ops::RangeInclusive<i64>]) -> (Vec<Receipt>, TableHistory) {
        let batches: Vec<Batch> = ranges
            .iter()
            .map(|keys| {
                Batch::new(keys.clone().map(|k| RowHash { key: k, hash: row_hash(line(k).as_bytes()) }).collect(), 3)
            })
            .collect();
        let mut txs = vec![vec![0usize, 1]];
        txs.extend((2..batches.len()).map(|i| vec![i]));
        let (mut receipts, mut history) = (Vec::new(), TableHistory::default());
        for (t, members) in txs.iter().enumerate() {
            let roots: Vec<B256> = members.iter().map(|&i| batches[i].root()).collect();
            let tree = anchor_tree(&roots);
            let anchor = AnchorRef {
                chain_id: 1,
                contract: Address::ZERO,
                tx: B256::repeat_byte(t as u8 + 1),
                block: t as u64 + 1,
                anchored_root: tree.root(),
            };
            for (j, &i) in members.iter().enumerate() {
                let b = &batches[i];
                receipts.extend(b.receipts(TABLE, &anchor, &tree.proof(j)));
                let (first_key, last_key) = b.key_range();
                history.batches.push(AnchoredBatch {
                    owner: OWNER,
                    table_id: table_id(TABLE),
                    root: b.root(),
                    anchored_root: tree.root(),
                    first_key,
                    last_key,
                    m: b.rows.len() as u32,
                    n: 3,
                    block: anchor.block,
                    tx: anchor.tx,
                });
            }
        }
        (receipts, history)
    }

    fn batches_of(d: &Dataset) -> Vec<DatasetBatch> {
        (0..d.receipts.len())
            .map(|i| {
                let r = &d.receipts[i];
                let rows = r.rows.iter().map(|h| BatchRow { key: h.key, line: line(h.key) }).collect();
                d.batch(i, vec!["id".into(), "x".into(), "y".into()], rows)
            })
            .collect()
    }

    fn verify_all(reference: &DatasetRef, history: &TableHistory, batches: &[DatasetBatch]) -> Result<u32, BatchError> {
        let mut v = Verifier::new(reference, history);
        for b in batches {
            v.verify(b)?;
        }
        v.finish()?;
        Ok(v.verified())
    }

    #[test]
    fn a_range_across_batches_and_anchors_verifies_batch_by_batch() {
        let (receipts, history) = anchored();
        // Sub-tables of 10 rows hold 4, 3 and 3. Keys 6..=26 hold wholly the sub-table 8..=10
        // (batch 1), all of batch 2 and 21..=24 (batch 3, anchored in another transaction).
        let d = Dataset::select(TABLE, &receipts, 6, 26).unwrap();
        let reference = d.reference(OWNER);
        assert_eq!((reference.first_key, reference.last_key, reference.sub_tables), (8, 24, 5));
        let leaves: Vec<B256> = d.receipts.iter().map(|r| r.leaf).collect();
        assert_eq!(reference.root, MerkleTree::new(&leaves).root(), "h_S is the tree over the receipts' leaves");
        let batches = batches_of(&d);
        assert_eq!(verify_all(&reference, &history, &batches), Ok(5));
        // The wire form drops the row hashes: the worker recomputes them from the text.
        let json = serde_json::to_value(&batches[0]).unwrap();
        assert!(json["receipt"].get("rows").is_none(), "{json}");
        let back: DatasetBatch = serde_json::from_value(json).unwrap();
        assert_eq!(back, batches[0]);
    }

    #[test]
    fn missing_receipts_in_the_middle_are_a_gap_not_a_smaller_dataset() {
        let (mut receipts, _) = anchored();
        receipts.remove(4); // keys 15..=17
        assert_eq!(Dataset::select(TABLE, &receipts, 1, 30).unwrap_err(), DatasetError::Gap { after: 14, next: 18 });
        assert!(matches!(Dataset::select(TABLE, &receipts, 2, 3), Err(DatasetError::Empty { .. })));
    }

    #[test]
    fn every_tampered_batch_is_refused_by_name() {
        let (receipts, history) = anchored();
        let d = Dataset::select(TABLE, &receipts, 1, 30).unwrap();
        let reference = d.reference(OWNER);
        let good = batches_of(&d);
        let refused = |mutate: &dyn Fn(&mut Vec<DatasetBatch>)| {
            let mut batches = good.clone();
            mutate(&mut batches);
            verify_all(&reference, &history, &batches).unwrap_err()
        };
        // An edited row (the database writer's attack): its hash no longer matches the leaf.
        let e = refused(&|b| b[2].rows[1].line = "8\t99.5\t\\N".into());
        assert!(matches!(e, BatchError::Receipt { index: 2, .. }), "{e}");
        // A dropped row, an invented row.
        assert!(matches!(
            refused(&|b| {
                b[1].rows.pop();
            }),
            BatchError::Receipt { index: 1, .. }
        ));
        let e = refused(&|b| b[1].rows.push(BatchRow { key: 7, line: line(7) }));
        assert!(matches!(e, BatchError::Receipt { index: 1, .. }), "{e}");
        // A whole sub-table re-hashed with its receipt rebuilt: consistent, but under no anchor
        // and no h_S.
        let mut forged = Batch::new(
            (1..=10).map(|k| RowHash { key: k, hash: row_hash(format!("{k}\t0\t\\N").as_bytes()) }).collect(),
            3,
        );
        let anchor = AnchorRef { anchored_root: tag_batch_root(forged.root()), ..receipts[0].anchor.clone() };
        let mut forged_receipt = forged.receipts(TABLE, &anchor, &[]).remove(0);
        forged_receipt.rows.clear();
        forged.rows.truncate(4);
        let e = refused(&|b| {
            b[0].receipt = forged_receipt.clone();
            b[0].rows =
                forged.rows.iter().map(|h| BatchRow { key: h.key, line: format!("{}\t0\t\\N", h.key) }).collect();
        });
        assert!(matches!(e, BatchError::NotUnderRoot { index: 0, .. }), "{e}");
        // A batch from outside h_S with a genuine receipt.
        let other = Dataset::select(TABLE, &receipts, 11, 20).unwrap();
        let e = refused(&|b| b[0] = batches_of(&other)[0].clone());
        assert!(matches!(e, BatchError::NotUnderRoot { .. }), "{e}");
        // The same sub-table twice, two swapped, one left out at the end.
        let e = refused(&|b| {
            b[1] = b[0].clone();
            b[1].index = 1;
        });
        assert!(matches!(e, BatchError::OutOfPlace { index: 1, .. }), "{e}");
        let e = refused(&|b| {
            b.swap(3, 4);
            b[3].index = 3;
            b[4].index = 4;
        });
        assert!(matches!(e, BatchError::OutOfPlace { index: 3, .. }), "{e}");
        assert_eq!(
            refused(&|b| {
                b.pop();
            }),
            BatchError::Incomplete { expected: 9, got: 8 }
        );
        // Another table's receipt.
        let e = refused(&|b| b[0].receipt.table = "public.other".into());
        assert!(matches!(e, BatchError::WrongTable { index: 0, .. }), "{e}");
    }

    #[test]
    fn a_receipt_the_chain_does_not_back_is_refused() {
        let (receipts, mut history) = anchored();
        let d = Dataset::select(TABLE, &receipts, 1, 30).unwrap();
        let reference = d.reference(OWNER);
        let batches = batches_of(&d);
        // The chain knows the first two batches only: the third was never anchored by the owner.
        let mut short = history.clone();
        short.batches.pop();
        let e = verify_all(&reference, &short, &batches).unwrap_err();
        assert!(matches!(e, BatchError::NotOnChain { index: 6, .. }), "{e}");
        assert!(e.to_string().contains("never anchored"), "{e}");
        // The chain records another anchored root for the second batch.
        history.batches[1].anchored_root = B256::repeat_byte(9);
        let e = verify_all(&reference, &history, &batches).unwrap_err();
        assert!(matches!(e, BatchError::NotOnChain { index: 3, .. }), "{e}");
    }

    #[test]
    fn a_dataset_that_skips_an_anchored_batch_is_out_of_place() {
        // Keys 21..=25 were anchored on chain between two other batches, and then their receipts
        // were deleted from the service's store: what is left looks consecutive (the keys jump,
        // as keys may), but the chain says a batch lies between.
        let (receipts, history) = anchored_ranges(&[1..=10, 11..=20, 21..=25, 31..=40]);
        let kept: Vec<Receipt> = receipts.into_iter().filter(|r| !(21..=25).contains(&r.first_key)).collect();
        let d = Dataset::select(TABLE, &kept, 11, 40).unwrap();
        assert_eq!(d.receipts.len(), 6);
        let e = verify_all(&d.reference(OWNER), &history, &batches_of(&d)).unwrap_err();
        assert!(matches!(e, BatchError::OutOfPlace { index: 3, .. }), "{e}");
        assert!(e.to_string().contains("right after key 20"), "{e}");
    }

    #[test]
    fn edited_rows_re_anchored_with_another_key_are_not_the_owners_data() {
        // A database writer edits rows 11..=20, rebuilds their receipts and h_S over them, and
        // anchors the forged batch under the same table name with a key of its own. Everything
        // is consistent except the anchoring identity: the owner's history refuses it.
        let (receipts, owner_history) = anchored();
        let (forged_receipts, mut stranger_history) = anchored_ranges(&[1..=10, 11..=20]);
        let edit = |k: i64| format!("{k}\t0.5\t\\N");
        let forged = Batch::new((11..=20).map(|k| RowHash { key: k, hash: row_hash(edit(k).as_bytes()) }).collect(), 3);
        let anchor = AnchorRef { anchored_root: tag_batch_root(forged.root()), ..forged_receipts[3].anchor.clone() };
        let mut mixed: Vec<Receipt> =
            receipts.iter().filter(|r| r.batch_root != receipts[3].batch_root).cloned().collect();
        mixed.extend(forged.receipts(TABLE, &anchor, &[]));
        stranger_history.batches[1].root = forged.root();
        stranger_history.batches[1].anchored_root = anchor.anchored_root;
        let d = Dataset::select(TABLE, &mixed, 1, 30).unwrap();
        let batches: Vec<DatasetBatch> = (0..d.receipts.len())
            .map(|i| {
                let r = &d.receipts[i];
                let text = |k: i64| if (11..=20).contains(&k) { edit(k) } else { line(k) };
                d.batch(i, vec![], r.rows.iter().map(|h| BatchRow { key: h.key, line: text(h.key) }).collect())
            })
            .collect();
        let reference = d.reference(OWNER);
        let e = verify_all(&reference, &owner_history, &batches).unwrap_err();
        assert!(matches!(e, BatchError::NotOnChain { index: 3, first_key: 11, .. }), "{e}");
        // The forged batch checks against the stranger's own anchors: trusting the spec's owner,
        // not whoever anchored the table name, is what refuses it.
        let mut v = Verifier::new(&reference, &stranger_history);
        for b in &batches[..6] {
            v.verify(b).unwrap();
        }
    }
}
