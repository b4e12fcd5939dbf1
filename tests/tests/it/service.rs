//! The service daemon against real Postgres and a real Anvil: every row gets exactly one receipt
//! that verifies on chain, across `kill -9` at random points, out-of-order commits, standbys and
//! SIGTERM.

use alloy::primitives::B256;
use alloy::providers::ProviderBuilder;
use iotegrity_core::AddressBook;
use iotegrity_core::contracts::ReceiptAnchor;
use iotegrity_core::receipt::Receipt;
use iotegrity_e2e::ServiceWorld;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

/// Asserts receipts cover keys 1..=rows exactly once, check offline, and are anchored on chain.
async fn assert_complete(s: &ServiceWorld, receipts: &[Receipt], rows: i64) {
    let keys: Vec<i64> = receipts.iter().flat_map(|r| r.rows.iter().map(|row| row.key)).collect();
    assert_eq!(keys, (1..=rows).collect::<Vec<_>>(), "every row exactly once, in order");
    let book = AddressBook::load(&s.w.book).unwrap();
    let provider = ProviderBuilder::new().connect_http(s.w.anvil.endpoint_url());
    let anchor = ReceiptAnchor::new(book.receipt_anchor(), &provider);
    let mut roots = BTreeSet::new();
    for r in receipts {
        r.check().unwrap_or_else(|e| panic!("receipt {}..{}: {e}", r.first_key, r.last_key));
        let proof: Vec<B256> = r.proof.iter().map(|p| p.sibling).collect();
        let upper: Vec<B256> = r.anchor_proof.iter().map(|p| p.sibling).collect();
        let sub_table = alloy::primitives::keccak256(iotegrity_core::receipt::pack_rows(&r.rows));
        assert!(
            anchor.verifyReceipt(s.svc.offline, r.anchor.anchored_root, sub_table, proof, upper).call().await.unwrap(),
            "on-chain proof"
        );
        roots.insert(r.anchor.anchored_root);
    }
    // No root anchored twice: each anchored root has exactly one RootHashStored event per batch.
    let logs = s.pg.psql("postgres", "SELECT count(*) FROM iotegrity.batches");
    let events = alloy::providers::Provider::get_logs(
        &provider,
        &alloy::rpc::types::Filter::new().address(book.receipt_anchor()).from_block(0),
    )
    .await
    .unwrap();
    assert_eq!(events.len().to_string(), logs, "one RootHashStored event per batch, none twice");
}

#[tokio::test]
async fn every_row_gets_one_receipt_including_a_short_batch_after_max_wait() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 100\nn = 4\nmax_wait_secs = 2").await;
    let daemon = s.spawn_daemon(0);
    s.insert(250);
    let receipts = s.wait_for_rows(250, 60);
    drop(daemon);
    assert_complete(&s, &receipts, 250).await;
    // 100 + 100 in full batches of 4 sub-tables (25 rows each), then 50 after max_wait.
    let sizes: Vec<usize> = receipts.iter().map(|r| r.rows.len()).collect();
    assert_eq!(&sizes[..8], &[25; 8]);
    assert_eq!(receipts.iter().filter(|r| r.m == 50).count(), 4, "the short batch");
}

/// 301 rows waiting before the daemon starts, m = 2: more than one read (64 batches a read), then
/// a short batch of one row after max_wait.
#[tokio::test]
async fn a_backlog_larger_than_one_read_is_cut_in_order() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 2\nn = 1\nmax_wait_secs = 1").await;
    s.insert(301);
    let daemon = s.spawn_daemon(0);
    let receipts = s.wait_for_rows(301, 90);
    drop(daemon);
    assert_complete(&s, &receipts, 301).await;
    assert_eq!(receipts.iter().filter(|r| r.m == 2).count(), 150);
    assert_eq!(receipts.last().unwrap().m, 1, "the short batch");
}

#[tokio::test]
async fn kill_9_at_random_points_loses_nothing_and_anchors_nothing_twice() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 20\nn = 3\nmax_wait_secs = 1").await;
    let mut total = 0;
    for round in 0..8u64 {
        let daemon = s.spawn_daemon(round as usize);
        s.insert(37);
        total += 37;
        // Pseudo-random kill points between 50 and 1 500 ms.
        let delay = 50 + (round * 7_919 % 1_450);
        std::thread::sleep(Duration::from_millis(delay));
        let mut daemon = daemon;
        daemon.signal("-9");
    }
    let daemon = s.spawn_daemon(99);
    let receipts = s.wait_for_rows(total, 90);
    drop(daemon);
    assert_complete(&s, &receipts, total as i64).await;
}

