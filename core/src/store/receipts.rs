//! The receipts store: the `iotegrity` schema, every read and write of it. The daemon records
//! here what it watches (`watermarks`), the batches it cut, the anchors it planned and sent, and
//! the receipts of confirmed anchors; the audit, `receipt verify` and `export` read it back. It is
//! never evidence (docs/receipts.md): the chain is, and everything read here is checked against it.

use super::StoreError;
use crate::merkle;
use crate::receipt::{Batch, RECEIPT_VERSION, Receipt, pack_rows, unpack_rows};
use alloy::primitives::{Address, B256};
use sqlx::Row;
use sqlx::postgres::PgPool;
use std::collections::HashMap;
use std::sync::Arc;

/// What the store says about a table's pending rows — hints, never evidence: they decide only
/// whether unanchored rows are reported as overdue (the audit's `Finding::Overdue`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingHints {
    /// Whether an iotegrityd ever recorded watching the table.
    pub watched: bool,
    /// The table's `max_wait_secs`, as the daemon recorded it.
    pub max_wait_secs: Option<u64>,
    /// Seconds since the daemon last looked at the table.
    pub seen_secs_ago: Option<f64>,
    /// Seconds the daemon has known of rows waiting to be cut.
    pub waiting_secs: Option<f64>,
    /// Age in seconds of the oldest batch cut but not anchored.
    pub oldest_cut_secs: Option<f64>,
    /// The last key cut into a batch.
    pub watermark: Option<i64>,
    /// Anchored roots the store records as sent but not confirmed (their receipts are not written).
    pub unconfirmed_roots: Vec<B256>,
}

/// A batch as the store keeps it: its id, its table and its rows.
#[derive(Debug)]
pub struct StoredBatch {
    /// `iotegrity.batches.id`.
    pub id: i64,
    /// `schema.table`.
    pub table: String,
    /// The rows and their split into sub-tables.
    pub batch: Batch,
}

/// An anchor planned (its anchored root fixed before anything is sent), maybe sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedAnchor {
    /// `iotegrity.anchors.id`.
    pub id: i64,
    /// The root of its batch roots' tree, as sent to ReceiptAnchor.
    pub anchored_root: B256,
    /// The transaction it was sent in, once sent.
    pub tx: Option<B256>,
}

/// Records `table` as watched: its watermark row (kept if it is there), its `max_wait_secs`, and
/// a first heartbeat.
pub async fn watch(pool: &PgPool, table: &str, max_wait_secs: u64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO iotegrity.watermarks (table_name, last_key, max_wait_secs, seen_at) VALUES ($1, NULL, $2, now()) \
         ON CONFLICT (table_name) DO UPDATE SET max_wait_secs = EXCLUDED.max_wait_secs, seen_at = now()",
    )
    .bind(table)
    .bind(i64::try_from(max_wait_secs).unwrap_or(i64::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// The last key of `table` cut into a batch (None: nothing cut yet, or not watched).
pub async fn watermark(pool: &PgPool, table: &str) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar::<_, Option<i64>>("SELECT last_key FROM iotegrity.watermarks WHERE table_name = $1")
        .bind(table)
        .fetch_optional(pool)
        .await?
        .flatten())
}

/// Records that the daemon looked at `table` now, and for how long rows have waited to be cut.
pub async fn heartbeat(pool: &PgPool, table: &str, waiting_secs: Option<f64>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE iotegrity.watermarks SET seen_at = now(), \
         waiting_since = now() - make_interval(secs => $2) WHERE table_name = $1",
    )
    .bind(table)
    .bind(waiting_secs)
    .execute(pool)
    .await?;
    Ok(())
}

