//! The job market end to end, through the real CLI on real Anvil and PostgreSQL: the diabetes
//! table anchored by the real daemon, a job offered on it, a worker that verifies every batch and
//! trains, the service that checks the delivery and scores it on its held-out rows — and the
//! attacks and time rules of docs/market.md.

use iotegrity_e2e::{Daemon, Ident, ServiceWorld, wait_for};
use serde_json::Value;

/// The diabetes table (441 rows) anchored by the service daemon in sub-tables of 10 rows, a worker
/// identity, and a spec over keys 1..=360 with 361..=441 held out.
struct Market {
    s: ServiceWorld,
    worker: Ident,
    spec: String,
    /// The service's ingest API (and batch API) base URL.
    api: String,
    _daemon: Daemon,
}

impl Market {
    async fn new(target: &str) -> Self {
        Self::with_service_toml(target, "").await
    }

    /// As [`Market::new`], with `extra` appended to the service daemon's config (e.g. `[market]`).
    async fn with_service_toml(target: &str, extra: &str) -> Self {
        let port = iotegrity_e2e::pg::free_port();
        let s = ServiceWorld::with_extra(
            "name = \"public.diabetes\"\nm = 40\nn = 4\nmax_wait_secs = 1",
            &format!("[ingest]\nlisten = \"127.0.0.1:{port}\"\n{extra}"),
        )
        .await;
        let db = s.pg.url("postgres");
        let loaded = s.w.cli(&["dataset", "load", "--db", &db, "--table", "public.diabetes"]).json();
        assert_eq!(loaded["rows"], 441, "{loaded}");
        let daemon = s.start_service();
        s.wait_for_rows(441, 90);
        let worker = s.w.identity("worker", "worker").await;
        s.w.fund(worker.online).await;
        let m = Self { s, worker, spec: String::new(), api: format!("http://127.0.0.1:{port}"), _daemon: daemon };
        let spec = m.write_spec("spec.json", target);
        Self { spec, ..m }
    }

    fn db(&self) -> String {
        self.s.pg.url("postgres")
    }

    fn write_spec(&self, name: &str, target: &str) -> String {
        let path = self.s.w.path(name);
        let svc = self.s.svc.offline.to_string();
        let j = self
            .s
            .w
            .cli(&[
                "dataset",
                "spec",
                "--db",
                &self.db(),
                "--table",
                "public.diabetes",
                "--owner",
                &svc,
                "--train",
                "1..=360",
                "--holdout",
                "361..=441",
                "--target",
                target,
                "--out",
                &path,
            ])
            .json();
        assert_eq!(j["spec"]["dataset"]["subTables"], 36, "{j}");
        assert_eq!(j["spec"]["holdout"]["lastKey"], 441, "{j}");
        path
    }

    fn service(&self, args: &[&str]) -> iotegrity_e2e::Run {
        self.s.w.run_online(&self.s.svc, args)
    }

    fn work(&self, args: &[&str]) -> iotegrity_e2e::Run {
        self.s.w.run_online(&self.worker, args)
    }

    /// Offers a job on `spec` and returns its id.
    fn create(&self, spec: &str, deadline: &str) -> String {
        let db = self.db();
        let j = self
            .service(&["market", "create", "--spec", spec, "--reward", "1ether", "--deadline", deadline, "--db", &db])
            .json();
        j["job"].as_u64().expect("a job id").to_string()
    }

    /// The worker proposes for `job`, the service accepts.
    fn assign(&self, job: &str, spec: &str) {
        let proposal = self.s.w.path(&format!("proposal-{job}.json"));
        self.work(&["market", "propose", job, "--spec", spec, "--out", &proposal]).json();
        self.service(&["market", "accept", job, "--proposal", &proposal]).json();
    }

    /// The service exports the batches of `spec` into `dir`; the worker trains on them.
    fn train(&self, spec: &str, dir: &str, model: &str) -> iotegrity_e2e::Run {
        let dir = self.s.w.path(dir);
        self.s.w.cli(&["dataset", "batches", "--spec", spec, "--db", &self.db(), "--out", &dir]).json();
        self.s.w.cli(&["market", "train", "--spec", spec, "--batches", &dir, "--out", &self.s.w.path(model)])
    }

    fn book(&self) -> iotegrity_core::AddressBook {
        iotegrity_core::AddressBook::load(&self.s.w.book).unwrap()
    }

