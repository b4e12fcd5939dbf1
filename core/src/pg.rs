//! Postgres access shared by the service daemon and the auditor (feature `postgres`): session
//! settings that make the canonical row encoding stable, the canonical row query for any table
//! with an increasing integer key, and the receipts store's migrations.
//!
//! Canonical row encoding (receipt format 2): the row's line in PostgreSQL's `COPY` text format —
//! its columns in table order, each in its type's text form, tab-separated, `\N` for NULL,
//! backslash escapes — without the final newline, in a session with the settings of
//! [`SESSION_SETTINGS`]. It is the line `pg_dump` itself writes for the row, so it survives a dump
//! and restore by construction, and PostgreSQL renders it as fast as it can read the table
//! (docs/receipts.md).

use crate::audit::PendingHints;
use crate::receipt::{RECEIPT_VERSION, Receipt, RowHash, pack_rows, row_hash, unpack_rows};
use alloy::primitives::B256;
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
    ("lc_monetary", "C"),
    ("client_encoding", "UTF8"),
];

/// Rows handed to the hashing thread at a time (and between two progress reports).
pub const HASH_BATCH: usize = 1_024;

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

    /// The COPY statement that streams rows with `after < key <= upto` in key order (at most
    /// `limit`), each as `key ‖ TAB ‖ canonical bytes ‖ LF`. COPY takes no parameters: the bounds
    /// are integers and the identifiers were validated by [`TableRef::new`]. Quoted literals keep a
    /// bound a bigint (`-9223372036854775808` unquoted is numeric, which the key's index cannot
    /// serve); open ends (`i64::MIN`, `i64::MAX`) are left out, so reading a whole table is a plain
    /// ordered scan.
    fn copy_sql(&self, after: i64, upto: i64, limit: Option<i64>) -> String {
        let k = &self.key;
        let mut bounds = Vec::new();
        if after != i64::MIN {
            bounds.push(format!("\"{k}\" > '{after}'::bigint"));
        }
        if upto != i64::MAX {
            bounds.push(format!("\"{k}\" <= '{upto}'::bigint"));
        }
        let filter = if bounds.is_empty() { String::new() } else { format!(" WHERE {}", bounds.join(" AND ")) };
        let limit = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        format!("COPY (SELECT \"{k}\"::bigint, * FROM {}{filter} ORDER BY \"{k}\"{limit}) TO STDOUT", self.quoted())
    }

    /// Rows with `after < key <= upto`, in key order, at most `limit`: (key, keccak256 of the
    /// canonical bytes).
    pub async fn rows(
        &self,
        pool: &PgPool,
        after: i64,
        upto: i64,
        limit: Option<i64>,
    ) -> Result<Vec<RowHash>, sqlx::Error> {
        self.rows_with_progress(pool, after, upto, limit, |_| {}).await
    }

    /// As [`TableRef::rows`], telling `progress` how many rows have arrived so far (every
    /// [`HASH_BATCH`] rows). The rows are hashed on a blocking thread while PostgreSQL is still
    /// sending, so on two cores reading and hashing overlap instead of adding up.
    pub async fn rows_with_progress(
        &self,
        pool: &PgPool,
        after: i64,
        upto: i64,
        limit: Option<i64>,
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<RowHash>, sqlx::Error> {
        use futures_util::TryStreamExt;
        use sqlx::postgres::PgPoolCopyExt;
        let (send, mut recv) = tokio::sync::mpsc::channel::<Vec<alloy::primitives::bytes::Bytes>>(4);
        let hasher = tokio::task::spawn_blocking(move || {
            let (mut lines, mut rows) = (CopyLines::default(), Vec::new());
            while let Some(chunks) = recv.blocking_recv() {
                for chunk in &chunks {
                    lines.feed(chunk, |line| {
                        let (key, canonical) = split_key(line)?;
                        rows.push(RowHash { key, hash: row_hash(canonical) });
                        Ok(())
                    })?;
                }
            }
            lines.finish()?;
            Ok(rows)
        });
        let streamed = async {
            let mut stream = pool.copy_out_raw(&self.copy_sql(after, upto, limit)).await?;
            let (mut chunks, mut arrived) = (Vec::with_capacity(HASH_BATCH), 0);
            while let Some(chunk) = stream.try_next().await? {
                chunks.push(chunk); // PostgreSQL sends one row per message
                if chunks.len() == HASH_BATCH {
                    arrived += HASH_BATCH as u64;
                    progress(arrived);
                    if send.send(std::mem::replace(&mut chunks, Vec::with_capacity(HASH_BATCH))).await.is_err() {
                        break; // the hasher stopped at malformed output: its error is the answer
                    }
                }
            }
            let _ = send.send(chunks).await;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        drop(send);
        let hashed = hasher.await.map_err(|e| copy_error(format!("the hashing thread failed: {e}")))?;
        streamed?;
        hashed
    }

    /// Every row, as (key, canonical text), in key order.
    pub async fn all_canonical_rows(&self, pool: &PgPool) -> Result<Vec<(i64, String)>, sqlx::Error> {
        use futures_util::TryStreamExt;
        use sqlx::postgres::PgPoolCopyExt;
        let mut stream = pool.copy_out_raw(&self.copy_sql(i64::MIN, i64::MAX, None)).await?;
        let (mut lines, mut all) = (CopyLines::default(), Vec::new());
        while let Some(chunk) = stream.try_next().await? {
            lines.feed(&chunk, |line| {
                let (key, canonical) = split_key(line)?;
                let text = std::str::from_utf8(canonical)
                    .map_err(|_| copy_error(format!("row {key} is not UTF-8 (client_encoding must be UTF8)")))?;
                all.push((key, text.to_owned()));
                Ok(())
            })?;
        }
        lines.finish()?;
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

    /// SQL that makes the table wake the daemon (`NOTIFY iotegrity_rows`) on about one insert
    /// statement in `every` (docs/daemon.md). A NOTIFY per statement costs every inserting
    /// transaction a cluster-wide lock at commit; the daemon needs a wake-up about every `m / 4`
    /// rows. So the trigger draws, `random() * every < 1`, inside its PL/pgSQL body: a `WHEN`
    /// clause is parsed again for every statement, and a shared counter (`nextval`) makes
    /// concurrent writers contend, while the body's plan is cached per session and `random()`
    /// touches no shared state. Polling finds what the draws miss.
    pub fn notify_trigger_sql(&self, every: u64) -> String {
        let trig = self.notify_trigger_name();
        format!(
            "CREATE OR REPLACE FUNCTION iotegrity.notify_rows() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN \
               IF random() * TG_ARGV[0]::float8 < 1 THEN \
                 PERFORM pg_notify('iotegrity_rows', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME); \
               END IF; \
               RETURN NULL; \
             END $$; \
             DROP TRIGGER IF EXISTS \"{trig}\" ON {tbl}; \
             CREATE TRIGGER \"{trig}\" AFTER INSERT ON {tbl} FOR EACH STATEMENT \
             EXECUTE FUNCTION iotegrity.notify_rows('{every}');",
            every = every.max(1),
            tbl = self.quoted()
        )
    }

    /// SQL that removes the trigger of [`TableRef::notify_trigger_sql`] if it is there (and
    /// locks nothing if it is not).
    pub fn drop_notify_trigger_sql(&self) -> String {
        let trig = self.notify_trigger_name();
        format!(
            "DO $$ BEGIN \
               IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{trig}' AND tgrelid = to_regclass('{tbl}')) THEN \
                 DROP TRIGGER \"{trig}\" ON {tbl}; \
               END IF; \
             END $$;",
            tbl = self.quoted()
        )
    }

    fn notify_trigger_name(&self) -> String {
        format!("iotegrity_notify_{}_{}", self.schema, self.table)
    }
}

/// The oldest transaction still running (`xmin` of a fresh snapshot).
pub async fn current_xmin<'e, E: Executor<'e, Database = Postgres>>(db: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetch_one(db).await
}

fn copy_error(what: String) -> sqlx::Error {
    sqlx::Error::Protocol(format!("COPY output: {what}"))
}

/// Splits a COPY line `key ‖ TAB ‖ rest` into the key and the canonical bytes (`rest`).
fn split_key(line: &[u8]) -> Result<(i64, &[u8]), sqlx::Error> {
    let tab = line.iter().position(|&b| b == b'\t').ok_or_else(|| copy_error("a line without a key".into()))?;
    let key = std::str::from_utf8(&line[..tab])
        .ok()
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| copy_error(format!("{:?} is not an integer key", String::from_utf8_lossy(&line[..tab]))))?;
    Ok((key, &line[tab + 1..]))
}

/// Cuts COPY text output into lines. PostgreSQL sends one row per message, but the protocol does
/// not promise it, so a partial line is kept until its end arrives. Data newlines are escaped
/// (`\n`) in the text format: a raw LF always ends a row.
#[derive(Default)]
struct CopyLines {
    partial: Vec<u8>,
}

impl CopyLines {
    fn feed(
        &mut self,
        mut chunk: &[u8],
        mut line: impl FnMut(&[u8]) -> Result<(), sqlx::Error>,
    ) -> Result<(), sqlx::Error> {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                line(&chunk[..end])?;
            } else {
                self.partial.extend_from_slice(&chunk[..end]);
                line(&std::mem::take(&mut self.partial))?;
            }
            chunk = &chunk[end + 1..];
        }
        self.partial.extend_from_slice(chunk);
        Ok(())
    }

    fn finish(self) -> Result<(), sqlx::Error> {
        if self.partial.is_empty() { Ok(()) } else { Err(copy_error("the last row has no end".into())) }
    }
}