/// Writes `batches` of `table` and moves its watermark from `mark` past them, in one transaction;
/// returns the batches' ids in order. A watermark that is no longer `mark` is a conflict.
pub async fn store_batches(
    pool: &PgPool,
    table: &str,
    mark: Option<i64>,
    batches: &[Batch],
) -> Result<Vec<i64>, StoreError> {
    let Some(last_batch) = batches.last() else { return Ok(vec![]) };
    let last = last_batch.key_range().1;
    let mut tx = pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE iotegrity.watermarks SET last_key = $1 WHERE table_name = $2 AND last_key IS NOT DISTINCT FROM $3",
    )
    .bind(last)
    .bind(table)
    .bind(mark)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(StoreError::Conflict { what: format!("the watermark of {table}") });
    }
    let (first_keys, last_keys): (Vec<i64>, Vec<i64>) = batches.iter().map(Batch::key_range).unzip();
    let ms: Vec<i32> = batches.iter().map(|b| b.rows.len() as i32).collect();
    let ns: Vec<i32> = batches.iter().map(|b| b.ranges.len() as i32).collect();
    let roots: Vec<Vec<u8>> = batches.iter().map(|b| b.root().to_vec()).collect();
    let packed: Vec<Vec<u8>> = batches.iter().map(|b| pack_rows(&b.rows)).collect();
    let ids: Vec<(i64, i64)> = sqlx::query_as(
        "INSERT INTO iotegrity.batches (table_name, first_key, last_key, m, n, root, rows) \
         SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::int[], $6::bytea[], $7::bytea[]) \
         RETURNING first_key, id",
    )
    .bind(table)
    .bind(&first_keys)
    .bind(&last_keys)
    .bind(&ms)
    .bind(&ns)
    .bind(&roots)
    .bind(&packed)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let by_first: HashMap<i64, i64> = ids.into_iter().collect();
    Ok(first_keys.iter().map(|k| by_first[k]).collect())
}

/// Plans one anchor over the oldest unanchored batches of `tables` (at most `max_batches`): fixes its
/// anchored root (the tree of their roots, [`merkle::anchor_tree`]) for ReceiptAnchor at
/// `contract` on `chain_id`, and claims the batches for it. None if no batch waits; the plan and
/// the number of batches it took otherwise.
pub async fn plan_anchor(
    pool: &PgPool,
    tables: &[String],
    max_batches: usize,
    chain_id: u64,
    contract: Address,
) -> Result<Option<(PlannedAnchor, usize)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, root FROM iotegrity.batches WHERE anchor_id IS NULL AND table_name = ANY($2) ORDER BY id LIMIT $1",
    )
    .bind(i64::try_from(max_batches).unwrap_or(i64::MAX))
    .bind(tables)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
    let roots = rows.iter().map(|r| hash32(r.try_get("root")?, "batch root")).collect::<Result<Vec<_>, _>>()?;
    let anchored_root = merkle::anchor_tree(&roots).root();
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO iotegrity.anchors (anchored_root, chain_id, contract, status) VALUES ($1, $2, $3, 'planned') RETURNING id",
    )
    .bind(anchored_root.as_slice())
    .bind(chain_id as i64)
    .bind(contract.as_slice())
    .fetch_one(&mut *tx)
    .await?;
    let claimed = sqlx::query("UPDATE iotegrity.batches SET anchor_id = $1 WHERE id = ANY($2) AND anchor_id IS NULL")
        .bind(id)
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if claimed != ids.len() as u64 {
        return Err(StoreError::Conflict { what: "the batches being planned".into() });
    }
    tx.commit().await?;
    Ok(Some((PlannedAnchor { id, anchored_root, tx: None }, ids.len())))
}

/// Every anchor planned and not yet confirmed whose first batch belongs to one of `tables`
/// (its finisher: exactly one daemon holds that table's lock, even if an anchor planned before a
/// takeover spans tables now held by several), oldest first.
pub async fn planned_anchors(pool: &PgPool, tables: &[String]) -> Result<Vec<PlannedAnchor>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.id, a.anchored_root, a.tx_hash FROM iotegrity.anchors a WHERE a.status = 'planned' \
         AND (SELECT b.table_name FROM iotegrity.batches b WHERE b.anchor_id = a.id ORDER BY b.id LIMIT 1) = ANY($1) \
         ORDER BY a.id",
    )
    .bind(tables)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let tx: Option<&[u8]> = r.try_get("tx_hash")?;
            Ok(PlannedAnchor {
                id: r.try_get("id")?,
                anchored_root: hash32(r.try_get("anchored_root")?, "anchored root")?,
                tx: tx.map(|h| hash32(h, "transaction hash")).transpose()?,
            })
        })
        .collect()
}