    fn show(&self, job: &str) -> Value {
        self.s.w.cli(&["market", "show", job]).json()
    }

    fn evaluate(&self, job: &str, spec: &str, model: &str) -> Value {
        self.evaluate_run(job, spec, model).json()
    }

    fn evaluate_run(&self, job: &str, spec: &str, model: &str) -> iotegrity_e2e::Run {
        self.service(&[
            "market",
            "evaluate",
            job,
            "--spec",
            spec,
            "--model",
            &self.s.w.path(model),
            "--db",
            &self.db(),
            "--end",
        ])
    }
}

#[tokio::test]
async fn a_job_is_trained_on_verified_data_evaluated_paid_and_voted_and_attacks_are_refused() {
    let m = Market::new("0.3").await;
    let spec = m.spec.clone();
    let verified = m.s.w.cli(&["dataset", "verify", "--spec", &spec, "--db", &m.db()]).json();
    assert_eq!((verified["batches"].as_u64(), verified["rows"].as_u64()), (Some(36), Some(360)), "{verified}");

    // Success: offered, listed, proposed, accepted, trained on verified batches, reported,
    // evaluated on the held-out rows, paid, voted.
    let job = m.create(&spec, "2h");
    let listed = m.s.w.cli(&["market", "list"]).json();
    assert_eq!(listed["jobs"][0]["job"].as_u64(), Some(job.parse().unwrap()), "{listed}");
    m.assign(&job, &spec);
    assert_eq!(m.show(&job)["status"], "InProgress");
    let trained = m.train(&spec, "batches", "model.safetensors").json();
    assert_eq!((trained["batches"].as_u64(), trained["rows"].as_u64()), (Some(36), Some(360)), "{trained}");
    let reported = m.work(&["market", "report", &job, "--model", &m.s.w.path("model.safetensors")]).json();
    assert_eq!(reported["resultHash"], trained["resultHash"]);
    let verdict = m.evaluate(&job, &spec, "model.safetensors");
    assert_eq!((verdict["verdict"].as_str(), verdict["passes"].as_bool()), (Some("Success"), Some(true)), "{verdict}");
    let r2 = verdict["score"].as_f64().unwrap();
    assert!((0.3..1.0).contains(&r2), "held-out R² {r2}");
    assert!(verdict["why"].as_str().unwrap().contains("on 81 held-out rows"), "{verdict}");
    let claimed = m.work(&["market", "claim", &job]).json();
    assert_eq!(claimed["amount"], "1000000000000000000");
    assert!(m.work(&["market", "claim", &job]).failure().contains("JobMarket_AlreadyClaimed"));
    m.s.w.run_as(&m.worker, &["market", "vote", &job, "--score", "70"]).json();
    m.s.w.run_as(&m.s.svc, &["market", "vote", &job, "--score", "80"]).json();
    let score = m.s.w.cli(&["reputation", "show", "--address", &m.worker.offline.to_string()]).json();
    assert_eq!(score["votes"], 1, "{score}");
    // The auditor's explorer shows the job's whole life, from the chain alone.
    let x = m.s.w.spawn_explorer(0, "", "");
    x.wait_synced(&m.s.w).await;
    let (status, shown) = x.json(&format!("/api/job/{job}")).await;
    assert_eq!((status, shown["status"].as_str()), (200, Some("Success")), "{shown}");
    assert_eq!(shown["worker"].as_str().unwrap().parse::<alloy::primitives::Address>().unwrap(), m.worker.offline);
    assert_eq!(shown["resultHash"], trained["resultHash"]);
    let events: Vec<&str> =
        shown["timeline"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    for e in ["JobCreated", "JobAccepted", "ResultReported", "JobFinished", "RewardClaimed"] {
        assert!(events.contains(&e), "{e} in {events:?}");
    }
    assert_eq!(x.get(&format!("/search?q={job}")).await.1, Some(format!("/job/{job}")));
    let (status, _, page) = x.get(&format!("/job/{job}")).await;
    assert!(status == 200 && page.contains("Success") && page.contains("RewardClaimed"), "{page}");

    // Failed: the same data and model against a target it cannot meet; the service is refunded.
    let strict = m.write_spec("strict.json", "0.95");
    let job2 = m.create(&strict, "2h");
    m.assign(&job2, &strict);
    m.work(&["market", "report", &job2, "--model", &m.s.w.path("model.safetensors")]).json();
    let verdict = m.evaluate(&job2, &strict, "model.safetensors");
    assert_eq!(verdict["verdict"], "Failed", "{verdict}");
    assert!(verdict["why"].as_str().unwrap().contains("target 0.95"), "{verdict}");
    // The Failed verdict stays open to the worker's dispute for a window: nobody is paid yet.
    let shown = m.show(&job2);
    assert_eq!(shown["status"], "InProgress", "{shown}");
    assert!(shown["failedAt"].as_u64().is_some(), "{shown}");
    for party in [&m.worker, &m.s.svc] {
        let err = m.s.w.run_online(party, &["market", "claim", &job2]).failure().to_string();
        assert!(err.contains("JobMarket_WrongStatus"), "{err}");
    }

    // A model file swapped on the way (the worker's signature over another file): not the
    // worker's delivery, so nothing is judged — else anyone could fail a job with garbage.
    let job3 = m.create(&spec, "2h");
    m.assign(&job3, &spec);
    m.work(&["market", "report", &job3, "--model", &m.s.w.path("model.safetensors")]).json();
    let mut other = std::fs::read(m.s.w.path("model.safetensors")).unwrap();
    let last = other.len() - 1;
    other[last] ^= 1;
    std::fs::write(m.s.w.path("swapped.safetensors"), &other).unwrap();
    std::fs::copy(m.s.w.path("model.safetensors.result.json"), m.s.w.path("swapped.safetensors.result.json")).unwrap();
    let err = m.evaluate_run(&job3, &spec, "swapped.safetensors").failure().to_string();
    assert!(err.contains("not the job's worker's, nothing is judged") && err.contains("signed result says"), "{err}");
    assert_eq!(m.show(&job3)["failedAt"], Value::Null);
    // The worker's own signature over a model other than the one it reported: the job Failed.
    let shown = m.show(&job3);
    let signed = iotegrity_core::market::SignedResult::sign(
        m.book().job_market(),
        alloy::primitives::U256::from(job3.parse::<u64>().unwrap()),
        shown["paramHash"].as_str().unwrap().parse().unwrap(),
        &other,
        &m.worker.online_key(),
        &m.s.domain(),
    );
    std::fs::write(m.s.w.path("swapped.safetensors.result.json"), serde_json::to_string(&signed).unwrap()).unwrap();
    let verdict = m.evaluate(&job3, &spec, "swapped.safetensors");
    assert_eq!(verdict["verdict"], "Failed", "{verdict}");
    assert!(verdict["why"].as_str().unwrap().contains("the chain's report says"), "{verdict}");

    // Forged, replayed and non-worker proposals are refused before anything is sent.
    let job4 = m.create(&spec, "2h");
    let p4 = m.s.w.path("p4.json");
    m.work(&["market", "propose", &job4, "--spec", &spec, "--out", &p4]).json();
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&p4).unwrap()).unwrap();
    forged["proposal"]["expiresAt"] = Value::from(forged["proposal"]["expiresAt"].as_u64().unwrap() + 3600);
    std::fs::write(m.s.w.path("forged.json"), forged.to_string()).unwrap();
    let err = m.service(&["market", "accept", &job4, "--proposal", &m.s.w.path("forged.json")]).failure().to_string();
    assert!(err.contains("forged or altered proposal"), "{err}");
    let err =
        m.service(&["market", "accept", &job4, "--proposal", &m.s.w.path("proposal-1.json")]).failure().to_string();
    assert!(err.contains("is a proposal for job 1"), "{err}");
    let not_worker = m
        .service(&["market", "propose", &job4, "--spec", &spec, "--out", &m.s.w.path("svc.json")])
        .failure()
        .to_string();
    assert!(not_worker.contains("not the online key of an active worker identity (it is service)"), "{not_worker}");
    // The wrong spec file for a job is named as such.
    let err = m.work(&["market", "propose", &job4, "--spec", &strict, "--out", &p4]).failure().to_string();
    assert!(err.contains("not this job's spec"), "{err}");

    // A batch that is not under h_S, and a row changed in the database after it was anchored: the
    // worker names the batch and trains nothing.
    let dir = m.s.w.path("holdout-batches");
    m.s.w.cli(&["dataset", "batches", "--spec", &spec, "--part", "holdout", "--db", &m.db(), "--out", &dir]).json();
    let batches = m.s.w.path("batches");
    std::fs::copy(format!("{dir}/batch-00000.json"), format!("{batches}/batch-00003.json")).unwrap();
    let run =
        m.s.w.cli(&["market", "train", "--spec", &spec, "--batches", &batches, "--out", &m.s.w.path("no.safetensors")]);
    let err = run.failure();
    assert!(err.contains("batch-00003.json refused") && err.contains("out of place"), "{err}");
    assert!(!std::path::Path::new(&m.s.w.path("no.safetensors")).exists());
    m.s.pg.psql("postgres", "UPDATE diabetes SET bmi = bmi + 0.001 WHERE id = 57");
    let err = m.train(&spec, "tampered", "no.safetensors").failure().to_string();
    assert!(err.contains("batch-00005.json refused") && err.contains("batch 5"), "{err}");
    let err = m.s.w.cli(&["dataset", "verify", "--spec", &spec, "--db", &m.db()]).failure().to_string();
    assert!(err.contains("batch 5"), "{err}");
}

