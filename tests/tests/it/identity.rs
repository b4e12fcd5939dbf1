//! Identity lifecycle through the CLI: keygen, register, show, update, close, vouching — and
//! every error path the foundation issue lists.

use iotegrity_e2e::World;

#[tokio::test]
async fn register_show_update_close() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;

    let shown = w.cli(&["identity", "show", &gw.offline.to_string()]).json();
    assert_eq!(shown["role"], "gateway");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["active"], true);
    assert_eq!(shown["online"].as_str().unwrap().to_lowercase(), gw.online.to_string().to_lowercase());
    // Looking up by the online key finds the same identity.
    let by_online = w.cli(&["identity", "show", &gw.online.to_string()]).json();
    assert_eq!(by_online["offline"], shown["offline"]);

    // Registering again is refused by the contract, decoded by name.
    let online_ks = gw.dir.join("online.json").display().to_string();
    let err = w
        .run_as(&gw, &["identity", "register", "--role", "gateway", "--online-keystore", &online_ks])
        .failure()
        .to_owned();
    assert!(err.contains("Identity_AlreadyRegistered") && err.contains("already has (or had) an identity"), "{err}");

    // Rotate the online key: the old one is superseded at once.
    let fresh = w.keys("gw-new").await;
    let new_ks = fresh.dir.join("online.json").display().to_string();
    let upd = w.run_as(&gw, &["identity", "update", "--online-keystore", &new_ks]).json();
    assert_eq!(upd["online"].as_str().unwrap().to_lowercase(), fresh.online.to_string().to_lowercase());
    let old = w.cli(&["identity", "show", &gw.online.to_string()]).json();
    assert_eq!(old["queriedKeySuperseded"], true);
    assert_eq!(old["active"], true, "the identity stays active with its new key");
    // The old key can never come back.
    let err = w.run_as(&gw, &["identity", "update", "--online-keystore", &online_ks]).failure().to_owned();
    assert!(err.contains("Identity_KeyAlreadyUsed"), "{err}");

    // Close needs --yes, then is final.
    let err = w.run_as(&gw, &["identity", "close"]).failure().to_owned();
    assert!(err.contains("irrevocable") && err.contains("--yes"), "{err}");
    w.run_as(&gw, &["identity", "close", "--yes"]).json();
    let closed = w.cli(&["identity", "show", &gw.offline.to_string()]).json();
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["active"], false);
    let err = w.run_as(&gw, &["identity", "update", "--online-keystore", &new_ks]).failure().to_owned();
    assert!(err.contains("Identity_NotActive"), "{err}");
    let err = w.run_as(&gw, &["identity", "close", "--yes"]).failure().to_owned();
    assert!(err.contains("Identity_NotActive"), "{err}");
}

