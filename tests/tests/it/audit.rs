//! The tamper suite: rows anchored by the real daemon, then audited by the real CLI — clean, after
//! pg_dump and restore into a fresh database, after altering / deleting / inserting rows, and with
//! a forged receipt.

use iotegrity_e2e::ServiceWorld;

fn audit(s: &ServiceWorld, db: &str) -> iotegrity_e2e::Run {
    s.w.cli(&["audit", "--db", &s.pg.url(db), "--table", "public.readings"])
}

#[tokio::test]
async fn tampering_is_pinpointed_and_dump_restore_stays_clean() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 3\nmax_wait_secs = 1").await;
    let daemon = s.spawn_daemon(0);
    // Keys 10, 20, …, 300: gaps let a forged row slip in between anchored ones.
    s.pg.psql(
        "postgres",
        "INSERT INTO readings (id, device, value, amount, payload, raw) SELECT g * 10, 'dev', g * 0.1, g * 1.005, \
         jsonb_build_object('g', g, 'when', now()), decode(md5(g::text), 'hex') FROM generate_series(1, 30) g",
    );
    s.wait_for_rows(30, 60);
    drop(daemon);

    let clean = audit(&s, "postgres").json();
    assert_eq!(clean["clean"], true, "{clean}");
    assert_eq!(clean["anchoredRows"], 30);

    // pg_dump and restore into a fresh database: the receipts still verify against the copy.
    let dump = s.w.dir.path().join("db.dump");
    let out = std::process::Command::new(s.pg.tool("pg_dump"))
        .args(["-Fc", "-f", &dump.display().to_string(), &s.pg.url("postgres")])
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    s.pg.psql("postgres", "CREATE DATABASE restored");
    let out = std::process::Command::new(s.pg.tool("pg_restore"))
        .args(["-d", &s.pg.url("restored"), &dump.display().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(audit(&s, "restored").json()["clean"], true, "a restored copy audits clean");

    // Tamper with the live table: alter 70, delete 120, insert 155.
    s.pg.psql("postgres", "UPDATE readings SET value = 99.9 WHERE id = 70");
    s.pg.psql("postgres", "DELETE FROM readings WHERE id = 120");
    s.pg.psql("postgres", "INSERT INTO readings (id, device, value) VALUES (155, 'intruder', 1)");
    let run = audit(&s, "postgres");
    assert_eq!(run.code, 1, "tampering fails the audit");
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let findings: Vec<(String, i64)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["kind"].as_str().unwrap().to_owned(), f["key"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        findings,
        vec![("altered".into(), 70), ("deleted".into(), 120), ("inserted".into(), 155)],
        "each change named by its row key"
    );

    // A receipt of an untouched row verifies on its own, offline and on chain.
    let shown =
        s.w.cli(&["receipt", "show", "--db", &s.pg.url("postgres"), "--table", "public.readings", "--row", "250"])
            .json();
    std::fs::write(s.w.dir.path().join("r250.json"), shown.to_string()).unwrap();
    let verified = s.w.cli(&["receipt", "verify", &s.w.path("r250.json")]).json();
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["contractVerifies"], true);

    // Forge a receipt in the store (its first row's hash: bytes 9..40 of its rows): the audit and
    // the receipt itself give it away.
    s.pg.psql(
        "postgres",
        "UPDATE iotegrity.receipts SET rows = overlay(rows placing decode(repeat('11', 32), 'hex') from 9 for 32) \
         WHERE first_key = 10",
    );
    let run = audit(&s, "restored");
    assert_eq!(run.code, 0, "the restored copy was not touched");
    let run = audit(&s, "postgres");
    assert!(run.stdout.contains("receipt-tampered"), "{}", run.stdout);
    let shown =
        s.w.cli(&["receipt", "show", "--db", &s.pg.url("postgres"), "--table", "public.readings", "--row", "10"])
            .json();
    std::fs::write(s.w.dir.path().join("r10.json"), shown.to_string()).unwrap();
    let run = s.w.cli(&["receipt", "verify", &s.w.path("r10.json")]);
    assert_eq!(run.code, 1, "a forged receipt does not verify");
    assert!(run.stdout.contains("do not hash to its leaf"), "{}", run.stdout);
}

