//! The HTTP servers against hostile clients, over raw TCP: idle connections, heads and bodies that
//! trickle in, announced bodies over the limit, and more connections than allowed — each cut off
//! on its own, none delaying an honest client.

use alloy::primitives::keccak256;
use iotegrity_core::signatures::SignedReading;
use iotegrity_core::wire::ReadingSubmission;
use iotegrity_e2e::{IngestWorld, post_json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous: these wait for the server to act, never measure it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Reads until the server closes; what it sent (a response, or nothing).
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {PATIENCE:?}; got {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one response head; its status.
async fn status_of(stream: &mut TcpStream) -> u16 {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte)).await.expect("an answer").unwrap();
        assert_eq!(n, 1, "closed before a response head: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_string();
    line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status line {line:?}"))
}

#[tokio::test]
async fn slow_idle_and_oversized_clients_are_cut_off_without_delaying_others() {
    let IngestWorld { s, port, dev, gw } = IngestWorld::new(
        "name = \"iot.readings\"",
        "max_body_bytes = 8192\nmax_batch_bytes = 8192\n[http]\nheader_timeout_ms = 300\nbody_timeout_ms = 600\nmax_connections = 4",
    )
    .await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let addr = format!("127.0.0.1:{port}");
    let connect = || async { TcpStream::connect(&addr).await.unwrap() };

    // A connection that sends nothing, and one whose head stops half way: both closed, unanswered.
    let mut idle = connect().await;
    let mut half_head = connect().await;
    half_head.write_all(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // A body that trickles: the client is answered 408 and cut off.
    let mut trickle = connect().await;
    trickle
        .write_all(b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"re")
        .await
        .unwrap();
    // Meanwhile an honest client is served at once (one connection slot is still free).
    let d = s.domain();
    let mut r = SignedReading::new(&dev.online_key(), 1, 1_700_000_000, keccak256(b"ok"), &d);
    r.countersign(&gw.online_key(), &d);
    let body = serde_json::to_string(&ReadingSubmission::new(&r, b"ok")).unwrap();
    let (status, answer) = post_json(&format!("http://{addr}/v1/readings"), body).await;
    assert_eq!(status, 201, "{answer}");

    assert_eq!(until_closed(&mut idle).await, "", "an idle connection is closed unanswered");
    assert_eq!(until_closed(&mut half_head).await, "", "a head that never ends is closed unanswered");
    assert_eq!(status_of(&mut trickle).await, 408, "a body that never ends is answered 408");
    until_closed(&mut trickle).await;
    // The batch route reads its body as bytes (to split the array before parsing): the same rules.
    let mut trickle = connect().await;
    let head = "POST /v1/readings/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    trickle.write_all(format!("{head}Content-Length: 100\r\n\r\n[{{\"re").as_bytes()).await.unwrap();
    assert_eq!(status_of(&mut trickle).await, 408, "a batch body that never ends is answered 408");
    until_closed(&mut trickle).await;
    // A chunked batch body announces no length: it is cut at the limit while it is read.
    let mut chunked = connect().await;
    let chunk = format!("[{}]", " ".repeat(9000));
    let request = format!("{head}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len());
    chunked.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(status_of(&mut chunked).await, 413, "a chunked batch over max_batch_bytes");
    drop(chunked);

    // A body announced over the limit is refused before it is sent; the answer names the limit.
    let mut big = connect().await;
    big.write_all(
        b"POST /v1/readings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(status_of(&mut big).await, 413);
    let rest = until_closed(&mut big).await;
    assert!(rest.contains("over the limit of 8192 bytes (max_body_bytes)"), "{rest}");

    // Four idle connections take every slot: a fifth client waits, and is served once the idle
    // ones are cut off by the header timeout.
    let mut hogs = Vec::new();
    for _ in 0..4 {
        hogs.push(connect().await);
    }
    let mut fifth = connect().await; // accepted by the kernel; served when a slot frees
    fifth.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    assert_eq!(status_of(&mut fifth).await, 200);
    for hog in &mut hogs {
        assert_eq!(until_closed(hog).await, "");
    }
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "1", "only the honest reading");
}

#[tokio::test]
async fn generated_hostile_bodies_are_refused_with_a_4xx_and_a_reason_never_a_crash() {
    use iotegrity_core::signatures::{CommandExchange, SignedAggregate};
    use iotegrity_core::wire::{AggregateSubmission, FeedbackSubmission, SignedCommand};
    use serde_json::Value;
    let IngestWorld { s, port, dev, gw } = IngestWorld::new("name = \"iot.readings\"", "").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let (d, now) = (s.domain(), iotegrity_core::signatures::unix_now());
    let (dev_key, gw_key) = (dev.online_key(), gw.online_key());
    let reading = |seq: u64| {
        let mut r = SignedReading::new(&dev_key, seq, now, keccak256(b"p"), &d);
        r.countersign(&gw_key, &d);
        r
    };
    let one = serde_json::to_value(ReadingSubmission::new(&reading(1), b"p")).unwrap();
    let batch = Value::Array(
        (2..5).map(|q| serde_json::to_value(ReadingSubmission::new(&reading(q), b"p")).unwrap()).collect(),
    );
    let members = vec![reading(5), reading(6)];
    let agg =
        SignedAggregate::new(&gw_key, keccak256(b"pp"), alloy::primitives::B256::repeat_byte(7), members.clone(), &d);
    let aggregate = serde_json::to_value(AggregateSubmission {
        aggregate: agg.aggregate,
        members: members.iter().map(|m| ReadingSubmission::new(m, b"p")).collect(),
        signature: agg.signature,
    })
    .unwrap();
    let (command, command_signature) =
        CommandExchange::command(&s.svc.online_key(), dev_key.address(), 1, now, keccak256(b"c"), &d);
    let exchange = CommandExchange::answer(command, command_signature, keccak256(b"f"), &dev_key, &gw_key, &d);
    let feedback = serde_json::to_value(FeedbackSubmission {
        exchange,
        command_payload: alloy::primitives::Bytes::from_static(b"c"),
        feedback_payload: alloy::primitives::Bytes::from_static(b"f"),
    })
    .unwrap();

    let seed: u64 = std::env::var("IOTEGRITY_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut mutator = iotegrity_e2e::mutate::Mutator::new(seed);
    let mut refused = 0;
    for (route, valid) in
        [("readings", &one), ("readings/batch", &batch), ("aggregates", &aggregate), ("feedback", &feedback)]
    {
        let url = format!("http://127.0.0.1:{port}/v1/{route}");
        for i in 0..150 {
            let body = mutator.mutate(valid);
            // The decoders alone, for every wire type: no panic whatever the text.
            let _ = serde_json::from_str::<ReadingSubmission>(&body);
            let _ = serde_json::from_str::<AggregateSubmission>(&body);
            let _ = serde_json::from_str::<FeedbackSubmission>(&body);
            let _ = serde_json::from_str::<SignedCommand>(&body);
            let (status, answer) = post_json(&url, body.clone()).await;
            let why = format!("seed {seed}, {route} #{i}: {status} {answer} for {body:.300}");
            assert!((200..300).contains(&status) || (400..500).contains(&status), "{why}");
            if status >= 400 {
                refused += 1;
                assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "a reason: {why}");
            }
        }
    }
    assert!(refused > 400, "most mutations are refused: {refused} of 600");
    let (status, _) = post_json(&format!("http://127.0.0.1:{port}/v1/readings"), one.to_string()).await;
    assert!(status == 201 || status == 409, "the service still serves: {status}");
}
