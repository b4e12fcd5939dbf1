//! Reputation votes through the CLI, on names and addresses, with the error paths.

use iotegrity_e2e::World;

#[tokio::test]
async fn votes_and_scores() {
    let w = World::new(&[]);
    let gw = w.identity("gw", "gateway").await;
    let svc = w.identity("svc", "service").await;
    let svc2 = w.identity("svc2", "service").await;
    w.run_as(&gw, &["name", "register", "gateway.bit", "--ip", "10.0.0.7"]).json();
    std::fs::write(w.dir.path().join("proof.json"), r#"{"clientRandom":"..","serverRandom":".."}"#).unwrap();

    let v = w
        .run_as(
            &svc,
            &["reputation", "vote", "--name", "gateway.bit", "--score", "80", "--proof-file", &w.path("proof.json")],
        )
        .json();
    assert_ne!(v["proofHash"], "0x0000000000000000000000000000000000000000000000000000000000000000");
    let shown = w.cli(&["reputation", "show", "--name", "gateway.bit"]).json();
    assert_eq!(shown["score"], "80.00");
    assert_eq!(shown["votes"], 1);

    // A half-life later a negative vote weighs twice as much: (80 - 2*40) / 3 = 0.
    w.advance(30 * 86_400).await;
    w.run_as(&svc2, &["reputation", "vote", "--name", "gateway.bit", "--score", "-40"]).json();
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

    w.run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "10"]).json();
    let err = w.run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "10"]).failure().to_owned();
    assert!(err.contains("Reputation_AlreadyVoted"), "{err}");
    let err =
        w.run_as(&stranger, &["reputation", "vote", "--name", "gateway.bit", "--score", "10"]).failure().to_owned();
    assert!(err.contains("Reputation_VoterNotActive"), "{err}");
    let err = w.run_as(&svc, &["reputation", "vote", "--name", "nowhere.bit", "--score", "10"]).failure().to_owned();
    assert!(err.contains("Reputation_UnknownName"), "{err}");
    let err = w.run_as(&gw, &["reputation", "vote", "--name", "gateway.bit", "--score", "10"]).failure().to_owned();
    assert!(err.contains("Reputation_SelfVote"), "{err}");
    let err = w.run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "0"]).failure().to_owned();
    assert!(err.contains("score of 0"), "{err}");
    assert_eq!(w.run_as(&svc, &["reputation", "vote", "--name", "gateway.bit", "--score", "101"]).code, 2);
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
