//! `iotegrityd gateway` end to end: simulated sensors (one a simulated P1 meter writing real
//! telegrams) → signing → journal → the service's ingest API → Postgres → receipts → audit; the
//! service going away and coming back; `kill -9` during delivery; commands; a flooding device.

use iotegrity_e2e::GatewayWorld;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `device → sequences` stored by the service, in the order the rows were inserted.
fn stored(g: &GatewayWorld) -> BTreeMap<String, Vec<u64>> {
    let text =
        g.i.s.pg.psql("postgres", "SELECT encode(device, 'hex') || ' ' || sequence FROM iot.readings ORDER BY id");
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (dev, seq) = line.split_once(' ').unwrap();
        out.entry(format!("0x{dev}")).or_default().push(seq.parse().unwrap());
    }
    out
}

/// Every reading the service acknowledged is stored exactly once, as signed; what is stored is
/// exactly a prefix of what was journaled (the gateway may have journaled a few more while it was
/// being stopped; those go out at its next start); each device's sequences arrive in order, no gap.
pub(crate) fn assert_exactly_once_in_order(g: &GatewayWorld) {
    let (delivered, pending) = g.journaled_readings();
    let rows = stored(g);
    let total: usize = rows.values().map(Vec::len).sum();
    assert!(
        total >= delivered.len() && total <= delivered.len() + pending.len(),
        "stored {total}, acknowledged {}, journaled after the cursor {}",
        delivered.len(),
        pending.len()
    );
    for (dev, seqs) in &rows {
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, &expected, "device {dev}: every sequence once, in order, no gap");
    }
    // Same chains as journaled: nothing stored was re-signed or swapped, nothing acknowledged lost.
    let sigs = g.i.s.pg.psql(
        "postgres",
        "SELECT encode(device, 'hex') || ' ' || sequence || ' ' || encode(signatures[2], 'hex') FROM iot.readings",
    );
    let sigs: std::collections::HashSet<&str> = sigs.lines().filter(|l| !l.is_empty()).collect();
    let key = |j: &iotegrity_core::wire::ReadingSubmission| {
        format!(
            "{} {} {}",
            alloy::hex::encode(j.reading().device),
            j.reading().sequence,
            alloy::hex::encode(&j.signed.signatures[1])
        )
    };
    for j in &delivered {
        assert!(sigs.contains(key(j).as_str()), "acknowledged reading {} is stored as signed", key(j));
    }
    let journaled: std::collections::HashSet<String> = delivered.iter().chain(&pending).map(key).collect();
    for row in &sigs {
        assert!(journaled.contains(*row), "stored reading {row} was journaled as signed");
    }
}

fn audit_clean(g: &GatewayWorld) -> Value {
    let s = &g.i.s;
    s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", "iot.readings", "--json"]).json()
}