/// Records the transaction that anchor `id` was sent in (before waiting for it).
pub async fn record_sent(pool: &PgPool, id: i64, tx: B256) -> Result<(), StoreError> {
    sqlx::query("UPDATE iotegrity.anchors SET tx_hash = $1 WHERE id = $2")
        .bind(tx.as_slice())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The batches of anchor `anchor_id`, in id order: those in `kept` (cut by this process) as they
/// are, the others read back and checked against their stored roots.
pub async fn batches_of(
    pool: &PgPool,
    anchor_id: i64,
    kept: &HashMap<i64, Arc<StoredBatch>>,
) -> Result<Vec<Arc<StoredBatch>>, StoreError> {
    let kept_ids: Vec<i64> = kept.keys().copied().collect();
    let rows = sqlx::query(
        "SELECT id, table_name, root, n, CASE WHEN id = ANY($2) THEN NULL ELSE rows END AS rows \
         FROM iotegrity.batches WHERE anchor_id = $1 ORDER BY id",
    )
    .bind(anchor_id)
    .bind(&kept_ids)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get("id")?;
            let Some(packed) = r.try_get::<Option<Vec<u8>>, _>("rows")? else {
                return Ok(Arc::clone(&kept[&id]));
            };
            let rows = unpack_rows(&packed).ok_or_else(|| StoreError::malformed(format!("row list of batch {id}")))?;
            let batch = Batch::new(rows, usize::try_from(r.try_get::<i32, _>("n")?).unwrap_or(0));
            if batch.root() != hash32(r.try_get("root")?, "batch root")? {
                return Err(StoreError::malformed(format!(
                    "batch {id}: its rows no longer give its stored root (receipts store altered?)"
                )));
            }
            Ok(Arc::new(StoredBatch { id, table: r.try_get("table_name")?, batch }))
        })
        .collect()
}

/// Writes the receipts of anchor `id` (each with its batch's id, one INSERT for all) and marks the
/// anchor confirmed in transaction `tx` at `block`, in one transaction.
pub async fn confirm(
    pool: &PgPool,
    id: i64,
    tx: B256,
    block: u64,
    receipts: impl IntoIterator<Item = (i64, Receipt)>,
) -> Result<(), StoreError> {
    let mut cols = ReceiptColumns::default();
    for (batch_id, receipt) in receipts {
        cols.push(batch_id, receipt);
    }
    let mut db = pool.begin().await?;
    sqlx::query(
        "INSERT INTO iotegrity.receipts (batch_id, sub_index, table_name, first_key, last_key, receipt, rows) \
         SELECT b, i, t, f, l, r::jsonb, w \
         FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::bytea[]) \
         AS x(b, i, t, f, l, r, w)",
    )
    .bind(&cols.batch_id)
    .bind(&cols.sub_index)
    .bind(&cols.table_name)
    .bind(&cols.first_key)
    .bind(&cols.last_key)
    .bind(&cols.receipt)
    .bind(&cols.rows)
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "UPDATE iotegrity.anchors SET status = 'confirmed', tx_hash = $1, block_number = $2, confirmed_at = now() WHERE id = $3",
    )
    .bind(tx.as_slice())
    .bind(block as i64)
    .bind(id)
    .execute(&mut *db)
    .await?;
    db.commit().await?;
    Ok(())
}

/// The receipts of one anchor, column by column, for one `INSERT … SELECT FROM unnest`.
#[derive(Default)]
struct ReceiptColumns {
    batch_id: Vec<i64>,
    sub_index: Vec<i32>,
    table_name: Vec<String>,
    first_key: Vec<i64>,
    last_key: Vec<i64>,
    receipt: Vec<String>,
    rows: Vec<Vec<u8>>,
}

impl ReceiptColumns {
    fn push(&mut self, batch_id: i64, receipt: Receipt) {
        self.batch_id.push(batch_id);
        self.sub_index.push(receipt.index as i32);
        self.table_name.push(receipt.table.clone());
        self.first_key.push(receipt.first_key);
        self.last_key.push(receipt.last_key);
        let (json, rows) = to_store(receipt);
        self.receipt.push(json);
        self.rows.push(rows);
    }
}

/// A 32-byte value read back (a root or a hash).
fn hash32(bytes: &[u8], what: &str) -> Result<B256, StoreError> {
    B256::try_from(bytes).map_err(|_| StoreError::malformed(format!("{what}: {} bytes, not 32", bytes.len())))
}

/// Every receipt of `table` in key order (empty if the receipts store does not exist yet).
pub async fn load_receipts(pool: &PgPool, table: &str) -> Result<Vec<Receipt>, StoreError> {
    let mut conn = pool.acquire().await?;
    receipts_in(&mut conn, table).await
}

async fn store_exists(conn: &mut sqlx::PgConnection) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar("SELECT to_regclass('iotegrity.receipts') IS NOT NULL").fetch_one(&mut *conn).await?)
}

async fn receipts_in(conn: &mut sqlx::PgConnection, table: &str) -> Result<Vec<Receipt>, StoreError> {
    if !store_exists(conn).await? {
        return Ok(vec![]);
    }
    let stored: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT receipt::text, rows FROM iotegrity.receipts WHERE table_name = $1 ORDER BY first_key")
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
    stored.iter().map(|(json, rows)| from_store(json, rows.as_deref())).collect()
}

