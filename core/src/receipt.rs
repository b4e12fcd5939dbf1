//! Blockchain receipts (paper §4, Figure 6): how a batch of rows becomes sub-tables, leaves, a
//! Merkle root and one receipt per sub-table — defined once, used by the daemon that makes them
//! and by the auditor that checks them. Format: docs/receipts.md.
//!
//! A row's hash is keccak256 of its canonical encoding (its `COPY` text line under pinned session
//! settings: `pg`). A sub-table's bytes are, for each row in key order,
//! `key as i64 big-endian ‖ row hash` (40 bytes a row), and its leaf is
//! keccak256(keccak256(bytes)). A receipt carries those bytes (`rows`, hex), so the stored row
//! hashes are proven by the anchored root, and an audit can name each altered, deleted or
//! inserted row.

use crate::merkle::{MerkleTree, ProofStep, leaf_of, process_proof, tag_batch_root};
use alloy::primitives::{Address, B256, keccak256};
use serde::{Deserialize, Serialize};

/// Identifier of a watched table on chain: keccak256 of its qualified name (`schema.table`).
pub fn table_id(qualified_name: &str) -> B256 {
    keccak256(qualified_name.as_bytes())
}

/// The hash of one row's canonical bytes.
pub fn row_hash(canonical: &[u8]) -> B256 {
    keccak256(canonical)
}

/// A row as receipts see it: its key and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowHash {
    /// The row's integer key.
    pub key: i64,
    /// keccak256 of its canonical encoding.
    pub hash: B256,
}

/// The receipt format this build writes and reads (3: batch roots tagged in the anchor tree, the
/// proof in two parts).
pub const RECEIPT_VERSION: u32 = 3;

/// A sub-table's bytes: (key as i64 big-endian ‖ row hash) per row, in key order.
pub fn pack_rows(rows: &[RowHash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 40);
    for r in rows {
        out.extend_from_slice(&r.key.to_be_bytes());
        out.extend_from_slice(r.hash.as_slice());
    }
    out
}

/// Unpacks [`pack_rows`]; `None` if the length is not a multiple of 40.
pub fn unpack_rows(bytes: &[u8]) -> Option<Vec<RowHash>> {
    if !bytes.len().is_multiple_of(40) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(40)
            .map(|c| RowHash {
                key: i64::from_be_bytes(c[..8].try_into().expect("8 bytes")),
                hash: B256::from_slice(&c[8..]),
            })
            .collect(),
    )
}

/// The leaf of a sub-table (rows in key order).
pub fn sub_table_leaf(rows: &[RowHash]) -> B256 {
    leaf_of(&pack_rows(rows))
}

/// Serde of a receipt's `rows`: the sub-table's bytes ([`pack_rows`]) as one 0x-hex string —
/// compact, and parsed at memory speed by an audit that reads millions of them.
mod packed_rows {
    use super::{RowHash, pack_rows, unpack_rows};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(rows: &[RowHash], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&alloy::hex::encode_prefixed(pack_rows(rows)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RowHash>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d).map_err(|_| {
            D::Error::custom("rows: expected the sub-table's bytes as a 0x-hex string (receipt format 2 or later)")
        })?;
        let bytes = alloy::hex::decode(text.as_ref()).map_err(|e| D::Error::custom(format!("rows: {e}")))?;
        unpack_rows(&bytes).ok_or_else(|| D::Error::custom("rows: length is not a multiple of 40 bytes"))
    }
}

/// Sizes of the `n` sub-tables of `m` rows: the first `m mod n` get one row more.
pub fn split_sizes(m: usize, n: usize) -> Vec<usize> {
    assert!(n >= 1 && n <= m, "need 1 <= n <= m");
    (0..n).map(|i| m / n + usize::from(i < m % n)).collect()
}

/// A batch cut into sub-tables, with its tree.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The rows, in key order.
    pub rows: Vec<RowHash>,
    /// Sub-table boundaries: `rows[ranges[i].0 .. ranges[i].1]`.
    pub ranges: Vec<(usize, usize)>,
    /// The tree over the sub-table leaves.
    pub tree: MerkleTree,
}

impl Batch {
    /// Builds a batch of `rows` (key order, at least one) in `n` sub-tables (capped at the row count).
    pub fn new(rows: Vec<RowHash>, n: usize) -> Self {
        let n = n.clamp(1, rows.len());
        let mut ranges = Vec::with_capacity(n);
        let mut start = 0;
        for size in split_sizes(rows.len(), n) {
            ranges.push((start, start + size));
            start += size;
        }
        let leaves: Vec<B256> = ranges.iter().map(|&(a, b)| sub_table_leaf(&rows[a..b])).collect();
        Self { tree: MerkleTree::new(&leaves), rows, ranges }
    }

