//! Data-at-rest throughput ratios for docs/benchmarks.md, measured in one run on one machine
//! (`make bench`: release binaries, real PostgreSQL and Anvil):
//! 1. signed readings ingested per second through the HTTP API into Postgres — one per request,
//!    and in batches — ÷ in-process verification of the same chains (goal ≥ 0.5);
//! 2. time to insert N rows into a table the daemon watches and anchors ÷ into an identical
//!    table it does not watch (goal ≤ 1.10): the median of the ratios of ROUNDS rounds, each
//!    timing both tables back to back in alternating order;
//! 3. audit rows verified per second ÷ plain table scan rate (goal ≥ 0.5).

use alloy::primitives::{Address, keccak256};
use alloy::transports::http::reqwest;
use futures_util::TryStreamExt;
use iotegrity_core::audit::run::{AuditOptions, audit_database};
use iotegrity_core::contracts::Role;
use iotegrity_core::signatures::{KeyDirectory, KeyStatus, SignedReading};
use iotegrity_core::store::{self, TableRef};
use iotegrity_core::wire::ReadingSubmission;
use iotegrity_e2e::IngestWorld;
use sqlx::postgres::PgPoolCopyExt;
use std::collections::HashMap;
use std::time::Instant;

struct Dir(HashMap<Address, KeyStatus>);
impl KeyDirectory for Dir {
    fn status(&self, online: Address) -> KeyStatus {
        self.0.get(&online).copied().unwrap_or(KeyStatus::Unknown)
    }
}