#[tokio::test]
async fn bad_keys_and_input_are_clear_errors() {
    let w = World::new(&[]);
    let id = w.keys("dev").await;
    let online_ks = id.dir.join("online.json").display().to_string();
    let offline_ks = id.dir.join("offline.json").display().to_string();

    // Wrong password.
    let err = w
        .cli(&[
            "identity",
            "register",
            "--role",
            "device",
            "--online-keystore",
            &online_ks,
            "--keystore",
            &offline_ks,
            "--password",
            "nope",
        ])
        .failure()
        .to_owned();
    assert!(err.contains("wrong password"), "{err}");
    // No key at all.
    let err = w
        .cli(&[
            "identity",
            "register",
            "--role",
            "device",
            "--online-keystore",
            &online_ks,
            "--online-password-file",
            &w.password_file.display().to_string(),
        ])
        .failure()
        .to_owned();
    assert!(err.contains("no key to sign with"), "{err}");
    // Malformed address: clap rejects it before anything runs.
    let run = w.cli(&["identity", "show", "0xnot-an-address"]);
    assert_eq!(run.code, 2, "usage error: {}", run.stderr);
    // Unknown role.
    assert_eq!(w.cli(&["identity", "register", "--role", "king", "--online-keystore", &online_ks]).code, 2);
    // Unknown identity.
    let err = w.cli(&["identity", "show", "0x0000000000000000000000000000000000000001"]).failure().to_owned();
    assert!(err.contains("has no identity"), "{err}");
    // Keygen never overwrites.
    let err =
        w.cli(&["identity", "keygen", "--dir", &id.dir.display().to_string(), "--password", "x"]).failure().to_owned();
    assert!(err.contains("refusing to overwrite"), "{err}");
    // A key that is not a keystore.
    std::fs::write(w.dir.path().join("junk.json"), "{}").unwrap();
    let pw = w.password_file.display().to_string();
    let err = w
        .cli(&[
            "identity",
            "register",
            "--role",
            "device",
            "--online-keystore",
            &online_ks,
            "--keystore",
            &w.path("junk.json"),
            "--password-file",
            &pw,
        ])
        .failure()
        .to_owned();
    assert!(err.contains("junk.json"), "{err}");
    // Someone else's online key: the proof of possession cannot be forged.
    let other = w.identity("other", "device").await;
    let err = w.run_as(
        &id,
        &[
            "identity",
            "register",
            "--role",
            "device",
            "--online-private-key",
            "0x0000000000000000000000000000000000000000000000000000000000000001",
        ],
    );
    assert_eq!(err.code, 0, "a fresh key registers: {}", err.stderr);
    let other_online = other.dir.join("online.json").display().to_string();
    let thief = w.keys("thief").await;
    let err = w
        .run_as(&thief, &["identity", "register", "--role", "device", "--online-keystore", &other_online])
        .failure()
        .to_owned();
    assert!(err.contains("Identity_KeyAlreadyUsed"), "{err}");
}

#[tokio::test]
async fn vouch_incentive_withdraw_slash() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let svc = w.identity("svc", "service").await;
    let notary = w.identity("notary", "notary").await;
    let target = gw.online.to_string();

    let v = w.run_as(&svc, &["identity", "vouch", &target, "--value", "2ether"]).json();
    assert_eq!(v["trustLevel"], "2000000000000000000");
    // Self-vouching is refused.
    let err = w.run_as(&gw, &["identity", "vouch", &target, "--value", "1ether"]).failure().to_owned();
    assert!(err.contains("Identity_SelfVouch"), "{err}");
    // Bad amount.
    let err = w.run_as(&svc, &["identity", "vouch", &target, "--value", "lots"]).failure().to_owned();
    assert!(err.contains("bad amount"), "{err}");

    w.run_as(&gw, &["identity", "incentive", "--value", "1ether"]).json();
    w.run_as(&svc, &["identity", "claim", &target]).json();
    let err = w.run_as(&svc, &["identity", "claim", &target]).failure().to_owned();
    assert!(err.contains("Identity_NothingToWithdraw"), "{err}");

    // Locked for 30 days while the key is active.
    let err = w.run_as(&svc, &["identity", "withdraw", &target]).failure().to_owned();
    assert!(err.contains("Identity_StakeLocked"), "{err}");
    w.advance(30 * 86_400 + 1).await;
    w.run_as(&svc, &["identity", "withdraw", &target]).json();
    let shown = w.cli(&["identity", "show", &target]).json();
    assert_eq!(shown["trustLevel"], "0");

    // Slashing: only appointed notaries, with a reason, never their own stake; it pays the sink.
    w.run_as(&svc, &["identity", "vouch", &target, "--value", "1ether"]).json();
    let err =
        w.run_as(&svc, &["identity", "slash", &target, &svc.offline.to_string(), "--reason", "x"]).failure().to_owned();
    assert!(err.contains("Identity_NotNotary"), "{err}");
    assert_eq!(
        w.run_as(&notary, &["identity", "slash", &target, &svc.offline.to_string()]).code,
        2,
        "--reason is required"
    );
    let slashed = w
        .run_as(
            &notary,
            &["identity", "slash", &target, &svc.offline.to_string(), "--reason", "it vouched for a forger"],
        )
        .json();
    assert_eq!(slashed["reason"], alloy::primitives::keccak256("it vouched for a forger").to_string());
    assert_eq!(slashed["sink"], "0x000000000000000000000000000000000000dead", "burnt by default");
    let err = w.run_as(&notary, &["identity", "withdraw-credit"]).failure().to_owned();
    assert!(err.contains("Credits_NothingToWithdraw"), "the notary gained nothing: {err}");
    w.run_as(&notary, &["identity", "vouch", &target, "--value", "1ether"]).json();
    let err = w
        .run_as(&notary, &["identity", "slash", &target, &notary.offline.to_string(), "--reason", "skip the lock"])
        .failure()
        .to_owned();
    assert!(err.contains("Identity_SelfSlash"), "{err}");
}

