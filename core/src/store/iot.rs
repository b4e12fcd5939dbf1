//! The `iot` schema, every read and write of it: the readings, aggregates and command feedback
//! that the ingest API stores once their signatures are checked (docs/ingest.md), and the pages of
//! readings the audit and `reading show` read back. Replays are refused by the unique
//! (device, sequence) of `iot.readings`.

use super::StoreError;
use crate::signatures::{Reading, SignedReading};
use crate::wire::{AggregateSubmission, FeedbackSubmission, ReadingSubmission};
use alloy::primitives::{Address, B256, Bytes};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};

/// A reading as stored in `iot.readings`, with its row key.
#[derive(Debug, Clone)]
pub struct StoredReading {
    /// Row key (`iot.readings.id`).
    pub key: i64,
    /// The signed chain as stored.
    pub signed: SignedReading,
    /// The stored payload.
    pub payload: Vec<u8>,
}

/// A verified reading and its signers (device first, then each gateway hop).
pub type VerifiedReading<'a> = (&'a ReadingSubmission, &'a [Address]);

/// Stores verified readings in one statement (atomic by itself: no transaction round trips); each
/// item's new id, or None for a replay (its (device, sequence) already stored, or earlier in `items`).
pub async fn insert_readings(pool: &PgPool, items: &[VerifiedReading<'_>]) -> Result<Vec<Option<i64>>, StoreError> {
    let mut conn = pool.acquire().await?;
    insert_readings_in(&mut conn, items, None).await
}

/// What storing an aggregate did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateInsert {
    /// Stored: the aggregate's id and its members' ids, in order.
    Stored(i64, Vec<i64>),
    /// Nothing stored: member `member` (0-based, the first such) is a replay.
    Replay {
        /// Which member.
        member: usize,
    },
}

