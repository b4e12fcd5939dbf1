//! Federated learning's parts together on a real Anvil and a real IPFS node: the deployed
//! `FederatedLearning` contract, model files on IPFS checked against the chain's references,
//! local training on non-IID shards of the diabetes table, and fixed-point FedAvg — three
//! participants that each derive the global model alone get the same bytes every round, and a
//! poisoned model scored down is left out by all of them. (The participants' daemon and
//! `iotegrity fl` will drive these same steps; here the test does.)

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use iotegrity_core::contracts::FederatedLearning;
use iotegrity_core::ipfs::{Cid, Ipfs};
use iotegrity_core::learning::fedavg::PROXIMAL_MU;
use iotegrity_core::learning::{Examples, LinearModel, diabetes};
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
async fn global_of(p: &Party, ipfs: &Ipfs, id: U256, round: u64) -> Vec<u8> {
    let learning = *p.fl.address();
    iotegrity_core::federated::derive::global_model(p.fl.provider(), learning, ipfs, id.to::<u64>(), round)
        .await
        .unwrap()
        .file
}

#[tokio::test]
async fn three_participants_derive_the_same_global_model_every_round_and_leave_the_poisoned_one_out() {
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
    let shards: Vec<Examples> = diabetes::shards_by_age(0..360, 3);
    let (features, label, held_out) = diabetes::examples(360..441);

    // The service pins its initial global model (zero) and offers the training.
    let zero = LinearModel { features, label, weights: vec![0.0; 10], intercept: 0.0, examples: 0 };
    let initial = zero.to_safetensors();
    let model_ref = ipfs.add(&initial).await.unwrap();
    chain::send(svc.fl.createTrainingRequest(model_ref.digest, T, D).value(U256::from(10u64.pow(18)))).await.unwrap();
    let id = U256::from(1);
    for p in &ps {
        chain::send(p.fl.registerTraining(id)).await.unwrap();
    }
    let parts: Vec<Address> = svc.fl.participantsOf(id).call().await.unwrap();
    assert_eq!(parts, ps.iter().map(|p| p.id.offline).collect::<Vec<_>>());
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
            derived.push(global_of(p, &ipfs, id, round - 1).await);
        }
        assert!(derived.iter().all(|g| *g == derived[0]), "round {round}: participants disagree");
        let global = LinearModel::from_safetensors(&derived[0]).unwrap();
        globals.push(global.clone());
        // Each trains on its own shard, pins its model and stores the reference.
        for (i, p) in ps.iter().enumerate() {
            let mut local = LinearModel::train_from(&global, &shards[i], PROXIMAL_MU).unwrap();
            if round == 2 && i == 2 {
                local.weights.iter_mut().for_each(|w| *w *= 50.0); // a poisoned, scaled model
            }
            let cid = ipfs.add(&local.to_safetensors()).await.unwrap();
            chain::send(p.fl.storeLocalModel(id, cid.digest)).await.unwrap();
        }
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
            v.push(global_of(p, &ipfs, id, u64::from(T)).await);
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
    let weights = vec![U256::from(6) * one / U256::from(10), U256::from(4) * one / U256::from(10), U256::ZERO];
    chain::send(svc.fl.closeTraining(id, weights)).await.unwrap();
    for p in &ps[..2] {
        chain::send(p.fl.claimReward(id)).await.unwrap();
    }
    let err = chain::send(ps[2].fl.claimReward(id)).await.unwrap_err().to_string();
    assert!(err.contains("FederatedLearning_NothingToClaim"), "{err}");
    assert_eq!(svc.fl.totalOwed().call().await.unwrap(), U256::ZERO);
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
async fn three_learner_daemons_train_together_survive_kill_9_a_missed_round_and_ipfs_going_away_and_are_paid() {
    use iotegrity_e2e::Daemon;
    let w = World::new(&[]);
    let node = IpfsNode::start();
    let svc = w.identity("svc", "service").await;
    let ids =
        [w.identity("dev1", "device").await, w.identity("dev2", "device").await, w.identity("gw", "gateway").await];
    for id in std::iter::once(&svc).chain(&ids) {
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
    let logs =
        || (0..3).flat_map(|i| (0..3).map(move |n| (i, n))).map(|(i, n)| read(i, n)).collect::<Vec<_>>().join("\n--\n");
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
        &svc,
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
    // Round 1: all three submit; then learner 0 is killed (-9) and restarted at once.
    warp_key(&w, "roundEnds").await;
    warp_key(&w, "scoringEnds").await;
    wait_for("round 1's three models", 60, || models_of(1) == 3, logs);
    learners[0].signal("-9");
    learners[0] = Daemon::spawn("learner", &config(0), &log(0, 1));
    // Round 2: learner 2 is down (a missed round); the others score round 1 and submit.
    let status = learners[2].signal("-TERM");
    assert!(status.success(), "{status:?}");
    warp_key(&w, "roundEnds").await;
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
    node.stop();
    warp_key(&w, "scoringEnds").await;
    wait_for("a learner noticing the node is down", 60, || logs().contains("cannot reach the IPFS node"), logs);
    assert_eq!(models_of(2), 0, "nothing stored while the models cannot be fetched or pinned");
    node.up();
    wait_for("round 2's two models", 60, || models_of(2) == 2, logs);
    // Round 3: learner 2 is back, derives round 2's global model from the chain, and takes part.
    learners[2] = Daemon::spawn("learner", &config(2), &log(2, 1));
    warp_key(&w, "roundEnds").await;
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
    warp_key(&w, "scoringEnds").await;
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

    // The end: the service closes, each learner claims its part by itself.
    warp_key(&w, "roundEnds").await;
    warp_key(&w, "scoringEnds").await;
    w.run_online(&svc, &["fl", "close", "1", "--scores", "1,1,1"]).json();
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
}