    /// The batch root.
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// First and last key.
    pub fn key_range(&self) -> (i64, i64) {
        (self.rows[0].key, self.rows[self.rows.len() - 1].key)
    }

    /// One receipt per sub-table, for a batch of `table` anchored as described by `anchor`;
    /// `anchor_proof` is the tagged batch root's proof in the anchor tree (empty when anchored alone).
    pub fn receipts(&self, table: &str, anchor: &AnchorRef, anchor_proof: &[ProofStep]) -> Vec<Receipt> {
        let (batch_first_key, batch_last_key) = self.key_range();
        self.ranges
            .iter()
            .enumerate()
            .map(|(i, &(lo, hi))| {
                let rows = self.rows[lo..hi].to_vec();
                Receipt {
                    version: RECEIPT_VERSION,
                    table: table.to_owned(),
                    table_id: table_id(table),
                    m: self.rows.len() as u32,
                    n: self.ranges.len() as u32,
                    index: i as u32,
                    batch_first_key,
                    batch_last_key,
                    first_key: rows[0].key,
                    last_key: rows[rows.len() - 1].key,
                    rows,
                    leaf: self.tree.leaf(i),
                    batch_root: self.root(),
                    proof: self.tree.proof(i),
                    anchor_proof: anchor_proof.to_vec(),
                    anchor: anchor.clone(),
                }
            })
            .collect()
    }
}

/// Where and how a root was anchored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorRef {
    /// Chain id.
    pub chain_id: u64,
    /// ReceiptAnchor address.
    pub contract: Address,
    /// Transaction hash.
    pub tx: B256,
    /// Block number.
    pub block: u64,
    /// The root stored on chain: the tree over the tagged batch roots of its transaction
    /// ([`crate::merkle::anchor_tree`]).
    pub anchored_root: B256,
}

/// One receipt: proof that a sub-table's rows were anchored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// Format version ([`RECEIPT_VERSION`]).
    pub version: u32,
    /// Qualified table name.
    pub table: String,
    /// keccak256 of the table name.
    pub table_id: B256,
    /// Rows in the batch.
    pub m: u32,
    /// Sub-tables in the batch.
    pub n: u32,
    /// This sub-table's index (0-based).
    pub index: u32,
    /// First key of the batch.
    pub batch_first_key: i64,
    /// Last key of the batch.
    pub batch_last_key: i64,
    /// First key of this sub-table.
    pub first_key: i64,
    /// Last key of this sub-table.
    pub last_key: i64,
    /// The rows (key and hash) of this sub-table, in key order; serialized as the sub-table's
    /// bytes in hex ([`pack_rows`]). (Absent in the JSON column of the receipts store, which
    /// keeps them as bytea beside it.)
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "packed_rows")]
    pub rows: Vec<RowHash>,
    /// The sub-table's leaf.
    pub leaf: B256,
    /// The batch root.
    pub batch_root: B256,
    /// Proof from the leaf to the batch root.
    pub proof: Vec<ProofStep>,
    /// Proof from the tagged batch root to the anchored root. (Absent in format 2, which this
    /// build reads only to name its format.)
    #[serde(default)]
    pub anchor_proof: Vec<ProofStep>,
    /// The anchor.
    pub anchor: AnchorRef,
}

/// What is wrong with a receipt, checked offline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The rows do not hash to the leaf.
    #[error("its rows do not hash to its leaf")]
    RowsMismatch,
    /// The proof does not lead from the leaf to the batch root.
    #[error("its proof does not lead to its batch root")]
    BadProof,
    /// The anchor proof does not lead from the tagged batch root to the anchored root.
    #[error("its anchor proof does not lead to the anchored root")]
    BadAnchorProof,
    /// The rows are not in increasing key order, or the range does not match.
    #[error("its rows are out of order or outside its key range")]
    BadRange,
    /// Written in a format this build does not read.
    #[error("receipt format {0} is not supported (this build reads format {RECEIPT_VERSION})")]
    Version(u32),
}