/// What the store says about `table`'s pending rows (hints for the overdue warning, and the
/// anchors it records as sent but not confirmed).
async fn pending_hints_in(conn: &mut sqlx::PgConnection, table: &str) -> Result<PendingHints, StoreError> {
    if !store_exists(conn).await? {
        return Ok(PendingHints::default());
    }
    let mut hints = PendingHints::default();
    let mark = sqlx::query(
        "SELECT last_key, max_wait_secs, extract(epoch FROM now() - seen_at)::float8 AS seen_ago, \
         extract(epoch FROM now() - waiting_since)::float8 AS waiting FROM iotegrity.watermarks WHERE table_name = $1",
    )
    .bind(table)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(mark) = mark {
        hints.watched = true;
        hints.watermark = mark.try_get("last_key")?;
        hints.max_wait_secs = mark.try_get::<Option<i64>, _>("max_wait_secs")?.map(|s| s.max(0) as u64);
        hints.seen_secs_ago = mark.try_get("seen_ago")?;
        hints.waiting_secs = mark.try_get("waiting")?;
    }
    let unconfirmed = "FROM iotegrity.batches b LEFT JOIN iotegrity.anchors a ON a.id = b.anchor_id \
                       WHERE b.table_name = $1 AND (a.id IS NULL OR a.status = 'planned')";
    hints.oldest_cut_secs = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT extract(epoch FROM now() - min(b.created_at))::float8 {unconfirmed}"
    )))
    .bind(table)
    .fetch_one(&mut *conn)
    .await?;
    let roots: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT a.anchored_root {unconfirmed} AND a.id IS NOT NULL"
    )))
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    hints.unconfirmed_roots = roots.iter().filter(|r| r.len() == 32).map(|r| B256::from_slice(r)).collect();
    Ok(hints)
}

/// The receipts of `table` and the store's hints about its pending rows, read in one snapshot
/// (a repeatable-read transaction), so a daemon writing meanwhile is seen before or after, whole.
pub async fn snapshot(pool: &PgPool, table: &str) -> Result<(Vec<Receipt>, PendingHints), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let receipts = receipts_in(&mut tx, table).await?;
    let hints = pending_hints_in(&mut tx, table).await?;
    tx.commit().await?;
    Ok((receipts, hints))
}

/// A receipt as the store keeps it: its JSON without `rows`, and the rows as the sub-table's bytes.
pub fn to_store(mut receipt: Receipt) -> (String, Vec<u8>) {
    let rows = pack_rows(&std::mem::take(&mut receipt.rows)); // an empty list is not serialized
    (serde_json::to_string(&receipt).expect("a receipt serializes"), rows)
}

/// The inverse of [`to_store`].
fn from_store(json: &str, rows: Option<&[u8]>) -> Result<Receipt, StoreError> {
    let bad = |what: String| StoreError::malformed(what);
    let mut receipt: Receipt = serde_json::from_str(json).map_err(|e| bad(format!("a stored receipt: {e}")))?;
    let packed = rows.ok_or_else(|| {
        bad(format!(
            "the receipt of rows {}..{} of {} has no row list: receipt format {} (this build reads format {RECEIPT_VERSION})",
            receipt.first_key, receipt.last_key, receipt.table, receipt.version
        ))
    })?;
    receipt.rows = unpack_rows(packed).ok_or_else(|| bad("a stored receipt's rows are not 40-byte entries".into()))?;
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{RowHash, row_hash};

    #[test]
    fn receipts_round_trip_through_the_store_and_format_1_is_named() {
        let rows = (1..6).map(|k| RowHash { key: k, hash: row_hash(&k.to_be_bytes()) }).collect();
        let b = Batch::new(rows, 2);
        let anchor = crate::receipt::tests::anchor_of(&b);
        let r = b.receipts("public.t", &anchor, &[]).remove(1);
        let (json, packed) = to_store(r.clone());
        assert!(!json.contains("\"rows\""), "{json}");
        assert_eq!(packed.len(), 2 * 40);
        assert_eq!(from_store(&json, Some(&packed)).unwrap(), r);
        let err = from_store(&json, None).unwrap_err().to_string();
        assert!(err.contains("rows 4..5 of public.t has no row list: receipt format 3"), "{err}");
        assert!(from_store(&json, Some(&packed[1..])).is_err());
    }
}