#[tokio::test]
async fn every_waiting_party_has_an_exit_deadline_review_timeout_and_a_notary_ruling() {
    let m = Market::new("0.3").await;
    let spec = m.spec.clone();
    let notary = m.s.w.identity("notary", "notary").await;
    m.s.w.fund(notary.online).await;
    m.train(&spec, "batches", "model.safetensors").json();
    let model = m.s.w.path("model.safetensors");

    // The worker misses its deadline: the job fails by time alone and the service is refunded.
    let late = m.create(&spec, "1h");
    m.assign(&late, &spec);
    // Review timeout: the service never answers a report.
    let ignored = m.create(&spec, "2h");
    m.assign(&ignored, &spec);
    m.work(&["market", "report", &ignored, "--model", &model]).json();
    // A dispute: the service fails a good model, the worker disputes, a notary rules.
    let disputed = m.create(&spec, "2h");
    m.assign(&disputed, &spec);
    m.work(&["market", "report", &disputed, "--model", &model]).json();
    m.service(&["market", "end", &disputed, "--verdict", "failed"]).json();
    assert!(m.work(&["market", "claim", &disputed]).failure().contains("JobMarket_"));
    m.work(&["market", "dispute", &disputed, "--evidence", "R² 0.45 on the held-out rows, target 0.3"]).json();
    let err =
        m.service(&["market", "resolve", &disputed, "--ruling", "failed", "--reason", "mine"]).failure().to_string();
    assert!(err.contains("JobMarket_WrongRole"), "{err}");
    m.s.w
        .run_online(&notary, &["market", "resolve", &disputed, "--ruling", "success", "--reason", "re-scored: passes"])
        .json();
    assert_eq!(m.show(&disputed)["status"], "Success");
    m.work(&["market", "claim", &disputed]).json();

    m.s.w.advance(2 * 3600).await;
    assert_eq!(m.show(&late)["status"], "Failed");
    let err = m.work(&["market", "report", &late, "--model", &model]).failure().to_string();
    assert!(err.contains("JobMarket_PastDeadline"), "{err}");
    m.service(&["market", "claim", &late]).json();

    assert_eq!(m.show(&ignored)["status"], "InProgress");
    m.s.w.advance(3 * 86_400 + 1).await;
    assert_eq!(m.show(&ignored)["status"], "Success");
    m.s.w.cli(&["market", "settle", &ignored, "--private-key", &m.s.w.governance_key()]).json();
    assert_eq!(m.show(&ignored)["recordedStatus"], "Success");
    let paid = m.work(&["market", "claim", &ignored]).json();
    assert_eq!(paid["amount"], "1000000000000000000");

    // Unknown jobs and bad input are named.
    assert!(m.s.w.cli(&["market", "show", "99"]).failure().contains("no job 99 on this market"));
    assert!(
        m.service(&["market", "create", "--spec", &spec, "--reward", "1ether", "--deadline", "soon"])
            .failure()
            .contains("bad time")
    );
}

