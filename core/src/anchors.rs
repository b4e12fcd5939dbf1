//! The chain's record of a table's anchors — the only evidence about anchors that the audit, the
//! receipt and bundle checks and the daemon's crash recovery trust (docs/receipts.md, "Threat
//! model"). Nothing in the service's database says what was anchored; this module reads it from
//! ReceiptAnchor's `RootHashStored` events and checks them against the contract's own count
//! (`tableOf`), so an RPC endpoint that leaves events out is noticed, not believed.
//!
//! On chain a table is `(owner, tableId)`: the owner is the offline address of the Service identity
//! whose online key anchored it. Which owner to trust is the auditor's choice ([`Trust`]): pinned
//! with `--anchorer`, or — said as such — the only identity that ever anchored the table id.

use crate::contracts::ReceiptAnchor;
use crate::receipt::{Receipt, split_sizes};
use crate::{AddressBook, Error, Result, chain};
use alloy::eips::BlockId;
use alloy::primitives::{Address, B256};
use alloy::providers::DynProvider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use serde::Serialize;
use std::collections::BTreeMap;

/// One batch as the chain anchored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchoredBatch {
    /// The table's identity (offline address).
    pub owner: Address,
    /// keccak256 of the table's qualified name.
    pub table_id: B256,
    /// The batch root.
    pub root: B256,
    /// The root stored on chain (the tree over the batch roots of one transaction).
    pub anchored_root: B256,
    /// First key of the batch.
    pub first_key: i64,
    /// Last key of the batch.
    pub last_key: i64,
    /// Rows in the batch.
    pub m: u32,
    /// Sub-tables in the batch.
    pub n: u32,
    /// Block of the anchoring transaction.
    pub block: u64,
    /// The anchoring transaction.
    pub tx: B256,
}

impl AnchoredBatch {
    /// Why receipt `r` (found by its batch root) does not match this chain batch; None if it does:
    /// the anchored root, the batch's size and key range, and the sub-table's place in it.
    pub fn disagreement(&self, r: &Receipt) -> Option<String> {
        let b = self;
        let chain = || {
            format!(
                "on chain batch root {} covers keys {}..{} with m={}, n={}, anchored under {} at block {}",
                b.root, b.first_key, b.last_key, b.m, b.n, b.anchored_root, b.block
            )
        };
        let sizes_fit =
            r.index < b.n && b.n <= b.m && split_sizes(b.m as usize, b.n as usize)[r.index as usize] == r.rows.len();
        if r.anchor.anchored_root != b.anchored_root
            || (r.m, r.n, r.batch_first_key, r.batch_last_key) != (b.m, b.n, b.first_key, b.last_key)
            || r.first_key < b.first_key
            || r.last_key > b.last_key
            || !sizes_fit
        {
            return Some(format!(
                "{}; the receipt says keys {}..{} of {}..{}, sub-table {} of m={}, n={}, anchored under {}",
                chain(),
                r.first_key,
                r.last_key,
                r.batch_first_key,
                r.batch_last_key,
                r.index,
                r.m,
                r.n,
                r.anchor.anchored_root
            ));
        }
        None
    }
}

/// One identity's anchored history of one table, in key order (which is the order of anchoring:
/// the contract keeps it append-only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableHistory {
    /// The batches.
    pub batches: Vec<AnchoredBatch>,
}

impl TableHistory {
    /// The last key anchored (every key up to it is covered by the history), None if nothing is.
    pub fn last_key(&self) -> Option<i64> {
        self.batches.last().map(|b| b.last_key)
    }

    /// The batch whose key range holds `key` (binary search).
    pub fn covering(&self, key: i64) -> Option<&AnchoredBatch> {
        self.covering_index(key).map(|i| &self.batches[i])
    }

    /// The position of [`TableHistory::covering`]'s batch.
    pub fn covering_index(&self, key: i64) -> Option<usize> {
        let i = self.batches.partition_point(|b| b.last_key < key);
        self.batches.get(i).filter(|b| b.first_key <= key).map(|_| i)
    }

    /// Rows anchored in all.
    pub fn rows(&self) -> u64 {
        self.batches.iter().map(|b| u64::from(b.m)).sum()
    }
}

