//! The ingest API end to end: gateways' signed readings and aggregates are verified against the
//! chain before anything is stored, each rejection has its status and stores nothing, and what is
//! stored gets receipts and audits clean.

use alloy::primitives::{B256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use iotegrity_core::signatures::{SignedAggregate, SignedReading};
use iotegrity_core::wire::{AggregateSubmission, BatchAnswer, ReadingSubmission};
use iotegrity_e2e::{Ident, IngestWorld, post_json};
use serde_json::{Value, json};

fn submission(r: &SignedReading, payload: &[u8]) -> Value {
    serde_json::to_value(ReadingSubmission::new(r, payload)).unwrap()
}

#[tokio::test]
async fn readings_and_aggregates_are_verified_before_storing() {
    let IngestWorld { s, port, dev, gw } =
        IngestWorld::new("name = \"iot.readings\"\nm = 4\nn = 2\nmax_wait_secs = 1", "max_body_bytes = 8192").await;
    let daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let d = s.domain();
    let (dev_key, gw_key) = (dev.online_key(), gw.online_key());
    let url = format!("http://127.0.0.1:{port}/v1/readings");
    let count = || s.pg.psql("postgres", "SELECT count(*) FROM iot.readings");
    let reading = |seq: u64, payload: &[u8]| {
        let mut r = SignedReading::new(&dev_key, seq, 1_700_000_000 + seq, keccak256(payload), &d);
        r.countersign(&gw_key, &d);
        r
    };

    for seq in 1..=5u64 {
        let payload = format!("{{\"kwh\": {seq}}}");
        let (status, body) =
            post_json(&url, submission(&reading(seq, payload.as_bytes()), payload.as_bytes()).to_string()).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["signers"].as_array().unwrap().len(), 2);
    }
    assert_eq!(count(), "5");

    // Replay of sequence 1.
    let (status, body) = post_json(&url, submission(&reading(1, b"{\"kwh\": 1}"), b"{\"kwh\": 1}").to_string()).await;
    assert_eq!((status, body["error"].as_str().unwrap().contains("replay")), (409, true), "{body}");
    // Payload that does not match its hash.
    let (status, _) = post_json(&url, submission(&reading(6, b"real"), b"forged").to_string()).await;
    assert_eq!(status, 422);
    // Hash changed after signing: the device signature no longer matches.
    let mut forged = reading(7, b"x");
    forged.reading.payloadHash = keccak256(b"y");
    let (status, body) = post_json(&url, submission(&forged, b"y").to_string()).await;
    assert_eq!((status, body["step"].as_str()), (422, Some("device signature")), "{body}");
    // A device nobody registered.
    let stranger = PrivateKeySigner::random();
    let mut unknown = SignedReading::new(&stranger, 1, 1_700_000_000, keccak256(b"z"), &d);
    unknown.countersign(&gw_key, &d);
    let (status, body) = post_json(&url, submission(&unknown, b"z").to_string()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not a registered online key"), "{body}");
    // Not JSON, missing fields, too large.
    assert_eq!(post_json(&url, "{not json".into()).await.0, 400);
    assert_eq!(post_json(&url, json!({ "reading": {} }).to_string()).await.0, 400);
    let big = vec![b'a'; 9000];
    assert_eq!(post_json(&url, submission(&reading(8, &big), &big).to_string()).await.0, 413);
    assert_eq!(count(), "5", "nothing of a rejected item is stored");

    // An aggregate of two readings; then one whose signed member list does not match.
    let members: Vec<SignedReading> = (6..8).map(|q| reading(q, b"agg")).collect(); // rejected items used no sequence
    let agg = SignedAggregate::new(&gw_key, keccak256(b"sum"), B256::repeat_byte(1), members.clone(), &d);
    let aggregate = |members: Vec<&SignedReading>| AggregateSubmission {
        aggregate: agg.aggregate.clone(),
        members: members.into_iter().map(|m| ReadingSubmission::new(m, b"agg")).collect(),
        signature: agg.signature.clone(),
    };
    let body = serde_json::to_value(aggregate(members.iter().collect())).unwrap();
    let agg_url = format!("http://127.0.0.1:{port}/v1/aggregates");
    let (status, resp) = post_json(&agg_url, body.to_string()).await;
    assert_eq!(status, 201, "{resp}");
    assert_eq!(count(), "7");
    let body = serde_json::to_value(aggregate(members.iter().rev().collect())).unwrap();
    assert_eq!(post_json(&agg_url, body.to_string()).await.0, 422);
    assert_eq!(count(), "7");
    // Errors of an aggregate name the member and the step: a payload that is not its hash, a replay.
    let mut forged = aggregate(members.iter().collect());
    forged.members[1].payload = alloy::primitives::Bytes::from_static(b"forged");
    let (status, resp) = post_json(&agg_url, serde_json::to_string(&forged).unwrap()).await;
    assert_eq!((status, resp["step"].as_str()), (422, Some("member 1")), "{resp}");
    assert!(resp["error"].as_str().unwrap().starts_with("member 1: payload does not match"), "{resp}");
    let again = serde_json::to_value(aggregate(members.iter().collect())).unwrap();
    let (status, resp) = post_json(&agg_url, again.to_string()).await;
    assert_eq!((status, resp["step"].as_str()), (409, Some("member 0")), "{resp}");
    assert!(resp["error"].as_str().unwrap().starts_with("member 0: replay"), "{resp}");
    assert_eq!(count(), "7");

    // The gateway rotates its key on chain (after what it signed was anchored): its old key is
    // refused from the next registry sync on, while its anchored history stays valid.
    s.wait_for_rows(7, 60);
    let fresh = s.w.keys("gw-new").await;
    s.w.run_as(&gw, &["identity", "update", "--online-keystore", &fresh.dir.join("online.json").display().to_string()])
        .json();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let (status, body) = post_json(&url, submission(&reading(8, b"late"), b"late").to_string()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no longer an active key"), "{body}");
    let mut with_new = SignedReading::new(&dev_key, 8, 1_700_000_000, keccak256(b"late"), &d);
    with_new.countersign(&fresh.online_key(), &d);
    assert_eq!(post_json(&url, submission(&with_new, b"late").to_string()).await.0, 201);

    // Everything stored gets receipts, and the table audits clean.
    s.wait_for_rows(8, 60);
    drop(daemon);
    let report = s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", "iot.readings"]).json();
    assert_eq!(report["clean"], true, "{report}");
    assert_eq!(report["anchoredRows"], 8);
}

#[tokio::test]
async fn audit_checks_chains_sequences_and_keys_closed_on_chain() {
    let IngestWorld { s, port, dev, gw } =
        IngestWorld::new("name = \"iot.readings\"\nm = 3\nn = 1\nmax_wait_secs = 1", "").await;
    let daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let d = s.domain();
    let (dev_key, gw_key) = (dev.online_key(), gw.online_key());
    let url = format!("http://127.0.0.1:{port}/v1/readings");
    for seq in 1..=6u64 {
        let mut r = SignedReading::new(&dev_key, seq, 1_700_000_000 + seq, keccak256(seq.to_be_bytes()), &d);
        r.countersign(&gw_key, &d);
        assert_eq!(post_json(&url, submission(&r, &seq.to_be_bytes()).to_string()).await.0, 201);
    }
    s.wait_for_rows(6, 60);
    let audit = || s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", "iot.readings"]);
    assert_eq!(audit().json()["clean"], true);

    // A stored reading disappears: the row is deleted, and device sequence 3 is missing.
    s.pg.psql("postgres", "DELETE FROM iot.readings WHERE sequence = 3");
    // A copy of reading 5 is slipped in past the API (its unique constraint dropped first).
    s.pg.psql("postgres", "ALTER TABLE iot.readings DROP CONSTRAINT readings_device_sequence_key");
    s.pg.psql(
        "postgres",
        "INSERT INTO iot.readings (device, sequence, device_time, payload, payload_hash, signatures, signers) \
         SELECT device, sequence, device_time, payload, payload_hash, signatures, signers FROM iot.readings WHERE sequence = 5",
    );
    // The device's identity is closed on chain; a reading signed later with its key is written
    // straight into the table and even anchored.
    s.w.run_as(&dev, &["identity", "close", "--yes"]).json();
    std::thread::sleep(std::time::Duration::from_millis(500)); // the ingest API syncs every 100 ms here
    let mut late = SignedReading::new(&dev_key, 7, 1_700_000_007, keccak256(b"late"), &d);
    late.countersign(&gw_key, &d);
    assert_eq!(post_json(&url, submission(&late, b"late").to_string()).await.0, 403, "the API refuses the closed key");
    let sigs = late
        .signatures
        .iter()
        .map(|b| format!("'\\x{}'::bytea", alloy::primitives::hex::encode(b)))
        .collect::<Vec<_>>()
        .join(",");
    s.pg.psql(
        "postgres",
        &format!(
            "INSERT INTO iot.readings (device, sequence, device_time, payload, payload_hash, signatures, signers) VALUES \
             ('\\x{}', 7, 1700000007, 'late', '\\x{}', ARRAY[{sigs}], ARRAY[]::bytea[])",
            alloy::primitives::hex::encode(dev_key.address()),
            alloy::primitives::hex::encode(keccak256(b"late"))
        ),
    );
    s.wait_for_rows(7, 60); // 5 left of the first batch + the replay + the late one
    drop(daemon);

    let run = audit();
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let kinds: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for expected in ["deleted", "sequence-gap", "replayed", "key-closed-before-anchor"] {
        assert!(kinds.contains(&expected), "missing {expected} in {kinds:?}");
    }
    assert!(!kinds.contains(&"bad-signature"), "every chain verifies while its keys were active: {kinds:?}");
    // Readings anchored before the closure stay valid; what was anchored after it (the late row 8,
    // and the replayed copy 7 if the daemon had not anchored it yet) is suspect: signed by a key
    // that was closed before its anchor. Not proof of tampering — the database cannot say when
    // they arrived — and named as such.
    let suspect: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "key-closed-before-anchor").collect();
    let keys: Vec<i64> = suspect.iter().map(|f| f["key"].as_i64().unwrap()).collect();
    assert!(keys.contains(&8) && keys.iter().all(|k| *k >= 7), "{suspect:?}");
    for f in &suspect {
        assert_eq!(f["step"], "device signature", "{f}");
        assert_eq!(f["signer"].as_str().unwrap().to_lowercase(), format!("{:?}", dev_key.address()).to_lowercase());
    }
}

#[tokio::test]
async fn simulate_delivers_signed_readings_and_an_aggregate() {
    let IngestWorld { s, port, dev, gw } = IngestWorld::new("name = \"iot.readings\"", "").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let (dk, gk, pw) = (dev.dir.join("online.json"), gw.dir.join("online.json"), s.w.password_file.clone());
    let args = |first: &str| {
        let url = format!("http://127.0.0.1:{port}");
        vec![
            "simulate".to_string(),
            "--url".into(),
            url,
            "--device-keystore".into(),
            dk.display().to_string(),
            "--gateway-keystore".into(),
            gk.display().to_string(),
            "--password-file".into(),
            pw.display().to_string(),
            "--count".into(),
            "5".into(),
            "--aggregate".into(),
            "3".into(),
            "--first-sequence".into(),
            first.into(),
        ]
    };
    let out = s.w.cli(&args("1")).json();
    assert_eq!(out["stored"], 8);
    assert_eq!(out["nextSequence"], 9);
    assert_eq!(s.pg.psql("postgres", "SELECT count(*), count(aggregate_id) FROM iot.readings"), "8|3");
    // Running it again from sequence 1 is a replay: refused, nothing more stored.
    let err = s.w.cli(&args("1")).failure().to_owned();
    assert!(err.contains("409"), "{err}");
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "8");
}