/// Stores a verified aggregate by `gateway` and its members (each with its signers), all or
/// nothing: stored, or nothing at all if any member is a replay.
pub async fn insert_aggregate(
    pool: &PgPool,
    a: &AggregateSubmission,
    gateway: Address,
    member_signers: &[Vec<Address>],
) -> Result<AggregateInsert, StoreError> {
    let mut tx = pool.begin().await?;
    let aggregate_id: i64 = sqlx::query_scalar(
        "INSERT INTO iot.aggregates (group_id, aggregate_hash, gateway, signature) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(a.aggregate.groupId.as_slice())
    .bind(a.aggregate.aggregateHash.as_slice())
    .bind(gateway.as_slice())
    .bind(a.signature.as_ref())
    .fetch_one(&mut *tx)
    .await?;
    let members: Vec<_> = a.members.iter().zip(member_signers).map(|(m, s)| (m, s.as_slice())).collect();
    let ids = insert_readings_in(&mut tx, &members, Some(aggregate_id)).await?;
    if let Some(member) = ids.iter().position(Option::is_none) {
        return Ok(AggregateInsert::Replay { member }); // dropping `tx` rolls the aggregate back
    }
    tx.commit().await?;
    Ok(AggregateInsert::Stored(aggregate_id, ids.into_iter().flatten().collect()))
}

/// Stores a verified command exchange relayed by `gateway`; its id.
pub async fn insert_feedback(pool: &PgPool, f: &FeedbackSubmission, gateway: Address) -> Result<i64, StoreError> {
    let ex = &f.exchange;
    let (sequence, issued_at) = (int8(ex.command.sequence, "sequence")?, int8(ex.command.timestamp, "timestamp")?);
    Ok(sqlx::query_scalar(
        "INSERT INTO iot.commands (service, device, sequence, issued_at, command, command_hash, command_signature, \
         feedback, feedback_hash, device_signature, gateway, relay_signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(ex.command.service.as_slice())
    .bind(ex.command.device.as_slice())
    .bind(sequence)
    .bind(issued_at)
    .bind(f.command_payload.as_ref())
    .bind(ex.command.commandHash.as_slice())
    .bind(ex.command_signature.as_ref())
    .bind(f.feedback_payload.as_ref())
    .bind(ex.feedback_hash.as_slice())
    .bind(ex.device_signature.as_ref())
    .bind(gateway.as_slice())
    .bind(ex.relay_signature.as_ref())
    .fetch_one(pool)
    .await?)
}

/// Inserts verified readings with their signers in one statement (one round trip however many),
/// skipping any whose (device, sequence) is already stored — or earlier in `items`: a replay.
/// Returns each item's new id, or None for a replay. (`bytea[][]` cannot be ragged, so each
/// chain travels packed — signatures are 65 bytes, signers 20 — and is unpacked by the statement.)
async fn insert_readings_in(
    conn: &mut PgConnection,
    items: &[VerifiedReading<'_>],
    aggregate: Option<i64>,
) -> Result<Vec<Option<i64>>, StoreError> {
    let key = |s: &ReadingSubmission| (s.signed.reading.device, s.signed.reading.sequence);
    let mut first = HashSet::with_capacity(items.len());
    let fresh: Vec<_> = items.iter().filter(|(s, _)| first.insert(key(s))).collect();
    let column = |f: &dyn Fn(&ReadingSubmission, &[Address]) -> Vec<u8>| -> Vec<Vec<u8>> {
        fresh.iter().map(|(s, signers)| f(s, signers)).collect()
    };
    let ints = |f: &dyn Fn(&Reading) -> u64, what| -> Result<Vec<i64>, StoreError> {
        fresh.iter().map(|(s, _)| int8(f(&s.signed.reading), what)).collect()
    };
    let rows: Vec<(i64, Vec<u8>, i64)> = sqlx::query_as(
        "INSERT INTO iot.readings (device, sequence, device_time, payload, payload_hash, signatures, signers, aggregate_id) \
         SELECT d, s, t, p, h, \
                ARRAY(SELECT substring(sig FROM 1 + 65 * i FOR 65) FROM generate_series(0, length(sig) / 65 - 1) i ORDER BY i), \
                ARRAY(SELECT substring(who FROM 1 + 20 * i FOR 20) FROM generate_series(0, length(who) / 20 - 1) i ORDER BY i), \
                $8 \
         FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[]) \
              WITH ORDINALITY AS u(d, s, t, p, h, sig, who, n) ORDER BY n \
         ON CONFLICT (device, sequence) DO NOTHING RETURNING id, device, sequence",
    )
    .bind(column(&|s, _| s.signed.reading.device.to_vec()))
    .bind(ints(&|r| r.sequence, "sequence")?)
    .bind(ints(&|r| r.timestamp, "timestamp")?)
    .bind(column(&|s, _| s.payload.to_vec()))
    .bind(column(&|s, _| s.signed.reading.payloadHash.to_vec()))
    .bind(column(&|s, _| s.signed.signatures.iter().flat_map(|sig| sig.iter().copied()).collect()))
    .bind(column(&|_, signers| signers.iter().flat_map(|a| a.0.0).collect()))
    .bind(aggregate)
    .fetch_all(&mut *conn)
    .await?;
    let ids: HashMap<(Address, u64), i64> =
        rows.into_iter().map(|(id, device, sequence)| ((Address::from_slice(&device), sequence as u64), id)).collect();
    let mut taken = HashSet::with_capacity(ids.len());
    Ok(items.iter().map(|(s, _)| ids.get(&key(s)).filter(|_| taken.insert(key(s))).copied()).collect())
}

/// A page of `iot.readings` (ingested readings with their chains), keys after `after`, in key order.
pub async fn readings_page(pool: &PgPool, after: i64, limit: i64) -> Result<Vec<StoredReading>, StoreError> {
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
            let key: i64 = r.try_get("id")?;
            let bad = |what: &str| StoreError::malformed(format!("{what} of iot.readings row {key}"));
            let device: Vec<u8> = r.try_get("device")?;
            let hash: Vec<u8> = r.try_get("payload_hash")?;
            let sigs: Vec<Vec<u8>> = r.try_get("signatures")?;
            Ok(StoredReading {
                key,
                signed: SignedReading {
                    reading: Reading {
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

/// A u64 the `int8` columns can hold; the ingest API refuses larger ones before they get here.
fn int8(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::malformed(format!("{what} {v}: beyond int8")))
}
