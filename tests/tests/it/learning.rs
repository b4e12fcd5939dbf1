//! Federated learning's parts together on a real Anvil and a real IPFS node: the deployed
//! `FederatedLearning` contract, model files on IPFS checked against the chain's references,
//! local training on non-IID shards of the diabetes table, and fixed-point FedAvg — three
//! participants that each derive the global model alone get the same bytes every round, and a
//! poisoned model scored down is left out by all of them, and so is a model not sealed by the key
//! that stored it (a copy of another's, or a bare file). (The participants' daemon and
//! `iotegrity fl` drive these same steps in the tests below; here the test does.)

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use iotegrity_core::contracts::FederatedLearning;
use iotegrity_core::federated::derive::{Derived, global_model};
use iotegrity_core::federated::{ModelOf, seal};
use iotegrity_core::ipfs::{Cid, Ipfs};
use iotegrity_core::learning::fedavg::PROXIMAL_MU;
use iotegrity_core::learning::{Examples, LinearModel, diabetes};
use iotegrity_core::signatures::domain_of;
use iotegrity_core::{AddressBook, chain};
use iotegrity_e2e::ipfs::IpfsNode;
use iotegrity_e2e::{Ident, World, wait_for};
use std::time::Duration;

const D: u32 = 120; // round length, seconds
const T: u16 = 3;

struct Party {
    id: Ident,
    fl: FederatedLearning::FederatedLearningInstance<DynProvider>,
}

async fn party(w: &World, book: &AddressBook, label: &str, role: &str) -> Party {
    let id = w.identity(label, role).await;
    w.fund(id.online).await;
    let provider = chain::writer(&w.anvil.endpoint(), id.online_key()).unwrap();
    Party { fl: FederatedLearning::new(book.federated_learning(), provider), id }
}

/// Moves chain time to `at` (not back).
async fn warp_to(w: &World, p: &Party, at: U256) {
    let now = chain::latest_timestamp(p.fl.provider()).await.unwrap();
    let at = at.to::<u64>();
    if at > now {
        w.advance(at - now).await;
    }
}

/// What a participant does at the start of a round's submission window: derive the previous
/// round's global model alone, from the chain's references and IPFS
/// (`iotegrity_core::federated::derive`: fetched, checked against the reference, excluded models
/// left out, aggregated).
async fn global_of(p: &Party, book: &AddressBook, ipfs: &Ipfs, id: U256, round: u64) -> Derived {
    global_model(p.fl.provider(), book, ipfs, id.to::<u64>(), round).await.unwrap()
}

/// `p`'s sealed model of `round` (docs/learning.md, "Model files and signatures").
fn sealed(p: &Party, book: &AddressBook, id: u64, round: u64, file: &[u8]) -> Vec<u8> {
    let of = ModelOf::new(book.federated_learning(), id, round, p.id.offline);
    seal(&of, file, &p.id.online_key(), &domain_of(book))
}

