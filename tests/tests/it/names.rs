//! Names through the CLI in both registry modes, with backup recovery and the error paths.

use iotegrity_e2e::World;

#[tokio::test]
async fn register_resolve_update_backup_recover() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let backup = w.identity("backup", "gateway").await;

    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "192.168.1.20"]).json();
    assert_eq!(w.cli(&["name", "resolve", "gateway.bit"]).json()["ip"], "192.168.1.20");
    w.run_as(&gw, &["name", "update-ip", "gateway.bit", "--ip", "2001:db8::20"]).json();
    assert_eq!(w.cli(&["name", "resolve", "gateway.bit"]).json()["ip"], "2001:db8::20");

    // Taken names, strangers and bad input.
    let err = w.run_as(&backup, &["name", "register", "gateway.bit", "--ip", "10.0.0.1"]).failure().to_owned();
    assert!(err.contains("Names_NameTaken"), "{err}");
    let err = w.run_as(&backup, &["name", "update-ip", "gateway.bit", "--ip", "10.0.0.1"]).failure().to_owned();
    assert!(err.contains("Names_NotOwner"), "{err}");
    let err = w.run_as(&gw, &["name", "register", "Gateway.BIT", "--ip", "10.0.0.1"]).failure().to_owned();
    assert!(err.contains("invalid name") && err.contains("lowercase"), "{err}");
    assert_eq!(w.run_as(&gw, &["name", "register", "ok.bit", "--ip", "300.1.1.1"]).code, 2, "bad IP is a usage error");
    let err = w.cli(&["name", "show", "unknown.bit"]).failure().to_owned();
    assert!(err.contains("not registered"), "{err}");

    // A backup takes effect 7 days after it is named, and takes over once the owner closes.
    let set = w.run_as(&gw, &["name", "set-backup", "gateway.bit", &backup.offline.to_string()]).json();
    assert_eq!(set["effectiveIn"], 7 * 86_400);
    let shown = w.cli(&["name", "show", "gateway.bit"]).json();
    assert_eq!(shown["backup"], "0x0000000000000000000000000000000000000000", "not in effect yet: {shown}");
    assert_eq!(shown["pendingBackup"].as_str().unwrap().to_lowercase(), backup.offline.to_string().to_lowercase());
    let err = w.run_as(&backup, &["name", "recover", "gateway.bit"]).failure().to_owned();
    assert!(err.contains("Names_CannotRecover"), "{err}");
    w.advance(7 * 86_400).await;
    w.run_as(&gw, &["identity", "close", "--yes"]).json();
    let err = w.cli(&["name", "resolve", "gateway.bit"]).failure().to_owned();
    assert!(err.contains("does not resolve"), "closed owner: {err}");
    assert_eq!(w.cli(&["name", "show", "gateway.bit"]).json()["resolves"], false);
    w.run_as(&backup, &["name", "recover", "gateway.bit"]).json();
    let shown = w.cli(&["name", "show", "gateway.bit"]).json();
    assert_eq!(shown["resolves"], true);
    assert_eq!(shown["owner"].as_str().unwrap().to_lowercase(), backup.offline.to_string().to_lowercase());
}

#[tokio::test]
async fn quasi_centralized_mode_only_cas_submit() {
    let w = World::new(&["--name-mode", "quasi-centralized"]);
    let gw = w.identity("gw", "gateway").await;
    let ca = w.identity("ca", "ca").await;
    let err = w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.2"]).failure().to_owned();
    assert!(err.contains("Names_NotAuthorized"), "{err}");
    let owner = gw.offline.to_string();
    w.run_as(&ca, &["name", "register", "gateway.bit", "--ip", "10.0.0.2", "--owner", &owner]).json();
    let shown = w.cli(&["name", "show", "gateway.bit"]).json();
    assert_eq!(shown["owner"].as_str().unwrap().to_lowercase(), owner.to_lowercase());
    // The owner of an unregistered identity cannot get a name, even from a CA.
    let err = w
        .run_as(
            &ca,
            &[
                "name",
                "register",
                "ghost.bit",
                "--ip",
                "10.0.0.3",
                "--owner",
                "0x0000000000000000000000000000000000000009",
            ],
        )
        .failure()
        .to_owned();
    assert!(err.contains("Names_OwnerNotOpen"), "{err}");
}

/// The stolen offline key: the thief names its own backup and closes the identity at once. The
/// change was not in effect when the identity closed, so the owner's backup recovers the name.
#[tokio::test]
async fn a_stolen_offline_key_cannot_redirect_the_backup_and_take_the_name() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let honest = w.identity("honest", "gateway").await;
    let thief = w.identity("thief", "gateway").await;
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.1"]).json();
    w.run_as(&gw, &["name", "set-backup", "gateway.bit", &honest.offline.to_string()]).json();
    w.advance(7 * 86_400).await;
    // The thief, with gw's offline key:
    w.run_as(&gw, &["name", "set-backup", "gateway.bit", &thief.offline.to_string()]).json();
    w.run_as(&gw, &["identity", "close", "--yes"]).json();
    w.advance(30 * 86_400).await;
    let err = w.run_as(&thief, &["name", "recover", "gateway.bit"]).failure().to_owned();
    assert!(err.contains("Names_CannotRecover"), "{err}");
    w.run_as(&honest, &["name", "recover", "gateway.bit"]).json();
    let owner = w.cli(&["name", "show", "gateway.bit"]).json()["owner"].as_str().unwrap().to_lowercase();
    assert_eq!(owner, honest.offline.to_string().to_lowercase());
}

/// Names that would read as addresses or IDNs are refused before anything is sent.
#[tokio::test]
async fn names_that_read_as_addresses_or_idns_are_refused() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    for name in ["10.0.0.1", "127.1", "0x7f.0x1", "xn--bcher-kva.bit"] {
        let err = w.run_as(&gw, &["name", "register", name, "--ip", "10.0.0.1"]).failure().to_owned();
        assert!(err.contains("invalid name"), "{name}: {err}");
    }
}