#[tokio::test]
async fn the_service_serves_batches_only_to_the_assigned_worker_who_trains_on_them() {
    let m = Market::new("0.3").await;
    let spec = m.spec.clone();
    let job = m.create(&spec, "2h");
    let open = m.create(&spec, "2h");
    m.assign(&job, &spec);
    let fetch = |who: &Ident, job: &str, dir: &str| {
        m.s.w
            .run_online(who, &["market", "fetch", job, "--spec", &spec, "--service", &m.api, "--out", &m.s.w.path(dir)])
    };

    // The assigned worker gets every batch and trains on them once each is verified.
    let got = fetch(&m.worker, &job, "fetched").json();
    assert_eq!((got["batches"].as_u64(), got["rows"].as_u64()), (Some(36), Some(360)), "{got}");
    let dir = m.s.w.path("fetched");
    let model = m.s.w.path("model.safetensors");
    let trained = m.s.w.cli(&["market", "train", "--spec", &spec, "--batches", &dir, "--out", &model]).json();
    assert_eq!(trained["rows"], 360, "{trained}");

    // Another worker, the service itself, a job still open and an unknown job are refused.
    let other = m.s.w.identity("other-worker", "worker").await;
    let err = fetch(&other, &job, "x").failure().to_string();
    assert!(err.contains("403") && err.contains("is not a current key of job"), "{err}");
    let err = fetch(&m.s.svc, &job, "x").failure().to_string();
    assert!(err.contains("403"), "{err}");
    let err = fetch(&m.worker, &open, "x").failure().to_string();
    assert!(err.contains("403") && err.contains("is Unprocessed"), "{err}");

    // Raw requests: stale, for another market, unsigned garbage, an unknown job.
    let book = m.book();
    let domain = iotegrity_core::signatures::domain_of(&book);
    let key = m.worker.online_key();
    let url = format!("{}/v1/jobs/batches", m.api);
    let now = iotegrity_core::signatures::unix_now();
    let id = alloy::primitives::U256::from(job.parse::<u64>().unwrap());
    let send = |req: &iotegrity_core::market::SignedBatchRequest| {
        iotegrity_e2e::post_json(&url, serde_json::to_string(req).unwrap())
    };
    use iotegrity_core::market::SignedBatchRequest as R;
    let (status, body) = send(&R::sign(book.job_market(), id, 0, now, &key, &domain)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(&R::sign(book.job_market(), id, 0, now - 1000, &key, &domain)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("more than 300 s from now"), "{body}");
    let (status, _) = send(&R::sign(alloy::primitives::Address::repeat_byte(1), id, 0, now, &key, &domain)).await;
    assert_eq!(status, 403);
    let (status, _) = send(&R::sign(book.job_market(), id, 36, now, &key, &domain)).await;
    assert_eq!(status, 404);
    let (status, _) = send(&R::sign(book.job_market(), alloy::primitives::U256::from(99), 0, now, &key, &domain)).await;
    assert_eq!(status, 404);
    let (status, _) = iotegrity_e2e::post_json(&url, "{\"request\": 1}".into()).await;
    assert_eq!(status, 400);

    // Receipts of the dataset deleted from the store: the service refuses to serve another dataset.
    m.s.pg.psql("postgres", "DELETE FROM iotegrity.receipts WHERE table_name = 'public.diabetes' AND first_key = 101");
    let err = fetch(&m.worker, &job, "after-delete").failure().to_string();
    assert!(err.contains("500") && err.contains("receipts"), "{err}");
}

/// The ResultReported events of job `id`.
async fn reports_of(m: &Market, id: u64) -> usize {
    use alloy::providers::Provider;
    use alloy::sol_types::SolEvent;
    let book = m.book();
    let p = alloy::providers::ProviderBuilder::new().connect_http(m.s.w.anvil.endpoint_url());
    let filter = alloy::rpc::types::Filter::new()
        .address(book.job_market())
        .event_signature(iotegrity_core::contracts::JobMarket::ResultReported::SIGNATURE_HASH)
        .topic1(alloy::primitives::U256::from(id))
        .from_block(0);
    p.get_logs(&filter).await.unwrap().len()
}

#[tokio::test]
async fn the_worker_daemon_takes_a_job_survives_kill_9_is_paid_and_refuses_a_tampered_dataset() {
    // The worker knows the service by name only: its API is served over TLS 1.3 with a certificate
    // pinned under svc.iot, and every request of the worker goes over the pinned channel.
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = (certs.path().join("svc.pem"), certs.path().join("svc.key"));
    let (cert_pem, key_pem) = iotegrity_core::tls::issue("svc.iot", 30).unwrap();
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let m = Market::with_service_toml(
        "0.3",
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\n[market]\naccept_proposals = true\nevaluate_results = true\n",
            cert.display(),
            key.display()
        ),
    )
    .await;
    let spec = m.spec.clone();
    let w = &m.s.w;
    w.fund(m.worker.online).await;
    w.run_as(&m.s.svc, &["name", "register", "svc.iot", "--ip", "127.0.0.1"]).json();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    w.run_as(&m.s.svc, &["cert", "add", "svc.iot", "--cert", &cert, "--key", &key]).json();
    let port = m.api.rsplit_once(':').unwrap().1;
    let config = w.dir.path().join("worker.toml");
    let metrics_port = iotegrity_e2e::pg::free_port();
    std::fs::write(
        &config,
        format!(
            "[worker]\nkeystore = \"{}\"\npassword_file = \"{}\"\nstate_dir = \"{}\"\npoll_interval_ms = 100\n\
             min_reward_wei = 100000000000000000\n\
             [chain]\nrpc_url = \"{}\"\ndeployments = \"{}\"\n\
             [[services]]\nidentity = \"{}\"\nname = \"svc.iot\"\nport = {port}\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n",
            m.worker.dir.join("online.json").display(),
            w.password_file.display(),
            w.path("worker-state"),
            w.anvil.endpoint(),
            w.book.display(),
            m.s.svc.offline,
        ),
    )
    .unwrap();
    let log = |n: usize| w.dir.path().join(format!("worker-{n}.log"));
    let read = |n: usize| std::fs::read_to_string(log(n)).unwrap_or_default();
    let all_logs = || (0..5).map(read).collect::<Vec<_>>().join("\n----\n") + &m.s.log_tails();
    let state_dir = w.path("worker-state");
    let state_of = |job: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{state_dir}/jobs/{job}.json")).unwrap()).unwrap()
    };
    // Stopped once between each step and the next: the worker must carry on from the chain and
    // its state files, propose again if its proposal never left, train once, report once.
    let crash = |n: usize, point: &str| {
        let status =
            Daemon::spawn_with_env("worker", &config, &log(n), &[("IOTEGRITYD_CRASH_AT", point)]).wait_exit(90);
        assert!(!status.success(), "{status:?}");
        assert!(read(n).contains(&format!("IOTEGRITYD_CRASH_AT={point}: aborting")), "{}", all_logs());
    };

    let job = m.create(&spec, "2h");
    crash(0, "proposed"); // its state says proposed; the proposal never reached the service
    assert_eq!(state_of(&job)["stage"], "proposed");
    assert_eq!(state_of(&job)["service"], format!("svc.iot:{port}"), "the service by name");
    assert_eq!(m.show(&job)["status"], "Unprocessed");

    let mut worker = Daemon::spawn("worker", &config, &log(1));
    wait_for("the proposal accepted", 60, || read(1).contains("proposal accepted on chain"), all_logs);
    worker.signal("-9");
    assert_eq!(m.show(&job)["status"], "InProgress");

    crash(2, "trained"); // the model is on disk, not reported
    let model = std::fs::read(format!("{state_dir}/jobs/{job}.safetensors")).unwrap();
    assert_eq!(m.show(&job)["resultHash"], serde_json::Value::Null);

    crash(3, "reported"); // reported (the model read back, not trained again), not delivered
    assert_eq!(m.show(&job)["resultHash"], alloy::primitives::keccak256(&model).to_string());
    assert!(!read(3).contains("model trained"), "{}", read(3));

    let mut worker = Daemon::spawn("worker", &config, &log(4));
    wait_for("the reward claimed", 90, || m.show(&job)["claimed"] == true, all_logs);
    assert_eq!(m.show(&job)["status"], "Success");
    assert_eq!(reports_of(&m, job.parse().unwrap()).await, 1, "{}", all_logs());
    assert!(read(4).contains("model delivered and judged"), "{}", read(4));
    assert!(!read(4).contains("result reported"), "{}", read(4));
    // The worker writes its state after the chain has its claim: wait for the file, not the chain.
    wait_for("the job's state done", 30, || state_of(&job)["stage"] == "done", all_logs);

    // A job paying less than min_reward_wei (0.1 ether) is skipped, with its reason, once.
    let db = m.db();
    let cheap = m
        .service(&["market", "create", "--spec", &spec, "--reward", "0.01ether", "--deadline", "2h", "--db", &db])
        .json();
    let cheap = cheap["job"].as_u64().unwrap().to_string();
    wait_for("the cheap job skipped", 60, || read(4).contains(&format!("job={cheap}")), all_logs);
    assert!(read(4).contains("below min_reward_wei"), "{}", read(4));
    assert_eq!(m.show(&cheap)["status"], "Unprocessed");

    // A row edited in the database after it was anchored: the worker refuses the batch that holds
    // it and trains nothing; the job gets no report.
    m.s.pg.psql("postgres", "UPDATE diabetes SET s3 = s3 + 0.001 WHERE id = 123");
    let job2 = m.create(&spec, "2h");
    wait_for("the tampered batch refused", 60, || read(4).contains("batch refused"), all_logs);
    assert!(read(4).contains("batch=12"), "{}", read(4));
    wait_for("the job's state refused", 30, || state_of(&job2)["stage"] == "refused", all_logs);
    assert_eq!(m.show(&job2)["resultHash"], serde_json::Value::Null);
    assert_eq!(m.show(&job2)["status"], "InProgress");

    // This run of the worker claimed job 1, reported nothing, refused one batch.
    let text = iotegrity_e2e::metrics(metrics_port).await;
    let value = |name: &str| iotegrity_e2e::metric(&text, name).unwrap_or(0);
    assert_eq!((value("iotegrity_worker_claims_total"), value("iotegrity_worker_reports_total")), (1, 0), "{text}");
    assert_eq!(value("iotegrity_worker_batches_refused_total"), 1, "{text}");

    // A clean SIGTERM.
    let status = worker.signal("-TERM");
    assert!(status.success(), "{status:?}: {}", read(4));
    assert!(read(4).contains("shut down"));
}

