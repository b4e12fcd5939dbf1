//! Reputation votes through the CLI, on names and addresses, with the error paths. A name vote
//! needs a countersigned handshake proof; here the proofs are signed by the test with the parties'
//! real online keys over a made-up session (the chain cannot tell; tests/tests/it/tls.rs gets them
//! from real TLS sessions through `tls probe --proof-out`).

use alloy::primitives::B256;
use iotegrity_core::signatures::{domain_of, sign};
use iotegrity_core::tls::ProofFile;
use iotegrity_e2e::{Ident, World};

/// Pins a certificate issued for `name` by its owner; returns its key hash.
fn pin(w: &World, owner: &Ident, name: &str) -> B256 {
    let (cert, key) = (w.path(&format!("{name}.pem")), w.path(&format!("{name}.key")));
    w.cli(&["cert", "issue", name, "--cert-out", &cert, "--key-out", &key]).json();
    let added = w.run_as(owner, &["cert", "add", name, "--cert", &cert, "--key", &key]).json();
    added["keyHash"].as_str().unwrap().parse().unwrap()
}

/// A proof of a channel from `client` to `name` (served by `server`) at chain time, signed by both
/// online keys, written to `<file>`; returns its path.
async fn proof(w: &World, name: &str, cert: B256, server: &Ident, client: &Ident, file: &str) -> String {
    let book = iotegrity_core::AddressBook::load(&w.book).unwrap();
    let p = iotegrity_core::chain::reader(&w.anvil.endpoint()).unwrap();
    let now = iotegrity_core::chain::latest_timestamp(&p).await.unwrap();
    let mut f = ProofFile {
        name: name.to_string(),
        cert_key_hash: cert,
        exporter_hash: alloy::primitives::keccak256(format!("session {file}")),
        server: server.online,
        client: client.online,
        server_time: now,
        client_time: now,
        server_sig: Default::default(),
        client_sig: Default::default(),
    };
    f.server_sig = sign(&server.online_key(), &f.proof(), &domain_of(&book));
    f.client_sig = sign(&client.online_key(), &f.proof(), &domain_of(&book));
    let path = w.path(file);
    std::fs::write(&path, serde_json::to_string(&f).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn votes_and_scores() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let svc = w.identity("svc", "service").await;
    let svc2 = w.identity("svc2", "service").await;
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.7"]).json();
    let cert = pin(&w, &gw, "gateway.bit");
    let p1 = proof(&w, "gateway.bit", cert, &gw, &svc, "p1.json").await;

    let v = w.run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "80", "--proof", &p1]).json();
    let f: ProofFile = serde_json::from_str(&std::fs::read_to_string(&p1).unwrap()).unwrap();
    let book = iotegrity_core::AddressBook::load(&w.book).unwrap();
    assert_eq!(v["proofHash"].as_str().unwrap().parse::<B256>().unwrap(), f.digest(&domain_of(&book)));
    let shown = w.cli(&["reputation", "show", "--name", "gateway.bit"]).json();
    assert_eq!(shown["score"], "80.00");
    assert_eq!(shown["votes"], 1);

    // A half-life later a negative vote weighs twice as much: (80 - 2*40) / 3 = 0.
    w.advance(30 * 86_400).await;
    let p2 = proof(&w, "gateway.bit", cert, &gw, &svc2, "p2.json").await;
    w.run_as(&svc2, &["reputation", "vote", "--name", "gateway.bit", "--score", "-40", "--proof", &p2]).json();
    let shown = w.cli(&["reputation", "show", "--name", "gateway.bit"]).json();
    assert_eq!(shown["score"], "0.00");
    assert_eq!(shown["votes"], 2);

    // Address votes.
    w.run_as(&svc, &["reputation", "vote", "--address", &gw.online.to_string(), "--score", "-5"]).json();
    assert_eq!(w.cli(&["reputation", "show", "--address", &gw.online.to_string()]).json()["score"], "-5.00");
}

