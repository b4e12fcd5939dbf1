//! Names through the CLI in both registry modes, with backup recovery and the error paths.

use iotegrity_e2e::World;

#[tokio::test]
async fn register_resolve_update_backup_recover() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let backup = w.identity("backup", "gateway").await;

    w.cli_as(
        &["name", "register", "gateway.bit", "--ip", "192.168.1.20"],
        &gw.wallet(&w),
    )
    .json();
    assert_eq!(
        w.cli(&["name", "resolve", "gateway.bit"]).json()["ip"],
        "192.168.1.20"
    );
    w.cli_as(
        &["name", "update-ip", "gateway.bit", "--ip", "2001:db8::20"],
        &gw.wallet(&w),
    )
    .json();
    assert_eq!(
        w.cli(&["name", "resolve", "gateway.bit"]).json()["ip"],
        "2001:db8::20"
    );

    // Taken names, strangers and bad input.
    let err = w
        .cli_as(
            &["name", "register", "gateway.bit", "--ip", "10.0.0.1"],
            &backup.wallet(&w),
        )
        .failure()
        .to_owned();
    assert!(err.contains("Names_NameTaken"), "{err}");
    let err = w
        .cli_as(
            &["name", "update-ip", "gateway.bit", "--ip", "10.0.0.1"],
            &backup.wallet(&w),
        )
        .failure()
        .to_owned();
    assert!(err.contains("Names_NotOwner"), "{err}");
    let err = w
        .cli_as(
            &["name", "register", "Gateway.BIT", "--ip", "10.0.0.1"],
            &gw.wallet(&w),
        )
        .failure()
        .to_owned();
    assert!(
        err.contains("invalid name") && err.contains("lowercase"),
        "{err}"
    );
    assert_eq!(
        w.cli_as(
            &["name", "register", "ok.bit", "--ip", "300.1.1.1"],
            &gw.wallet(&w)
        )
        .code,
        2,
        "bad IP is a usage error"
    );
    let err = w.cli(&["name", "show", "unknown.bit"]).failure().to_owned();
    assert!(err.contains("not registered"), "{err}");

    // Backup takes over once the owner closes; until then it cannot.
    w.cli_as(
        &[
            "name",
            "set-backup",
            "gateway.bit",
            &backup.offline.to_string(),
        ],
        &gw.wallet(&w),
    )
    .json();
    let err = w
        .cli_as(&["name", "recover", "gateway.bit"], &backup.wallet(&w))
        .failure()
        .to_owned();
    assert!(err.contains("Names_CannotRecover"), "{err}");
    w.cli_as(&["identity", "close", "--yes"], &gw.wallet(&w))
        .json();
    let err = w
        .cli(&["name", "resolve", "gateway.bit"])
        .failure()
        .to_owned();
    assert!(err.contains("does not resolve"), "closed owner: {err}");
    assert_eq!(
        w.cli(&["name", "show", "gateway.bit"]).json()["resolves"],
        false
    );
    w.cli_as(&["name", "recover", "gateway.bit"], &backup.wallet(&w))
        .json();
    let shown = w.cli(&["name", "show", "gateway.bit"]).json();
    assert_eq!(shown["resolves"], true);
    assert_eq!(
        shown["owner"].as_str().unwrap().to_lowercase(),
        backup.offline.to_string().to_lowercase()
    );
}

#[tokio::test]
async fn quasi_centralized_mode_only_cas_submit() {
    let w = World::new(&["--name-mode", "quasi-centralized"]);
    let gw = w.identity("gw", "gateway").await;
    let ca = w.identity("ca", "ca").await;
    let err = w
        .cli_as(
            &["name", "register", "gateway.bit", "--ip", "10.0.0.2"],
            &gw.wallet(&w),
        )
        .failure()
        .to_owned();
    assert!(err.contains("Names_NotAuthorized"), "{err}");
    let owner = gw.offline.to_string();
    w.cli_as(
        &[
            "name",
            "register",
            "gateway.bit",
            "--ip",
            "10.0.0.2",
            "--owner",
            &owner,
        ],
        &ca.wallet(&w),
    )
    .json();
    let shown = w.cli(&["name", "show", "gateway.bit"]).json();
    assert_eq!(
        shown["owner"].as_str().unwrap().to_lowercase(),
        owner.to_lowercase()
    );
    // The owner of an unregistered identity cannot get a name, even from a CA.
    let err = w
        .cli_as(
            &[
                "name",
                "register",
                "ghost.bit",
                "--ip",
                "10.0.0.3",
                "--owner",
                "0x0000000000000000000000000000000000000009",
            ],
            &ca.wallet(&w),
        )
        .failure()
        .to_owned();
    assert!(err.contains("Names_OwnerNotOpen"), "{err}");
}