#[tokio::test]
async fn the_service_daemon_accepts_and_judges_only_what_the_chain_and_the_worker_s_keys_vouch_for() {
    use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
    use iotegrity_core::market::{SignedProposal, SignedResult, TrainingProposal};
    let m = Market::with_service_toml(
        "0.3",
        "[market]\naccept_proposals = true\nevaluate_results = true\nmin_worker_score = 0\n",
    )
    .await;
    let spec = m.spec.clone();
    let (book, domain) = (m.book(), m.s.domain());
    let key = m.worker.online_key();
    let post = |path: &str, body: String| {
        let url = format!("{}{path}", m.api);
        async move { iotegrity_e2e::post_json(&url, body).await }
    };
    let job = m.create(&spec, "2h");
    let shown = m.show(&job);
    let id = U256::from(job.parse::<u64>().unwrap());
    let param_hash: B256 = shown["paramHash"].as_str().unwrap().parse().unwrap();
    let propose = |signer: &alloy::signers::local::PrivateKeySigner, worker: Address, market: Address| {
        let p = TrainingProposal {
            market,
            jobId: id,
            root: shown["root"].as_str().unwrap().parse().unwrap(),
            paramHash: param_hash,
            worker,
            terms: B256::ZERO,
            expiresAt: iotegrity_core::signatures::unix_now() + 3600,
        };
        serde_json::to_string(&SignedProposal::sign(p, signer, &domain)).unwrap()
    };

    // The kept spec is public and is the job's (its keccak is the paramHash).
    let client = alloy::transports::http::reqwest::Client::new();
    let got = client.get(format!("{}/v1/jobs/specs/{param_hash}", m.api)).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(keccak256(got.bytes().await.unwrap()), param_hash);
    let got = client.get(format!("{}/v1/jobs/specs/0x12", m.api)).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 400);

    // Proposals: garbage, signed by a key that is not the named worker's, for another market, from
    // a key that is not a worker's; none is accepted. Then the worker's own is, once.
    let proposals = "/v1/jobs/proposals";
    assert_eq!(post(proposals, "{\"proposal\": 1}".into()).await.0, 400);
    let stranger = alloy::signers::local::PrivateKeySigner::random();
    let (status, body) = post(proposals, propose(&stranger, key.address(), book.job_market())).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = post(proposals, propose(&key, key.address(), Address::repeat_byte(7))).await;
    assert_eq!(status, 403, "{body}");
    let svc = m.s.svc.online_key();
    let (status, body) = post(proposals, propose(&svc, svc.address(), book.job_market())).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not the online key of an active worker identity"), "{body}");
    assert_eq!(m.show(&job)["status"], "Unprocessed");
    let (status, body) = post(proposals, propose(&key, key.address(), book.job_market())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(m.show(&job)["status"], "InProgress");
    let (status, body) = post(proposals, propose(&key, key.address(), book.job_market())).await;
    assert_eq!(status, 409, "{body}");

    // The worker fetches, trains and reports through the CLI.
    let dir = m.s.w.path("fetched");
    m.work(&["market", "fetch", &job, "--spec", &spec, "--service", &m.api, "--out", &dir]).json();
    let model = m.s.w.path("model.safetensors");
    m.s.w.cli(&["market", "train", "--spec", &spec, "--batches", &dir, "--out", &model]).json();
    m.work(&["market", "report", &job, "--model", &model]).json();
    let file = std::fs::read(&model).unwrap();
    let mut swapped = file.clone();
    let last = swapped.len() - 1;
    swapped[last] ^= 1;
    let deliver = |signer: &alloy::signers::local::PrivateKeySigner, signed_file: &[u8], sent_file: &[u8]| {
        let result = SignedResult::sign(book.job_market(), id, param_hash, signed_file, signer, &domain);
        serde_json::json!({ "result": result, "model": Bytes::copy_from_slice(sent_file) }).to_string()
    };

    // Deliveries that are not the worker's are refused and judge nothing: signed by another key,
    // or the worker's signature over another file (swapped on the way).
    let results = "/v1/jobs/results";
    assert_eq!(post(results, "{}".into()).await.0, 400);
    let (status, body) = post(results, deliver(&stranger, &file, &file)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(results, deliver(&key, &file, &swapped)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("signed result says"), "{body}");
    assert_eq!(m.show(&job)["failedAt"], Value::Null, "a third party failed the job");
    // Whoever can write the service's database cannot move the acceptance criteria or the
    // held-out rows: an edited kept spec no longer hashes to the chain's paramHash (the service
    // acts as if it had none), and an edited held-out row does not verify — no verdict either way.
    let pg = &m.s.pg;
    pg.psql("postgres", "CREATE TABLE spec_bak AS SELECT * FROM iotegrity.job_specs");
    pg.psql(
        "postgres",
        "UPDATE iotegrity.job_specs SET spec = convert_to(replace(convert_from(spec, 'UTF8'), '0.3', '0.9'), 'UTF8')",
    );
    let got = client.get(format!("{}/v1/jobs/specs/{param_hash}", m.api)).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 404);
    let (status, body) = post(results, deliver(&key, &file, &file)).await;
    assert_eq!(status, 404, "{body}");
    pg.psql(
        "postgres",
        "UPDATE iotegrity.job_specs j SET spec = b.spec FROM spec_bak b WHERE j.param_hash = b.param_hash",
    );
    pg.psql("postgres", "CREATE TABLE row_bak AS SELECT * FROM diabetes WHERE id = 400");
    pg.psql("postgres", "UPDATE diabetes SET bmi = bmi + 1 WHERE id = 400");
    let (status, body) = post(results, deliver(&key, &file, &file)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(m.show(&job)["failedAt"], Value::Null, "an edited held-out row gave a verdict");
    pg.psql("postgres", "UPDATE diabetes d SET bmi = b.bmi FROM row_bak b WHERE d.id = b.id");

    // The worker's own delivery is judged on the held-out rows and the job ended Success, once.
    let (status, body) = post(results, deliver(&key, &file, &file)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["judgement"]["verdict"], "Success", "{body}");
    assert!(body["judgement"]["score"].as_f64().unwrap() > 0.3, "{body}");
    assert_eq!(m.show(&job)["status"], "Success");
    let (status, body) = post(results, deliver(&key, &file, &file)).await;
    assert_eq!(status, 409, "{body}");

    // The worker had no votes (score 0, the minimum): accepted. Voted down by the service, its
    // next proposal is refused by the daemon's min_worker_score.
    m.s.w.run_as(&m.s.svc, &["market", "vote", &job, "--score", "-80"]).json();
    let next = m.create(&spec, "2h");
    let p = TrainingProposal {
        market: book.job_market(),
        jobId: U256::from(next.parse::<u64>().unwrap()),
        root: shown["root"].as_str().unwrap().parse().unwrap(),
        paramHash: param_hash,
        worker: key.address(),
        terms: B256::ZERO,
        expiresAt: iotegrity_core::signatures::unix_now() + 3600,
    };
    let (status, body) = post(proposals, serde_json::to_string(&SignedProposal::sign(p, &key, &domain)).unwrap()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("below this service's minimum 0"), "{body}");
    assert_eq!(m.show(&next)["status"], "Unprocessed");
}