/// The crash window between sending an anchoring transaction and recording its hash: the root is
/// on chain, the database knows only the plan. Rebuilt exactly (by rewinding a finished anchor to
/// that state), the restarted daemon must find the transaction through the contract's logs —
/// also when a wrong hash was recorded — write the same receipts, and send nothing.
#[tokio::test]
async fn an_anchor_sent_but_not_recorded_is_found_in_the_logs_not_sent_again() {
    use alloy::providers::Provider;
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    let mut daemon = s.spawn_daemon(0);
    s.insert(20);
    let before = s.wait_for_rows(20, 60);
    daemon.signal("-9");
    let provider = ProviderBuilder::new().connect_http(s.w.anvil.endpoint_url());
    let nonce = provider.get_transaction_count(s.svc.online).await.unwrap();
    let anchors = s.pg.psql("postgres", "SELECT count(*) FROM iotegrity.anchors");
    let recorded =
        s.pg.psql("postgres", "SELECT encode(tx_hash, 'hex') FROM iotegrity.anchors ORDER BY id DESC LIMIT 1");
    for (round, tx_hash) in [(1, "NULL"), (2, "'\\x00000000000000000000000000000000000000000000000000000000000000ff'")]
    {
        s.pg.psql(
            "postgres",
            &format!(
                "BEGIN; \
                 DELETE FROM iotegrity.receipts WHERE batch_id IN \
                   (SELECT b.id FROM iotegrity.batches b WHERE b.anchor_id = (SELECT max(id) FROM iotegrity.anchors)); \
                 UPDATE iotegrity.anchors SET status = 'planned', tx_hash = {tx_hash}, block_number = NULL, \
                   confirmed_at = NULL WHERE id = (SELECT max(id) FROM iotegrity.anchors); COMMIT"
            ),
        );
        assert!(s.receipts().len() < before.len(), "round {round}: the receipts of the last anchor are gone");
        let daemon = s.spawn_daemon(round);
        let after = s.wait_for_rows(20, 60);
        drop(daemon);
        assert_eq!(after, before, "round {round}: the same receipts, found from the logs");
        assert_eq!(s.pg.psql("postgres", "SELECT count(*) FROM iotegrity.anchors"), anchors);
        let found =
            s.pg.psql("postgres", "SELECT encode(tx_hash, 'hex') FROM iotegrity.anchors ORDER BY id DESC LIMIT 1");
        assert_eq!(found, recorded, "round {round}: the original transaction");
        assert_eq!(provider.get_transaction_count(s.svc.online).await.unwrap(), nonce, "nothing sent again");
    }
    assert_complete(&s, &before, 20).await;
}

#[tokio::test]
async fn rows_committed_out_of_key_order_are_not_skipped() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 1\nn = 1\nmax_wait_secs = 0").await;
    let daemon = s.spawn_daemon(0);
    s.wait_active(0);
    // A transaction takes key 1 and stays open while key 2 commits.
    let url = s.pg.url("postgres");
    let mut slow = Command::new(s.pg.tool("psql"))
        .args(["-X", "-q", &url, "-c"])
        .arg("BEGIN; INSERT INTO readings (device, value) VALUES ('slow', 1); SELECT pg_sleep(3); COMMIT;")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.insert(1); // key 2, committed first
    std::thread::sleep(Duration::from_millis(1500));
    let early = s.receipts();
    let early_keys: Vec<(i64, i64)> = early.iter().map(|r| (r.first_key, r.last_key)).collect();
    let log = std::fs::read_to_string(s.w.dir.path().join("daemon-0.log")).unwrap_or_default();
    assert!(early.iter().all(|r| r.first_key != 2), "key 2 must wait for key 1's transaction: {early_keys:?}\n{log}");
    slow.wait().unwrap();
    let receipts = s.wait_for_rows(2, 30);
    drop(daemon);
    assert_complete(&s, &receipts, 2).await;
}

#[tokio::test]
async fn standby_takes_over_and_sigterm_stops_cleanly() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    let mut first = s.spawn_daemon(0);
    s.wait_active(0);
    let second = s.spawn_daemon(1);
    s.wait_log(1, "standing by"); // it tried the lock and found it held
    s.insert(30);
    s.wait_for_rows(30, 60);
    // SIGTERM: a clean exit with status 0.
    let status = first.signal("-TERM");
    assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
    // The standby takes the lock and carries on.
    s.insert(30);
    let receipts = s.wait_for_rows(60, 60);
    drop(second);
    assert_complete(&s, &receipts, 60).await;
    let log = std::fs::read_to_string(s.w.dir.path().join("daemon-1.log")).unwrap();
    assert_eq!(log.matches("active: watching").count(), 1, "the standby became active once, after the first stopped");
}

