//! The explorer's page times, for docs/benchmarks.md (`make bench`: release binaries, real Anvil
//! and PostgreSQL): the table page of a table of 100 000 anchored rows (the receipts store read
//! from Postgres, every anchor from the index), and the identity page of an identity with 1 000
//! votes (100 voters, each in 10 voting periods). The server's time is the `Server-Timing`
//! header each page carries; the client's, the whole request on the same machine. Goal: under
//! 100 ms of server time each. Medians of 30 requests after 3 warm-ups.

use alloy::signers::local::PrivateKeySigner;
use iotegrity_core::contracts::{IdentityRegistry, Reputation};
use iotegrity_core::{AddressBook, chain, keys};
use iotegrity_e2e::{ExplorerRun, ServiceWorld};
use std::time::Instant;

const ROWS: usize = 100_000;
const VOTERS: usize = 100;
const PERIODS: usize = 10;
const SAMPLES: usize = 30;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (server ms, client ms) medians of GET `path`.
async fn time(x: &ExplorerRun, path: &str) -> (f64, f64) {
    let client = alloy::transports::http::reqwest::Client::new();
    let (mut server, mut total) = (Vec::new(), Vec::new());
    for i in 0..SAMPLES + 3 {
        let started = Instant::now();
        let resp = client.get(format!("{}{path}", x.url)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let timing = resp.headers().get("server-timing").and_then(|v| v.to_str().ok()).map(str::to_string);
        let _ = resp.bytes().await.unwrap();
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        let dur: f64 = timing.and_then(|t| t.split("dur=").nth(1)?.parse().ok()).expect("a Server-Timing header");
        if i >= 3 {
            server.push(dur);
            total.push(elapsed);
        }
    }
    (median(server), median(total))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 1000\nn = 4\nmax_wait_secs = 1").await;
    let w = &s.w;
    let _service = s.start_service();
    s.insert(ROWS);
    s.wait_for_rows(ROWS, 900);

    // 1 000 votes on the service's identity: 100 voters, one vote each per period, 10 periods.
    let book = AddressBook::load(&w.book).unwrap();
    let domain = keys::domain(book.chain_id, book.identity_registry());
    let reader = chain::reader(&w.anvil.endpoint()).unwrap();
    let reputation = Reputation::new(book.reputation(), &reader);
    let (deposit, period) =
        (reputation.VOTE_DEPOSIT().call().await.unwrap(), reputation.PERIOD().call().await.unwrap().to::<u64>());
    let mut voters = Vec::with_capacity(VOTERS);
    for _ in 0..VOTERS {
        let (offline, online) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        w.set_balance(offline.address(), "0x56BC75E2D63100000").await; // 100 ether
        let provider = chain::writer(&w.anvil.endpoint(), offline.clone()).unwrap();
        let registry = IdentityRegistry::new(book.identity_registry(), &provider);
        let pop = keys::key_binding_signature(&online, offline.address(), &domain).unwrap();
        chain::send(registry.submitPublicKey(online.address(), keys::public_key(&online), pop, 1)).await.unwrap();
        voters.push(provider);
    }
    for p in 0..PERIODS {
        for (i, provider) in voters.iter().enumerate() {
            let r = Reputation::new(book.reputation(), provider);
            let score = match i8::try_from((i + p) % 80).unwrap() - 20 {
                0 => 1, // a vote is never zero
                s => s,
            };
            chain::send(r.voteReputation(s.svc.offline, score).value(deposit)).await.unwrap();
        }
        w.advance(period).await;
    }
    let (score, votes) = iotegrity_core::reputation::score_of(&reader, &book, s.svc.offline).await.unwrap();
    assert_eq!(votes, (VOTERS * PERIODS) as u64, "score {score}");

    let db = s.pg.url("postgres");
    let started = Instant::now();
    let x = w.spawn_explorer(0, "", &format!("[database]\nurl = \"{db}\"\n[[tables]]\nname = \"public.readings\"\n"));
    x.wait_synced(w).await;
    let (_, home) = x.json("/api/home").await;
    println!(
        "index: {} events read in {:.2} s (the explorer started from nothing)",
        home["events"].as_u64().unwrap(),
        started.elapsed().as_secs_f64()
    );
    let (_, table) = x.json("/api/table/public.readings").await;
    assert_eq!(table["anchorers"][0]["rows"].as_u64(), Some(ROWS as u64), "{}", table["anchorers"]);
    let (_, identity) = x.json(&format!("/api/identity/{}", s.svc.offline)).await;
    assert_eq!(identity["reputation"]["total"].as_u64(), Some((VOTERS * PERIODS) as u64));

    for (what, path) in [
        ("table page, 100 000 anchored rows", "/table/public.readings".to_string()),
        ("its JSON", "/api/table/public.readings".to_string()),
        ("identity page, 1 000 votes", format!("/identity/{}", s.svc.offline)),
        ("its JSON", format!("/api/identity/{}", s.svc.offline)),
        ("receipt page (row 54 321)", "/receipt/public.readings/54321".to_string()),
        ("front page", "/".to_string()),
    ] {
        let (server, client) = time(&x, &path).await;
        println!("{what:<36} server {server:7.2} ms   client {client:7.2} ms   (goal: server < 100 ms)");
    }
}