#[tokio::test]
async fn command_feedback_goes_back_through_the_gateway_and_is_verified() {
    let IngestWorld { s, port, dev, gw } = IngestWorld::new("name = \"iot.readings\"", "").await;
    let other_service = s.w.identity("svc2", "service").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let pw = s.w.password_file.display().to_string();
    let sign_command = |svc: &Ident, device: &str, out: &str| {
        let ks = svc.dir.join("online.json").display().to_string();
        s.w.cli(&[
            "command",
            "--online-keystore",
            &ks,
            "--password-file",
            &pw,
            "--device",
            device,
            "--sequence",
            "1",
            "--payload",
            "{\"interval\":60}",
            "--out",
            &s.w.path(out),
        ])
    };
    let answer = |file: &str, device: &Ident| {
        let (dk, gk) =
            (device.dir.join("online.json").display().to_string(), gw.dir.join("online.json").display().to_string());
        s.w.cli(&[
            "simulate",
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--device-keystore",
            &dk,
            "--gateway-keystore",
            &gk,
            "--password-file",
            &pw,
            "--count",
            "0",
            "--answer",
            &s.w.path(file),
            "--feedback",
            "{\"applied\":true}",
        ])
    };
    sign_command(&s.svc, &dev.online.to_string(), "cmd.json").json();
    let out = answer("cmd.json", &dev).json();
    assert!(out["feedbackId"].is_number(), "{out}");
    assert_eq!(
        s.pg.psql("postgres", "SELECT count(*), min(convert_from(feedback, 'UTF8')) FROM iot.commands"),
        "1|{\"applied\":true}"
    );
    // The same feedback again: a replay.
    assert!(answer("cmd.json", &dev).failure().contains("409"));
    // A command some other service signed is not this service's business.
    sign_command(&other_service, &dev.online.to_string(), "foreign.json").json();
    let err = answer("foreign.json", &dev).failure().to_owned();
    assert!(err.contains("422") && err.contains("not issued by this service"), "{err}");
    // A command for another device cannot be answered by this one.
    sign_command(&s.svc, &gw.online.to_string(), "wrong.json").json();
    assert!(answer("wrong.json", &dev).failure().contains("this command is for device"));
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.commands"), "1");
}