/// Every receipt of `table` in key order (empty if the receipts store does not exist yet).
pub async fn load_receipts(pool: &PgPool, table: &str) -> Result<Vec<Receipt>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    receipts_in(&mut conn, table).await
}

async fn store_exists(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT to_regclass('iotegrity.receipts') IS NOT NULL").fetch_one(&mut *conn).await
}

async fn receipts_in(conn: &mut sqlx::PgConnection, table: &str) -> Result<Vec<Receipt>, sqlx::Error> {
    if !store_exists(conn).await? {
        return Ok(vec![]);
    }
    let stored: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT receipt::text, rows FROM iotegrity.receipts WHERE table_name = $1 ORDER BY first_key")
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
    stored.iter().map(|(json, rows)| receipt_from_store(json, rows.as_deref())).collect()
}

/// What the store says about `table`'s pending rows (hints for the overdue warning, and the
/// anchors it records as sent but not confirmed).
async fn pending_hints_in(conn: &mut sqlx::PgConnection, table: &str) -> Result<PendingHints, sqlx::Error> {
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
pub async fn store_snapshot(pool: &PgPool, table: &str) -> Result<(Vec<Receipt>, PendingHints), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let receipts = receipts_in(&mut tx, table).await?;
    let hints = pending_hints_in(&mut tx, table).await?;
    tx.commit().await?;
    Ok((receipts, hints))
}

