//! The pinned handshake's price, for docs/benchmarks.md (`make bench`; real Anvil, real sockets):
//! a TLS 1.3 handshake whose server key is checked against what the chain accepts at the latest
//! block (`PinCache::connect`: one `eth_blockNumber` per connection, asked while the handshake
//! runs; the name's record read once per block) ÷ the same handshake against a fixed pin read once
//! (goal ≤ 1.5); and, for information, the handshake that reads the name's record from the chain
//! every time, before it. Measured in one run, the
//! three interleaved round by round so drift favours none.

use iotegrity_core::tls::{PinCache, ReloadingCert, Resolved, connect, server_config};
use iotegrity_core::{AddressBook, chain};
use iotegrity_e2e::World;
use std::time::{Duration, Instant};

const ROUNDS: usize = 10;
const PER_ROUND: usize = 50;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let w = World::new(&[]);
    let svc = w.identity("svc", "service").await;
    w.run_as(&svc, &["name", "register", "svc.iot", "--ip", "127.0.0.1"]).json();
    let (cert, key) = (w.path("svc.pem"), w.path("svc.key"));
    w.cli(&["cert", "issue", "svc.iot", "--cert-out", &cert, "--key-out", &key]).json();
    w.run_as(&svc, &["cert", "add", "svc.iot", "--cert", &cert, "--key", &key]).json();

    // A TLS 1.3 server that completes each handshake and closes.
    let served = ReloadingCert::open(cert.as_ref(), key.as_ref()).unwrap();
    let config = server_config(std::sync::Arc::new(served), None).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });

    let book = AddressBook::load(&w.book).unwrap();
    let provider = chain::reader(&w.anvil.endpoint()).unwrap();
    let fixed = Resolved::now(&provider, &book, "svc.iot").await.unwrap();
    let cache = PinCache::default();
    let timeout = Duration::from_secs(5);
    let (mut plain, mut pinned, mut uncached) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        let mut times = [0f64; 3];
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            connect(&fixed, port, timeout).await.unwrap();
            times[0] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            cache.connect(&provider, &book, "svc.iot", port, timeout, None).await.unwrap();
            times[1] += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let resolved = Resolved::now(&provider, &book, "svc.iot").await.unwrap();
            connect(&resolved, port, timeout).await.unwrap();
            times[2] += t.elapsed().as_secs_f64();
        }
        if round == 0 {
            continue; // warm-up
        }
        plain.push(times[0] / PER_ROUND as f64);
        pinned.push(times[1] / PER_ROUND as f64);
        uncached.push(times[2] / PER_ROUND as f64);
        w.advance(1).await; // a block per round: the cache reads the name again
    }
    let (p, c, u) = (median(plain), median(pinned), median(uncached));
    println!("TLS 1.3 handshake, fixed pin:            {:8.1} µs", p * 1e6);
    println!("pinned on chain, cached per block:        {:8.1} µs", c * 1e6);
    println!("pinned on chain, read every connection:   {:8.1} µs", u * 1e6);
    println!("cached ÷ fixed: {:.2} (goal <= 1.5); uncached ÷ fixed: {:.2}", c / p, u / p);
}