const READINGS: u64 = 4_000;
const CLIENTS: usize = 8;
const ROWS: i64 = 100_000;
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// POSTs every body, spread over `clients` concurrent clients; each must answer `expect`.
async fn post_all(url: &str, bodies: Vec<String>, clients: usize, expect: u16) {
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.to_owned());
        let mine: Vec<String> = bodies.iter().skip(c).step_by(clients).cloned().collect();
        tasks.push(tokio::spawn(async move {
            for body in mine {
                let resp =
                    client.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
                assert_eq!(resp.status().as_u16(), expect);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let IngestWorld { s, port, dev, gw } =
        IngestWorld::new("name = \"iot.readings\"\nm = 500\nn = 8\nmax_wait_secs = 2", "").await;
    let d = s.domain();
    let (dev_key, gw_key) = (dev.online_key(), gw.online_key());
    let readings: Vec<(SignedReading, Vec<u8>)> = (1..=2 * READINGS)
        .map(|seq| {
            let payload = format!("{{\"kwh\":{seq},\"v\":230.1}}").into_bytes();
            let mut r = SignedReading::new(&dev_key, seq, 1_700_000_000 + seq, keccak256(&payload), &d);
            r.countersign(&gw_key, &d);
            (r, payload)
        })
        .collect();

    // 1a. In-process verification, both cores (the daemon verifies on its worker threads too).
    let dir = Dir(HashMap::from([
        (dev_key.address(), KeyStatus::Active { role: Role::Device }),
        (gw_key.address(), KeyStatus::Active { role: Role::Gateway }),
    ]));
    let start = Instant::now();
    let (singles, batched) = readings.split_at(READINGS as usize);
    std::thread::scope(|sc| {
        for part in singles.chunks(singles.len() / 2) {
            let (d, dir) = (&d, &dir);
            sc.spawn(move || part.iter().for_each(|(r, _)| assert!(r.verify(d, dir).is_ok())));
        }
    });
    let verify_rate = READINGS as f64 / start.elapsed().as_secs_f64();

    // 1b. Through the API into Postgres (daemon also anchoring them), CLIENTS concurrent clients.
    let daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let url = format!("http://127.0.0.1:{port}/v1/readings");
    let bodies: Vec<String> =
        singles.iter().map(|(r, p)| serde_json::to_string(&ReadingSubmission::new(r, p)).unwrap()).collect();
    let start = Instant::now();
    post_all(&url, bodies, CLIENTS, 201).await;
    let ingest_rate = READINGS as f64 / start.elapsed().as_secs_f64();

    // 1c. The same through POST /v1/readings/batch (batches of 200, 4 clients).
    let batches: Vec<String> = batched
        .chunks(200)
        .map(|chunk| {
            let items: Vec<_> = chunk.iter().map(|(r, p)| ReadingSubmission::new(r, p)).collect();
            serde_json::to_string(&items).unwrap()
        })
        .collect();
    let start = Instant::now();
    post_all(&format!("http://127.0.0.1:{port}/v1/readings/batch"), batches, 4, 200).await;
    let batch_rate = READINGS as f64 / start.elapsed().as_secs_f64();
    s.wait_for_rows(2 * READINGS as usize, 120);
    drop(daemon);

    // 2. Inserting ROWS rows (4 connections, one row per statement) into a table the daemon
    //    watches and anchors, and into an identical one it does not watch, in ROUNDS rounds that
    //    alternate which table goes first (the second of a pair ran ~5% faster whichever it was).
    //    After each watched run the daemon catches up before anything else is timed, so unwatched
    //    runs never share the machine with its work. The daemon runs with the default config
    //    (polling, no NOTIFY trigger: docs/daemon.md).
    for table in ["bench", "bench_plain"] {
        s.pg.psql(
            "postgres",
            &format!("CREATE TABLE {table} (id bigserial PRIMARY KEY, device text, value double precision)"),
        );
    }
    let pool = store::connect(&s.pg.url("postgres"), 4).await.unwrap();
    let insert_all = |pool: sqlx::PgPool, table: &'static str| async move {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let sql = format!("INSERT INTO {table} (device, value) VALUES ($1, $2)");
                for i in 0..ROWS / 4 {
                    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                        .bind(format!("d{w}"))
                        .bind(i as f64)
                        .execute(&pool)
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        start.elapsed().as_secs_f64()
    };
    let cfg = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("name = \"iot.readings\"", "name = \"public.bench\"")
        .replace("poll_interval_ms = 100\n", "");
    std::fs::write(&s.config, cfg).unwrap();
    let daemon = s.spawn_daemon(1);
    s.wait_active(1);
    let (mut without, mut with, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let order = if round % 2 == 1 { ["bench_plain", "bench"] } else { ["bench", "bench_plain"] };
        for table in order {
            let secs = insert_all(pool.clone(), table).await;
            if table == "bench" {
                with.push(secs);
                s.wait_for_rows(2 * READINGS as usize + round * ROWS as usize, 180);
            } else {
                without.push(secs);
            }
        }
        ratios.push(with[round - 1] / without[round - 1]);
    }
    drop(daemon);
    let rounds: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    let (without, with, ratio) = (median(without), median(with), median(ratios));

    // 3. Audit (canonical rows + hashes + receipts held against the chain's anchors and merged
    //    with the rows: `iotegrity audit` itself, without its progress bar) vs plain
    //    scans of the same ROUNDS × ROWS rows: typed columns through SELECT (what an application does),
    //    and the raw COPY text stream (the fastest way to read the table, the stricter measure).
    let table = TableRef::new("public.bench", "id").unwrap();
    let start = Instant::now();
    let plain: Vec<(i64, String, f64)> =
        sqlx::query_as("SELECT id, device, value FROM bench ORDER BY id").fetch_all(&pool).await.unwrap();
    let scan_rate = plain.len() as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut copied = 0usize;
    let mut stream = pool.copy_out_raw("COPY (SELECT * FROM bench ORDER BY id) TO STDOUT").await.unwrap();
    while let Some(chunk) = stream.try_next().await.unwrap() {
        copied += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    let copy_rate = copied as f64 / start.elapsed().as_secs_f64();
    assert_eq!(copied, plain.len());
    let start = Instant::now();
    let book = iotegrity_core::AddressBook::load(&s.w.book).unwrap();
    let provider = iotegrity_core::chain::reader(&s.w.anvil.endpoint()).unwrap();
    let report = audit_database(&pool, &table, &provider, &book, &AuditOptions::default(), |_| {}).await.unwrap();
    assert!(report.is_clean() && report.findings.is_empty(), "clean: {report}");
    let audit_rate = report.rows as f64 / start.elapsed().as_secs_f64();
    assert_eq!(report.rows, plain.len());

    println!("verify_2sig_readings_per_s_both_cores {verify_rate:.0}");
    println!("ingest_api_readings_per_s {ingest_rate:.0}");
    println!("ingest_over_verify {:.2}", ingest_rate / verify_rate);
    println!("ingest_api_batch_readings_per_s {batch_rate:.0}");
    println!("batch_ingest_over_verify {:.2}", batch_rate / verify_rate);
    println!("insert_{ROWS}_rows_s_unwatched_table_median_of_{ROUNDS} {without:.2}");
    println!("insert_{ROWS}_rows_s_watched_table_median_of_{ROUNDS} {with:.2}");
    println!("with_over_without_median_of_round_ratios {ratio:.2} (rounds: {})", rounds.join(" "));
    println!("plain_scan_rows_per_s {scan_rate:.0}");
    println!("audit_rows_per_s {audit_rate:.0}");
    println!("audit_over_scan {:.2}", audit_rate / scan_rate);
    println!("plain_copy_rows_per_s {copy_rate:.0}");
    println!("audit_over_copy {:.2}", audit_rate / copy_rate);
}
