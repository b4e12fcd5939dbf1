//! The worker role (paper §5.2.1, steps 4–13 and 18; docs/market.md "The worker daemon"): watch
//! the market, take the jobs its config allows (services listed in `[[services]]`, reward, the
//! service's reputation, a spec whose hash is the job's), propose, and once assigned fetch every
//! batch, verify each against h_S and the chain, train, report h_W, deliver the model, claim.
//!
//! Crash safety: what the worker decided is in one JSON file per job under `state_dir` (written
//! atomically), and everything else is read from the chain on every tick — the report only if
//! the chain has none (so a restart never reports twice), the model from its file if one was
//! written (training is deterministic: the same bytes, the same h_W). A `kill -9` at any point
//! resumes where the chain and the files say.

pub mod config;

use crate::metrics::{Counter, MetricSet};
use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use config::WorkerConfig;
use eyre::{Result, WrapErr, eyre};
use iotegrity_core::anchors::TableAnchors;
use iotegrity_core::contracts::{IJobMarket, IdentityRegistry, JobMarket, Role};
use iotegrity_core::dataset::DatasetBatch;
use iotegrity_core::job_spec::JobSpec;
use iotegrity_core::learning::{TrainError, train_verified};
use iotegrity_core::market::{JobStatus, SignedBatchRequest, SignedProposal, SignedResult, TrainingProposal};
use iotegrity_core::tls::{Peer, Target};
use iotegrity_core::{AddressBook, chain, wire};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The worker role's metrics.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// Proposals signed and sent.
    pub proposals: Counter,
    /// Batches that verified.
    pub batches_verified: Counter,
    /// Batches refused (nothing trained on them).
    pub batches_refused: Counter,
    /// Results reported on chain.
    pub reports: Counter,
    /// Rewards claimed.
    pub claims: Counter,
    /// Failed ticks (retried).
    pub errors: Counter,
}

impl MetricSet for WorkerMetrics {
    fn register(&self, r: &mut Registry) {
        r.register("iotegrity_worker_proposals", "Proposals signed and sent", self.proposals.clone());
        r.register("iotegrity_worker_batches_verified", "Batches verified", self.batches_verified.clone());
        r.register("iotegrity_worker_batches_refused", "Batches refused", self.batches_refused.clone());
        r.register("iotegrity_worker_reports", "Results reported on chain", self.reports.clone());
        r.register("iotegrity_worker_claims", "Rewards claimed", self.claims.clone());
        r.register("iotegrity_worker_errors", "Failed ticks (retried)", self.errors.clone());
    }
}

/// Where a job stands, as far as this worker decided it (the chain says the rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "stage")]
enum Stage {
    /// Proposed; waiting for the service to accept.
    Proposed,
    /// A batch did not verify: nothing was trained, nothing will be (the job expires).
    Refused { why: String },
    /// The model was delivered to the service.
    Delivered,
    /// Nothing more to do.
    Done { why: String },
}

/// One job's state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobState {
    job: u64,
    /// The service's API: a URL or `NAME:PORT` (`Target`'s text; `serviceUrl` in older files).
    #[serde(alias = "serviceUrl")]
    service: String,
    #[serde(flatten)]
    stage: Stage,
}

/// The running worker.
pub struct Worker {
    cfg: WorkerConfig,
    key: PrivateKeySigner,
    /// The worker identity's offline address.
    me: Address,
    provider: DynProvider,
    book: AddressBook,
    domain: Eip712Domain,
    /// The worker's certificate, for services that ask for one (mutual TLS).
    client_cert: Option<Arc<iotegrity_core::tls::ReloadingCert>>,
    /// Jobs skipped and logged once.
    skipped: HashSet<u64>,
    /// Jobs whose proposal this process has sent.
    sent: HashSet<u64>,
    /// Its metrics.
    pub metrics: Arc<WorkerMetrics>,
}

/// A crash-test point: when the environment variable `IOTEGRITYD_CRASH_AT` names `point`, the
/// process aborts here, as a `kill -9` would stop it (no unwinding, no shutdown, no flush). The
/// end-to-end tests use it to stop the worker between a step and the next, where a signal cannot
/// be timed (training takes microseconds). Points: `proposed`, `trained`, `reported`.
fn crash_point(point: &str) {
    if std::env::var("IOTEGRITYD_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("IOTEGRITYD_CRASH_AT={point}: aborting");
        std::process::abort();
    }
}

