//! Postgres access shared by the service daemon and the auditor (feature `postgres`): session
//! settings that make the canonical row encoding stable, the canonical row query for any table
//! with an increasing integer key, and the receipts store's migrations.
//!
//! Canonical row encoding: the UTF-8 text of `to_jsonb(row)::text`, with `TimeZone=UTC`,
//! `DateStyle=ISO, YMD`, `IntervalStyle=iso_8601`, `extra_float_digits=1` and
//! `bytea_output=hex`. jsonb orders keys deterministically and renders values from their stored
//! form, so the encoding survives `pg_dump` and restore (docs/receipts.md).

use crate::receipt::{RowHash, row_hash};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres, Row};
use std::str::FromStr;

/// The session settings the canonical encoding depends on.
pub const SESSION_SETTINGS: &[(&str, &str)] = &[
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "iso_8601"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
];

/// The receipts store's schema migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection options for `url` with the canonical session settings.
pub fn options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(url)?.options(SESSION_SETTINGS.iter().copied()).application_name("iotegrity"))
}

/// A pool with the canonical session settings.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options(url)?)
        .await
}

/// A watched table: a qualified name and its increasing integer key column, both validated as
/// plain lowercase identifiers so they can be quoted into SQL safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    schema: String,
    table: String,
    key: String,
}

impl TableRef {
    /// `name` is `schema.table` (or `table`, meaning `public.table`); `key` a column.
    pub fn new(name: &str, key: &str) -> Result<Self, String> {
        let (schema, table) = name.split_once('.').unwrap_or(("public", name));
        for part in [schema, table, key] {
            let ok = !part.is_empty()
                && part.len() <= 63
                && part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(format!("{part:?} is not a plain lowercase SQL identifier ([a-z_][a-z0-9_]*)"));
            }
        }
        Ok(Self { schema: schema.into(), table: table.into(), key: key.into() })
    }

    /// `schema.table`, as receipts name it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    fn quoted(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema, self.table)
    }

    /// Rows with `after < key <= upto`, in key order, at most `limit`, as (key, canonical text).
    /// (The identifiers in the dynamic SQL were validated by [`TableRef::new`].)
    pub async fn canonical_rows<'e, E: Executor<'e, Database = Postgres>>(
        &self,
        db: E,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        // The rows are chosen (and limited) in a subquery and rendered outside it: otherwise, when
        // the planner sorts instead of walking the key's index, it renders every qualifying row
        // before the LIMIT, and paging through a table becomes quadratic. `to_jsonb` of the
        // subquery's row is byte-identical to `to_jsonb` of the table's row (same names and types).
        let sql = format!(
            "SELECT t.\"{k}\"::bigint AS key, to_jsonb(t)::text AS canonical FROM \
             (SELECT * FROM {tbl} WHERE \"{k}\" > $1 AND \"{k}\" <= $2 ORDER BY \"{k}\" LIMIT $3) t \
             ORDER BY t.\"{k}\"",
            k = self.key,
            tbl = self.quoted()
        );
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(after).bind(upto).bind(limit).fetch_all(db).await
    }

    /// As [`TableRef::canonical_rows`], hashed: (key, keccak256 of the canonical bytes).
    pub async fn rows<'e, E: Executor<'e, Database = Postgres>>(
        &self,
        db: E,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<RowHash>, sqlx::Error> {
        let rows = self.canonical_rows(db, after, upto, limit).await?;
        Ok(rows.iter().map(|(key, text)| RowHash { key: *key, hash: row_hash(text.as_bytes()) }).collect())
    }

    /// Every row, as (key, canonical text), in key order (read in pages).
    pub async fn all_canonical_rows(&self, pool: &PgPool) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let mut all = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = self.canonical_rows(pool, after, i64::MAX, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.0;
            all.extend(page);
        }
        Ok(all)
    }

    /// Number of rows in the table.
    pub async fn count<'e, E: Executor<'e, Database = Postgres>>(&self, db: E) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {}", self.quoted()))).fetch_one(db).await
    }

    /// The transaction snapshot's `xmax` and the largest key, read in one statement (one snapshot).
    pub async fn snapshot_and_max_key<'e, E: Executor<'e, Database = Postgres>>(
        &self,
        db: E,
    ) -> Result<(i64, Option<i64>), sqlx::Error> {
        let sql = format!(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax, \
             (SELECT max(\"{k}\")::bigint FROM {tbl}) AS max_key",
            k = self.key,
            tbl = self.quoted()
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(db).await?;
        Ok((row.try_get("xmax")?, row.try_get("max_key")?))
    }

    /// SQL that makes the table notify `iotegrity_rows` on insert (LISTEN/NOTIFY wake-up).
    pub fn notify_trigger_sql(&self) -> String {
        let trig = format!("iotegrity_notify_{}_{}", self.schema, self.table);
        format!(
            "CREATE OR REPLACE FUNCTION iotegrity.notify_rows() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_notify('iotegrity_rows', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME); RETURN NULL; END $$; \
             DROP TRIGGER IF EXISTS \"{trig}\" ON {tbl}; \
             CREATE TRIGGER \"{trig}\" AFTER INSERT ON {tbl} FOR EACH STATEMENT EXECUTE FUNCTION iotegrity.notify_rows();",
            tbl = self.quoted()
        )
    }
}

/// The oldest transaction still running (`xmin` of a fresh snapshot).
pub async fn current_xmin<'e, E: Executor<'e, Database = Postgres>>(db: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetch_one(db).await
}

/// Packs row hashes as stored in `iotegrity.batches.rows`: (key i64 BE ‖ hash) per row.
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
                hash: alloy::primitives::B256::from_slice(&c[8..]),
            })
            .collect(),
    )
}

