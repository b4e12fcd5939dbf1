//! `iotegrityd explorer` end to end (docs/explorer.md): a real Anvil, a real service daemon
//! anchoring a real PostgreSQL table, and the explorer's pages and JSON routes over them — every
//! page, every kind of bad input with its status and its sentence, the search box's landings, a
//! row edited in the database marked on its receipt page and by the audit, new anchors on the
//! live stream, and a restart that reads only the blocks since.

use iotegrity_e2e::{ServiceWorld, wait_for};
use serde_json::Value;

/// A vote on `subject` (`--address A` or `--name N`) by a fresh device identity.
async fn vote_on(w: &iotegrity_e2e::World, label: &str, address: &str, score: &str) {
    let voter = w.identity(label, "device").await;
    w.run_as(&voter, &["reputation", "vote", "--address", address, "--score", score]).json();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_what_the_chain_holds_and_marks_what_the_database_changed() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    let w = &s.w;
    let _service = s.start_service();
    s.insert(30);
    let receipts = s.wait_for_rows(30, 90);
    // A name with a pinned certificate, a vote on the service's identity.
    w.run_as(&s.svc, &["name", "register", "svc.iot", "--ip", "127.0.0.1"]).json();
    let (cert, key) = (w.path("svc.pem"), w.path("svc.key"));
    w.cli(&["cert", "issue", "svc.iot", "--cert-out", &cert, "--key-out", &key]).json();
    let pinned = w.run_as(&s.svc, &["cert", "add", "svc.iot", "--cert", &cert, "--key", &key]).json();
    let key_hash = pinned["keyHash"].as_str().unwrap().to_string();
    vote_on(w, "voter", &s.svc.online.to_string(), "60").await;

    let db = s.pg.url("postgres");
    let metrics_port = iotegrity_e2e::pg::free_port();
    let x = w.spawn_explorer(
        0,
        "",
        &format!("[database]\nurl = \"{db}\"\n[[tables]]\nname = \"public.readings\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"),
    );
    x.wait_synced(w).await;

    // The front page and its JSON.
    let (status, _, body) = x.get("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("Deployment on chain 31337") && body.contains("Latest anchors"), "{body}");
    let (_, home) = x.json("/api/home").await;
    assert!(home["counts"]["identities"].as_u64() >= Some(2), "{home}");
    assert!(home["counts"]["anchors"].as_u64() >= Some(3), "30 rows in batches of 10: {home}");
    assert_eq!(home["counts"]["names"], 1);

    // An identity, by its offline address and by its online key.
    let (status, svc) = x.json(&format!("/api/identity/{}", s.svc.online)).await;
    assert_eq!(status, 200, "{svc}");
    assert_eq!(svc["offline"].as_str().unwrap().to_lowercase(), s.svc.offline.to_string().to_lowercase());
    assert_eq!(
        (svc["role"].as_str(), svc["active"].as_bool(), svc["votes"].as_u64()),
        (Some("service"), Some(true), Some(1))
    );
    assert_eq!(svc["score"], 60.0);
    assert_eq!(svc["reputation"]["entries"][0]["event"], "VoteCast", "{svc}");
    assert_eq!(svc["names"][0], "svc.iot");
    assert!(svc["keyHistory"]["entries"].as_array().unwrap().iter().any(|e| e["event"] == "PublicKeySubmitted"));
    let anchors_by_it =
        svc["activity"]["entries"].as_array().unwrap().iter().filter(|e| e["event"] == "RootHashStored").count();
    assert!(anchors_by_it >= 3, "its anchors are its activity: {svc}");
    let (status, _, page) = x.get(&format!("/identity/{}", s.svc.offline)).await;
    assert_eq!(status, 200);
    assert!(page.contains("✓ active") && page.contains("VoteCast"), "{page}");

    // A name: its pin verifies now; revoked, it does not, and its revocation is in its history.
    let (status, name) = x.json("/api/name/svc.iot").await;
    assert_eq!(status, 200, "{name}");
    assert_eq!(name["ip"], "127.0.0.1");
    assert_eq!(name["certificates"][0]["keyHash"], key_hash.as_str());
    assert_eq!(name["certificates"][0]["verifiesNow"], true);
    w.run_as(&s.svc, &["cert", "revoke", "svc.iot", "--cert", &cert]).json();
    x.wait_synced(w).await;
    let (_, name) = x.json("/api/name/svc.iot").await;
    assert_eq!(name["certificates"][0]["verifiesNow"], false, "{name}");
    assert_eq!(name["certificates"][0]["revoked"]["event"], "CertificateRevoked", "{name}");
    let (_, _, page) = x.get("/name/svc.iot").await;
    assert!(page.contains("no pinned key verifies now"), "{page}");

    // The table: every anchor, the trusted identity, the store's view.
    let (status, table) = x.json("/api/table/public.readings").await;
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["anchorers"][0]["rows"], 30);
    assert_eq!(table["trusted"].as_str().unwrap().to_lowercase(), s.svc.offline.to_string().to_lowercase());
    assert_eq!(table["store"]["receipts"], 6, "30 rows, m = 10, n = 2: {table}");
    let root = receipts[0].anchor.anchored_root.to_string();
    let (_, table) = x.json(&format!("/api/table/public.readings?root={root}")).await;
    assert_eq!(table["root"][1], true);
    let (_, table) = x.json(&format!("/api/table/public.readings?root=0x{}", "00".repeat(32))).await;
    assert_eq!(table["root"][1], false, "a root never anchored for the table");

    // A receipt, step by step: verified while the row is as anchored.
    let (status, r) = x.json("/api/receipt/public.readings/7").await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["valid"], true, "{r}");
    let steps: Vec<&str> = r["steps"].as_array().unwrap().iter().map(|s| s["what"].as_str().unwrap()).collect();
    assert_eq!(steps, ["row", "leaf", "proof", "anchored root", "on chain", "contract"]);
    let (status, _, file) = x.get("/receipt/public.readings/7/receipt.json").await;
    assert_eq!(status, 200);
    let downloaded: iotegrity_core::receipt::Receipt = serde_json::from_str(&file).unwrap();
    assert!(downloaded.rows.iter().any(|h| h.key == 7) && downloaded.check().is_ok());

    // The database writer edits row 7: its receipt page marks the row, and only the row.
    s.pg.psql("postgres", "UPDATE readings SET value = value + 1 WHERE id = 7");
    let (_, r) = x.json("/api/receipt/public.readings/7").await;
    assert_eq!(r["valid"], false);
    let failing: Vec<&Value> = r["steps"].as_array().unwrap().iter().filter(|s| s["ok"] == false).collect();
    assert_eq!(failing.len(), 1, "{r}");
    assert_eq!(failing[0]["what"], "row");
    assert!(failing[0]["detail"].as_str().unwrap().contains("altered after it was anchored"), "{r}");
    let (_, _, page) = x.get("/receipt/public.readings/7").await;
    assert!(page.contains("✗ NOT verified") && page.contains("altered after it was anchored"), "{page}");
    let (_, r8) = x.json("/api/receipt/public.readings/8").await;
    assert_eq!(r8["valid"], true, "its neighbour is untouched: {r8}");

    // The audit, run from the page, names the row.
    let (status, _) = x.post("/api/table/public.readings/audit").await;
    assert_eq!(status, 202);
    let mut report = Value::Null;
    wait_for(
        "the audit to finish",
        60,
        || {
            let t = block_on(x.json("/api/table/public.readings")).1;
            report = t["audit"].clone();
            report["state"] == "done" || report["state"] == "failed"
        },
        String::new,
    );
    assert_eq!(report["state"], "done", "{report}");
    let findings = report["report"]["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["kind"] == "altered" && f["key"] == 7), "{report}");
    let (_, _, page) = x.get("/table/public.readings").await;
    assert!(page.contains("NOT clean") && page.contains("/receipt/public.readings/7"), "{page}");

    // The search box lands on the right page.
    let xr = &x;
    let lands = |q: String| async move { xr.get(&format!("/search?q={q}")).await };
    assert_eq!(lands("svc.iot".into()).await.1.as_deref(), Some("/name/svc.iot"));
    assert_eq!(lands(s.svc.online.to_string()).await.1, Some(format!("/identity/{}", s.svc.online)));
    let tx = receipts[0].anchor.tx.to_string();
    assert_eq!(lands(tx.clone()).await.1, Some(format!("/tx/{tx}")));
    let table_id = iotegrity_core::receipt::table_id("public.readings");
    assert_eq!(lands(root.clone()).await.1, Some(format!("/table/{table_id}?root={root}")));
    assert_eq!(lands("public.readings:7".into()).await.1.as_deref(), Some("/receipt/public.readings/7"));
    assert_eq!(lands("public.readings".into()).await.1.as_deref(), Some("/table/public.readings"));
    let (status, _, page) = lands("42".into()).await;
    assert_eq!(status, 404);
    assert!(page.contains("no job or training 42"), "{page}");
    let (status, _, page) = lands("%3Cscript%3E".into()).await;
    assert_eq!(status, 400);
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script>\""), "escaped: {page}");
    let (status, _, _) = x.get(&format!("/tx/{tx}")).await;
    assert_eq!(status, 200);

    // Bad input: a clear page and the right status, never a panic; the same as JSON.
    let random = alloy::signers::local::PrivateKeySigner::random().address();
    for (path, status, says) in [
        ("/identity/0x12".to_string(), 400, "is not an address"),
        (format!("/identity/{random}"), 404, "has no identity"),
        ("/name/Not_A_Name".into(), 400, "invalid"),
        ("/name/nobody.iot".into(), 404, "is not registered"),
        ("/table/nonsense".into(), 400, "neither schema.table"),
        ("/table/public.never".into(), 404, "never anchored"),
        ("/table/public.readings?root=0x12".to_string(), 400, "64 hex digits"),
        ("/receipt/public.readings/abc".into(), 400, "not a row key"),
        ("/receipt/public.readings/99999".into(), 404, "no receipt covers row 99999"),
        ("/receipt/public.readings/-9223372036854775808".into(), 404, "no receipt covers row"),
        ("/receipt/public.readings/99999999999999999999".into(), 400, "not a row key"),
        ("/receipt/public.other/1".into(), 503, "not a table of this explorer"),
        ("/job/1".into(), 404, "no job 1"),
        ("/job/x".into(), 400, "not a job id"),
        ("/training/7".into(), 404, "no training 7"),
        (format!("/tx/0x{}", "ab".repeat(32)), 404, "emitted no event"),
        ("/nowhere".into(), 404, "no page at /nowhere"),
    ] {
        let (got, _, page) = x.get(&path).await;
        assert_eq!(got, status, "{path}: {page}");
        assert!(page.to_lowercase().contains(&says.to_lowercase()), "{path}: {page}");
        let (got, json) = x.json(&format!("/api{path}")).await;
        assert_eq!((got, json["status"].as_u64()), (status, Some(u64::from(status))), "/api{path}: {json}");
    }

    // New anchors arrive on the live stream without a reload.
    let mut stream = x.client_stream("/events").await;
    s.insert(10);
    let anchor = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let line = stream.next_line().await;
            if let Some(data) = line.strip_prefix("data: ")
                && data.contains("RootHashStored")
            {
                return serde_json::from_str::<Value>(data).unwrap();
            }
        }
    })
    .await
    .expect("an anchor on the stream");
    assert_eq!(anchor["fields"][0]["value"], table_id.to_string(), "{anchor}");
    drop(stream);

    // Its metrics count the pages served and the events indexed.
    let text = iotegrity_e2e::metrics(metrics_port).await;
    assert!(text.contains("route=\"/api/receipt/{table}/{key}\",status=\"200\""), "{text}");
    assert!(iotegrity_e2e::metric(&text, "iotegrity_explorer_indexed_events_total").unwrap_or(0) >= 10, "{text}");

    // The chain goes away under a running explorer: the pages that ask it say so (503, a page
    // and a JSON body, no panic), what the index holds still answers; back, they answer again.
    let anvil_port: u16 = w.anvil.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let proxy = iotegrity_e2e::proxy::Proxy::start(anvil_port);
    let y = w.spawn_explorer_via(3, &format!("http://127.0.0.1:{}", proxy.port), "", "");
    y.wait_synced(w).await;
    proxy.cut();
    let (status, body) = y.json(&format!("/api/identity/{}", s.svc.offline)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("the chain cannot be asked now"), "{body}");
    let (status, _, page) = y.get("/name/svc.iot").await;
    assert!(status == 503 && page.contains("Not available now"), "{status}: {page}");
    assert_eq!(y.json("/api/home").await.0, 200, "the index still answers");
    proxy.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while y.json(&format!("/api/identity/{}", s.svc.offline)).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the explorer never got the chain back");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(y);

    // The database goes away: the receipt page says so (503), and comes back with it.
    s.pg.stop();
    let (status, body) = x.json("/api/receipt/public.readings/8").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("the database cannot be read now"), "{body}");
    s.pg.start_again();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while x.json("/api/receipt/public.readings/8").await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "the explorer never got the database back");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // With a state directory, a restart reads only the blocks since its last read.
    let state = w.path("explorer-state");
    let first = w.spawn_explorer(1, &format!("state_dir = \"{state}\""), "");
    first.wait_synced(w).await;
    let (_, before) = first.json("/api/home").await;
    let mut daemon = first.daemon;
    assert!(daemon.signal("-TERM").success(), "a clean stop");
    let synced = before["syncedTo"].as_u64().unwrap();
    let again = w.spawn_explorer(2, &format!("state_dir = \"{state}\""), "");
    let log = std::fs::read_to_string(&again.log).unwrap();
    assert!(log.contains(&format!("from_block={}", synced + 1)), "{log}");
    again.wait_synced(w).await;
    let (_, after) = again.json("/api/home").await;
    assert_eq!(after["counts"], before["counts"], "the same index, read back");
}

/// Blocks on a future from a synchronous closure (the `wait_for` loop).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
