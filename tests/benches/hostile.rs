//! Valid traffic while slow clients hold connections open, for docs/benchmarks.md (`make bench`:
//! release binaries, real PostgreSQL and Anvil): the latency of signed readings POSTed one by one
//! to the ingest API, p50 and p99, with SLOW connections held open that each sent half a request
//! head and stopped — ÷ the same without them (goal ≤ 1.2). Measured in one run: without, with,
//! and without again (the two runs without are pooled, so drift over the run does not favour
//! either side).

use alloy::primitives::keccak256;
use alloy::transports::http::reqwest;
use iotegrity_core::signatures::SignedReading;
use iotegrity_core::wire::ReadingSubmission;
use iotegrity_e2e::IngestWorld;
use std::time::Instant;
use tokio::io::AsyncWriteExt;

const REQUESTS: usize = 300;
const SLOW: usize = 500;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Seconds per request, sorted, for POSTing every body in turn on one keep-alive connection.
async fn latencies(client: &reqwest::Client, url: &str, bodies: &[String]) -> Vec<f64> {
    let mut out = Vec::with_capacity(bodies.len());
    for body in bodies {
        let start = Instant::now();
        let resp = client.post(url).header("content-type", "application/json").body(body.clone()).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        out.push(start.elapsed().as_secs_f64());
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The slow clients must stay open for the whole run: a header timeout longer than it.
    let IngestWorld { s, port, dev, gw } =
        IngestWorld::new("name = \"iot.readings\"", "[http]\nheader_timeout_ms = 120000").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let d = s.domain();
    let now = iotegrity_core::signatures::unix_now();
    let bodies: Vec<String> = (1..=(3 * REQUESTS + 50) as u64)
        .map(|seq| {
            let payload = format!("{{\"kwh\":{seq}}}");
            let mut r = SignedReading::new(&dev.online_key(), seq, now, keccak256(&payload), &d);
            r.countersign(&gw.online_key(), &d);
            serde_json::to_string(&ReadingSubmission::new(&r, payload.as_bytes())).unwrap()
        })
        .collect();
    let (warmup, rest) = bodies.split_at(50);
    let url = format!("http://127.0.0.1:{port}/v1/readings");
    let client = reqwest::Client::new();
    latencies(&client, &url, warmup).await;

    let mut without = latencies(&client, &url, &rest[..REQUESTS]).await;
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(stream);
    }
    let mut with = latencies(&client, &url, &rest[REQUESTS..2 * REQUESTS]).await;
    drop(slow);
    without.extend(latencies(&client, &url, &rest[2 * REQUESTS..]).await);
    without.sort_by(f64::total_cmp);
    with.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&without, 0.5), percentile(&without, 0.99));
    let (q50, q99) = (percentile(&with, 0.5), percentile(&with, 0.99));
    println!("ingest_latency_ms_p50_without_slow_clients {:.2}", p50 * 1e3);
    println!("ingest_latency_ms_p99_without_slow_clients {:.2}", p99 * 1e3);
    println!("ingest_latency_ms_p50_with_{SLOW}_slow_clients {:.2}", q50 * 1e3);
    println!("ingest_latency_ms_p99_with_{SLOW}_slow_clients {:.2}", q99 * 1e3);
    println!("p50_with_over_without {:.2}", q50 / p50);
    println!("p99_with_over_without {:.2}", q99 / p99);
}