#[tokio::test]
async fn simulated_sensors_reach_the_service_signed_anchored_and_audit_clean() {
    let metrics_port = iotegrity_e2e::pg::free_port();
    let g = GatewayWorld::new(
        &[
            ("meter", "interval_ms = 20\nsensor = { kind = \"simulated-p1\", seed = 3, corrupt_every = 4 }"),
            ("env1", "interval_ms = 25\nsensor = { kind = \"simulated\", seed = 1 }"),
            ("env2", "interval_ms = 25\nsensor = { kind = \"simulated\", seed = 2 }"),
        ],
        &format!(
            "[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\
             [[aggregates]]\ngroup = \"room-1\"\ndevices = [\"env1\", \"env2\"]\nsize = 4\n"
        ),
    )
    .await;
    let _service = g.i.s.start_service();
    let mut gw = g.spawn_gateway(0);
    let meter = g.device("meter").online;
    g.wait_status(60, "40 meter readings signed", |s| s["devices"][0]["nextSequence"].as_u64() >= Some(40)).await;
    g.wait_caught_up(60, "those delivered").await;
    let text = iotegrity_e2e::metrics(metrics_port).await;
    let value = |name: &str| iotegrity_e2e::metric(&text, name).unwrap_or(0);
    assert!(value("iotegrity_gateway_readings_signed_total") >= 40, "{text}");
    assert!(value("iotegrity_gateway_samples_rejected_total") >= 1, "the corrupted telegrams: {text}");
    assert!(value("iotegrity_gateway_records_delivered_total") >= 40, "{text}");
    assert!(value("iotegrity_gateway_delivery_seconds_count") >= 1, "deliveries are timed: {text}");
    assert!(gw.signal("-TERM").success(), "SIGTERM stops the gateway cleanly");
    let log = std::fs::read_to_string(g.log_path(0)).unwrap();
    assert!(log.contains("sample refused, not signed") && log.contains("CRC mismatch"), "corrupted telegrams: {log}");

    // Restarted, it delivers what was journaled before the stop, then the service anchors it all.
    let mut gw = g.spawn_gateway(1);
    g.wait_caught_up(60, "what was journaled before the stop delivered").await;
    assert!(gw.signal("-TERM").success());
    assert_exactly_once_in_order(&g);
    let rows: usize = g.i.s.pg.psql("postgres", "SELECT count(*) FROM iot.readings").parse().unwrap();
    g.i.s.wait_for_rows(rows, 60);
    let audit = audit_clean(&g);
    assert_eq!(audit["clean"], true, "{audit}");

    // The meter's payloads are the parsed telegrams; the group's readings came as aggregates.
    let payload = g.i.s.pg.psql(
        "postgres",
        &format!(
            "SELECT convert_from(payload, 'UTF8') FROM iot.readings WHERE device = '\\x{}' LIMIT 1",
            alloy::hex::encode(meter)
        ),
    );
    let p: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!((p["kind"].as_str(), p["dsmr"].as_str()), (Some("dsmr"), Some("50")), "{p}");
    assert!(p["delivered_wh"][0].as_u64().unwrap() > 1_000_000);
    let aggregates: u64 = g.i.s.pg.psql("postgres", "SELECT count(*) FROM iot.aggregates").parse().unwrap();
    let members: u64 =
        g.i.s.pg.psql("postgres", "SELECT count(*) FROM iot.readings WHERE aggregate_id IS NOT NULL").parse().unwrap();
    assert!(aggregates >= 2 && members == aggregates * 4, "{aggregates} aggregates, {members} members");

    // One stored reading's chain, exported as eth_signTypedData_v4 JSON and checked by alloy's
    // generic typed-data code (not iotegrity's): each signature recovers to the signer named.
    let db = g.i.s.pg.url("postgres");
    let out = g.i.s.w.path("reading-1.json");
    let shown = g.i.s.w.cli(&["reading", "--db", &db, "--id", "1", "--out", &out, "--json"]).json();
    assert_eq!((shown["verifies"].as_bool(), shown["payloadOk"].as_bool()), (Some(true), Some(true)), "{shown}");
    let steps: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(steps.len(), 2);
    for (step, primary) in steps.iter().zip(["Reading", "Countersign"]) {
        let typed: alloy::dyn_abi::TypedData = serde_json::from_value(step["typedData"].clone()).unwrap();
        assert_eq!(typed.primary_type, primary);
        let sig: alloy::primitives::Signature = step["signature"].as_str().unwrap().parse().unwrap();
        let signer = sig.recover_address_from_prehash(&typed.eip712_signing_hash().unwrap()).unwrap();
        assert_eq!(signer, step["signer"].as_str().unwrap().parse::<alloy::primitives::Address>().unwrap());
    }
    // After an edit of the payload, the same command says so and exits 1.
    g.i.s.pg.psql("postgres", "UPDATE iot.readings SET payload = convert_to('{}', 'UTF8') WHERE id = 1");
    let edited = g.i.s.w.cli(&["reading", "--db", &db, "--id", "1"]);
    assert_eq!(edited.code, 1, "{}", edited.stderr);
    let v: Value = serde_json::from_str(edited.stdout.trim()).unwrap();
    assert_eq!((v["payloadOk"].as_bool(), v["verifies"].as_bool()), (Some(false), Some(true)), "{v}");
    let missing = g.i.s.w.cli(&["reading", "--db", &db, "--id", "999999"]);
    assert!(missing.failure().contains("no reading with id 999999"));
}

