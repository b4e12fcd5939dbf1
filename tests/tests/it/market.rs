//! The job market end to end, through the real CLI on real Anvil and PostgreSQL: the diabetes
//! table anchored by the real daemon, a job offered on it, a worker that verifies every batch and
//! trains, the service that checks the delivery and scores it on its held-out rows — and the
//! attacks and time rules of docs/market.md.

use iotegrity_e2e::{Daemon, Ident, ServiceWorld};
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
        let port = iotegrity_e2e::pg::free_port();
        let s = ServiceWorld::with_extra(
            "name = \"public.diabetes\"\nm = 40\nn = 4\nmax_wait_secs = 1",
            &format!("[ingest]\nlisten = \"127.0.0.1:{port}\"\n"),
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

    fn show(&self, job: &str) -> Value {
        self.s.w.cli(&["market", "show", job]).json()
    }

    fn evaluate(&self, job: &str, spec: &str, model: &str) -> Value {
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
        .json()
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

    // A delivered model whose hash differs from the report: the delivery is refused, the job Failed.
    let job3 = m.create(&spec, "2h");
    m.assign(&job3, &spec);
    m.work(&["market", "report", &job3, "--model", &m.s.w.path("model.safetensors")]).json();
    let mut other = std::fs::read(m.s.w.path("model.safetensors")).unwrap();
    let last = other.len() - 1;
    other[last] ^= 1;
    std::fs::write(m.s.w.path("swapped.safetensors"), other).unwrap();
    std::fs::copy(m.s.w.path("model.safetensors.result.json"), m.s.w.path("swapped.safetensors.result.json")).unwrap();
    let verdict = m.evaluate(&job3, &spec, "swapped.safetensors");
    assert_eq!(verdict["verdict"], "Failed", "{verdict}");
    assert!(verdict["why"].as_str().unwrap().contains("delivery refused: the model file hashes to"), "{verdict}");

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
    let book = iotegrity_core::AddressBook::load(&m.s.w.book).unwrap();
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