impl Worker {
    /// Opens the key and the state directory and checks that the key is an active worker's.
    pub async fn connect(cfg: WorkerConfig, metrics: Arc<WorkerMetrics>) -> Result<Self> {
        let key =
            crate::files::online_key(cfg.worker.keystore.as_deref(), cfg.worker.password_file.as_deref(), "worker")?;
        let book = AddressBook::load(&cfg.chain.deployments)?;
        let provider = chain::writer(&cfg.chain.rpc_url, key.clone())?;
        std::fs::create_dir_all(cfg.worker.state_dir.join("jobs"))
            .wrap_err_with(|| format!("cannot create {}", cfg.worker.state_dir.display()))?;
        let registry = IdentityRegistry::new(book.identity_registry(), &provider);
        let who = chain::call(registry.activeIdentityOf(key.address())).await?;
        if Role::try_from(who.role).ok() != Some(Role::Worker) {
            return Err(eyre!("{} is not the online key of an active worker identity", key.address()));
        }
        let client_cert = iotegrity_core::tls::ReloadingCert::open_pair(
            cfg.worker.tls_cert.as_deref(),
            cfg.worker.tls_key.as_deref(),
        )
        .wrap_err("worker client certificate")?;
        Ok(Self {
            domain: iotegrity_core::signatures::domain_of(&book),
            me: who.offline,
            cfg,
            key,
            provider,
            book,
            client_cert,
            skipped: HashSet::new(),
            sent: HashSet::new(),
            metrics,
        })
    }

    /// A service's API as a job's state records it (`Target`'s text: a URL or `NAME:PORT`).
    fn service(&self, target: &str) -> Result<Peer> {
        let target = Target::parse(target).map_err(|e| eyre!("the service's address in the job's state: {e}"))?;
        let timeout = std::time::Duration::from_secs(30);
        Ok(Peer::new(target, self.provider.clone(), self.book.clone(), timeout, self.client_cert.clone()))
    }

    fn path(&self, job: u64, ext: &str) -> PathBuf {
        self.cfg.worker.state_dir.join("jobs").join(format!("{job}.{ext}"))
    }

    fn load_state(&self, job: u64) -> Result<Option<JobState>> {
        match std::fs::read(self.path(job, "json")) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).wrap_err_with(|| format!("job {job}'s state file"))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn save_state(&self, state: &JobState) -> Result<()> {
        crate::files::write_atomic(&self.path(state.job, "json"), &serde_json::to_vec_pretty(state)?)
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let poll = Duration::from_millis(self.cfg.worker.poll_interval_ms);
        info!(worker = %self.me, key = %self.key.address(), "worker: watching the market");
        let errors = self.metrics.errors.clone();
        crate::poll::run(&mut self, "worker", poll, &errors, shutdown).await
    }
}

impl crate::poll::Ticks for Worker {
    async fn tick(&mut self) -> Result<()> {
        let provider = self.provider.clone();
        let market = JobMarket::new(self.book.job_market(), &provider);
        let mut cursor = U256::from(1);
        loop {
            let page = chain::call(market.getAvailableJobList(cursor, U256::from(100))).await?;
            for (id, job) in page.ids.iter().zip(&page.jobs) {
                let id = id.to::<u64>();
                if self.load_state(id)?.is_none() && !self.skipped.contains(&id) {
                    self.consider(id, job).await?;
                }
            }
            if page.next.is_zero() {
                break;
            }
            cursor = page.next;
        }
        let mut open = Vec::new();
        for entry in std::fs::read_dir(self.cfg.worker.state_dir.join("jobs"))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json").and_then(|s| s.parse::<u64>().ok()) {
                open.push(id);
            }
        }
        open.sort_unstable();
        for id in open {
            let Some(state) = self.load_state(id)? else { continue };
            if !matches!(state.stage, Stage::Done { .. }) {
                self.advance(state).await?;
            }
        }
        Ok(())
    }
}

impl Worker {
    fn skip(&mut self, id: u64, why: impl std::fmt::Display) {
        info!(job = id, "skipping: {why}");
        self.skipped.insert(id);
    }