#[tokio::test]
async fn service_unreachable_then_back_everything_delivered_once_in_order() {
    let g = GatewayWorld::new(&[("env", "interval_ms = 10\nsensor = { kind = \"simulated\" }")], "").await;
    // The service is not running yet: the gateway keeps signing into its journal.
    let mut gw = g.spawn_gateway(0);
    g.wait_status(60, "a backlog while the service is away", |s| s["journal"]["backlog"].as_u64() >= Some(60)).await;
    let log = std::fs::read_to_string(g.log_path(0)).unwrap();
    assert!(log.contains("delivery paused"), "{log}");
    // It comes up: the backlog drains.
    let _service = g.i.s.start_service();
    g.wait_caught_up(60, "backlog delivered").await;
    // The connection is cut in the middle of work, then restored.
    g.proxy.cut();
    g.wait_status(30, "a new backlog", |s| s["journal"]["backlog"].as_u64() >= Some(30)).await;
    g.proxy.restore();
    g.wait_caught_up(60, "backlog delivered again").await;
    assert!(gw.signal("-TERM").success());
    let mut gw = g.spawn_gateway(1);
    g.wait_caught_up(60, "all delivered").await;
    assert!(gw.signal("-TERM").success());
    assert_exactly_once_in_order(&g);
}

#[tokio::test]
async fn a_batch_too_large_for_the_service_is_halved_until_it_fits() {
    // 20 readings a batch are ~17 KiB; the service takes at most 6 KiB a batch.
    let g = GatewayWorld::with_ingest(
        &[("env", "interval_ms = 10\nsensor = { kind = \"simulated\" }")],
        "",
        "max_batch_bytes = 6144",
    )
    .await;
    // A backlog first (the service is not up yet), so full batches go out when it comes.
    let mut gw = g.spawn_gateway(0);
    g.wait_status(60, "a backlog", |s| s["journal"]["backlog"].as_u64() >= Some(60)).await;
    let _service = g.i.s.start_service();
    g.wait_caught_up(60, "delivered in smaller batches").await;
    assert!(gw.signal("-TERM").success());
    assert_exactly_once_in_order(&g);
    assert!(!g.state_dir.join("refused.jsonl").exists(), "nothing refused for good");
    let log = std::fs::read_to_string(g.log_path(0)).unwrap();
    assert!(log.contains("too large; halving it"), "the service's 413 was met by halving: {log}");
}

#[tokio::test]
async fn kill_9_during_delivery_loses_nothing_and_repeats_nothing() {
    let g = GatewayWorld::new(
        &[
            ("a", "interval_ms = 10\nsensor = { kind = \"simulated\", seed = 5 }"),
            ("b", "interval_ms = 15\nsensor = { kind = \"simulated-p1\", seed = 6 }"),
        ],
        "",
    )
    .await;
    let _service = g.i.s.start_service();
    // Slow the service's answers down by cutting it now and then, so kills land mid-delivery too.
    for round in 0..10u64 {
        let mut gw = g.spawn_gateway(round as usize);
        g.wait_status(30, "gateway up", |_| true).await;
        if round % 3 == 1 {
            g.proxy.cut();
        }
        tokio::time::sleep(std::time::Duration::from_millis(150 + (round * 97) % 400)).await;
        g.proxy.restore();
        tokio::time::sleep(std::time::Duration::from_millis((round * 53) % 200)).await;
        gw.signal("-9");
    }
    let mut gw = g.spawn_gateway(99);
    g.wait_caught_up(60, "all delivered").await;
    assert!(gw.signal("-TERM").success());
    let stored_rows: usize = stored(&g).values().map(Vec::len).sum();
    assert!(stored_rows > 100, "enough readings to mean something: {stored_rows}");
    assert_exactly_once_in_order(&g);
}

