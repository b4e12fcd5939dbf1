//! Certificates from real PEM files (made with openssl) pinned, verified and revoked on chain.

use iotegrity_e2e::World;
use std::process::Command;

fn make_cert(w: &World, name: &str, cn: &str) -> String {
    let pem = w.path(&format!("{name}.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-keyout", &w.path(&format!("{name}.key")), "-out", &pem, "-subj", &format!("/CN={cn}")])
        .output()
        .expect("openssl runs (make test installs it)");
    assert!(status.status.success(), "openssl: {}", String::from_utf8_lossy(&status.stderr));
    pem
}

#[tokio::test]
async fn add_verify_revoke_and_closing_the_owner() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let stranger = w.identity("x", "service").await;
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.7"]).json();
    let pem = make_cert(&w, "gw", "gateway.bit");
    let other = make_cert(&w, "other", "gateway.bit");

    let added = w.run_as(&gw, &["cert", "add", "gateway.bit", "--cert", &pem]).json();
    assert!(added["notAfter"].as_u64().unwrap() > added["notBefore"].as_u64().unwrap(), "window from the certificate");
    let ok = w.cli(&["cert", "verify", "gateway.bit", "--cert", &pem]);
    assert_eq!(ok.json()["valid"], true);
    // By hash too, as a TLS client would after hashing the presented key.
    let hash = added["keyHash"].as_str().unwrap();
    assert_eq!(w.cli(&["cert", "verify", "gateway.bit", "--key-hash", hash]).json()["valid"], true);

    // Another key, or another name: not valid, exit code 1, with a reason.
    let run = w.cli(&["cert", "verify", "gateway.bit", "--cert", &other]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("no such certificate"), "{}", run.stdout);
    w.run_as(&gw, &["name", "register", "second.bit", "--ip", "10.0.0.8"]).json();
    assert_eq!(w.cli(&["cert", "verify", "second.bit", "--cert", &pem]).code, 1);

    // Strangers can neither add nor revoke.
    let err = w.run_as(&stranger, &["cert", "add", "gateway.bit", "--cert", &other]).failure().to_owned();
    assert!(err.contains("Names_NotAuthorized"), "{err}");
    let err = w.run_as(&stranger, &["cert", "revoke", "gateway.bit", "--cert", &pem]).failure().to_owned();
    assert!(err.contains("Names_NotAuthorized"), "{err}");
    // The same key cannot be pinned twice.
    let err = w.run_as(&gw, &["cert", "add", "second.bit", "--cert", &pem]).failure().to_owned();
    assert!(err.contains("Names_CertificateExists"), "{err}");

    // Revocation.
    w.run_as(&gw, &["cert", "add", "gateway.bit", "--cert", &other]).json();
    w.run_as(&gw, &["cert", "revoke", "gateway.bit", "--cert", &other]).json();
    let run = w.cli(&["cert", "verify", "gateway.bit", "--cert", &other]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("revoked"), "{}", run.stdout);

    // Expiry: past the certificate's notAfter it stops verifying.
    w.advance(31 * 86_400).await;
    assert_eq!(w.cli(&["cert", "verify", "gateway.bit", "--cert", &pem]).code, 1, "expired");
}

#[tokio::test]
async fn closed_owner_invalidates_certificates_and_bad_pem_is_an_error() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.7"]).json();
    let pem = make_cert(&w, "gw", "gateway.bit");
    w.run_as(&gw, &["cert", "add", "gateway.bit", "--cert", &pem]).json();
    w.run_as(&gw, &["identity", "close", "--yes"]).json();
    assert_eq!(w.cli(&["cert", "verify", "gateway.bit", "--cert", &pem]).code, 1, "owner closed");

    std::fs::write(w.dir.path().join("junk.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .unwrap();
    let err = w.cli(&["cert", "verify", "gateway.bit", "--cert", &w.path("junk.pem")]).failure().to_owned();
    assert!(err.contains("is not a PEM certificate"), "{err}");
    let err = w.cli(&["cert", "verify", "gateway.bit", "--cert", &w.path("missing.pem")]).failure().to_owned();
    assert!(err.contains("cannot read"), "{err}");
}