/// Notaries and CAs are appointed: claiming the role alone is refused, only the governance appoints,
/// and a dismissed notary keeps its identity but loses its power.
#[tokio::test]
async fn notaries_and_cas_are_appointed_not_claimed() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let svc = w.identity("svc", "service").await;
    let self_made = w.keys("selfmade").await;
    let online = self_made.dir.join("online.json").display().to_string();
    for role in ["notary", "ca"] {
        let err = w
            .run_as(&self_made, &["identity", "register", "--role", role, "--online-keystore", &online])
            .failure()
            .to_owned();
        assert!(err.contains("Identity_NotAppointed"), "{role}: {err}");
    }
    let err = w
        .run_as(&svc, &["identity", "appoint", &self_made.offline.to_string(), "--role", "notary"])
        .failure()
        .to_owned();
    assert!(err.contains("Identity_NotGovernance"), "{err}");
    // Appointed, it registers; dismissed, it cannot slash and says so.
    let notary = w.identity("notary", "notary").await;
    assert_eq!(w.cli(&["identity", "show", &notary.offline.to_string()]).json()["actingRole"], "notary");
    w.run_as(&svc, &["identity", "vouch", &gw.online.to_string(), "--value", "1ether"]).json();
    w.as_governance(&["identity", "dismiss", &notary.offline.to_string()]).json();
    let shown = w.cli(&["identity", "show", &notary.offline.to_string()]).json();
    assert_eq!((shown["actingRole"].as_str(), shown["status"].as_str()), (Some("none"), Some("active")), "{shown}");
    let err = w
        .run_as(&notary, &["identity", "slash", &gw.online.to_string(), &svc.offline.to_string(), "--reason", "x"])
        .failure()
        .to_owned();
    assert!(err.contains("Identity_NotNotary"), "{err}");
}

#[tokio::test]
async fn an_unused_incentive_is_reclaimed_only_after_the_key_stops_being_active() {
    let w = World::new(&[]);
    let lonely = w.identity("lonely", "gateway").await;
    let target = lonely.online.to_string();
    // Nobody vouched: the incentive stays unallocated.
    w.run_as(&lonely, &["identity", "incentive", "--value", "1ether"]).json();
    let err = w.run_as(&lonely, &["identity", "reclaim", &target]).failure().to_owned();
    assert!(err.contains("Identity_KeyStillActive"), "{err}");
    w.run_as(&lonely, &["identity", "close", "--yes"]).json();
    let done = w.run_as(&lonely, &["identity", "reclaim", &target]).json();
    assert_eq!(done["online"].as_str().unwrap().to_lowercase(), target.to_lowercase());
    assert!(done["tx"].is_string(), "{done}");
    let err = w.run_as(&lonely, &["identity", "reclaim", &target]).failure().to_owned();
    assert!(err.contains("Identity_NothingToWithdraw"), "{err}");
}