    /// Decides on an open job; proposes if the config allows it.
    async fn consider(&mut self, id: u64, job: &IJobMarket::Job) -> Result<()> {
        let Some(service) = self.cfg.services.iter().find(|s| s.identity == job.service).cloned() else {
            self.skip(id, format!("service {} is not in [[services]]", job.service));
            return Ok(());
        };
        if job.reward.to::<u128>() < u128::from(self.cfg.worker.min_reward_wei) {
            self.skip(id, format!("reward {} wei is below min_reward_wei", job.reward));
            return Ok(());
        }
        let target = service.target()?.to_string();
        let path = format!("/v1/jobs/specs/{}", job.paramHash);
        let peer = self.service(&target)?;
        let bytes = match peer.request(&path, None).await? {
            (200..=299, bytes) => bytes,
            (status, _) => {
                self.skip(id, format!("{} answered {status}", peer.url_of(&path)));
                return Ok(());
            }
        };
        // Only specs this build can train (task, model, metric) parse.
        match JobSpec::parse_for(&bytes, job.paramHash) {
            Ok(spec) if spec.dataset.root != job.root => {
                self.skip(id, "the spec's dataset root is not the job's");
                return Ok(());
            }
            Ok(spec) if !self.cfg.worker.models.contains(&spec.model) => {
                self.skip(id, format!("its model {:?} is not in worker.models", spec.model));
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => {
                self.skip(id, format!("its spec is refused: {e}"));
                return Ok(());
            }
        }
        if let Some(min) = self.cfg.worker.min_service_score {
            let (score, votes) = iotegrity_core::reputation::score_of(&self.provider, &self.book, job.service).await?;
            if score < min {
                self.skip(id, format!("service {} scores {score:.2} from {votes} vote(s), below {min}", job.service));
                return Ok(());
            }
        }
        let now = chain::latest_timestamp(&self.provider).await?;
        let proposal = TrainingProposal {
            market: self.book.job_market(),
            jobId: U256::from(id),
            root: job.root,
            paramHash: job.paramHash,
            worker: self.key.address(),
            terms: B256::ZERO,
            expiresAt: now + self.cfg.worker.proposal_ttl_secs,
        };
        let signed = SignedProposal::sign(proposal, &self.key, &self.domain);
        // The spec and the proposal first, then the state: a crash in between proposes again.
        crate::files::write_atomic(&self.path(id, "spec.json"), &bytes)?;
        crate::files::write_atomic(&self.path(id, "proposal.json"), &serde_json::to_vec_pretty(&signed)?)?;
        self.save_state(&JobState { job: id, service: target.clone(), stage: Stage::Proposed })?;
        self.metrics.proposals.inc();
        crash_point("proposed");
        self.send_proposal(id, &target).await
    }

    /// Sends the saved proposal to the service (once per process: after a restart, again).
    async fn send_proposal(&mut self, id: u64, service: &str) -> Result<()> {
        let proposal = std::fs::read_to_string(self.path(id, "proposal.json")).wrap_err("the proposal file")?;
        self.sent.insert(id);
        match self.service(service)?.send(wire::path::JOB_PROPOSALS, proposal).await {
            Ok(a) if a.status == 200 => info!(job = id, "proposal accepted on chain"),
            Ok(a) => info!(job = id, status = a.status, answer = %a.body, "proposal sent; not accepted (yet)"),
            Err(e) => {
                warn!(job = id, error = %e, "proposal not delivered; the service can accept the saved file by hand")
            }
        }
        Ok(())
    }

    /// Moves an open job on as far as the chain allows.
    async fn advance(&mut self, mut state: JobState) -> Result<()> {
        let id = state.job;
        let market = JobMarket::new(self.book.job_market(), &self.provider);
        let job = chain::call(market.jobOf(U256::from(id))).await?;
        let status = JobStatus::from(chain::call(market.statusOf(U256::from(id))).await?);
        let mine = job.worker == self.me;
        let done = match (status, mine) {
            (JobStatus::Unprocessed, _) => {
                if !self.sent.contains(&id) {
                    self.send_proposal(id, &state.service).await?;
                }
                None
            }
            (_, false) => Some("assigned to another worker, or never assigned".to_string()),
            (JobStatus::InProgress, true) => {
                if matches!(state.stage, Stage::Refused { .. }) {
                    None
                } else if job.resultHash == B256::ZERO {
                    self.train_and_report(&mut state, &job).await?;
                    None
                } else if state.stage != Stage::Delivered {
                    self.deliver(&mut state, &job).await?;
                    None
                } else {
                    None
                }
            }
            (JobStatus::Success, true) if !job.claimed => {
                chain::send(market.claimReward(U256::from(id))).await?;
                self.metrics.claims.inc();
                info!(job = id, reward = %job.reward, "reward claimed");
                Some("Success: reward claimed".into())
            }
            (JobStatus::Success, true) => Some("Success: reward claimed".into()),
            (_, true) => Some("Failed: the reward went back to the service".into()),
        };
        if let Some(why) = done {
            info!(job = id, "{why}");
            state.stage = Stage::Done { why };
            self.save_state(&state)?;
        }
        Ok(())
    }

    /// Fetches, verifies and trains (or reads the model already trained), then reports h_W.
    async fn train_and_report(&mut self, state: &mut JobState, job: &IJobMarket::Job) -> Result<()> {
        let id = state.job;
        let model_path = self.path(id, "safetensors");
        let file = match std::fs::read(&model_path) {
            Ok(file) => file,
            Err(_) => {
                let spec = JobSpec::parse_for(&std::fs::read(self.path(id, "spec.json"))?, job.paramHash)?;
                let batches = self.fetch(state, &spec).await?;
                let d = &spec.dataset;
                let anchors =
                    TableAnchors::read(&self.provider, &self.book, iotegrity_core::receipt::table_id(&d.table), None)
                        .await?;
                match train_verified(&spec, &anchors.history(Some(d.owner)), &batches) {
                    Ok(trained) => {
                        self.metrics.batches_verified.inc_by(batches.len() as u64);
                        info!(
                            job = id,
                            rows = trained.rows,
                            fit_r2 = trained.fit_r2,
                            took_us = trained.took.as_micros() as u64,
                            "batches verified, model trained"
                        );
                        crate::files::write_atomic(&model_path, &trained.file)?;
                        crash_point("trained");
                        trained.file
                    }
                    Err(e @ TrainError::Batch { position, .. }) => {
                        self.metrics.batches_refused.inc();
                        warn!(job = id, batch = position, error = %e, "batch refused: nothing is trained");
                        state.stage = Stage::Refused { why: e.to_string() };
                        return self.save_state(state);
                    }
                    Err(e) => return Err(eyre!("job {id}: nothing was trained: {e}")),
                }
            }
        };
        let signed =
            SignedResult::sign(self.book.job_market(), U256::from(id), job.paramHash, &file, &self.key, &self.domain);
        crate::files::write_atomic(&self.path(id, "result.json"), &serde_json::to_vec_pretty(&signed)?)?;
        let market = JobMarket::new(self.book.job_market(), &self.provider);
        chain::send(market.reportTrainingResult(U256::from(id), keccak256(&file))).await?;
        self.metrics.reports.inc();
        info!(job = id, result = %keccak256(&file), "result reported");
        crash_point("reported");
        self.deliver(state, job).await
    }

    /// Every batch of the job, each request signed.
    async fn fetch(&self, state: &JobState, spec: &JobSpec) -> Result<Vec<DatasetBatch>> {
        let peer = self.service(&state.service)?;
        let mut batches = Vec::with_capacity(spec.dataset.sub_tables as usize);
        for index in 0..spec.dataset.sub_tables {
            let now = iotegrity_core::signatures::unix_now();
            let req = SignedBatchRequest::sign(
                self.book.job_market(),
                U256::from(state.job),
                index,
                now,
                &self.key,
                &self.domain,
            );
            batches.push(peer.post::<DatasetBatch>(wire::path::JOB_BATCHES, &req).await?);
        }
        debug!(job = state.job, batches = batches.len(), "batches fetched");
        Ok(batches)
    }

    /// Sends the model and its signed result to the service (once the chain holds the report).
    async fn deliver(&self, state: &mut JobState, job: &IJobMarket::Job) -> Result<()> {
        let id = state.job;
        let file = std::fs::read(self.path(id, "safetensors")).wrap_err("the model file")?;
        let signed =
            SignedResult::sign(self.book.job_market(), U256::from(id), job.paramHash, &file, &self.key, &self.domain);
        let body = serde_json::json!({ "result": signed, "model": alloy::primitives::Bytes::from(file) });
        let answer = self.service(&state.service)?.send(wire::path::JOB_RESULTS, body.to_string()).await?;
        match answer.status {
            200 => info!(job = id, answer = %answer.body, "model delivered and judged"),
            500.. => return Err(eyre!("{} answered {}: {}", answer.url, answer.status, answer.body)),
            s => info!(job = id, status = s, answer = %answer.body, "model delivered; the service judges by hand"),
        }
        state.stage = Stage::Delivered;
        self.save_state(state)
    }
}