/// Every receipt of `table` in key order (empty if the receipts store does not exist yet).
pub async fn load_receipts(pool: &PgPool, table: &str) -> Result<Vec<crate::receipt::Receipt>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('iotegrity.receipts') IS NOT NULL").fetch_one(pool).await?;
    if !exists {
        return Ok(vec![]);
    }
    let texts: Vec<String> =
        sqlx::query_scalar("SELECT receipt::text FROM iotegrity.receipts WHERE table_name = $1 ORDER BY first_key")
            .bind(table)
            .fetch_all(pool)
            .await?;
    texts.iter().map(|t| serde_json::from_str(t).map_err(|e| sqlx::Error::Decode(Box::new(e)))).collect()
}

/// The last key of `table` cut into a batch (None if none, or no receipts store).
pub async fn watermark(pool: &PgPool, table: &str) -> Result<Option<i64>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('iotegrity.watermarks') IS NOT NULL").fetch_one(pool).await?;
    if !exists {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT last_key FROM iotegrity.watermarks WHERE table_name = $1")
        .bind(table)
        .fetch_optional(pool)
        .await
}

/// A page of `iot.readings` (ingested readings with their chains), keys after `after`, in key order.
pub async fn readings_page(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<crate::audit::StoredReading>, sqlx::Error> {
    use alloy::primitives::{Address, B256, Bytes};
    let rows = sqlx::query(
        "SELECT id, device, sequence, device_time, payload, payload_hash, signatures FROM iot.readings \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let device: Vec<u8> = r.try_get("device")?;
            let hash: Vec<u8> = r.try_get("payload_hash")?;
            let sigs: Vec<Vec<u8>> = r.try_get("signatures")?;
            let bad = |what: &str| sqlx::Error::Decode(format!("iot.readings: malformed {what}").into());
            Ok(crate::audit::StoredReading {
                key: r.try_get("id")?,
                signed: crate::signatures::SignedReading {
                    reading: crate::signatures::Reading {
                        device: Address::try_from(device.as_slice()).map_err(|_| bad("device"))?,
                        sequence: u64::try_from(r.try_get::<i64, _>("sequence")?).map_err(|_| bad("sequence"))?,
                        timestamp: u64::try_from(r.try_get::<i64, _>("device_time")?)
                            .map_err(|_| bad("device_time"))?,
                        payloadHash: B256::try_from(hash.as_slice()).map_err(|_| bad("payload_hash"))?,
                    },
                    signatures: sigs.into_iter().map(Bytes::from).collect(),
                },
                payload: r.try_get("payload")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated() {
        assert_eq!(TableRef::new("readings", "id").unwrap().name(), "public.readings");
        assert_eq!(TableRef::new("iot.meter_2", "seq").unwrap().name(), "iot.meter_2");
        for (t, k) in
            [("public.\"x\"", "id"), ("Readings", "id"), ("a.b.c", "id"), ("r", "id; drop"), ("", "id"), ("r", "")]
        {
            assert!(TableRef::new(t, k).is_err(), "{t} {k}");
        }
    }

    #[test]
    fn packing_round_trips() {
        let rows = vec![RowHash { key: -5, hash: row_hash(b"a") }, RowHash { key: 7, hash: row_hash(b"b") }];
        assert_eq!(unpack_rows(&pack_rows(&rows)).unwrap(), rows);
        assert!(unpack_rows(&[0u8; 41]).is_none());
    }
}