/// The `batch cut` log lines of daemon `n`, as the tables they name.
fn tables_cut(s: &ServiceWorld, n: usize) -> BTreeSet<String> {
    let log = std::fs::read_to_string(s.w.dir.path().join(format!("daemon-{n}.log"))).unwrap();
    log.lines()
        .filter(|l| l.contains("batch cut"))
        .filter_map(|l| l.split("table=").nth(1)?.split_whitespace().next().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn daemons_share_tables_one_watcher_each_and_take_over_table_by_table() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    s.pg.psql("postgres", "CREATE TABLE other (id bigserial PRIMARY KEY, v int NOT NULL)");
    let both = "[[tables]]\nname = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1\n\
                [[tables]]\nname = \"public.other\"\nm = 5\nn = 1\nmax_wait_secs = 1";
    // Daemon 0 is configured for readings, daemon 1 for both: it takes `other` and stands by for
    // readings.
    let mut first = s.spawn_daemon(0);
    s.wait_log(0, "active: watching public.readings");
    let second = s.spawn_daemon_with(1, both, None);
    s.wait_log(1, "active: watching public.other");
    s.wait_log(1, "standing by");
    assert_eq!(s.advisory_locks(), (2, 2), "one lock per table, each held by one daemon");
    s.insert(30);
    s.pg.psql("postgres", "INSERT INTO other (v) SELECT g FROM generate_series(1, 10) g");
    s.wait_for_rows(40, 60);
    assert_eq!(tables_cut(&s, 0), BTreeSet::from(["public.readings".to_string()]));
    assert_eq!(tables_cut(&s, 1), BTreeSet::from(["public.other".to_string()]));

    // Daemon 0 stops: daemon 1 takes readings over, and keeps `other`.
    assert!(first.signal("-TERM").success());
    s.wait_log(1, "active: watching public.readings");
    s.insert(20);
    s.pg.psql("postgres", "INSERT INTO other (v) SELECT g FROM generate_series(1, 5) g");
    s.wait_for_rows(65, 60);
    assert_eq!(s.advisory_locks(), (2, 1), "both tables' locks on daemon 1's one session");
    assert_eq!(tables_cut(&s, 1).len(), 2, "daemon 1 cut both tables after the takeover");
    drop(second);
    for (table, rows) in [("public.readings", 50), ("public.other", 15)] {
        let keys: Vec<i64> =
            s.receipts().iter().filter(|r| r.table == table).flat_map(|r| r.rows.iter().map(|row| row.key)).collect();
        assert_eq!(keys, (1..=rows).collect::<Vec<_>>(), "{table}: every row exactly once, in order");
        let report = s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", table]).json();
        assert_eq!(report["clean"], true, "{table}: {report}");
    }
    let log = std::fs::read_to_string(s.w.dir.path().join("daemon-1.log")).unwrap();
    assert_eq!(log.matches("active: watching public.readings").count(), 1, "taken over once");
}

#[tokio::test]
async fn rpc_down_and_back_loses_nothing() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    let proxy = iotegrity_e2e::proxy::Proxy::start(s.w.anvil.port());
    s.set_rpc_url(&format!("http://127.0.0.1:{}", proxy.port));
    let daemon = s.spawn_daemon(0);
    s.wait_active(0);
    s.insert(20);
    s.wait_for_rows(20, 60);
    proxy.cut();
    s.insert(25);
    std::thread::sleep(Duration::from_secs(3));
    let stuck: usize = s.receipts().iter().map(|r| r.rows.len()).sum();
    assert_eq!(stuck, 20, "nothing can be anchored while the RPC is down");
    let log = std::fs::read_to_string(s.w.dir.path().join("daemon-0.log")).unwrap();
    assert!(log.contains("cycle failed; retrying"), "the outage is logged");
    proxy.restore();
    let receipts = s.wait_for_rows(45, 60);
    drop(daemon);
    assert_complete(&s, &receipts, 45).await;
}

#[tokio::test]
async fn database_down_and_back_loses_nothing() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    let daemon = s.spawn_daemon(0);
    s.wait_active(0);
    s.insert(15);
    s.pg.restart_after(Duration::from_secs(2));
    s.insert(15);
    let receipts = s.wait_for_rows(30, 60);
    drop(daemon);
    assert_complete(&s, &receipts, 30).await;
    let log = std::fs::read_to_string(s.w.dir.path().join("daemon-0.log")).unwrap();
    assert!(log.contains("re-acquiring"), "the lock session died with the database and was re-acquired");
    assert_eq!(log.matches("active: watching").count(), 2, "active again only after re-locking");
}