#[tokio::test]
async fn three_participants_derive_the_same_global_model_every_round_and_leave_the_poisoned_and_unsealed_out() {
    let w = World::new(&[]);
    let book = AddressBook::load(&w.book).unwrap();
    let node = IpfsNode::start();
    let ipfs = Ipfs::new(&node.api(), Duration::from_secs(10));
    let svc = party(&w, &book, "svc", "service").await;
    let ps = [
        party(&w, &book, "dev1", "device").await,
        party(&w, &book, "dev2", "device").await,
        party(&w, &book, "gw", "gateway").await,
    ];
    // A fourth registers to be paid without training: it stores a copy of another's sealed model,
    // then a bare file — neither sealed by its own key.
    let thief = party(&w, &book, "thief", "device").await;
    let shards: Vec<Examples> = diabetes::shards_by_age(0..360, 3);
    let (features, label, held_out) = diabetes::examples(360..441);

    // The service pins its initial global model (zero) and offers the training.
    let zero = LinearModel { features, label, weights: vec![0.0; 10], intercept: 0.0, examples: 0 };
    let initial = sealed(&svc, &book, 0, 0, &zero.to_safetensors());
    let model_ref = ipfs.add(&initial).await.unwrap();
    chain::send(svc.fl.createTrainingRequest(model_ref.digest, T, D).value(U256::from(10u64.pow(18)))).await.unwrap();
    let id = U256::from(1);
    for p in ps.iter().chain([&thief]) {
        chain::send(p.fl.registerTraining(id)).await.unwrap();
    }
    let parts: Vec<Address> = svc.fl.participantsOf(id).call().await.unwrap();
    assert_eq!(parts, ps.iter().chain([&thief]).map(|p| p.id.offline).collect::<Vec<_>>());
    // The chain's reference of the initial model reads back to its bytes.
    let t = svc.fl.trainingOf(id).call().await.unwrap();
    assert_eq!(ipfs.cat(&Cid { digest: t.modelRef }).await.unwrap(), initial);

    let mut globals = Vec::new();
    for round in 1..=u64::from(T) {
        // Scoring window: the previous round's models; round 2's gateway model was poisoned.
        let (start, scoring_ends, _) = svc.fl.scheduleOf(id, U256::from(round)).call().await.unwrap().into();
        warp_to(&w, &svc, start).await;
        if round == 3 {
            for p in &ps[..2] {
                chain::send(p.fl.scoreLocalModel(id, ps[2].id.offline, -100)).await.unwrap();
                chain::send(p.fl.scoreLocalModel(id, if p.id.offline == parts[0] { parts[1] } else { parts[0] }, 60))
                    .await
                    .unwrap();
            }
            assert!(svc.fl.isExcluded(id, U256::from(2), ps[2].id.offline).call().await.unwrap());
        }
        warp_to(&w, &svc, scoring_ends).await;
        // Every participant derives the round's global model alone: the same bytes.
        let mut derived = Vec::new();
        for p in &ps {
            derived.push(global_of(p, &book, &ipfs, id, round - 1).await);
        }
        assert!(derived.iter().all(|g| g.file == derived[0].file), "round {round}: participants disagree");
        if round >= 2 {
            // The thief's models are left out by everyone, with the reason.
            let left = &derived[0].left_out;
            assert!(left.len() == 1 && left[0].0 == thief.id.offline, "{left:?}");
            assert!(left[0].1.contains(&format!("not signed by {}", thief.id.online)), "{left:?}");
            assert_eq!(derived[0].used.len(), if round == 3 { 2 } else { 3 }, "{:?}", derived[0]);
        }
        let global = LinearModel::from_safetensors(&derived[0].file).unwrap();
        globals.push(global.clone());
        // Each trains on its own shard, seals and pins its model and stores the reference.
        let mut first = None;
        for (i, p) in ps.iter().enumerate() {
            let mut local = LinearModel::train_from(&global, &shards[i], PROXIMAL_MU).unwrap();
            if round == 2 && i == 2 {
                local.weights.iter_mut().for_each(|w| *w *= 50.0); // a poisoned, scaled model
            }
            let cid = ipfs.add(&sealed(p, &book, id.to(), round, &local.to_safetensors())).await.unwrap();
            chain::send(p.fl.storeLocalModel(id, cid.digest)).await.unwrap();
            first.get_or_insert((cid, local));
        }
        let (copied, bare) = first.unwrap();
        let stolen = match round {
            1 => copied,                                          // dev1's sealed model, byte for byte
            _ => ipfs.add(&bare.to_safetensors()).await.unwrap(), // a good model, but not sealed
        };
        chain::send(thief.fl.storeLocalModel(id, stolen.digest)).await.unwrap();
        // A second model in the same round is refused by name.
        let err = chain::send(ps[0].fl.storeLocalModel(id, B256::repeat_byte(1))).await.unwrap_err().to_string();
        assert!(err.contains("FederatedLearning_AlreadyStored"), "{err}");
    }

    // The final global model (round 3's models), derived alone by each: the same bytes again,
    // close to central training although each participant saw one age band only.
    let (start, scoring_ends, _) = svc.fl.scheduleOf(id, U256::from(T + 1)).call().await.unwrap().into();
    warp_to(&w, &svc, start).await;
    warp_to(&w, &svc, scoring_ends).await;
    let finals: Vec<Vec<u8>> = {
        let mut v = Vec::new();
        for p in &ps {
            v.push(global_of(p, &book, &ipfs, id, u64::from(T)).await.file);
        }
        v
    };
    assert!(finals.iter().all(|g| *g == finals[0]));
    let final_model = LinearModel::from_safetensors(&finals[0]).unwrap();
    let (_, _, union) = diabetes::examples(0..360);
    let central = LinearModel::train(&final_model.features, &final_model.label, &union).unwrap().r2(&held_out).unwrap();
    let r2 = final_model.r2(&held_out).unwrap();
    assert!(r2 / central >= 0.9, "federated R² {r2:.4} vs central {central:.4}");
    // The poisoned round did not drag the global model down: round 3 starts from a sane model.
    assert!(globals[2].r2(&held_out).unwrap() > 0.4, "{}", globals[2].r2(&held_out).unwrap());
    // The service pins the final model; it is the participants' bytes.
    assert_eq!(ipfs.add(&finals[0]).await.unwrap(), Cid::of(&finals[0]));

    // The service splits the reward (the poisoner gets nothing); every part is claimed once.
    let one = U256::from(10u64.pow(18));
    let weights =
        vec![U256::from(6) * one / U256::from(10), U256::from(4) * one / U256::from(10), U256::ZERO, U256::ZERO];
    chain::send(svc.fl.closeTraining(id, weights)).await.unwrap();
    for p in &ps[..2] {
        chain::send(p.fl.claimReward(id)).await.unwrap();
    }
    for p in [&ps[2], &thief] {
        let err = chain::send(p.fl.claimReward(id)).await.unwrap_err().to_string();
        assert!(err.contains("FederatedLearning_NothingToClaim"), "{err}");
    }
    assert_eq!(svc.fl.totalOwed().call().await.unwrap(), U256::ZERO);

    // The auditor's explorer shows the training from the chain alone: every model with its CID,
    // the poisoned one left out, the payouts.
    let x = w.spawn_explorer(0, "", "");
    x.wait_synced(&w).await;
    let (status, t) = x.json(&format!("/api/training/{id}")).await;
    assert_eq!((status, t["state"].as_str()), (200, Some("Finished")), "{t}");
    let models = t["models"].as_array().unwrap();
    let poisoned: Vec<&serde_json::Value> = models.iter().filter(|m| m["excluded"] == true).collect();
    assert!(!poisoned.is_empty(), "{t}");
    for m in &poisoned {
        assert_eq!(
            (m["round"].as_u64(), m["participant"].as_str().unwrap().parse::<Address>().unwrap()),
            (Some(2), ps[2].id.offline),
            "{m}"
        );
    }
    assert!(models.iter().all(|m| m["cid"].as_str().unwrap().starts_with("bafkrei")), "{t}");
    let claims = t["timeline"].as_array().unwrap().iter().filter(|e| e["event"] == "RewardClaimed").count();
    assert_eq!(claims, 2, "{t}");
    let (_, _, page) = x.get(&format!("/training/{id}")).await;
    assert!(page.contains("left out by every participant"), "{page}");
}

