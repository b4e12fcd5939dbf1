//! The audit of a table in a database, held against a chain: the latest
//! block, then the store's snapshot and the live rows from Postgres, then the table's anchors from
//! the chain ([`crate::anchors::TableAnchors::read`]), and — for `iot.readings` — every chain of
//! signatures at the block the chain says its row was anchored; then [`super::audit`].

use super::{AuditInput, AuditReport, Finding, StoredReading, audit, check_readings};
use crate::anchors::{TableAnchors, TableHistory};
use crate::contracts::IdentityRegistry;
use crate::receipt::{Receipt, RowHash};
use crate::registry_cache::RegistryCache;
use crate::store::receipts::PendingHints;
use crate::store::{StoreError, TableRef, iot, receipts};
use crate::{AddressBook, Error, Result, chain};
use alloy::primitives::Address;
use alloy::providers::DynProvider;

/// Rows per page of `iot.readings` while checking signatures.
const PAGE: i64 = 10_000;

/// How an audit runs.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// The identity to trust (offline or online address); None: the only one that anchored.
    pub anchorer: Option<Address>,
    /// Verify chains of signatures and sequences (None: for `iot.readings` only).
    pub signatures: Option<bool>,
    /// Overrides the `max_wait_secs` the daemon recorded, for the overdue warning.
    pub max_wait: Option<u64>,
    /// Seconds beyond `max_wait` before pending rows are overdue.
    pub grace_secs: u64,
}

/// The offline address of the identity `address` names: `address` itself, or the offline address
/// whose online key it is.
pub async fn resolve_owner(provider: &DynProvider, book: &AddressBook, address: Address) -> Result<Address> {
    let registry = IdentityRegistry::new(book.identity_registry(), provider);
    let offline = chain::call(registry.offlineOf(address)).await?;
    Ok(if offline == Address::ZERO { address } else { offline })
}

/// What the chain says of one receipt (`iotegrity receipt verify`, the explorer's receipt page).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptCheck {
    /// Whose anchors of the table are trusted, and why.
    pub trust: crate::anchors::Trust,
    /// The trusted identity's chain batch that backs the receipt, or why none does.
    pub anchored: std::result::Result<crate::anchors::AnchoredBatch, Finding>,
    /// `ReceiptAnchor.verifyReceipt` for the trusted identity (false when none is trusted).
    pub contract_verifies: bool,
    /// Other identities that anchored the same table id (not trusted).
    pub others: Vec<crate::anchors::OtherAnchorer>,
}

impl ReceiptCheck {
    /// The receipt is backed by the trusted identity's anchors, and the contract agrees.
    pub fn valid(&self) -> bool {
        self.anchored.is_ok() && self.contract_verifies
    }
}

/// Holds receipt `r` against the chain: the table's anchors by every identity, the one trusted
/// (`pinned`, an offline or online address, or the only one that anchored), the batch of its that
/// backs the receipt, and the contract's own `verifyReceipt`. The receipt's claims (its block, its
/// transaction) count for nothing: the chain's record is read.
pub async fn check_receipt(
    provider: &DynProvider,
    book: &AddressBook,
    r: &Receipt,
    pinned: Option<Address>,
) -> Result<ReceiptCheck> {
    let pinned = match pinned {
        Some(a) => Some(resolve_owner(provider, book, a).await?),
        None => None,
    };
    let anchors = TableAnchors::read(provider, book, r.table_id, None).await?;
    let trust = anchors.trust(pinned);
    let history = anchors.history(trust.owner());
    let anchored = super::match_receipt(&r.table, r, &history).cloned();
    let contract_verifies = match trust.owner() {
        Some(owner) => {
            let anchor = crate::contracts::ReceiptAnchor::new(book.receipt_anchor(), provider);
            let batch_proof: Vec<_> = r.proof.iter().map(|p| p.sibling).collect();
            let anchor_proof: Vec<_> = r.anchor_proof.iter().map(|p| p.sibling).collect();
            let sub_table = alloy::primitives::keccak256(crate::receipt::pack_rows(&r.rows));
            chain::call(anchor.verifyReceipt(owner, r.anchor.anchored_root, sub_table, batch_proof, anchor_proof))
                .await?
        }
        None => false,
    };
    let others = anchors.others(trust.owner());
    Ok(ReceiptCheck { trust, anchored, contract_verifies, others })
}

/// Audits `table`; `progress` hears how many rows have been read.
pub async fn audit_database(
    pool: &sqlx::PgPool,
    table: &TableRef,
    provider: &DynProvider,
    book: &AddressBook,
    opts: &AuditOptions,
    progress: impl FnMut(u64),
) -> Result<AuditReport> {
    let name = table.name();
    let pinned = match opts.anchorer {
        Some(a) => Some(resolve_owner(provider, book, a).await?),
        None => None,
    };
    // Anchors sent before this block have a plan in the store (planned before sending), so the
    // store read next either holds their receipts or records them as not confirmed.
    let store_block = chain::latest_block(provider).await?;
    let (receipts, hints, live) = audit_inputs(pool, table, progress)
        .await
        .map_err(|source| Error::Database { context: format!("cannot read {name}"), source })?;
    let anchors = TableAnchors::read(provider, book, crate::receipt::table_id(&name), None).await?;
    let mut report = audit(&AuditInput {
        table: &name,
        receipts: &receipts,
        live: &live,
        anchors: &anchors,
        store_block,
        pinned,
        pending: Some(&hints),
        max_wait: opts.max_wait,
        grace_secs: opts.grace_secs,
    });
    if opts.signatures.unwrap_or(name == "iot.readings") {
        let history = anchors.history(report.anchorer.owner());
        report.findings.extend(check_signatures(pool, provider, book, &history).await?);
    }
    Ok(report)
}

/// Verifies every reading's chain of signatures — each signer active at the block where the chain
/// says its row was anchored, or now if it is not anchored yet — and sequence numbers.
async fn check_signatures(
    pool: &sqlx::PgPool,
    provider: &DynProvider,
    book: &AddressBook,
    history: &TableHistory,
) -> Result<Vec<Finding>> {
    let mut cache = RegistryCache::new(book.identity_registry(), book.deployed_block);
    cache.sync(provider).await?;
    let domain = crate::signatures::domain_of(book);
    let mut readings: Vec<StoredReading> = Vec::new();
    let mut after = i64::MIN;
    loop {
        let page = iot::readings_page(pool, after, PAGE).await.map_err(|source| Error::Database {
            context: "cannot read iot.readings (is this the ingest table?)".into(),
            source,
        })?;
        let Some(last) = page.last() else { break };
        after = last.key;
        readings.extend(page);
    }
    let now = cache.synced_to();
    let anchored_at = |key: i64| history.covering(key).map_or(now, |b| b.block);
    Ok(check_readings(&readings, &domain, |key| cache.at_block(anchored_at(key))))
}

/// What an audit of `table` compares, read at once on two connections: the receipts store's
/// snapshot ([`receipts::snapshot`]), and the live rows hashed as they stream in.
async fn audit_inputs(
    pool: &sqlx::PgPool,
    table: &TableRef,
    progress: impl FnMut(u64),
) -> Result<(Vec<Receipt>, PendingHints, Vec<RowHash>), StoreError> {
    let name = table.name();
    let ((receipts, hints), live) = tokio::try_join!(
        receipts::snapshot(pool, &name),
        table.rows_with_progress(pool, i64::MIN, i64::MAX, None, progress)
    )?;
    Ok((receipts, hints, live))
}