#[tokio::test]
async fn commands_are_verified_applied_answered_and_replays_and_bad_keys_refused() {
    let g = GatewayWorld::new(&[("env", "interval_ms = 50\nsensor = { kind = \"simulated\" }")], "").await;
    let s = &g.i.s;
    let _service = s.start_service();
    let mut gw = g.spawn_gateway(0);
    g.wait_status(30, "gateway up", |_| true).await;
    let dev = g.device("env").online.to_string();
    let url = format!("http://127.0.0.1:{}/v1/commands", g.api_port);
    let sign = |keystore: &std::path::Path, device: &str, seq: u64, payload: &str| -> String {
        let out =
            s.w.path(&format!("cmd-{seq}-{}.json", keystore.parent().unwrap().file_name().unwrap().to_string_lossy()));
        s.w.cli(&[
            "command",
            "--online-keystore",
            &keystore.display().to_string(),
            "--password-file",
            &s.w.password_file.display().to_string(),
            "--device",
            device,
            "--sequence",
            &seq.to_string(),
            "--payload",
            payload,
            "--out",
            &out,
            "--json",
        ])
        .json();
        std::fs::read_to_string(out).unwrap()
    };
    let svc_key = s.svc.dir.join("online.json");

    // A valid command, sent with the CLI: applied, the device's feedback signed, relayed, checked
    // by the CLI against the chain, and delivered to the service.
    let api = format!("http://127.0.0.1:{}", g.api_port);
    let send = |seq: &str| {
        s.w.cli(&[
            "command",
            "--online-keystore",
            &svc_key.display().to_string(),
            "--password-file",
            &s.w.password_file.display().to_string(),
            "--device",
            &dev,
            "--sequence",
            seq,
            "--payload",
            "{\"interval_ms\": 200}",
            "--out",
            &s.w.path(&format!("sent-{seq}.json")),
            "--to",
            &api,
            "--json",
        ])
    };
    let sent = send("1").json();
    assert_eq!(sent["feedback"], json!({ "ok": true, "interval_ms": 200 }), "{sent}");
    let st = g.status().await.unwrap();
    assert_eq!(st["devices"][0]["intervalMs"], 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.pg.psql("postgres", "SELECT count(*) FROM iot.commands") != "1" {
        assert!(std::time::Instant::now() < deadline, "feedback never reached the service");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The same sequence again: a replay, refused, and the CLI says so.
    let replay = send("1");
    assert!(replay.failure().contains("409") && replay.stderr.contains("replay"), "{}", replay.stderr);
    // An action the device does not know: signed feedback saying so.
    let (status, body) = iotegrity_e2e::post_json(&url, sign(&svc_key, &dev, 2, "{\"reboot\": true}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        String::from_utf8(alloy::hex::decode(body["feedbackPayload"].as_str().unwrap()).unwrap())
            .unwrap()
            .contains("\"ok\":false")
    );
    // For a device this gateway does not have.
    let stranger = alloy::signers::local::PrivateKeySigner::random().address().to_string();
    let (status, _) = iotegrity_e2e::post_json(&url, sign(&svc_key, &stranger, 3, "{\"interval_ms\": 100}")).await;
    assert_eq!(status, 404);
    // Signed by a key nobody registered.
    let rogue = s.w.keys("rogue").await;
    let (status, body) =
        iotegrity_e2e::post_json(&url, sign(&rogue.dir.join("online.json"), &dev, 4, "{\"interval_ms\": 100}")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not a registered online key"), "{body}");
    // Signed by a registered key that is not a service (the device's own).
    let dev_key = g.device("env").dir.join("online.json");
    let (status, body) = iotegrity_e2e::post_json(&url, sign(&dev_key, &dev, 5, "{\"interval_ms\": 100}")).await;
    assert_eq!((status, body["error"].as_str().unwrap().contains("not a service")), (403, true), "{body}");
    // A payload swapped after signing.
    let mut tampered: Value = serde_json::from_str(&sign(&svc_key, &dev, 6, "{\"interval_ms\": 100}")).unwrap();
    tampered["commandPayload"] = json!(format!("0x{}", alloy::hex::encode("{\"interval_ms\": 10}")));
    let (status, _) = iotegrity_e2e::post_json(&url, tampered.to_string()).await;
    assert_eq!(status, 422);
    // The service's identity is closed on chain: its next command is refused at once.
    let closing = sign(&svc_key, &dev, 7, "{\"interval_ms\": 100}");
    s.w.run_as(&s.svc, &["identity", "close", "--yes"]).json();
    let (status, body) = iotegrity_e2e::post_json(&url, closing).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no longer an active key"), "{body}");
    assert_eq!(g.status().await.unwrap()["devices"][0]["intervalMs"], 200, "no refused command was applied");
    assert!(gw.signal("-TERM").success());
}

#[tokio::test]
async fn a_flooding_device_is_flagged_quarantined_and_can_be_reported() {
    let g = GatewayWorld::new(
        &[
            ("steady", "interval_ms = 20\nsensor = { kind = \"simulated\", seed = 1 }"),
            ("flooder", "interval_ms = 20\nsensor = { kind = \"simulated\", seed = 2, flood_after = 30 }"),
        ],
        "[profile]\naction = \"quarantine\"\nlearn = 10\n",
    )
    .await;
    let s = &g.i.s;
    let _service = s.start_service();
    let mut gw = g.spawn_gateway(0);
    let st = g
        .wait_status(60, "the flood flagged", |s| {
            s["devices"][1]["outliers"].as_u64() >= Some(100) && s["devices"][0]["nextSequence"].as_u64() >= Some(60)
        })
        .await;
    assert_eq!(st["devices"][0]["outliers"], 0, "the steady device stays inside its profile: {st}");
    let report = st["devices"][1]["report"].as_str().unwrap();
    assert!(report.starts_with("iotegrity reputation vote --address"), "{report}");
    // Delivery is in journal order: once the steady device's readings signed before `st` are all
    // stored, so is everything journaled before them that was ever going to be delivered — the
    // flood's quarantined readings included, had they been sent. A fixed amount of work, so this
    // waits on a count, not on the machine keeping up with the sensors (they keep signing).
    let (steady, flooder) = (g.device("steady").online, g.device("flooder").online);
    let steady_signed = st["devices"][0]["nextSequence"].as_u64().unwrap() - 1;
    let count = |dev: alloy::primitives::Address| stored(&g).get(&dev.to_string().to_lowercase()).map_or(0, Vec::len);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while (count(steady) as u64) < steady_signed {
        assert!(std::time::Instant::now() < deadline, "steady readings up to {steady_signed} not stored in 120 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gw.signal("-TERM").success());
    let log = std::fs::read_to_string(g.log_path(0)).unwrap();
    assert!(log.contains("the learned rate"), "{log}");

    // Quarantined readings were signed and kept, but never delivered.
    let delivered = count(flooder) as u64;
    let signed = st["devices"][1]["nextSequence"].as_u64().unwrap();
    assert!(delivered <= 40 && signed > delivered + 90, "delivered {delivered} of {signed}");

    // The gateway operator reports the device on chain with the gateway's offline key.
    let gw_ident = &g.i.gw;
    s.w.run_as(gw_ident, &["reputation", "vote", "--address", &flooder.to_string(), "--score", "-50"]).json();
    let shown = s.w.cli(&["reputation", "show", "--address", &flooder.to_string(), "--json"]).json();
    assert!(shown.to_string().contains("-50"), "{shown}");
}

#[tokio::test]
async fn check_config_names_what_is_wrong() {
    let g = GatewayWorld::new(&[("env", "interval_ms = 50\nsensor = { kind = \"simulated\" }")], "").await;
    let check = |config: &std::path::Path, password: Option<&str>| {
        let mut cmd = std::process::Command::new(iotegrity_e2e::bin("iotegrityd"));
        cmd.args(["gateway", "--check-config", "--config"]).arg(config);
        if let Some(pw) = password {
            cmd.env("IOTEGRITYD_PASSWORD", pw);
        }
        let out = cmd.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = check(&g.config, None);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("configuration ok") && out.contains("1 devices"), "{out}");
    // Nothing was signed by a check: the journal holds its first checkpoint only.
    let (delivered, pending) = g.journaled_readings();
    assert_eq!(delivered.len() + pending.len(), 0);

    let (code, out) = check(&g.config, Some("not the password"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("wrong password") && !out.contains("panicked"), "{out}");

    let variant = |name: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(&g.config).unwrap().replace(from, to);
        assert_ne!(text, std::fs::read_to_string(&g.config).unwrap(), "{from} is in the config");
        let path = g.config.with_file_name(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let no_port = variant(
        "p1.toml",
        "sensor = { kind = \"simulated\" }",
        "sensor = { kind = \"dsmr-p1\", port = \"/dev/no-such-uart\" }",
    );
    let (code, out) = check(&no_port, None);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("device env") && out.contains("/dev/no-such-uart"), "{out}");
    let bad_version =
        variant("v3.toml", "sensor = { kind = \"simulated\" }", "sensor = { kind = \"dsmr-p1\", version = \"3\" }");
    let (code, out) = check(&bad_version, None);
    assert!(code == Some(1) && out.contains("unknown variant"), "{out}");
    let no_key = variant("nokey.toml", "[gateway]\nkeystore = \"", "[gateway]\nkeystore = \"/missing");
    let (code, out) = check(&no_key, None);
    assert!(code == Some(1) && out.contains("gateway key"), "{out}");
}