#[tokio::test]
async fn batches_report_each_item_and_redelivery_is_exactly_once() {
    let IngestWorld { s, port, dev, gw } = IngestWorld::new("name = \"iot.readings\"", "").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let d = s.domain();
    let (dev_key, gw_key) = (dev.online_key(), gw.online_key());
    let item = |seq: u64| {
        let payload = seq.to_be_bytes();
        let mut r = SignedReading::new(&dev_key, seq, 1_700_000_000 + seq, keccak256(payload), &d);
        r.countersign(&gw_key, &d);
        submission(&r, &payload)
    };
    let url = format!("http://127.0.0.1:{port}/v1/readings/batch");
    assert_eq!(post_json(&format!("http://127.0.0.1:{port}/v1/readings"), item(3).to_string()).await.0, 201); // already delivered
    let mut forged = item(6);
    forged["payload"] = json!("0x00");
    let batch = json!([item(1), item(2), item(3), item(4), item(5), forged]);
    let (status, body) = post_json(&url, batch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let answer: BatchAnswer = serde_json::from_value(body).unwrap();
    let statuses: Vec<u16> = answer.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![201, 201, 409, 201, 201, 422]);
    assert_eq!(answer.stored, 4);
    assert!(answer.results[0].id.is_some() && answer.results[2].id.is_none());
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "5");
    // A gateway that crashed before reading the answer delivers the same batch again: nothing new.
    let (_, again) = post_json(&url, batch.to_string()).await;
    assert_eq!(again["stored"], 0);
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "5");
    assert_eq!(post_json(&url, "[]".into()).await.0, 422, "an empty batch is refused");
    // The same reading twice in one batch: stored once, the copy is a replay.
    let (_, twice) = post_json(&url, json!([item(7), item(7)]).to_string()).await;
    let twice: BatchAnswer = serde_json::from_value(twice).unwrap();
    let statuses: Vec<u16> = twice.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![201, 409], "{twice:?}");
    // Each chain is stored whole, in order: device signature, then the gateway's.
    let stored = s.pg.psql(
        "postgres",
        "SELECT array_length(signatures, 1) || ' ' || length(signatures[2]) || ' ' || (signers[1] = device) \
         || ' ' || encode(signers[2], 'hex') FROM iot.readings WHERE sequence = 7",
    );
    assert_eq!(stored, format!("2 65 true {}", alloy::hex::encode(gw_key.address())));
}