#[tokio::test]
async fn iotegrity_fl_runs_a_training_from_the_command_line() {
    let w = World::new(&[]);
    let node = IpfsNode::start();
    let ipfs = node.api();
    let svc = w.identity("svc", "service").await;
    let devs = [w.identity("dev1", "device").await, w.identity("dev2", "device").await];
    for id in std::iter::once(&svc).chain(&devs) {
        w.fund(id.online).await;
    }
    let path = |name: &str| w.path(name);
    let fl = |who: &Ident, args: &[&str]| {
        let mut all = vec!["fl"];
        all.extend_from_slice(args);
        w.run_online(who, &all)
    };

    // The service writes a zero model, pins it and offers one round of 120 s.
    w.cli(&["fl", "train", "--zero", "--out", &path("initial.safetensors")]).json();
    let created = fl(
        &svc,
        &[
            "create",
            "--model",
            &path("initial.safetensors"),
            "--rounds",
            "1",
            "--round-secs",
            "120",
            "--reward",
            "1ether",
            "--ipfs",
            &ipfs,
        ],
    )
    .json();
    let id = created["training"].as_u64().unwrap().to_string();
    assert!(created["model"].as_str().unwrap().starts_with("bafkrei"), "{created}");
    let listed = w.cli(&["fl", "list"]).json();
    assert_eq!(listed["trainings"][0]["training"].as_u64(), Some(1), "{listed}");
    for d in &devs {
        fl(d, &["register", &id]).json();
    }
    let err = fl(&devs[0], &["register", "9"]).failure().to_string();
    assert!(err.contains("no training 9"), "{err}");

    // Round 1's submission window: each derives the initial model, trains on its half, submits.
    w.advance(120 + 60 + 2).await;
    // Before anyone submits, round 1 has nothing to aggregate: its global model is the initial one.
    let early =
        w.cli(&["fl", "model", &id, "--round", "1", "--out", &path("early.safetensors"), "--ipfs", &ipfs]).json();
    assert_eq!(early["fromRound"], 0, "{early}");
    let initial =
        w.cli(&["fl", "model", &id, "--round", "0", "--out", &path("g0.safetensors"), "--ipfs", &ipfs]).json();
    assert_eq!(early["cid"], initial["cid"], "{early}");
    for (i, d) in devs.iter().enumerate() {
        let g = path(&format!("g0-{i}.safetensors"));
        w.cli(&["fl", "model", &id, "--round", "0", "--out", &g, "--ipfs", &ipfs]).json();
        let local = path(&format!("local-{i}.safetensors"));
        w.cli(&["fl", "train", "--global", &g, "--shard", &format!("{}/2", i + 1), "--out", &local]).json();
        let sent = fl(d, &["submit", &id, "--model", &local, "--ipfs", &ipfs]).json();
        assert_eq!(sent["round"], 1, "{sent}");
    }
    let err =
        fl(&devs[0], &["submit", &id, "--model", &path("local-0.safetensors"), "--ipfs", &ipfs]).failure().to_string();
    assert!(err.contains("FederatedLearning_AlreadyStored"), "{err}");
    // A node that serves other bytes — here dev2's real, sealed model for every CID asked — is not
    // believed: the bytes are hashed before anything is parsed, and the derivation stops.
    let dev2 = w.cli(&["fl", "show", &id]).json()["participants"][1]["models"][0]["cid"].as_str().unwrap().to_string();
    let served =
        iotegrity_core::ipfs::Ipfs::new(&ipfs, Duration::from_secs(5)).cat(&dev2.parse().unwrap()).await.unwrap();
    let hostile = iotegrity_e2e::ipfs::hostile(served);
    let err = w
        .cli(&["fl", "model", &id, "--round", "1", "--out", &path("x.safetensors"), "--ipfs", &hostile])
        .failure()
        .to_string();
    assert!(err.contains(&format!("hash to {dev2}: refused")), "{err}");
    assert!(!std::path::Path::new(&path("x.safetensors")).exists(), "nothing written");

    // The final scoring window: a score; both derive the global model of round 1 alone: one CID.
    w.advance(60).await;
    fl(&devs[0], &["vote", &id, "--author", &devs[1].offline.to_string(), "--score", "40"]).json();
    let a = w.cli(&["fl", "model", &id, "--round", "1", "--out", &path("g1-a.safetensors"), "--ipfs", &ipfs]).json();
    let b = w.cli(&["fl", "model", &id, "--round", "1", "--out", &path("g1-b.safetensors"), "--ipfs", &ipfs]).json();
    assert_eq!(a["cid"], b["cid"]);
    assert_eq!(a["used"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(std::fs::read(path("g1-a.safetensors")).unwrap(), std::fs::read(path("g1-b.safetensors")).unwrap());

    // Closing: a softmax split of the service's scores, claimed by both; the contract empties.
    w.advance(60).await;
    let err = fl(&devs[0], &["close", &id, "--scores", "1,0"]).failure().to_string();
    assert!(err.contains("FederatedLearning_NotService"), "{err}");
    fl(&svc, &["close", &id, "--scores", "1,0"]).json();
    let mut paid = U256::ZERO;
    for d in &devs {
        let c = fl(d, &["claim", &id]).json();
        paid += c["amount"].as_str().unwrap().parse::<U256>().unwrap();
    }
    let shown = w.cli(&["fl", "show", &id]).json();
    assert_eq!(shown["status"], "Finished", "{shown}");
    assert_eq!(shown["participants"][1]["models"][0]["score"], "40", "{shown}");
    let dust = U256::from(10u64.pow(18)) - paid;
    assert!(dust < U256::from(3), "the parts sum to the reward up to the dust: {dust}");
}

/// Moves chain time to training 1's `key` time (`roundEnds`, `scoringEnds` of `fl show`), not back.
async fn warp_key(w: &World, key: &str) {
    use alloy::providers::Provider;
    let at = w.cli(&["fl", "show", "1"]).json()[key].as_u64().unwrap();
    let p = alloy::providers::ProviderBuilder::new().connect_http(w.anvil.endpoint_url());
    let now = p.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await.unwrap().unwrap().header.timestamp;
    if at > now {
        w.advance(at - now).await;
    }
}

#[tokio::test]
async fn three_learner_daemons_vote_a_poisoner_out_survive_kill_9_a_missed_round_and_ipfs_going_away_and_the_service_pins_every_global_model()
 {
    use iotegrity_e2e::{Daemon, ServiceWorld};
    let node = IpfsNode::start();
    // The service daemon (it watches an empty table) pins its trainings' models on the node.
    let metrics_port = iotegrity_e2e::pg::free_port();
    let sw = ServiceWorld::with_extra(
        "name = \"public.readings\"",
        &format!(
            "[learning]\nipfs = \"{}\"\npoll_interval_ms = 100\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
            node.api()
        ),
    )
    .await;
    let (w, svc) = (&sw.w, &sw.svc);
    let mut service = sw.spawn_daemon(0);
    let ids =
        [w.identity("dev1", "device").await, w.identity("dev2", "device").await, w.identity("gw", "gateway").await];
    // A fourth participant, run by hand, submits a poisoned model (weights × 50, sealed properly).
    let evil = w.identity("evil", "device").await;
    for id in ids.iter().chain([&evil]) {
        w.fund(id.online).await;
    }
    let config = |i: usize| {
        let path = w.dir.path().join(format!("learner-{i}.toml"));
        std::fs::write(
            &path,
            format!(
                "[learner]\nkeystore = \"{}\"\npassword_file = \"{}\"\nstate_dir = \"{}\"\nshard = \"{}/3\"\n\
                 poll_interval_ms = 100\nservices = [\"{}\"]\n[chain]\nrpc_url = \"{}\"\ndeployments = \"{}\"\n\
                 [ipfs]\nurl = \"{}\"\n",
                ids[i].dir.join("online.json").display(),
                w.password_file.display(),
                w.path(&format!("learner-state-{i}")),
                i + 1,
                svc.offline,
                w.anvil.endpoint(),
                w.book.display(),
                node.api()
            ),
        )
        .unwrap();
        path
    };
    let log = |i: usize, n: usize| w.dir.path().join(format!("learner-{i}-{n}.log"));
    let read = |i: usize, n: usize| std::fs::read_to_string(log(i, n)).unwrap_or_default();
    let service_log = || std::fs::read_to_string(w.dir.path().join("daemon-0.log")).unwrap_or_default();
    let logs = || {
        let learners = (0..3).flat_map(|i| (0..3).map(move |n| (i, n))).map(|(i, n)| read(i, n));
        learners.chain([service_log()]).collect::<Vec<_>>().join("\n--\n")
    };
    let show = || w.cli(&["fl", "show", "1"]).json();
    let models_of = |round: u64| -> usize {
        show()["participants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["models"].as_array().unwrap().iter().any(|m| m["round"] == round))
            .count()
    };

    let mut learners: Vec<Daemon> = (0..3).map(|i| Daemon::spawn("learner", &config(i), &log(i, 0))).collect();
    w.cli(&["fl", "train", "--zero", "--out", &w.path("initial.safetensors")]).json();
    w.run_online(
        svc,
        &[
            "fl",
            "create",
            "--model",
            &w.path("initial.safetensors"),
            "--rounds",
            "3",
            "--round-secs",
            "120",
            "--reward",
            "1ether",
            "--ipfs",
            &node.api(),
        ],
    )
    .json();
    wait_for("three registrations", 60, || show()["participants"].as_array().unwrap().len() == 3, logs);
    w.run_online(&evil, &["fl", "register", "1"]).json();
    // Round 1: all four submit; then learner 0 is killed (-9) and restarted at once.
    warp_key(w, "roundEnds").await;
    warp_key(w, "scoringEnds").await;
    let (features, label, rows) = diabetes::examples(0..360);
    let mut poisoned = LinearModel::train(&features, &label, &rows).unwrap();
    poisoned.weights.iter_mut().for_each(|x| *x *= 50.0);
    std::fs::write(w.path("poisoned.safetensors"), poisoned.to_safetensors()).unwrap();
    let ipfs = node.api();
    w.run_online(&evil, &["fl", "submit", "1", "--model", &w.path("poisoned.safetensors"), "--ipfs", &ipfs]).json();
    wait_for("round 1's four models", 60, || models_of(1) == 4, logs);
    learners[0].signal("-9");
    learners[0] = Daemon::spawn("learner", &config(0), &log(0, 1));
    // Round 2: learner 2 is down (a missed round); the others score round 1 and submit.
    let status = learners[2].signal("-TERM");
    assert!(status.success(), "{status:?}");
    warp_key(w, "roundEnds").await;
    wait_for(
        "round 1 scored",
        60,
        || {
            show()["participants"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["models"][0]["votes"].as_u64().unwrap_or(0) >= 1)
        },
        logs,
    );
    // The IPFS node goes away as round 2's submission window opens, and comes back: the learners
    // retry (each failed tick is logged) and submit once it is back.
    let poisoner = show()["participants"][3].clone();
    assert_eq!(poisoner["participant"].as_str().unwrap().parse::<Address>().unwrap(), evil.offline, "{poisoner}");
    assert_eq!(poisoner["models"][0]["excluded"], true, "the learners voted the poisoned model out: {poisoner}");
    node.stop();
    warp_key(w, "scoringEnds").await;
    wait_for("a learner noticing the node is down", 60, || logs().contains("cannot reach the IPFS node"), logs);
    assert_eq!(models_of(2), 0, "nothing stored while the models cannot be fetched or pinned");
    node.up();
    wait_for("round 2's two models", 60, || models_of(2) == 2, logs);
    // Round 3: learner 2 is back, derives round 2's global model from the chain, and takes part.
    learners[2] = Daemon::spawn("learner", &config(2), &log(2, 1));
    warp_key(w, "roundEnds").await;
    wait_for(
        "round 2 scored",
        60,
        || {
            show()["participants"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["models"].as_array().unwrap().clone())
                .filter(|m| m["round"] == 2)
                .all(|m| m["votes"].as_u64().unwrap_or(0) >= 1)
        },
        logs,
    );
    warp_key(w, "scoringEnds").await;
    wait_for("round 3's three models", 60, || models_of(3) == 3, logs);

    // Every learner logged the same global model for each round it trained from.
    let globals = |round: u64| -> Vec<String> {
        (0..3)
            .flat_map(|i| (0..2).map(move |n| (i, n)))
            .flat_map(|(i, n)| {
                read(i, n)
                    .lines()
                    .filter(|l| l.contains("local model stored") && l.contains(&format!("round={round} ")))
                    .filter_map(|l| l.split("global=").nth(1).map(|s| s.split_whitespace().next().unwrap().to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    // A learner logs its model after the chain has it: wait for the lines, not just the models.
    wait_for("three learners logging round 3", 30, || globals(3).len() == 3, logs);
    wait_for("two learners logging rounds 1 and 2", 30, || globals(1).len() >= 2 && globals(2).len() >= 2, logs);
    for round in 1..=3 {
        let g = globals(round);
        assert!(g.len() >= 2 && g.iter().all(|x| *x == g[0]), "round {round}: {g:?}\n{}", logs());
    }
    assert_eq!(globals(3).len(), 3, "the learner that missed round 2 trained in round 3");
    // Round 2 trained from round 1's global model without the poisoner's.
    let round2: Vec<String> = (0..2)
        .map(|i| read(i, 0) + &read(i, 1))
        .collect::<String>()
        .lines()
        .filter(|l| l.contains("local model stored") && l.contains("round=2 "))
        .map(str::to_string)
        .collect();
    assert!(round2.len() == 2 && round2.iter().all(|l| l.contains("used=3 excluded=1")), "{round2:?}");

    // The end: the service closes, each learner claims its part by itself.
    warp_key(w, "roundEnds").await;
    warp_key(w, "scoringEnds").await;
    w.run_online(svc, &["fl", "close", "1", "--weights", "0.4,0.3,0.3,0"]).json();
    wait_for(
        "every part claimed",
        60,
        || {
            show()["participants"].as_array().unwrap().iter().all(|p| p["claimable"] == "0")
                && logs().matches("reward claimed").count() == 3
        },
        logs,
    );
    for l in &mut learners {
        assert!(l.signal("-TERM").success());
    }
    assert!(read(0, 1).contains("shut down"), "{}", read(0, 1));

    // The service daemon pinned the initial model, and each round's global model — the very one
    // the learners trained from next — up to the final one, which anyone derives alone again.
    wait_for("the final model pinned", 60, || service_log().contains("final global model pinned"), logs);
    let pinned = |round: u64| -> String {
        let log = service_log();
        let line = log
            .lines()
            .find(|l| l.contains("global model pinned") && l.contains(&format!("round={round} ")))
            .unwrap_or_else(|| panic!("no pin of round {round}:\n{log}"))
            .to_string();
        line.split("global=").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
    };
    assert!(service_log().contains("initial global model pinned"), "{}", service_log());
    assert_eq!(pinned(1), globals(2)[0]);
    assert_eq!(pinned(2), globals(3)[0]);
    let derived =
        w.cli(&["fl", "model", "1", "--round", "3", "--out", &w.path("final.safetensors"), "--ipfs", &ipfs]).json();
    assert_eq!(derived["cid"].as_str(), Some(pinned(3).as_str()), "{derived}");
    let pins = Ipfs::new(&ipfs, Duration::from_secs(10)).pin_ls().await.unwrap();
    for cid in [pinned(1), pinned(2), pinned(3), show()["model"].as_str().unwrap().to_string()] {
        assert!(pins.iter().any(|p| p.to_string() == cid), "{cid} not pinned: {pins:?}");
    }
    let m = iotegrity_e2e::metric(&iotegrity_e2e::metrics(metrics_port).await, "iotegrity_models_pinned_total");
    assert!(m >= Some(1 + (4 + 1) + (2 + 1) + (3 + 1)), "initial, then each round's local models and global: {m:?}");
    assert!(service.signal("-TERM").success());
}
