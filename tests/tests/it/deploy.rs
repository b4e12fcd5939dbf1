//! Deployment and the address book; failures of the RPC endpoint and of the book.

use iotegrity_e2e::{World, bin};
use std::process::Command;

#[tokio::test]
async fn deploy_writes_an_address_book_the_other_commands_use() {
    let w = World::new(&[]);
    let book: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&w.book).unwrap()).unwrap();
    assert_eq!(book["chainId"], 31337);
    assert_eq!(book["nameMode"], "decentralized");
    for key in ["identityRegistry", "nameRegistry", "reputation", "receiptAnchor", "jobMarket", "federatedLearning"] {
        let addr = book[key].as_str().unwrap();
        assert!(addr.starts_with("0x") && addr.len() == 42, "{key}: {addr}");
    }
    // A read goes through the book: an unknown name is reported as such (not as a missing book).
    let err = w.cli(&["name", "resolve", "nobody.bit"]).failure().to_owned();
    assert!(err.contains("does not resolve"), "{err}");
}

#[tokio::test]
async fn unreachable_rpc_and_missing_book_are_clear_errors() {
    let w = World::new(&[]);
    let run = |args: &[&str]| {
        let out = Command::new(bin("iotegrity"))
            .args(args)
            .current_dir(w.dir.path())
            .env_remove("ETH_RPC_URL")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Nothing listens on port 1.
    let (code, err) = run(&[
        "name",
        "resolve",
        "gw.bit",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--deployments",
        &w.book.display().to_string(),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot reach http://127.0.0.1:1"), "{err}");
    // Chain is up, but no address book for it in the default place.
    let (code, err) = run(&["name", "resolve", "gw.bit", "--rpc-url", &w.anvil.endpoint()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("anvil/deployments/31337.json") && err.contains("deploy first"), "{err}");
}

#[tokio::test]
async fn deploy_without_a_key_lists_the_ways_to_give_one() {
    let w = World::new(&[]);
    let err = w.cli(&["deploy"]).failure().to_owned();
    assert!(err.contains("--keystore") && err.contains("--private-key"), "{err}");
    let err = w.cli(&["deploy", "--private-key", "0x1234"]).failure().to_owned();
    assert!(err.contains("malformed private key"), "{err}");
}

#[tokio::test]
async fn market_windows_out_of_range_are_refused_by_name() {
    let w = World::new(&[]);
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let out = w.dir.path().join("other.json");
    let out = out.display().to_string();
    let err = w.cli(&["deploy", "--private-key", key, "--review-window", "0", "--out", &out]).failure().to_owned();
    assert!(err.contains("JobMarket_InvalidParameter"), "{err}");
    assert!(!std::path::Path::new(&out).exists(), "no address book for a failed deployment");
}