#[tokio::test]
async fn audit_errors_are_clear() {
    let s = ServiceWorld::new("name = \"public.readings\"").await;
    let err =
        s.w.cli(&["audit", "--db", "postgres://postgres@127.0.0.1:1/x", "--table", "public.readings"])
            .failure()
            .to_owned();
    assert!(err.contains("cannot connect to Postgres"), "{err}");
    let err = s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", "Bad Name"]).failure().to_owned();
    assert!(err.contains("not a plain lowercase SQL identifier"), "{err}");
    let err = s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", "public.nope"]).failure().to_owned();
    assert!(err.contains("cannot read public.nope"), "{err}");
    // Nothing anchored yet: not tampering, but said.
    s.insert(3);
    let report = s.w.cli(&["audit", "--db", &s.pg.url("postgres"), "--table", "public.readings"]).json();
    assert_eq!(report["clean"], true);
    let kinds: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["unanchored", "unanchored", "unanchored", "overdue"], "{report}");
    assert!(report["findings"][3]["reason"].as_str().unwrap().contains("no iotegrityd"), "{report}");
    let err =
        s.w.cli(&["receipt", "show", "--db", &s.pg.url("postgres"), "--table", "public.readings", "--row", "1"])
            .failure()
            .to_owned();
    assert!(err.contains("no receipt covers row 1"), "{err}");
}

#[tokio::test]
async fn export_bundle_verifies_offline_and_on_chain_and_catches_edits() {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    let daemon = s.spawn_daemon(0);
    s.insert(20);
    s.wait_for_rows(20, 60);
    drop(daemon);
    s.insert(2); // not anchored: reported, not an integrity failure
    let bundle = s.w.path("bundle.json");
    let out =
        s.w.cli(&["export", "--db", &s.pg.url("postgres"), "--table", "public.readings", "--out", &bundle]).json();
    assert_eq!((out["rows"].as_u64(), out["receipts"].as_u64()), (Some(22), Some(4)));
    assert_eq!(s.w.cli(&["verify-bundle", &bundle]).json()["valid"], true);
    assert_eq!(s.w.cli(&["verify-bundle", &bundle, "--offline"]).json()["valid"], true);

    // Against another chain: a fresh chain with the same contracts at the same addresses has none
    // of the roots (each receipt is named), and a bundle from another chain id is refused outright.
    let other = iotegrity_e2e::World::new(&[]);
    let run = other.cli(&["verify-bundle", &bundle]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let v: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let missing = v["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "root-not-on-chain").count();
    assert_eq!((v["valid"].as_bool(), missing), (Some(false), 4), "{v}");
    let mut b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    b["chainId"] = 1.into();
    let elsewhere = s.w.path("bundle-chain-1.json");
    std::fs::write(&elsewhere, b.to_string()).unwrap();
    let err = s.w.cli(&["verify-bundle", &elsewhere]).failure().to_string();
    assert!(err.contains("anchored on chain 1, the RPC endpoint is chain 31337"), "{err}");

    // Edit one row's canonical text inside the bundle: named by key.
    let mut b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let original = b["rows"][4]["canonical"].as_str().unwrap().to_owned();
    let text = original.replace("\tdev-", "\tevil-");
    assert_ne!(text, original, "the canonical line holds the device column");
    b["rows"][4]["canonical"] = text.into();
    std::fs::write(&bundle, b.to_string()).unwrap();
    let run = s.w.cli(&["verify-bundle", &bundle, "--offline"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("{\"key\":5,\"kind\":\"altered\"}"), "{}", run.stdout);
    // A bundle of another format (rows hashed another way) is refused, not misjudged.
    let mut b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    b["version"] = 1.into();
    std::fs::write(&bundle, b.to_string()).unwrap();
    assert!(s.w.cli(&["verify-bundle", &bundle, "--offline"]).failure().contains("is bundle format 1"));
    // Not a bundle at all.
    std::fs::write(&bundle, "{}").unwrap();
    assert!(s.w.cli(&["verify-bundle", &bundle]).failure().contains("not an iotegrity bundle"));
}
