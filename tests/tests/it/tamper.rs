//! The threat model, tried as its attacker would: someone who can write the service's database —
//! rows, receipts, batches, anchors, watermarks — and get any key but the service's (a throwaway
//! Service identity of their own). Real daemon, real CLI, real Anvil and PostgreSQL. Every attack
//! must end in a non-zero exit that names the finding; only the chain is believed. The auditor's
//! explorer is held to the same attacks: its receipt pages name the step that fails, its audit
//! names what the CLI's does.

use alloy::primitives::B256;
use iotegrity_core::contracts::{IReceiptAnchor, ReceiptAnchor};
use iotegrity_core::receipt::{AnchorRef, Batch, Receipt, table_id};
use iotegrity_core::store::{self, TableRef, receipts};
use iotegrity_core::{AddressBook, chain};
use iotegrity_e2e::{ExplorerRun, Ident, Run, ServiceWorld};
use serde_json::Value;

const TABLE: &str = "public.readings";

/// 30 rows anchored by the real daemon in batches of 10 (3 sub-tables each), daemon stopped.
async fn anchored_world() -> ServiceWorld {
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 3\nmax_wait_secs = 1").await;
    let daemon = s.spawn_daemon(0);
    s.insert(30);
    s.wait_for_rows(30, 60);
    drop(daemon);
    s
}

fn audit(s: &ServiceWorld, extra: &[&str]) -> Run {
    let db = s.pg.url("postgres");
    let mut args = vec!["audit", "--db", db.as_str(), "--table", TABLE];
    args.extend_from_slice(extra);
    s.w.cli(&args)
}