#[tokio::test]
async fn vote_errors() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let svc = w.identity("svc", "service").await;
    let stranger = w.keys("stranger").await; // funded, never registered
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.7"]).json();
    let cert = pin(&w, &gw, "gateway.bit");
    let vote = |who: &Ident, name: &str, file: &str| {
        w.run_as(who, &["reputation", "vote", "--name", name, "--score", "10", "--proof", file])
    };

    let p1 = proof(&w, "gateway.bit", cert, &gw, &svc, "p1.json").await;
    vote(&svc, "gateway.bit", &p1).json();
    let err = vote(&svc, "gateway.bit", &p1).failure().to_owned();
    assert!(err.contains("Reputation_ProofUsed"), "a replayed proof: {err}");
    let p2 = proof(&w, "gateway.bit", cert, &gw, &svc, "p2.json").await;
    let err = vote(&svc, "gateway.bit", &p2).failure().to_owned();
    assert!(err.contains("Reputation_AlreadyVoted"), "{err}");
    let err = vote(&stranger, "gateway.bit", &p2).failure().to_owned();
    assert!(err.contains("Reputation_VoterNotActive"), "{err}");
    let err = vote(&svc, "nowhere.bit", &p2).failure().to_owned();
    assert!(err.contains("Reputation_UnknownName"), "{err}");
    let err = vote(&gw, "gateway.bit", &p2).failure().to_owned();
    assert!(err.contains("Reputation_SelfVote"), "{err}");
    let err = w
        .run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "0", "--proof", &p2])
        .failure()
        .to_owned();
    assert!(err.contains("score of 0"), "{err}");
    assert_eq!(
        w.run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "101", "--proof", &p2]).code,
        2
    );
    // A name vote without a proof is refused before anything is sent.
    assert_eq!(w.run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "10"]).code, 2);
    // A proof the server never signed (its signature is another's): refused on chain by name.
    let mut forged: ProofFile = serde_json::from_str(&std::fs::read_to_string(&p2).unwrap()).unwrap();
    forged.exporter_hash = alloy::primitives::keccak256("another session"); // another session: the signatures no longer match
    std::fs::write(w.path("forged.json"), serde_json::to_string(&forged).unwrap()).unwrap();
    let svc2 = w.identity("svc2", "service").await;
    let err = vote(&svc2, "gateway.bit", &w.path("forged.json")).failure().to_owned();
    assert!(err.contains("Reputation_WrongServerSigner"), "{err}");
    assert_eq!(w.cli(&["reputation", "show"]).code, 2, "a subject is required");
}

/// Strikes through the CLI: an appointed notary, a reason, never its own vote; the deposit goes to
/// the sink. And an identity keeps its score across a key rotation.
#[tokio::test]
async fn strikes_pay_the_sink_and_scores_follow_the_identity() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let svc = w.identity("svc", "service").await;
    let notary = w.identity("notary", "notary").await;
    let gw_key = gw.online.to_string();
    w.run_as(&svc, &["reputation", "vote", "--address", &gw_key, "--score", "-60"]).json();
    w.run_as(&notary, &["reputation", "vote", "--address", &gw_key, "--score", "-90"]).json();
    let err = w
        .run_as(
            &notary,
            &["reputation", "strike", "--address", &gw_key, "--voter", &notary.offline.to_string(), "--reason", "x"],
        )
        .failure()
        .to_owned();
    assert!(err.contains("Reputation_SelfStrike"), "{err}");
    let err = w
        .run_as(
            &svc,
            &["reputation", "strike", "--address", &gw_key, "--voter", &notary.offline.to_string(), "--reason", "x"],
        )
        .failure()
        .to_owned();
    assert!(err.contains("Reputation_NotNotary"), "{err}");
    let struck = w
        .run_as(
            &notary,
            &[
                "reputation",
                "strike",
                "--address",
                &gw_key,
                "--voter",
                &svc.offline.to_string(),
                "--reason",
                "no job was ever done",
            ],
        )
        .json();
    assert_eq!(struck["sink"], "0x000000000000000000000000000000000000dead");
    assert_eq!(w.cli(&["reputation", "show", "--address", &gw_key]).json()["score"], "-90.00");
    // The gateway rotates its key: the score is its identity's, by the new key too.
    let fresh = w.keys("gw-new").await;
    let new_online = fresh.dir.join("online.json").display().to_string();
    w.run_as(&gw, &["identity", "update", "--online-keystore", &new_online]).json();
    let by_new = w.cli(&["reputation", "show", "--address", &fresh.online.to_string()]).json();
    assert_eq!((by_new["score"].as_str(), by_new["votes"].as_u64()), (Some("-90.00"), Some(1)), "{by_new}");
}
