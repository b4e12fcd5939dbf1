//! Certificates from real PEM files (made with openssl) pinned, verified and revoked on chain.

use iotegrity_e2e::World;
use std::process::Command;

/// A self-signed certificate and its key, made by openssl: `<name>.pem`, `<name>.key`. Its
/// notBefore is this wall-clock second, which Anvil's clock (its start second plus the time since)
/// can lag by up to a second: tests move the chain a second on ([`World::advance`]) before they
/// expect a fresh certificate to verify.
fn make_cert(w: &World, name: &str, cn: &str) -> String {
    make_cert_of(w, name, cn, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
}

fn make_cert_of(w: &World, name: &str, cn: &str, key_args: &[&str]) -> String {
    let pem = w.path(&format!("{name}.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509"])
        .args(key_args)
        .args([
            "-nodes",
            "-days",
            "30",
            "-keyout",
            &w.path(&format!("{name}.key")),
            "-out",
            &pem,
            "-subj",
            &format!("/CN={cn}"),
        ])
        .output()
        .expect("openssl runs (make test installs it)");
    assert!(status.status.success(), "openssl: {}", String::from_utf8_lossy(&status.stderr));
    pem
}

/// `cert add NAME --cert <name>.pem --key <name>.key`.
fn add<'a>(w: &World, name: &'a str, file: &'a str) -> Vec<String> {
    ["cert", "add", name, "--cert", &w.path(&format!("{file}.pem")), "--key", &w.path(&format!("{file}.key"))]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn run_add(w: &World, who: &iotegrity_e2e::Ident, args: Vec<String>) -> iotegrity_e2e::Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.run_as(who, &args)
}

#[tokio::test]
async fn add_verify_revoke_and_closing_the_owner() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let stranger = w.identity("x", "service").await;
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.7"]).json();
    let pem = make_cert(&w, "gw", "gateway.bit");
    let other = make_cert(&w, "other", "gateway.bit");
    w.advance(1).await;

    let added = run_add(&w, &gw, add(&w, "gateway.bit", "gw")).json();
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
    let err = run_add(&w, &stranger, add(&w, "gateway.bit", "other")).failure().to_owned();
    assert!(err.contains("Names_NotAuthorized"), "{err}");
    let err = w.run_as(&stranger, &["cert", "revoke", "gateway.bit", "--cert", &pem]).failure().to_owned();
    assert!(err.contains("Names_NotAuthorized"), "{err}");
    // The same key cannot be pinned twice.
    let err = run_add(&w, &gw, add(&w, "second.bit", "gw")).failure().to_owned();
    assert!(err.contains("Names_CertificateExists"), "{err}");

    // Revocation.
    run_add(&w, &gw, add(&w, "gateway.bit", "other")).json();
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
    w.advance(1).await;
    run_add(&w, &gw, add(&w, "gateway.bit", "gw")).json();
    w.run_as(&gw, &["identity", "close", "--yes"]).json();
    assert_eq!(w.cli(&["cert", "verify", "gateway.bit", "--cert", &pem]).code, 1, "owner closed");

    std::fs::write(w.dir.path().join("junk.pem"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .unwrap();
    let err = w.cli(&["cert", "verify", "gateway.bit", "--cert", &w.path("junk.pem")]).failure().to_owned();
    assert!(err.contains("is not a PEM certificate"), "{err}");
    let err = w.cli(&["cert", "verify", "gateway.bit", "--cert", &w.path("missing.pem")]).failure().to_owned();
    assert!(err.contains("cannot read"), "{err}");
}

/// Pinning needs the key: someone else's certificate (its public key is public), the wrong key file,
/// a proof made for another name, and a key that is not P-256 are all refused.
#[tokio::test]
async fn pinning_a_key_needs_its_proof_of_possession() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let squatter = w.identity("squatter", "gateway").await;
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.7"]).json();
    w.run_as(&squatter, &["name", "register", "squat.bit", "--ip", "10.0.0.8"]).json();
    let victim = make_cert(&w, "victim", "gateway.bit");
    make_cert(&w, "mine", "squat.bit");
    w.advance(1).await;
    // The squatter's own key does not match the victim's certificate.
    let mine_key = w.path("mine.key");
    let err =
        w.run_as(&squatter, &["cert", "add", "squat.bit", "--cert", &victim, "--key", &mine_key]).failure().to_owned();
    assert!(err.contains("is not the key of"), "{err}");
    // A proof the victim's key made for gateway.bit, replayed for squat.bit: refused on chain.
    let proof = w.cli(&["cert", "prove", "gateway.bit", "--cert", &victim, "--key", &w.path("victim.key")]).json();
    let proof = proof["proof"].as_str().unwrap().to_owned();
    let err =
        w.run_as(&squatter, &["cert", "add", "squat.bit", "--cert", &victim, "--proof", &proof]).failure().to_owned();
    assert!(err.contains("Names_BadProofOfPossession"), "{err}");
    assert_eq!(w.cli(&["cert", "verify", "squat.bit", "--cert", &victim]).code, 1);
    // With it, for the name it was made for, the owner pins it.
    w.run_as(&gw, &["cert", "add", "gateway.bit", "--cert", &victim, "--proof", &proof]).json();
    assert_eq!(w.cli(&["cert", "verify", "gateway.bit", "--cert", &victim]).json()["valid"], true);
    // An Ed25519 certificate cannot prove possession on chain: said before anything is sent.
    let ed = make_cert_of(&w, "ed", "gateway.bit", &["-newkey", "ed25519"]);
    let err =
        w.run_as(&gw, &["cert", "add", "gateway.bit", "--cert", &ed, "--key", &w.path("ed.key")]).failure().to_owned();
    assert!(err.contains("not a P-256"), "{err}");
}

/// In quasi-centralized mode a CA pins the holder's key with the holder's proof; the certificate
/// stops verifying when the CA is dismissed, and says why.
#[tokio::test]
async fn a_ca_pins_with_the_holders_proof_and_its_word_ends_with_its_role() {
    let w = World::new(&["--name-mode", "quasi-centralized"]);
    let gw = w.identity("gw", "gateway").await;
    let ca = w.identity("ca", "ca").await;
    w.run_as(&ca, &["name", "register", "gateway.bit", "--ip", "10.0.0.7", "--owner", &gw.offline.to_string()]).json();
    let pem = make_cert(&w, "gw", "gateway.bit");
    w.advance(1).await;
    let proof = w.cli(&["cert", "prove", "gateway.bit", "--cert", &pem, "--key", &w.path("gw.key")]).json();
    w.run_as(&ca, &["cert", "add", "gateway.bit", "--cert", &pem, "--proof", proof["proof"].as_str().unwrap()]).json();
    assert_eq!(w.cli(&["cert", "verify", "gateway.bit", "--cert", &pem]).json()["valid"], true);
    w.as_governance(&["identity", "dismiss", &ca.offline.to_string()]).json();
    let run = w.cli(&["cert", "verify", "gateway.bit", "--cert", &pem]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("the CA that issued it is closed or no longer appointed"), "{}", run.stdout);
}