/// Which identity an audit trusts for a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "trust", rename_all = "kebab-case")]
pub enum Trust {
    /// The auditor named it (`--anchorer`).
    Pinned {
        /// Its offline address.
        owner: Address,
    },
    /// Not pinned: the only identity that ever anchored this table id, trusted as such.
    Sole {
        /// Its offline address.
        owner: Address,
    },
    /// Not pinned, and several identities anchored this table id: the audit cannot choose.
    Ambiguous {
        /// Their offline addresses.
        owners: Vec<Address>,
    },
    /// Not pinned, and nobody ever anchored this table id.
    Unanchored,
}

impl Trust {
    /// The identity to trust among `owners` (every identity that anchored the table id):
    /// `pinned` if given (its history may be empty), else the only one.
    pub fn of(pinned: Option<Address>, owners: impl IntoIterator<Item = Address>) -> Self {
        if let Some(owner) = pinned {
            return Self::Pinned { owner };
        }
        let mut owners: Vec<Address> = owners.into_iter().collect();
        owners.sort();
        owners.dedup();
        match owners.as_slice() {
            [] => Self::Unanchored,
            [owner] => Self::Sole { owner: *owner },
            _ => Self::Ambiguous { owners },
        }
    }

    /// The trusted owner, if there is one.
    pub fn owner(&self) -> Option<Address> {
        match self {
            Self::Pinned { owner } | Self::Sole { owner } => Some(*owner),
            Self::Ambiguous { .. } | Self::Unanchored => None,
        }
    }
}

impl std::fmt::Display for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pinned { owner } => write!(f, "anchorer {owner} (pinned)"),
            Self::Sole { owner } => write!(
                f,
                "anchorer {owner} (NOT pinned: the only identity that anchored this table; pin it with --anchorer)"
            ),
            Self::Ambiguous { owners } => {
                let list: Vec<String> = owners.iter().map(ToString::to_string).collect();
                write!(f, "several identities anchored this table ({}): pin one with --anchorer", list.join(", "))
            }
            Self::Unanchored => write!(f, "no identity has anchored this table"),
        }
    }
}

/// An identity that anchored a table id but is not the trusted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OtherAnchorer {
    /// Its offline address.
    pub owner: Address,
    /// Batches it anchored under the table id.
    pub batches: usize,
}

/// Every identity's anchored history of one table id, as of one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableAnchors {
    /// keccak256 of the table's qualified name.
    pub table_id: B256,
    /// The block the histories are complete up to.
    pub complete_at: u64,
    /// Each identity's history, by offline address.
    pub by_owner: BTreeMap<Address, TableHistory>,
}

impl TableAnchors {
    /// The identity to trust: `pinned` if given (its history may be empty), else the only one.
    pub fn trust(&self, pinned: Option<Address>) -> Trust {
        Trust::of(pinned, self.by_owner.keys().copied())
    }

    /// The history of `owner` (empty if it never anchored this table).
    pub fn history(&self, owner: Option<Address>) -> TableHistory {
        owner.and_then(|o| self.by_owner.get(&o).cloned()).unwrap_or_default()
    }

    /// Identities other than `owner` that anchored this table id (worth saying: a stranger's
    /// anchors under the same name are what a database writer with a throwaway identity leaves).
    pub fn others(&self, owner: Option<Address>) -> Vec<OtherAnchorer> {
        self.by_owner
            .iter()
            .filter(|(o, _)| Some(**o) != owner)
            .map(|(o, h)| OtherAnchorer { owner: *o, batches: h.batches.len() })
            .collect()
    }

