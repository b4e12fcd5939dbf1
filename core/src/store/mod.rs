//! The PostgreSQL side of iotegrity (feature `postgres`), one module per schema: [`table`] reads
//! any watched table (its canonical rows, streamed by COPY), [`receipts`] owns the `iotegrity`
//! schema (watermarks, batches, anchors, receipts), [`iot`] owns the `iot` schema (the readings,
//! aggregates and command feedback that the ingest API stores). This file holds what they share:
//! connections with the canonical session settings, the migrations, and the store's error.

pub mod dataset;
pub mod iot;
pub mod receipts;
pub mod table;

pub use table::TableRef;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres};
use std::str::FromStr;

/// The session settings the canonical row encoding depends on ([`table`]).
pub const SESSION_SETTINGS: &[(&str, &str)] = &[
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, YMD"),
    ("IntervalStyle", "iso_8601"),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("lc_monetary", "C"),
    ("client_encoding", "UTF8"),
];

/// The migrations of the `iotegrity` and `iot` schemas (`core/migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What can go wrong reading or writing a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or refused a statement.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A value read back is not one this build writes.
    #[error("malformed {what}")]
    Malformed {
        /// What, and where.
        what: String,
    },
    /// Another writer changed what this one had read: a second daemon writing without the lock.
    #[error("{what} changed meanwhile: is another daemon writing without the lock?")]
    Conflict {
        /// What changed, e.g. "the watermark of public.readings".
        what: String,
    },
}

impl StoreError {
    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        Self::Malformed { what: what.into() }
    }
}

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

/// The oldest transaction still running (`xmin` of a fresh snapshot).
pub async fn current_xmin<'e, E: Executor<'e, Database = Postgres>>(db: E) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetch_one(db).await
}