#[tokio::test]
async fn database_down_answers_503_and_stores_nothing() {
    let IngestWorld { s, port, dev, gw } = IngestWorld::new("name = \"iot.readings\"", "").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let d = s.domain();
    let mut r = SignedReading::new(&dev.online_key(), 1, 1_700_000_000, keccak256(b"x"), &d);
    r.countersign(&gw.online_key(), &d);
    // Postgres goes away: the API answers 503 (after the pool's 5 s acquire timeout).
    s.pg.stop();
    let url = format!("http://127.0.0.1:{port}/v1/readings");
    let (status, body) = post_json(&url, submission(&r, b"x").to_string()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nothing was stored"), "{body}");
    s.pg.start_again();
    // Back up: the same reading is accepted now (it was not half-stored).
    assert_eq!(
        post_json(&format!("http://127.0.0.1:{port}/v1/readings"), submission(&r, b"x").to_string()).await.0,
        201
    );
}

/// A device registered on chain just before its first reading is accepted at once: on an unknown
/// key the API syncs its registry view (a sync that started after the request arrived) before it
/// answers. The periodic sync is off here (a 60 s poll), and the devices come one after another,
/// each within a second of the previous forced sync.
#[tokio::test]
async fn a_key_registered_just_before_its_first_reading_is_accepted() {
    let IngestWorld { s, port, gw, .. } =
        IngestWorld::new("name = \"iot.readings\"\nm = 100\nn = 2\nmax_wait_secs = 60", "").await;
    let cfg = std::fs::read_to_string(&s.config).unwrap().replace("poll_interval_ms = 100", "poll_interval_ms = 60000");
    std::fs::write(&s.config, cfg).unwrap();
    let _daemon = s.start_service();
    let d = s.domain();
    let gw_key = gw.online_key();
    let url = format!("http://127.0.0.1:{port}/v1/readings");
    for i in 0..5 {
        let dev: Ident = s.w.identity(&format!("fresh{i}"), "device").await;
        let mut r = SignedReading::new(&dev.online_key(), 1, 1_700_000_000, keccak256(b"first"), &d);
        r.countersign(&gw_key, &d);
        let (status, body) = post_json(&url, submission(&r, b"first").to_string()).await;
        assert_eq!(status, 201, "device {i}, registered just now: {body}");
    }
    // A key that is registered nowhere is still refused, after its sync.
    let stranger = PrivateKeySigner::random();
    let mut r = SignedReading::new(&stranger, 1, 1_700_000_000, keccak256(b"z"), &d);
    r.countersign(&gw_key, &d);
    assert_eq!(post_json(&url, submission(&r, b"z").to_string()).await.0, 403);
}

#[tokio::test]
async fn an_ingest_only_instance_stores_what_the_watching_one_anchors() {
    let IngestWorld { s, dev, gw, .. } =
        IngestWorld::new("name = \"iot.readings\"\nm = 4\nn = 2\nmax_wait_secs = 1", "").await;
    let _watcher = s.spawn_daemon(0);
    s.wait_active(0);
    // A second instance with no [[tables]], behind the same load balancer: ingest only.
    let (front, metrics) = (iotegrity_e2e::pg::free_port(), iotegrity_e2e::pg::free_port());
    let _front = s.spawn_daemon_with(1, &format!("[metrics]\nlisten = \"127.0.0.1:{metrics}\""), Some(front));
    s.wait_log(1, "ingest only");
    let d = s.domain();
    let url = format!("http://127.0.0.1:{front}/v1/readings");
    for seq in 1..=8u64 {
        let mut r = SignedReading::new(&dev.online_key(), seq, 1_700_000_000 + seq, keccak256(seq.to_be_bytes()), &d);
        r.countersign(&gw.online_key(), &d);
        let (status, body) = post_json(&url, submission(&r, &seq.to_be_bytes()).to_string()).await;
        assert_eq!(status, 201, "{body}");
    }
    let stranger = SignedReading::new(&PrivateKeySigner::random(), 1, 1_700_000_000, keccak256(b"x"), &d);
    assert_eq!(post_json(&url, submission(&stranger, b"x").to_string()).await.0, 403);
    s.wait_for_rows(8, 60);
    assert_eq!(s.advisory_locks(), (1, 1), "only the watcher holds a table lock");
    // Every request was timed, by route and status.
    let text = iotegrity_e2e::metrics(metrics).await;
    for (status, count) in [(201, 8), (403, 1)] {
        let line =
            format!("iotegrity_ingest_request_seconds_count{{route=\"/v1/readings\",status=\"{status}\"}} {count}\n");
        assert!(text.contains(&line), "{line} in {text}");
    }
    let log = std::fs::read_to_string(s.w.dir.path().join("daemon-1.log")).unwrap();
    assert!(!log.contains("active: watching") && !log.contains("standing by"), "{log}");
    let report = s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", "iot.readings"]).json();
    assert_eq!((report["clean"].as_bool(), report["anchoredRows"].as_u64()), (Some(true), Some(8)), "{report}");
}

#[tokio::test]
async fn inputs_the_docs_refuse_are_refused_with_the_rule_they_break() {
    let IngestWorld { s, port, dev, gw } = IngestWorld::new("name = \"iot.readings\"", "").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let d = s.domain();
    let url = format!("http://127.0.0.1:{port}/v1/readings");
    let signed = |seq: u64, ts: u64| {
        let mut r = SignedReading::new(&dev.online_key(), seq, ts, keccak256(b"p"), &d);
        r.countersign(&gw.online_key(), &d);
        submission(&r, b"p")
    };
    let now = iotegrity_core::signatures::unix_now();
    let refused = |body: Value| {
        let url = url.clone();
        async move {
            let (status, answer) = post_json(&url, body.to_string()).await;
            (status, answer["error"].as_str().unwrap_or_default().to_string())
        }
    };
    // Sequences count from 1 and fit int8; the message says the range.
    for seq in [0, 1 << 63, u64::MAX] {
        let (status, error) = refused(signed(seq, now)).await;
        assert_eq!(status, 422, "sequence {seq}: {error}");
        assert!(error.contains("is not in 1..=9223372036854775807"), "{error}");
    }
    let mut too_big = signed(1, now);
    too_big["reading"]["sequence"] = serde_json::from_str("18446744073709551616").unwrap();
    let (status, error) = refused(too_big).await;
    assert_eq!(status, 400, "{error}");
    assert!(error.contains("a sequence in 1..=9223372036854775807"), "{error}");
    // Timestamps inside the plausibility window only.
    for ts in [0, now + 3_600, i64::MAX as u64] {
        let (status, error) = refused(signed(1, ts)).await;
        assert_eq!(status, 422, "timestamp {ts}: {error}");
        assert!(error.contains("outside the plausible window"), "{error}");
    }
    // Unknown fields, at any depth, named by their path.
    let mut nested = signed(1, now);
    nested["reading"]["note"] = json!([[[[1]]]]);
    let (status, error) = refused(nested).await;
    assert_eq!(status, 400, "{error}");
    assert!(error.contains("reading.note") && error.contains("unknown field `note`"), "{error}");
    // One signature encoding: v = 27/28, not its 0/1 twin.
    let mut twin = signed(1, now);
    let sig = twin["signatures"][1].as_str().unwrap().to_string();
    let v = u8::from_str_radix(&sig[sig.len() - 2..], 16).unwrap();
    twin["signatures"][1] = json!(format!("{}{:02x}", &sig[..sig.len() - 2], v - 27));
    let (status, body) = post_json(&url, twin.to_string()).await;
    assert_eq!((status, body["step"].as_str()), (422, Some("gateway hop 1")), "{body}");
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "0", "none of it stored");
    // The same reading, well formed, is stored.
    assert_eq!(post_json(&url, signed(1, now).to_string()).await.0, 201);
}