#[tokio::test]
async fn config_errors_check_config_and_metrics() {
    let port = iotegrity_e2e::pg::free_port();
    let s = ServiceWorld::with_extra(
        "name = \"public.readings\"\nm = 5\nn = 1\nmax_wait_secs = 1",
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\""),
    )
    .await;
    let run = |config: &std::path::Path, extra: &[&str]| {
        let out = Command::new(iotegrity_e2e::bin("iotegrityd"))
            .args(["service", "--config"])
            .arg(config)
            .args(extra)
            .env_remove("IOTEGRITYD_PRIVATE_KEY")
            .env_remove("IOTEGRITYD_PASSWORD")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, out) = run(&s.config, &["--check-config"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("configuration ok"), "{out}");
    let (code, out) = run(&s.w.dir.path().join("missing.toml"), &[]);
    assert_eq!(code, Some(1));
    assert!(out.contains("cannot read"), "{out}");
    let text = std::fs::read_to_string(&s.config).unwrap();
    let bad = s.w.dir.path().join("bad.toml");
    std::fs::write(&bad, text.replace("name = \"public.readings\"", "name = \"Public.Readings\"")).unwrap();
    let (code, out) = run(&bad, &["--check-config"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("not a plain lowercase SQL identifier"), "{out}");
    let keyless: String = text.lines().filter(|l| !l.starts_with("keystore")).collect::<Vec<_>>().join("\n");
    std::fs::write(&bad, keyless).unwrap();
    let (code, out) = run(&bad, &["--check-config"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("no anchoring key"), "{out}");

    // Metrics over HTTP while the daemon works.
    let _daemon = s.spawn_daemon(0);
    s.wait_active(0);
    s.insert(10);
    s.wait_for_rows(10, 60);
    let (status, body) = iotegrity_e2e::post_json(&format!("http://127.0.0.1:{port}/nope"), String::new()).await;
    assert_eq!(status, 404, "{body}");
    let text = iotegrity_e2e::metrics(port).await;
    assert!(text.contains("iotegrity_rows_batched_total 10\n"), "{text}");
    // Receipts are written just before the counters move: wait for the count, then every
    // confirmed anchor has its latency observed once.
    use iotegrity_e2e::metric;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = iotegrity_e2e::metrics(port).await;
        if metric(&text, "iotegrity_anchors_confirmed_total").is_some_and(|n| n >= 1) {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "an anchor confirmed: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        metric(&text, "iotegrity_anchor_confirmation_seconds_count"),
        metric(&text, "iotegrity_anchors_confirmed_total"),
        "{text}"
    );
    assert!(text.contains("# TYPE iotegrity_anchor_confirmation_seconds histogram"), "{text}");
}

#[tokio::test]
async fn the_opt_in_wake_up_trigger_notifies_on_about_one_insert_statement_in_a_quarter_batch() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 16\nn = 2\nmax_wait_secs = 3600").await;
    let triggers = || {
        s.pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.readings'::regclass AND NOT tgisinternal",
        )
    };
    drop(s.start_service());
    assert_eq!(triggers(), "0", "no trigger unless install_triggers = true");
    let cfg = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        cfg.replace("poll_interval_ms = 100\n", "poll_interval_ms = 100\ninstall_triggers = true\n"),
    )
    .unwrap();
    let daemon = s.spawn_daemon(1);
    s.wait_active(1); // the trigger is installed on activation
    drop(daemon);
    assert_eq!(triggers(), "1");
    let pool = iotegrity_core::store::connect(&s.pg.url("postgres"), 2).await.unwrap(); // the listener takes one
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.unwrap();
    listener.listen("iotegrity_rows").await.unwrap();
    // m = 16: each statement draws with probability 1 / ⌈16 / 4⌉, however many rows it inserts.
    // 400 statements: 100 notifications expected, sd 8.7; 50..=150 fails by chance < 1e-8.
    for g in 0..400 {
        sqlx::query("INSERT INTO readings (device, value, amount, payload, raw) VALUES ($1, 1, 1, '{}', '')")
            .bind(format!("dev-{g}"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let mut heard = 0;
    while let Ok(note) = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await {
        assert_eq!(note.unwrap().payload(), "public.readings");
        heard += 1;
    }
    assert!((50..=150).contains(&heard), "{heard} notifications for 400 statements");
    std::fs::write(&s.config, cfg).unwrap();
    let daemon = s.spawn_daemon(2);
    s.wait_active(2);
    drop(daemon);
    assert_eq!(triggers(), "0", "switched off again: removed");
}

#[tokio::test]
async fn a_notify_wakes_the_daemon_before_its_next_poll() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 4\nn = 2\nmax_wait_secs = 3600").await;
    let cfg = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, cfg.replace("poll_interval_ms = 100\n", "poll_interval_ms = 600000\n")).unwrap();
    let _daemon = s.start_service();
    std::thread::sleep(Duration::from_secs(1)); // its first cycle, on activation, is over
    s.insert(4);
    std::thread::sleep(Duration::from_secs(2));
    assert!(s.receipts().is_empty(), "no poll for 10 minutes, and no trigger: nothing should wake it");
    s.pg.psql("postgres", "NOTIFY iotegrity_rows, 'public.readings'");
    assert_eq!(s.wait_for_rows(4, 30).len(), 2);
}