/// A receipt as the store keeps it: its JSON without `rows`, and the rows as the sub-table's bytes.
pub fn receipt_to_store(mut receipt: Receipt) -> (String, Vec<u8>) {
    let rows = pack_rows(&std::mem::take(&mut receipt.rows)); // an empty list is not serialized
    (serde_json::to_string(&receipt).expect("a receipt serializes"), rows)
}

/// The inverse of [`receipt_to_store`].
fn receipt_from_store(json: &str, rows: Option<&[u8]>) -> Result<Receipt, sqlx::Error> {
    let bad = |what: String| sqlx::Error::Decode(what.into());
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

/// What an audit of `table` compares, read at once on two connections: the store's snapshot
/// ([`store_snapshot`]), and the live rows hashed as they stream in (`progress` as in
/// [`TableRef::rows_with_progress`]).
pub async fn audit_inputs(
    pool: &PgPool,
    table: &TableRef,
    progress: impl FnMut(u64),
) -> Result<(Vec<Receipt>, PendingHints, Vec<RowHash>), sqlx::Error> {
    let name = table.name();
    let ((receipts, hints), live) = tokio::try_join!(
        store_snapshot(pool, &name),
        table.rows_with_progress(pool, i64::MIN, i64::MAX, None, progress)
    )?;
    Ok((receipts, hints, live))
}

/// A page of `iot.readings` (ingested readings with their chains), keys after `after`, in key order.
pub async fn readings_page(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<crate::audit::StoredReading>, sqlx::Error> {
    use alloy::primitives::{Address, Bytes};
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
    fn copy_lines_are_cut_at_raw_newlines_wherever_messages_end() {
        let text = b"1\tdev-1\t2.5\n-7\ta\\nb\t\\N\n";
        for split in 0..text.len() {
            let mut lines = CopyLines::default();
            let mut seen = Vec::new();
            for part in [&text[..split], &text[split..]] {
                lines
                    .feed(part, |l| {
                        let (key, bytes) = split_key(l)?;
                        seen.push((key, bytes.to_vec()));
                        Ok(())
                    })
                    .unwrap();
            }
            lines.finish().unwrap();
            assert_eq!(seen, vec![(1, b"dev-1\t2.5".to_vec()), (-7, b"a\\nb\t\\N".to_vec())], "split at {split}");
        }
        let mut cut = CopyLines::default();
        cut.feed(b"1\tx\n2\ty", |_| Ok(())).unwrap();
        assert!(cut.finish().is_err(), "a row without its end");
        assert!(split_key(b"x1\tdata").is_err());
        assert!(split_key(b"no key").is_err());
    }

    #[test]
    fn receipts_round_trip_through_the_store_and_format_1_is_named() {
        use crate::receipt::{AnchorRef, Batch};
        let rows = (1..6).map(|k| RowHash { key: k, hash: row_hash(&k.to_be_bytes()) }).collect();
        let b = Batch::new(rows, 2);
        let anchor = AnchorRef {
            chain_id: 1,
            contract: alloy::primitives::Address::ZERO,
            tx: alloy::primitives::B256::ZERO,
            block: 1,
            anchored_root: crate::merkle::tag_batch_root(b.root()),
        };
        let r = b.receipts("public.t", &anchor, &[]).remove(1);
        let (json, packed) = receipt_to_store(r.clone());
        assert!(!json.contains("\"rows\""), "{json}");
        assert_eq!(packed.len(), 2 * 40);
        assert_eq!(receipt_from_store(&json, Some(&packed)).unwrap(), r);
        let err = receipt_from_store(&json, None).unwrap_err().to_string();
        assert!(err.contains("rows 4..5 of public.t has no row list: receipt format 3"), "{err}");
        assert!(receipt_from_store(&json, Some(&packed[1..])).is_err());
    }

    #[test]
    fn copy_bounds_stay_bigint_literals_and_open_ends_are_left_out() {
        let t = TableRef::new("iot.readings", "id").unwrap();
        assert_eq!(
            t.copy_sql(-9, 40, Some(10)),
            "COPY (SELECT \"id\"::bigint, * FROM \"iot\".\"readings\" WHERE \"id\" > '-9'::bigint AND \"id\" <= '40'::bigint \
             ORDER BY \"id\" LIMIT 10) TO STDOUT"
        );
        assert_eq!(
            t.copy_sql(i64::MIN, i64::MAX, None),
            "COPY (SELECT \"id\"::bigint, * FROM \"iot\".\"readings\" ORDER BY \"id\") TO STDOUT"
        );
    }
}