/// The audit's JSON, asserting it failed (exit 1) rather than erred.
#[track_caller]
fn failed(run: &Run) -> Value {
    assert_eq!(run.code, 1, "the audit must fail:\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

fn kinds(report: &Value) -> Vec<String> {
    report["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap().to_owned()).collect()
}

fn address(v: &Value) -> alloy::primitives::Address {
    v.as_str().unwrap_or_else(|| panic!("not an address: {v}")).parse().unwrap()
}

fn pin(s: &ServiceWorld) -> Vec<String> {
    vec!["--anchorer".into(), s.svc.offline.to_string()]
}

fn book(s: &ServiceWorld) -> AddressBook {
    AddressBook::load(&s.w.book).unwrap()
}

/// A provider that sends as `who`'s online key (funded).
async fn as_online(s: &ServiceWorld, who: &Ident) -> alloy::providers::DynProvider {
    s.w.fund(who.online).await;
    chain::writer(&s.w.anvil.endpoint(), who.online_key()).unwrap()
}

/// What the docs say a batch is: its rows' canonical hashes, cut in n sub-tables.
async fn recompute(s: &ServiceWorld, first: i64, last: i64, n: usize) -> Batch {
    let pool = store::connect(&s.pg.url("postgres"), 1).await.unwrap();
    let rows = TableRef::new(TABLE, "id").unwrap().rows(&pool, first - 1, last, None).await.unwrap();
    Batch::new(rows, n)
}

/// Anchors `batch` of `table` from `provider`'s key; returns where (tx, block).
async fn anchor_batch(s: &ServiceWorld, provider: &alloy::providers::DynProvider, batch: &Batch) -> (B256, u64) {
    let (first, last) = batch.key_range();
    let contract = ReceiptAnchor::new(book(s).receipt_anchor(), provider);
    let receipt = chain::send(contract.storeRootHash(
        batch.root(),
        table_id(TABLE),
        first,
        last,
        batch.rows.len() as u32,
        batch.ranges.len() as u32,
    ))
    .await
    .unwrap();
    (receipt.transaction_hash, receipt.block_number.unwrap())
}

/// Replaces the stored batch starting at `first` — its root and rows, its anchor row and its
/// receipts — with `batch` anchored at (tx, block): what a database writer does to make a rewritten
/// batch look as if the service had anchored it.
fn rewrite_store(s: &ServiceWorld, first: i64, batch: &Batch, tx: B256, block: u64) {
    let book = book(s);
    let anchored_root = iotegrity_core::merkle::tag_batch_root(batch.root());
    let anchor = AnchorRef { chain_id: book.chain_id, contract: book.receipt_anchor(), tx, block, anchored_root };
    let id = s.pg.psql(
        "postgres",
        &format!("SELECT id FROM iotegrity.batches WHERE table_name = '{TABLE}' AND first_key = {first}"),
    );
    let hex = |b: &[u8]| format!("'\\x{}'", alloy::primitives::hex::encode(b));
    let mut sql = format!(
        "BEGIN; UPDATE iotegrity.batches SET root = {}, rows = {} WHERE id = {id}; \
         UPDATE iotegrity.anchors SET anchored_root = {}, tx_hash = {}, block_number = {block} \
           WHERE id = (SELECT anchor_id FROM iotegrity.batches WHERE id = {id}); ",
        hex(batch.root().as_slice()),
        hex(&iotegrity_core::receipt::pack_rows(&batch.rows)),
        hex(anchored_root.as_slice()),
        hex(tx.as_slice()),
    );
    for r in batch.receipts(TABLE, &anchor, &[]) {
        let index = r.index;
        let (json, rows) = receipts::to_store(r);
        sql += &format!(
            "UPDATE iotegrity.receipts SET receipt = '{}'::jsonb, rows = {} WHERE batch_id = {id} AND sub_index = {index}; ",
            json.replace('\'', "''"),
            hex(&rows)
        );
    }
    sql += "COMMIT";
    s.pg.psql("postgres", &sql);
}

/// The auditor's explorer over the world's database (explorer `n`), trusting `anchorer` if given.
async fn explorer(s: &ServiceWorld, n: usize, anchorer: Option<alloy::primitives::Address>) -> ExplorerRun {
    let section = anchorer.map(|a| format!("anchorer = \"{a}\"")).unwrap_or_default();
    let db = s.pg.url("postgres");
    let x = s.w.spawn_explorer(n, &section, &format!("[database]\nurl = \"{db}\"\n[[tables]]\nname = \"{TABLE}\"\n"));
    x.wait_synced(&s.w).await;
    x
}

/// The explorer's receipt page of `row`: its status, and the steps that fail (by name).
async fn receipt_steps(x: &ExplorerRun, row: i64) -> (u16, Vec<String>, Value) {
    let (status, page) = x.json(&format!("/api/receipt/{TABLE}/{row}")).await;
    let failing = page["steps"]
        .as_array()
        .map(|steps| {
            steps.iter().filter(|s| s["ok"] == false).map(|s| s["what"].as_str().unwrap().to_owned()).collect()
        })
        .unwrap_or_default();
    (status, failing, page)
}

/// Runs the audit from the explorer's table page; returns the finished report's finding kinds.
async fn explorer_audit(x: &ExplorerRun) -> Vec<String> {
    assert_eq!(x.post(&format!("/api/table/{TABLE}/audit")).await.0, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, table) = x.json(&format!("/api/table/{TABLE}")).await;
        match table["audit"]["state"].as_str() {
            Some("done") => return kinds(&table["audit"]["report"]),
            Some("failed") => panic!("the explorer's audit failed: {table}"),
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "the explorer's audit did not finish: {table}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn show_receipt(s: &ServiceWorld, row: i64, file: &str) -> String {
    let db = s.pg.url("postgres");
    let shown = s.w.cli(&["receipt", "show", "--db", &db, "--table", TABLE, "--row", &row.to_string()]).json();
    let path = s.w.path(file);
    std::fs::write(&path, shown.to_string()).unwrap();
    path
}

/// Attack 1: alter a row, recompute its batch as the docs describe, anchor the new root with a
/// throwaway Service identity, rewrite the store to match. Every receipt then checks offline.
#[tokio::test]
async fn re_anchoring_with_a_throwaway_identity_is_caught() {
    let s = anchored_world().await;
    let clean = audit(&s, &[]).json();
    assert_eq!(clean["clean"], true, "{clean}");
    assert_eq!(clean["anchorer"]["trust"], "sole", "not pinned, and said so: {clean}");

    s.pg.psql("postgres", "UPDATE readings SET value = 99.9 WHERE id = 15");
    let forged = recompute(&s, 11, 20, 3).await;
    let mallory = s.w.identity("mallory", "service").await;
    let mallory_key = as_online(&s, &mallory).await;
    let (tx, block) = anchor_batch(&s, &mallory_key, &forged).await;
    rewrite_store(&s, 11, &forged, tx, block);
    let path = show_receipt(&s, 15, "r15.json");
    let receipt: Receipt = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    receipt.check().expect("the forged receipt is consistent on its own");

    // Unpinned: two identities anchored the table; the audit will not choose.
    let report = failed(&audit(&s, &[]));
    assert_eq!(kinds(&report)[0], "anchorer-ambiguous", "{report}");
    // Pinned to the service: the forged receipts are not its anchors, its own batch lacks receipts,
    // and the live rows no longer give the root it anchored.
    let report = failed(&audit(&s, &pin(&s).iter().map(String::as_str).collect::<Vec<_>>()));
    let k = kinds(&report);
    assert_eq!(k.iter().filter(|k| *k == "root-not-on-chain").count(), 3, "{report}");
    let missing = report["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "receipt-missing").unwrap();
    assert_eq!((missing["firstKey"].as_i64(), missing["rowsMatch"].as_bool()), (Some(11), Some(false)), "{report}");
    assert_eq!(address(&report["otherAnchorers"][0]["owner"]), mallory.offline, "the stranger is named");
    // Pinned to the service by its online key: the same.
    let by_online = failed(&audit(&s, &["--anchorer", &s.svc.online.to_string()]));
    assert_eq!(kinds(&by_online), k);

    // receipt verify: pinned or not, the forged receipt is not valid.
    let run = s.w.cli(&["receipt", "verify", &path, "--anchorer", &s.svc.offline.to_string()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("root-not-on-chain"), "{}", run.stdout);
    let run = s.w.cli(&["receipt", "verify", &path]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("\"trust\":\"ambiguous\""), "{}", run.stdout);
    // Trusting mallory explicitly is the auditor's choice, and then the receipt checks out.
    let run = s.w.cli(&["receipt", "verify", &path, "--anchorer", &mallory.offline.to_string()]).json();
    assert_eq!(run["valid"], true, "{run}");

    // The explorer: row 15 agrees with its forged receipt, which agrees with itself — only the
    // chain step fails. Unpinned, it trusts nobody; pinned, it names the stranger as not trusted.
    let unpinned = explorer(&s, 0, None).await;
    let (status, failing, page) = receipt_steps(&unpinned, 15).await;
    assert_eq!((status, failing), (200, vec!["on chain".to_string(), "contract".into()]), "{page}");
    assert_eq!(page["chain"]["trust"]["trust"], "ambiguous", "{page}");
    let (_, table) = unpinned.json(&format!("/api/table/{TABLE}")).await;
    assert_eq!((table["trusted"].clone(), table["anchorers"].as_array().unwrap().len()), (Value::Null, 2), "{table}");
    let pinned = explorer(&s, 1, Some(s.svc.offline)).await;
    let (status, failing, page) = receipt_steps(&pinned, 15).await;
    assert_eq!((status, failing), (200, vec!["on chain".to_string(), "contract".into()]), "{page}");
    assert_eq!(page["chain"]["anchored"]["Err"]["kind"], "root-not-on-chain", "{page}");
    let (_, table) = pinned.json(&format!("/api/table/{TABLE}")).await;
    assert_eq!(address(&table["trusted"]), s.svc.offline, "{table}");
    assert_eq!(address(&table["anchorers"][1]["owner"]), mallory.offline, "the stranger is listed, not trusted");
    assert_eq!(explorer_audit(&pinned).await, k, "the explorer's audit is the CLI's");

    // An exported bundle fails the same way.
    let bundle = s.w.path("b.json");
    let db = s.pg.url("postgres");
    let pinned = pin(&s);
    let mut args = vec!["export", "--db", db.as_str(), "--table", TABLE, "--out", bundle.as_str()];
    args.extend(pinned.iter().map(String::as_str));
    let out = s.w.cli(&args).json();
    assert_eq!(out["incompleteBatch"]["firstKey"], 11, "the exporter says where the store falls short: {out}");
    let run = s.w.cli(&["verify-bundle", &bundle, "--anchorer", &s.svc.offline.to_string()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("root-not-on-chain"), "the forged receipts are named: {}", run.stdout);
}

/// Attack 2: delete a batch's receipts. The chain still holds its anchor.
#[tokio::test]
async fn deleted_receipts_are_missing_not_awaiting() {
    let s = anchored_world().await;
    // First, a stored receipt's leaf edited: its page names the steps that no longer hold.
    let x = explorer(&s, 0, None).await;
    let original = s.pg.psql("postgres", "SELECT receipt::text FROM iotegrity.receipts WHERE first_key = 21");
    s.pg.psql(
        "postgres",
        &format!("UPDATE iotegrity.receipts SET receipt = receipt || jsonb_build_object('leaf', '0x{}') WHERE first_key = 21", "11".repeat(32)),
    );
    let (status, failing, page) = receipt_steps(&x, 22).await;
    assert_eq!((status, failing), (200, vec!["leaf".to_string(), "proof".into(), "on chain".into()]), "{page}");
    assert_eq!(page["chain"]["anchored"]["Err"]["kind"], "receipt-tampered", "{page}");
    assert!(explorer_audit(&x).await.contains(&"receipt-tampered".to_string()));
    s.pg.psql(
        "postgres",
        &format!(
            "UPDATE iotegrity.receipts SET receipt = '{}'::jsonb WHERE first_key = 21",
            original.replace('\'', "''")
        ),
    );
    let (_, failing, _) = receipt_steps(&x, 22).await;
    assert!(failing.is_empty(), "put back, it verifies again: {failing:?}");
    s.pg.psql("postgres", "DELETE FROM iotegrity.receipts WHERE first_key BETWEEN 11 AND 20");
    let (status, _, page) = receipt_steps(&x, 15).await;
    assert_eq!(status, 404, "{page}");
    assert!(page["error"].as_str().unwrap().contains("no receipt covers row 15"), "{page}");
    assert_eq!(explorer_audit(&x).await, vec!["receipt-missing"], "the chain still holds the batch");
    let report = failed(&audit(&s, &[]));
    assert_eq!(kinds(&report), vec!["receipt-missing"], "{report}");
    let f = &report["findings"][0];
    assert_eq!(
        (f["firstKey"].as_i64(), f["lastKey"].as_i64(), f["rowsMatch"].as_bool()),
        (Some(11), Some(20), Some(true))
    );
    assert_eq!(f["missing"], serde_json::json!([0, 1, 2]));
    let text = audit(&s, &[]).stdout;
    assert!(!text.contains("awaiting"), "{text}");
    // …and an altered row among them is seen through the missing receipts.
    s.pg.psql("postgres", "UPDATE readings SET device = 'evil' WHERE id = 12");
    let report = failed(&audit(&s, &[]));
    assert_eq!(report["findings"][0]["rowsMatch"], false, "{report}");
}

/// Attack 3: delete the receipts and batches of a range, move the watermark back, alter a row, and
/// let the service re-anchor it with its own key. The daemon refuses, and so would the contract.
#[tokio::test]
async fn a_rolled_back_watermark_is_never_re_anchored() {
    let s = anchored_world().await;
    let before = chain_batches(&s).await;
    s.pg.psql(
        "postgres",
        "BEGIN; DELETE FROM iotegrity.receipts WHERE first_key > 20; \
         DELETE FROM iotegrity.batches WHERE first_key > 20; \
         UPDATE iotegrity.watermarks SET last_key = 20 WHERE table_name = 'public.readings'; \
         UPDATE readings SET value = -1 WHERE id = 25; COMMIT",
    );
    let daemon = s.spawn_daemon(1);
    s.wait_log(1, "the chain already holds anchors of public.readings up to key 30");
    drop(daemon);
    assert_eq!(chain_batches(&s).await, before, "nothing anchored twice");
    let report = failed(&audit(&s, &[]));
    assert_eq!(kinds(&report), vec!["receipt-missing"], "{report}");
    assert_eq!(report["findings"][0]["rowsMatch"], false, "{report}");
    // The explorer shows the rolled-back watermark as the database's claim, and its audit, read
    // against the chain, names the anchored range with no receipts.
    let x = explorer(&s, 0, None).await;
    let (_, table) = x.json(&format!("/api/table/{TABLE}")).await;
    assert_eq!(
        (table["store"]["watermark"].as_i64(), table["anchorers"][0]["rows"].as_u64()),
        (Some(20), Some(30)),
        "{table}"
    );
    assert_eq!(receipt_steps(&x, 25).await.0, 404, "no receipt covers the altered row");
    assert_eq!(explorer_audit(&x).await, vec!["receipt-missing"]);

    // The service's own key cannot do it either: the contract refuses an overlapping range.
    let altered = recompute(&s, 21, 30, 3).await;
    let svc_key = as_online(&s, &s.svc).await;
    let contract = ReceiptAnchor::new(book(&s).receipt_anchor(), &svc_key);
    let err = chain::send(contract.storeRootHash(altered.root(), table_id(TABLE), 21, 30, 10, 3)).await.unwrap_err();
    assert!(err.to_string().contains("Anchor_RangeOverlap(0, 21, 30)"), "{err}");
}

/// A receipt of another table's batch, relabelled as this table's.
#[tokio::test]
async fn a_receipt_pointed_at_another_tables_root_is_not_on_chain() {
    let s = ServiceWorld::new(
        "name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1\n[[tables]]\nname = \"public.other\"\nm = 10\nn = 2\nmax_wait_secs = 1",
    )
    .await;
    s.pg.psql("postgres", "CREATE TABLE other (id bigserial PRIMARY KEY, note text)");
    let daemon = s.spawn_daemon(0);
    s.insert(10);
    s.pg.psql("postgres", "INSERT INTO other (note) SELECT 'o' || g FROM generate_series(1, 10) g");
    s.wait_for_rows(20, 60);
    drop(daemon);
    // Give readings' first receipt the other table's batch root, leaf, proof and anchor.
    s.pg.psql(
        "postgres",
        "UPDATE iotegrity.receipts r SET receipt = r.receipt || jsonb_build_object('batchRoot', o.receipt->'batchRoot', \
           'leaf', o.receipt->'leaf', 'proof', o.receipt->'proof', 'anchorProof', o.receipt->'anchorProof', \
           'anchor', o.receipt->'anchor'), rows = o.rows \
         FROM iotegrity.receipts o WHERE r.table_name = 'public.readings' AND r.sub_index = 0 \
           AND o.table_name = 'public.other' AND o.sub_index = 0",
    );
    let report = failed(&audit(&s, &[]));
    assert!(kinds(&report).contains(&"root-not-on-chain".to_owned()), "{report}");
    assert!(kinds(&report).contains(&"receipt-missing".to_owned()), "{report}");
    let x = explorer(&s, 0, None).await;
    // On the explorer the row step fails (the rows are the other table's) and so does the chain
    // step — while the contract's own check passes: verifyReceipt binds no table, so the page's
    // table-bound chain step is what catches the relabelling.
    let (status, failing, page) = receipt_steps(&x, 2).await;
    assert_eq!((status, failing), (200, vec!["row".to_string(), "on chain".into()]), "{page}");
    assert_eq!(
        (page["chain"]["anchored"]["Err"]["kind"].as_str(), page["chain"]["contractVerifies"].as_bool()),
        (Some("root-not-on-chain"), Some(true)),
        "{page}"
    );
}

/// A bundle with a batch left out, and one that carries a receipt the chain does not know.
#[tokio::test]
async fn a_bundle_with_a_range_left_out_or_an_unknown_receipt_fails() {
    let s = anchored_world().await;
    let bundle = s.w.path("b.json");
    let db = s.pg.url("postgres");
    let out = s.w.cli(&["export", "--db", &db, "--table", TABLE, "--out", &bundle]).json();
    assert_eq!(address(&out["anchorer"]), s.svc.offline);
    assert_eq!(s.w.cli(&["verify-bundle", &bundle]).json()["valid"], true);
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();

    // The second batch's receipts left out (the rows kept): the chain knows the range.
    let mut b = original.clone();
    b["receipts"].as_array_mut().unwrap().retain(|r| r["batchFirstKey"] != 11);
    std::fs::write(&bundle, b.to_string()).unwrap();
    let run = s.w.cli(&["verify-bundle", &bundle]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("receipt-missing"), "{}", run.stdout);
    // Offline, receipts are held against each other: the later batch's receipts claim that keys
    // 11..20 were anchored too, so those rows are named as inserted. (Leave out the last batch
    // instead, and only the chain could tell.)
    let run = s.w.cli(&["verify-bundle", &bundle, "--offline"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("{\"key\":11,\"kind\":\"inserted\"}"), "{}", run.stdout);

    // A bundle that claims to be complete before its last batch: that batch's receipts are ones
    // the chain (up to the claimed block) does not know.
    let mut b = original.clone();
    let last_block =
        b["receipts"].as_array().unwrap().iter().map(|r| r["anchor"]["block"].as_u64().unwrap()).max().unwrap();
    b["completeAt"] = (last_block - 1).into();
    std::fs::write(&bundle, b.to_string()).unwrap();
    let run = s.w.cli(&["verify-bundle", &bundle]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("root-not-on-chain"), "{}", run.stdout);
}

/// A foreign identity cannot write into the service's table (its anchors land in its own
/// namespace), a device cannot anchor at all, and the service's crash-recovery re-send of the very
/// same batch is accepted without a second event.
#[tokio::test]
async fn foreign_anchors_are_refused_or_kept_apart_and_a_re_send_is_accepted() {
    let s = anchored_world().await;
    let before = chain_batches(&s).await;
    // A device identity: refused on chain, the error decoded.
    let device = s.w.identity("dev", "device").await;
    let dev_key = as_online(&s, &device).await;
    let forged = recompute(&s, 1, 10, 3).await;
    let contract = ReceiptAnchor::new(book(&s).receipt_anchor(), &dev_key);
    let err = chain::send(contract.storeRootHash(forged.root(), table_id(TABLE), 31, 40, 10, 3)).await.unwrap_err();
    assert!(err.to_string().contains("Anchor_NotServiceKey"), "{err}");
    // Another Service identity anchoring the next range of "public.readings": its own table.
    let other = s.w.identity("other", "service").await;
    let other_key = as_online(&s, &other).await;
    let contract = ReceiptAnchor::new(book(&s).receipt_anchor(), &other_key);
    chain::send(contract.storeRootHash(forged.root(), table_id(TABLE), 31, 40, 10, 3)).await.unwrap();
    assert_eq!(chain_batches(&s).await, before, "the service's table is untouched");
    let report = audit(&s, &pin(&s).iter().map(String::as_str).collect::<Vec<_>>()).json();
    assert_eq!(report["clean"], true, "pinned to the service, the stranger's anchor changes nothing: {report}");
    assert_eq!(address(&report["otherAnchorers"][0]["owner"]), other.offline, "but it is named");

    // The service re-sends its first anchor exactly as the daemon planned it (every batch of the
    // plan, in order), as crash recovery does: accepted, no event.
    let pool = store::connect(&s.pg.url("postgres"), 1).await.unwrap();
    let planned: Vec<(Vec<u8>, i64, i64, i32, i32)> = sqlx::query_as(
        "SELECT root, first_key, last_key, m, n FROM iotegrity.batches \
         WHERE anchor_id = (SELECT min(id) FROM iotegrity.anchors) ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let batches = planned
        .into_iter()
        .map(|(root, first, last, m, n)| IReceiptAnchor::Batch {
            root: B256::from_slice(&root),
            tableId: table_id(TABLE),
            firstKey: first,
            lastKey: last,
            m: m as u32,
            n: n as u32,
        })
        .collect();
    let svc_key = as_online(&s, &s.svc).await;
    let contract = ReceiptAnchor::new(book(&s).receipt_anchor(), &svc_key);
    let receipt = chain::send(contract.storeRootHashes(batches)).await.unwrap();
    assert!(receipt.status() && receipt.inner.logs().is_empty(), "accepted, silently");
    assert_eq!(chain_batches(&s).await, before);
}

/// Mempool squatting: the service's planned root is anchored first by a stranger (same batches,
/// same table id). The daemon must not adopt it: it anchors under its own identity, and its
/// receipts name its own transaction.
#[tokio::test]
async fn a_root_squatted_from_the_mempool_is_not_adopted() {
    use alloy::providers::Provider;
    let s = ServiceWorld::new("name = \"public.readings\"\nm = 10\nn = 2\nmax_wait_secs = 1").await;
    s.w.set_balance(s.svc.online, "0x0").await; // it can plan, not send
    let daemon = s.start_service(); // migrated, watching
    s.insert(10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let planned = loop {
        let root = s
            .pg
            .psql("postgres", "SELECT encode(anchored_root, 'hex') FROM iotegrity.anchors WHERE status = 'planned'");
        if !root.is_empty() {
            break root;
        }
        assert!(std::time::Instant::now() < deadline, "no anchor planned");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let batch = recompute(&s, 1, 10, 2).await;
    let tagged = iotegrity_core::merkle::tag_batch_root(batch.root());
    assert_eq!(alloy::primitives::hex::encode(tagged), planned, "the planned root, as anyone can compute it");
    let mallory = s.w.identity("mallory", "service").await;
    let mallory_key = as_online(&s, &mallory).await;
    let (squat_tx, _) = anchor_batch(&s, &mallory_key, &batch).await;
    s.w.fund(s.svc.online).await;
    let receipts = s.wait_for_rows(10, 60);
    drop(daemon);
    let provider = chain::reader(&s.w.anvil.endpoint()).unwrap();
    let tx = provider.get_transaction_by_hash(receipts[0].anchor.tx).await.unwrap().unwrap();
    assert_ne!(receipts[0].anchor.tx, squat_tx, "not the stranger's transaction");
    assert_eq!(tx.inner.signer(), s.svc.online, "sent by the service's own key");
    assert_eq!(chain_batches(&s).await, (1, 10));
    let report = audit(&s, &pin(&s).iter().map(String::as_str).collect::<Vec<_>>()).json();
    assert_eq!(report["clean"], true, "{report}");
}

/// The service's table record on chain: (batches, last key).
async fn chain_batches(s: &ServiceWorld) -> (u64, i64) {
    let provider = chain::reader(&s.w.anvil.endpoint()).unwrap();
    let contract = ReceiptAnchor::new(book(s).receipt_anchor(), &provider);
    let t = contract.tableOf(s.svc.offline, table_id(TABLE)).call().await.unwrap();
    (t.batches, t.lastKey)
}
