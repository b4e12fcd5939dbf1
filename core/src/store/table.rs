//! Any watched table, read as receipts see it: a validated `schema.table` and its increasing
//! integer key ([`TableRef`]), its rows streamed by COPY and hashed as they arrive, its largest key
//! and snapshot, and the opt-in NOTIFY trigger that wakes the daemon.
//!
//! Canonical row encoding (receipt format 2): the row's line in PostgreSQL's `COPY` text format —
//! its columns in table order, each in its type's text form, tab-separated, `\N` for NULL,
//! backslash escapes — without the final newline, in a session with the settings of
//! [`super::SESSION_SETTINGS`]. It is the line `pg_dump` itself writes for the row, so it survives a dump
//! and restore by construction, and PostgreSQL renders it as fast as it can read the table
//! (docs/receipts.md).

use super::StoreError;
use crate::receipt::{RowHash, row_hash};
use sqlx::postgres::PgPool;
use sqlx::{Executor, Postgres, Row};

/// Rows handed to the hashing thread at a time (and between two progress reports).
pub const HASH_BATCH: usize = 1_024;

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
    ) -> Result<Vec<RowHash>, StoreError> {
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
    ) -> Result<Vec<RowHash>, StoreError> {
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
            Ok::<_, StoreError>(rows)
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
            Ok::<_, StoreError>(())
        }
        .await;
        drop(send);
        let hashed = hasher.await.map_err(|e| copy_error(format!("the hashing thread failed: {e}")))?;
        streamed?;
        hashed
    }

    /// Rows with `after < key <= upto` (`i64::MIN`, `i64::MAX`: the whole table), as (key,
    /// canonical text), in key order.
    pub async fn canonical_rows(&self, pool: &PgPool, after: i64, upto: i64) -> Result<Vec<(i64, String)>, StoreError> {
        use futures_util::TryStreamExt;
        use sqlx::postgres::PgPoolCopyExt;
        let mut stream = pool.copy_out_raw(&self.copy_sql(after, upto, None)).await?;
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

    /// The table's column names, in table order (the order of a canonical line's fields).
    pub async fn columns<'e, E: Executor<'e, Database = Postgres>>(&self, db: E) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 \
             AND NOT attisdropped ORDER BY attnum",
        )
        .bind(self.quoted())
        .fetch_all(db)
        .await
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

fn copy_error(what: String) -> StoreError {
    StoreError::malformed(format!("COPY output: {what}"))
}

/// Splits a COPY line `key ‖ TAB ‖ rest` into the key and the canonical bytes (`rest`).
fn split_key(line: &[u8]) -> Result<(i64, &[u8]), StoreError> {
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
        mut line: impl FnMut(&[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
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

    fn finish(self) -> Result<(), StoreError> {
        if self.partial.is_empty() { Ok(()) } else { Err(copy_error("the last row has no end".into())) }
    }
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