#[tokio::test]
async fn batch_limits_agree_and_a_malformed_item_gets_its_own_status() {
    let IngestWorld { s, port, dev, gw } = IngestWorld::new("name = \"iot.readings\"", "").await;
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    let d = s.domain();
    let (dev_key, gw_key) = (dev.online_key(), gw.online_key());
    let url = format!("http://127.0.0.1:{port}/v1/readings/batch");
    let item = |seq: u64, payload: &[u8]| {
        let mut r = SignedReading::new(&dev_key, seq, 1_700_000_000 + seq, keccak256(payload), &d);
        r.countersign(&gw_key, &d);
        submission(&r, payload)
    };
    let meter =
        |seq: u64| format!("{{\"kwh\":{}.125,\"w\":{},\"t\":\"2026-12-03T08:00:00Z\"}}", 1000 + seq, seq % 3000);
    // The documented maximum, 1 000 typical readings (two signatures each), fits the body limit.
    let full: Vec<Value> = (1..=1000).map(|q| item(q, meter(q).as_bytes())).collect();
    let (status, body) = post_json(&url, Value::Array(full).to_string()).await;
    assert_eq!(status, 200, "{body}");
    let answer: BatchAnswer = serde_json::from_value(body).unwrap();
    assert_eq!(answer.stored, 1000);
    // One more item is over the item limit; a body over the byte limit is refused before it is read.
    let over: Vec<Value> = (2001..=3001).map(|q| item(q, b"x")).collect();
    let (status, body) = post_json(&url, Value::Array(over).to_string()).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("over the item limit of 1000"), "{body}");
    // (Sent by hand: the answer comes before the body is read, so a client still uploading it
    // could see the connection close before it reads the answer.)
    let heavy: Vec<Value> = (3001..=3600).map(|q| item(q, &[b'z'; 2048])).collect(); // ~2.7 MB
    let length = Value::Array(heavy).to_string().len();
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /v1/readings/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut conn, head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut answer);
    tokio::time::timeout(std::time::Duration::from_secs(30), read).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("over the limit of 2097152 bytes (max_batch_bytes)"), "{answer}");
    // Malformed items are answered one by one; the good ones around them are stored.
    let mut extra = item(4002, b"b");
    extra["reading"]["extra"] = json!(1);
    let batch = json!([item(4001, b"a"), { "reading": 5 }, "not a reading", extra, item(4003, b"c")]);
    // An item nested deeper than a JSON value may be (serde: 128) fails alone, too.
    let deep = format!(r#"{{"reading": {}{}}}"#, "[".repeat(300), "]".repeat(300));
    let batch = format!("[{}, {deep}, {}]", &batch.to_string()[1..batch.to_string().len() - 1], item(4004, b"d"));
    let (status, body) = post_json(&url, batch).await;
    assert_eq!(status, 200, "{body}");
    let answer: BatchAnswer = serde_json::from_value(body).unwrap();
    let statuses: Vec<u16> = answer.results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![201, 400, 400, 400, 201, 400, 201]);
    let errors: Vec<&str> = answer.results.iter().map(|r| r.error.as_deref().unwrap_or("")).collect();
    assert!(errors[1].starts_with("item 1: reading: invalid type"), "{errors:?}");
    assert!(errors[3].starts_with("item 3: reading.extra: unknown field `extra`"), "{errors:?}");
    assert!(errors[5].starts_with("item 5: reading"), "{errors:?}");
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "1003");
    // An item with data after its object is malformed too (and is not stored).
    let (status, body) = post_json(&url, format!("[{} 5, {}]", item(4005, b"e"), item(4006, b"f"))).await;
    assert_eq!(status, 200, "{body}");
    let answer: BatchAnswer = serde_json::from_value(body).unwrap();
    assert_eq!(answer.results[0].status, 400, "{:?}", answer.results);
    assert!(answer.results[0].error.as_deref().unwrap().contains("trailing characters"), "{:?}", answer.results);
    assert_eq!((answer.stored, answer.results[1].status), (1, 201));
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "1004");
    // A body whose array frame is broken is refused whole, saying so, and stores nothing.
    for (body, why) in [("[1, 2", "not closed"), (r#"{"reading": 1}"#, "not a JSON array"), ("[1] [2]", "trailing")] {
        let (status, answer) = post_json(&url, body.to_string()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(why), "{body}: {answer}");
    }
    let untyped = alloy::transports::http::reqwest::Client::new().post(&url).body("[]").send().await.unwrap();
    assert_eq!(untyped.status().as_u16(), 415, "a batch must say it is JSON");
    assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iot.readings"), "1004");
}