    /// Reads every `RootHashStored` of `table_id` from the deployment block up to `to` (the latest
    /// block if None), and checks each identity's history against `tableOf` at that block: the
    /// same number of batches, the same last key, key ranges increasing. A mismatch is an error
    /// (an endpoint that hides or invents events), never a finding.
    pub async fn read(provider: &DynProvider, book: &AddressBook, table_id: B256, to: Option<u64>) -> Result<Self> {
        let complete_at = match to {
            Some(block) => block,
            None => chain::latest_block(provider).await?,
        };
        let filter = Filter::new()
            .address(book.receipt_anchor())
            .event_signature(ReceiptAnchor::RootHashStored::SIGNATURE_HASH)
            .topic1(table_id);
        let logs = chain::logs(provider, &filter, book.deployed_block, complete_at).await?;
        let mut by_owner: BTreeMap<Address, TableHistory> = BTreeMap::new();
        for log in &logs {
            let batch = decode(log)?;
            by_owner.entry(batch.owner).or_default().batches.push(batch);
        }
        let contract = ReceiptAnchor::new(book.receipt_anchor(), provider);
        for (owner, history) in &by_owner {
            let record = contract
                .tableOf(*owner, table_id)
                .block(BlockId::number(complete_at))
                .call()
                .await
                .map_err(chain::contract_error)?;
            let in_order = history.batches.windows(2).all(|w| w[0].last_key < w[1].first_key);
            if record.batches != history.batches.len() as u64 || Some(record.lastKey) != history.last_key() || !in_order
            {
                return Err(Error::InconsistentRpc(format!(
                    "it returned {} anchors of table {table_id} by {owner} up to block {complete_at}, \
                     but the contract records {} ending at key {}",
                    history.batches.len(),
                    record.batches,
                    record.lastKey
                )));
            }
        }
        Ok(Self { table_id, complete_at, by_owner })
    }
}

/// A `RootHashStored` log as an [`AnchoredBatch`].
pub fn decode(log: &alloy::rpc::types::Log) -> Result<AnchoredBatch> {
    let bad = |what| Error::MalformedLog { event: "RootHashStored", what, source: None };
    let e = log
        .log_decode::<ReceiptAnchor::RootHashStored>()
        .map_err(|e| Error::MalformedLog { event: "RootHashStored", what: "undecodable", source: Some(Box::new(e)) })?
        .inner
        .data;
    Ok(AnchoredBatch {
        owner: e.owner,
        table_id: e.tableId,
        root: e.root,
        anchored_root: e.anchoredRoot,
        first_key: e.firstKey,
        last_key: e.lastKey,
        m: e.m,
        n: e.n,
        block: log.block_number.ok_or_else(|| bad("no block number"))?,
        tx: log.transaction_hash.ok_or_else(|| bad("no transaction hash"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(owner: u8, first: i64, last: i64) -> AnchoredBatch {
        AnchoredBatch {
            owner: Address::repeat_byte(owner),
            table_id: B256::ZERO,
            root: B256::repeat_byte(first as u8),
            anchored_root: B256::repeat_byte(first as u8),
            first_key: first,
            last_key: last,
            m: (last - first + 1) as u32,
            n: 1,
            block: 1,
            tx: B256::ZERO,
        }
    }

    #[test]
    fn trust_is_pinned_sole_ambiguous_or_nobody() {
        let mut anchors = TableAnchors::default();
        assert_eq!(anchors.trust(None), Trust::Unanchored);
        let pinned = Address::repeat_byte(9);
        assert_eq!(anchors.trust(Some(pinned)), Trust::Pinned { owner: pinned });
        anchors.by_owner.insert(Address::repeat_byte(1), TableHistory { batches: vec![batch(1, 1, 10)] });
        assert_eq!(anchors.trust(None), Trust::Sole { owner: Address::repeat_byte(1) });
        anchors.by_owner.insert(Address::repeat_byte(2), TableHistory { batches: vec![batch(2, 1, 10)] });
        assert!(matches!(anchors.trust(None), Trust::Ambiguous { ref owners } if owners.len() == 2));
        assert_eq!(anchors.trust(Some(Address::repeat_byte(1))).owner(), Some(Address::repeat_byte(1)));
        assert_eq!(
            anchors.others(Some(Address::repeat_byte(1))),
            vec![OtherAnchorer { owner: Address::repeat_byte(2), batches: 1 }]
        );
        assert!(anchors.history(Some(pinned)).batches.is_empty(), "a pinned stranger has no history");
    }

    #[test]
    fn covering_and_last_key() {
        let h = TableHistory { batches: vec![batch(1, 1, 10), batch(1, 15, 20)] };
        assert_eq!(h.last_key(), Some(20));
        assert_eq!(h.covering(10).map(|b| b.first_key), Some(1));
        assert_eq!(h.covering(12), None, "a gap between two batches");
        assert_eq!(h.covering(15).map(|b| b.first_key), Some(15));
        assert_eq!(h.covering(21), None);
        assert_eq!(h.rows(), 16);
        assert_eq!(TableHistory::default().last_key(), None);
    }
}