impl Receipt {
    /// Offline checks: rows → leaf → proof → batch root → tag → anchor proof → anchored root.
    /// (Whether the chain backs that anchor is the audit's question: [`crate::audit::match_receipt`].)
    pub fn check(&self) -> Result<(), ReceiptError> {
        if self.version != RECEIPT_VERSION {
            return Err(ReceiptError::Version(self.version));
        }
        if self.rows.is_empty()
            || self.rows.windows(2).any(|w| w[0].key >= w[1].key)
            || self.rows[0].key != self.first_key
            || self.rows[self.rows.len() - 1].key != self.last_key
        {
            return Err(ReceiptError::BadRange);
        }
        if sub_table_leaf(&self.rows) != self.leaf {
            return Err(ReceiptError::RowsMismatch);
        }
        if process_proof(self.leaf, &self.proof) != self.batch_root {
            return Err(ReceiptError::BadProof);
        }
        if process_proof(tag_batch_root(self.batch_root), &self.anchor_proof) != self.anchor.anchored_root {
            return Err(ReceiptError::BadAnchorProof);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A receipt anchor for tests: batch `b` alone, anchored in block 1 of chain 1.
    pub(crate) fn anchor_of(b: &Batch) -> AnchorRef {
        AnchorRef {
            chain_id: 1,
            contract: Address::ZERO,
            tx: B256::ZERO,
            block: 1,
            anchored_root: tag_batch_root(b.root()),
        }
    }

    fn rows(keys: std::ops::Range<i64>) -> Vec<RowHash> {
        keys.map(|k| RowHash { key: k, hash: row_hash(format!("{{\"id\": {k}}}").as_bytes()) }).collect()
    }

    #[test]
    fn split_is_as_even_as_possible() {
        assert_eq!(split_sizes(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split_sizes(8, 4), vec![2, 2, 2, 2]);
        assert_eq!(split_sizes(5, 1), vec![5]);
        assert_eq!(split_sizes(3, 3), vec![1, 1, 1]);
    }

    #[test]
    fn batch_receipts_check_and_tampering_is_caught() {
        let b = Batch::new(rows(1..11), 4);
        assert_eq!(b.ranges, vec![(0, 3), (3, 6), (6, 8), (8, 10)]);
        assert_eq!(b.key_range(), (1, 10));
        let anchor = anchor_of(&b);
        let receipts = b.receipts("public.t", &anchor, &[]);
        let receipt = |i: usize| receipts[i].clone();
        assert_eq!((receipts[1].first_key, receipts[1].last_key, receipts[1].m, receipts[1].n), (4, 6, 10, 4));
        for i in 0..4 {
            receipt(i).check().unwrap();
        }
        let mut altered = receipt(1);
        altered.rows[0].hash = row_hash(b"changed");
        assert_eq!(altered.check(), Err(ReceiptError::RowsMismatch));
        let mut reordered = receipt(1);
        reordered.rows.swap(0, 1);
        assert_eq!(reordered.check(), Err(ReceiptError::BadRange));
        let mut other_root = receipt(2);
        other_root.anchor.anchored_root = B256::repeat_byte(1);
        assert_eq!(other_root.check(), Err(ReceiptError::BadAnchorProof));
        let mut untagged = receipt(2);
        untagged.anchor.anchored_root = untagged.batch_root; // the format-2 anchored root
        assert_eq!(untagged.check(), Err(ReceiptError::BadAnchorProof));
        let mut other_batch = receipt(2);
        other_batch.batch_root = B256::repeat_byte(2);
        assert_eq!(other_batch.check(), Err(ReceiptError::BadProof));
    }

    #[test]
    fn receipts_round_trip_as_json_with_packed_rows() {
        let b = Batch::new(rows(-2..3), 2);
        let anchor = anchor_of(&b);
        let r = b.receipts("public.t", &anchor, &[]).remove(0);
        let json = serde_json::to_value(&r).unwrap();
        let hex = json["rows"].as_str().unwrap();
        assert_eq!(hex.len(), 2 + 3 * 80, "three rows of 40 bytes");
        assert!(hex.starts_with("0xfffffffffffffffe"), "key -2 as i64 big-endian: {hex}");
        assert_eq!(serde_json::from_value::<Receipt>(json.clone()).unwrap(), r);
        let mut short = json.clone();
        short["rows"] = hex[..hex.len() - 2].into();
        assert!(serde_json::from_value::<Receipt>(short).unwrap_err().to_string().contains("multiple of 40"));
        let mut old = json;
        old["rows"] = serde_json::json!([{ "key": 1, "hash": B256::ZERO }]);
        assert!(serde_json::from_value::<Receipt>(old).unwrap_err().to_string().contains("receipt format 2 or later"));
        let mut v2 = r;
        v2.version = 2;
        assert_eq!(v2.check(), Err(ReceiptError::Version(2)));
    }

    #[test]
    fn n_is_capped_by_the_row_count() {
        let b = Batch::new(rows(1..3), 16);
        assert_eq!(b.ranges.len(), 2);
    }
}
