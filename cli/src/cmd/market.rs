//! `iotegrity market`: the job market (paper §5.2.1) from the command line — offer a job over an
//! anchored dataset, propose, accept, report, evaluate, end, dispute, rule, settle, claim and vote —
//! each step checked before it is sent, reverts named. Rules: docs/market.md.

use crate::Report;
use crate::opts::{ChainOpts, ClientCertOpts, Conn, TableOpts, WalletOpts, parse_amount, parse_reason};
use crate::output::ether;
use alloy::primitives::{Address, B256, U256, keccak256};
use clap::{Args, Subcommand, ValueEnum};
use eyre::{Context, Result, bail, eyre};
use iotegrity_core::chain;
use iotegrity_core::contracts::{IJobMarket, IdentityRegistry, JobMarket, Reputation, Role};
use iotegrity_core::job_spec::JobSpec;
use iotegrity_core::market::{JobStatus, SignedProposal, SignedResult, TrainingProposal};
use iotegrity_core::signatures::domain_of;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Job market commands. Every transaction is sent by an ONLINE key (the service's or the
/// worker's, as the step requires); votes by the voter's OFFLINE key.
#[derive(Debug, Subcommand)]
pub enum MarketCmd {
    /// (Service) offer a job: escrow the reward for the dataset and spec of a spec file.
    Create(CreateArgs),
    /// The jobs still open for proposals.
    List(ListArgs),
    /// One job: parties, hashes, times and its status under the time rules.
    Show(ShowArgs),
    /// (Worker) sign a proposal for a job (no transaction: hand the file to the service).
    Propose(ProposeArgs),
    /// (Service) assign the job to the worker of a signed proposal.
    Accept(AcceptArgs),
    /// (Worker) fetch the job's batches from the service's API, each request signed by the worker's online key.
    Fetch(FetchArgs),
    /// (Worker) verify every batch of the job's dataset against h_S and the chain, then train the spec's model.
    Train(TrainArgs),
    /// (Worker) report the hash of the model file and sign the result for delivery.
    Report(ReportArgs),
    /// (Service) check a delivered model and score it on the held-out rows; --end sends the verdict.
    Evaluate(EvaluateArgs),
    /// (Service) end a reported job Success or Failed.
    End(EndArgs),
    /// (Service or worker) dispute the job, for a notary to rule.
    Dispute(DisputeArgs),
    /// (Notary) rule on a disputed job.
    Resolve(ResolveArgs),
    /// (Service) cancel a job nobody was assigned to; the reward becomes claimable back.
    Cancel(JobArgs),
    /// (Anyone) record the final state the time rules reached.
    Settle(JobArgs),
    /// (Payee) take the reward: the worker on Success, the service on Failed.
    Claim(JobArgs),
    /// (Service or worker, OFFLINE key) vote on the other party of a finished job.
    Vote(VoteArgs),
}

/// A job id with the chain and the sending key.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job id.
    pub job: u64,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The sending key (an online key of the step's party).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market create`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity dataset spec --table public.diabetes --train 1..=360 --holdout 361..=441 \\\n    \
    --owner 0x<service offline> --target 0.3 --out spec.json\n  \
    iotegrity market create --spec spec.json --reward 0.1ether --deadline 2h --keystore keys/svc/online.json --password-file pw.txt"
)]
pub struct CreateArgs {
    /// The job spec (docs/market.md); its keccak256 becomes the job's paramHash, its dataset root h_S the job's root.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Reward escrowed: 0.1ether, 10gwei, or wei.
    #[arg(long)]
    pub reward: String,
    /// When the report is due: a duration from now as the chain sees it (90m, 2h, 3d) or unix seconds.
    #[arg(long)]
    pub deadline: String,
    /// Postgres URL of the service's database: keep the spec there, so `iotegrityd service` serves
    /// the job's batches to its worker (the daemon must have run once, to create its schema).
    #[arg(long, env = "IOTEGRITY_DATABASE_URL", value_name = "URL")]
    pub db: Option<String>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The service's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// First job id to look at.
    #[arg(long, default_value_t = 1)]
    pub cursor: u64,
    /// Ids to look at in one page (≤ 1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `market show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The job id.
    pub job: u64,
    /// Also check that this spec file is the job's (its keccak256 is the paramHash, its root the job's).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `market propose`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity market propose 1 --spec spec.json --out proposal.json --keystore keys/worker/online.json --password-file pw.txt"
)]
pub struct ProposeArgs {
    /// The job id.
    pub job: u64,
    /// The job's spec file, checked against the job's paramHash before anything is signed.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Where to write the signed proposal.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// How long the proposal stands (90m, 2h, 3d).
    #[arg(long, default_value = "1h")]
    pub expires: String,
    /// Off-chain terms: text (hashed) or a 0x 32-byte hash; none by default.
    #[arg(long)]
    pub terms: Option<String>,
    /// Refuse services whose reputation score is below this (-100..100).
    #[arg(long, allow_hyphen_values = true)]
    pub min_service_score: Option<f64>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The worker's online key (it signs; no transaction is sent).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market accept`.
#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The job id.
    pub job: u64,
    /// The worker's signed proposal.
    #[arg(long, value_name = "FILE")]
    pub proposal: PathBuf,
    /// Refuse workers whose reputation score is below this (-100..100).
    #[arg(long, allow_hyphen_values = true)]
    pub min_worker_score: Option<f64>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The service's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market fetch`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity market fetch 1 --spec spec.json --service svc.iot:8443 --out batches/ \\\n    \
    --keystore keys/worker/online.json --password-file pw.txt\n\
    Only the worker assigned to the job is served (anyone else gets 403); nothing fetched is trusted\n\
    until `market train` has verified it."
)]
pub struct FetchArgs {
    /// The job id.
    pub job: u64,
    /// The job's spec file (how many batches to fetch).
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// The service's API: its name on chain, `NAME[:PORT]` (the pinned TLS channel), or a URL
    /// (`http://127.0.0.1:8080`, plain, for local work).
    #[arg(long, value_name = "NAME[:PORT]|URL", value_parser = iotegrity_core::tls::Target::parse)]
    pub service: iotegrity_core::tls::Target,
    /// Mutual TLS: this client's certificate, for a server that lets in only named clients.
    #[command(flatten)]
    pub client_cert: ClientCertOpts,
    /// Directory to write the batches into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The worker's online key (it signs each request).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market train`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity market train --spec spec.json --batches batches/ --out model.safetensors\n\
    Every batch is checked before any is used: rows against their receipt, the receipt under h_S and\n\
    on chain (anchored by the spec's owner), the batches in order and complete. A batch that fails is\n\
    named and nothing is trained."
)]
pub struct TrainArgs {
    /// The job's spec file.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Directory of the batches (`batch-00000.json`, … as the service sends them).
    #[arg(long, value_name = "DIR")]
    pub batches: PathBuf,
    /// Where to write the model (safetensors).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Chain and deployment (the table's anchors are read from it).
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `market report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The job id.
    pub job: u64,
    /// The model file; keccak256 of its bytes is reported.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Where to write the signed result that goes with the model [default: MODEL.result.json].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The worker's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The job id.
    pub job: u64,
    /// The job's spec file.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// The delivered model file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The worker's signed result [default: MODEL.result.json].
    #[arg(long, value_name = "FILE")]
    pub result: Option<PathBuf>,
    /// Postgres URL of the database holding the table and its receipts (the held-out rows).
    #[arg(long, env = "IOTEGRITY_DATABASE_URL", value_name = "URL")]
    pub db: String,
    /// The table's key column.
    #[arg(long, default_value = "id")]
    pub key: String,
    /// Send the verdict: Success if the model meets the target, Failed otherwise.
    #[arg(long)]
    pub end: bool,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The service's online key (only with --end).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// A verdict or ruling.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Verdict {
    /// The worker is paid.
    Success,
    /// The service is refunded.
    Failed,
}

impl Verdict {
    fn status(self) -> JobStatus {
        match self {
            Self::Success => JobStatus::Success,
            Self::Failed => JobStatus::Failed,
        }
    }
}

/// `market end`.
#[derive(Debug, Args)]
pub struct EndArgs {
    /// The job id.
    pub job: u64,
    /// The verdict.
    #[arg(long, value_enum)]
    pub verdict: Verdict,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The service's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market dispute`.
#[derive(Debug, Args)]
pub struct DisputeArgs {
    /// The job id.
    pub job: u64,
    /// The case: text (its keccak256 is recorded; keep the text) or a 0x 32-byte evidence hash.
    #[arg(long)]
    pub evidence: String,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The service's or worker's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The job id.
    pub job: u64,
    /// The ruling.
    #[arg(long, value_enum)]
    pub ruling: Verdict,
    /// Why: text (hashed) or a 0x 32-byte hash.
    #[arg(long)]
    pub reason: String,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// An appointed notary's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `market vote`.
#[derive(Debug, Args)]
pub struct VoteArgs {
    /// The job id.
    pub job: u64,
    /// Score from -100 to 100, not 0.
    #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i8).range(-100..=100))]
    pub score: i8,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The voter's OFFLINE key (the job's service or worker identity).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

fn market(conn: &Conn) -> JobMarket::JobMarketInstance<&alloy::providers::DynProvider> {
    JobMarket::new(conn.book.job_market(), &conn.provider)
}

/// A job as the chain holds it, with its status under the time rules.
struct Job {
    id: u64,
    job: IJobMarket::Job,
    status: JobStatus,
}

async fn job(conn: &Conn, id: u64) -> Result<Job> {
    let m = market(conn);
    let job = chain::call(m.jobOf(U256::from(id))).await?;
    if job.service == Address::ZERO {
        let count = chain::call(m.jobCount()).await?;
        bail!("no job {id} on this market ({count} job(s) so far)");
    }
    let status = JobStatus::from(chain::call(m.statusOf(U256::from(id))).await?);
    Ok(Job { id, job, status })
}

impl Job {
    fn json(&self) -> serde_json::Value {
        let j = &self.job;
        let at = |t: u64| if t == 0 { serde_json::Value::Null } else { json!(t) };
        json!({
            "job": self.id, "status": self.status.name(), "recordedStatus": JobStatus::from(j.status).name(),
            "service": j.service, "worker": if j.worker == Address::ZERO { serde_json::Value::Null } else { json!(j.worker) },
            "reward": j.reward.to_string(), "deadline": j.deadline, "root": j.root, "paramHash": j.paramHash,
            "resultHash": if j.resultHash == B256::ZERO { serde_json::Value::Null } else { json!(j.resultHash) },
            "reportedAt": at(j.reportedAt), "failedAt": at(j.failedAt), "disputedAt": at(j.disputedAt),
            "disputedByWorker": j.disputedByWorker, "claimed": j.claimed,
        })
    }

    fn text(&self) -> String {
        let j = &self.job;
        let mut lines = vec![
            format!("job {}: {}{}", self.id, self.status.name(), if j.claimed { " (reward claimed)" } else { "" }),
            format!("  service  {}", j.service),
            format!("  reward   {} ETH, report due by {}", ether(U256::from(j.reward)), j.deadline),
            format!("  root     {} (h_S)", j.root),
            format!("  spec     {} (paramHash)", j.paramHash),
        ];
        if j.worker != Address::ZERO {
            lines.push(format!("  worker   {}", j.worker));
        }
        if j.resultHash != B256::ZERO {
            lines.push(format!("  result   {} (reported at {})", j.resultHash, j.reportedAt));
        }
        if j.disputedAt != 0 {
            let by = if j.disputedByWorker { "the worker" } else { "the service" };
            lines.push(format!("  disputed by {by} at {}", j.disputedAt));
        }
        lines.join("\n")
    }
}

/// Reads a spec file and checks it is the job's.
fn read_spec(path: &Path, job: &Job) -> Result<(JobSpec, Vec<u8>)> {
    let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    let spec = JobSpec::parse_for(&bytes, job.job.paramHash).wrap_err_with(|| format!("{}", path.display()))?;
    if spec.dataset.root != job.job.root {
        bail!(
            "{}: its dataset root {} is not job {}'s root {}",
            path.display(),
            spec.dataset.root,
            job.id,
            job.job.root
        );
    }
    Ok((spec, bytes))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).wrap_err_with(|| format!("{} is not a {what}", path.display()))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    std::fs::write(path, text).wrap_err_with(|| format!("cannot write {}", path.display()))
}

/// A duration from `now` (`90s`, `90m`, `2h`, `3d`) or, as plain digits, unix seconds.
pub fn parse_when(s: &str, now: u64) -> Result<u64> {
    let s = s.trim();
    if let Ok(abs) = s.parse::<u64>() {
        return Ok(abs);
    }
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("bad time {s:?}: give a duration (90m, 2h, 3d) or unix seconds"),
    };
    let n: u64 = number.parse().map_err(|_| eyre!("bad time {s:?}: give a duration (90m, 2h, 3d) or unix seconds"))?;
    Ok(now.saturating_add(n.saturating_mul(scale)))
}

/// The offline identity and role of an online key.
async fn identity_of(conn: &Conn, key: Address) -> Result<(Address, Role)> {
    let r = IdentityRegistry::new(conn.book.identity_registry(), &conn.provider);
    let ret = chain::call(r.activeIdentityOf(key)).await?;
    Ok((ret.offline, Role::try_from(ret.role).unwrap_or(Role::None)))
}

/// Refuses a party whose score is below `min` (votes: none yet counts as 0).
async fn check_score(conn: &Conn, who: Address, what: &str, min: Option<f64>) -> Result<serde_json::Value> {
    let (score, votes) = iotegrity_core::reputation::score_of(&conn.provider, &conn.book, who).await?;
    if let Some(min) = min
        && score < min
    {
        bail!("the {what} {who} scores {score:.2} from {votes} vote(s), below the minimum {min}");
    }
    Ok(json!({ "score": score, "votes": votes }))
}

impl MarketCmd {
    /// Runs the market subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Create(a) => create(a).await,
            Self::List(a) => list(a).await,
            Self::Show(a) => {
                let conn = a.chain.connect().await?;
                let j = job(&conn, a.job).await?;
                let mut report = Report::new(j.text(), j.json());
                if let Some(path) = &a.spec {
                    read_spec(path, &j)?;
                    report.text.push_str(&format!("\n  spec file {} is this job's", path.display()));
                }
                Ok(report)
            }
            Self::Propose(a) => propose(a).await,
            Self::Accept(a) => accept(a).await,
            Self::Fetch(a) => fetch(a).await,
            Self::Train(a) => train(a).await,
            Self::Report(a) => report(a).await,
            Self::Evaluate(a) => evaluate(a).await,
            Self::End(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let j = job(&conn, a.job).await?;
                let receipt = chain::send(market(&conn).endJob(U256::from(j.id), a.verdict.status() as u8)).await?;
                Ok(Report::tx(
                    format!("job {}: verdict {}", j.id, a.verdict.status().name()),
                    &receipt,
                    json!({ "job": j.id, "verdict": a.verdict.status().name() }),
                ))
            }
            Self::Dispute(a) => {
                let evidence = parse_reason(&a.evidence)?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let j = job(&conn, a.job).await?;
                let receipt = chain::send(market(&conn).dispute(U256::from(j.id), evidence)).await?;
                Ok(Report::tx(
                    format!("job {}: disputed (evidence {evidence}); a notary rules within the ruling window", j.id),
                    &receipt,
                    json!({ "job": j.id, "evidence": evidence }),
                ))
            }
            Self::Resolve(a) => {
                let reason = parse_reason(&a.reason)?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let j = job(&conn, a.job).await?;
                let ruling = a.ruling.status();
                let receipt = chain::send(market(&conn).resolveDispute(U256::from(j.id), ruling as u8, reason)).await?;
                Ok(Report::tx(
                    format!("job {}: ruled {} (reason {reason})", j.id, ruling.name()),
                    &receipt,
                    json!({ "job": j.id, "ruling": ruling.name(), "reason": reason }),
                ))
            }
            Self::Cancel(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let j = job(&conn, a.job).await?;
                let receipt = chain::send(market(&conn).cancelJob(U256::from(j.id))).await?;
                Ok(Report::tx(
                    format!("job {}: cancelled; the service can claim the reward back", j.id),
                    &receipt,
                    json!({ "job": j.id }),
                ))
            }
            Self::Settle(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let j = job(&conn, a.job).await?;
                let receipt = chain::send(market(&conn).settle(U256::from(j.id))).await?;
                let after = job(&conn, a.job).await?;
                Ok(Report::tx(
                    format!("job {}: recorded {}", j.id, after.status.name()),
                    &receipt,
                    json!({ "job": j.id, "status": after.status.name() }),
                ))
            }
            Self::Claim(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let j = job(&conn, a.job).await?;
                let receipt = chain::send(market(&conn).claimReward(U256::from(j.id))).await?;
                Ok(Report::tx(
                    format!("job {} ({}): claimed {} ETH", j.id, j.status.name(), ether(U256::from(j.job.reward))),
                    &receipt,
                    json!({ "job": j.id, "status": j.status.name(), "amount": j.job.reward.to_string() }),
                ))
            }
            Self::Vote(a) => vote(a).await,
        }
    }
}

async fn create(a: CreateArgs) -> Result<Report> {
    let bytes = std::fs::read(&a.spec).wrap_err_with(|| format!("cannot read {}", a.spec.display()))?;
    let spec = JobSpec::parse(&bytes).wrap_err_with(|| format!("{}", a.spec.display()))?;
    let reward = parse_amount(&a.reward)?;
    let signer = a.wallet.signer()?;
    let sender = signer.address();
    let conn = a.chain.connect_signing(signer).await?;
    let (offline, role) = identity_of(&conn, sender).await?;
    if role != Role::Service {
        bail!("{sender} is not the online key of an active service identity (it is {})", role.name());
    }
    if offline != spec.dataset.owner {
        bail!(
            "the spec's dataset is anchored by {}, this key belongs to {offline}: a service offers only its own data",
            spec.dataset.owner
        );
    }
    let now = chain::latest_timestamp(&conn.provider).await?;
    let deadline = parse_when(&a.deadline, now)?;
    let param_hash = keccak256(&bytes);
    if let Some(db) = &a.db {
        // Kept before the offer, so no job exists whose batches the service cannot serve.
        let pool = iotegrity_core::store::connect(db, 1).await.wrap_err("cannot connect to Postgres")?;
        iotegrity_core::store::dataset::put_spec(&pool, &bytes)
            .await
            .wrap_err("cannot keep the spec (has iotegrityd service run once on this database?)")?;
    }
    let m = market(&conn);
    let receipt = chain::send(m.createJobRequest(spec.dataset.root, param_hash, deadline).value(reward)).await?;
    let id = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<JobMarket::JobCreated>().ok())
        .map(|l| l.inner.data.jobId.to::<u64>())
        .ok_or_else(|| eyre!("transaction {} created no job", receipt.transaction_hash))?;
    Ok(Report::tx(
        format!(
            "job {id}: {} ETH escrowed for {} keys {}..={} ({} sub-tables), report due by {deadline}",
            ether(reward),
            spec.dataset.table,
            spec.dataset.first_key,
            spec.dataset.last_key,
            spec.dataset.sub_tables
        ),
        &receipt,
        json!({ "job": id, "root": spec.dataset.root, "paramHash": param_hash, "reward": reward.to_string(), "deadline": deadline }),
    ))
}

async fn list(a: ListArgs) -> Result<Report> {
    let conn = a.chain.connect().await?;
    let m = market(&conn);
    let page = chain::call(m.getAvailableJobList(U256::from(a.cursor), U256::from(a.limit))).await?;
    let mut lines = Vec::new();
    let mut jobs = Vec::new();
    for (id, j) in page.ids.iter().zip(&page.jobs) {
        lines.push(format!(
            "job {id}: {} ETH, due by {}, service {}, root {}",
            ether(U256::from(j.reward)),
            j.deadline,
            j.service,
            j.root
        ));
        jobs.push(json!({ "job": id.to::<u64>(), "service": j.service, "reward": j.reward.to_string(),
                          "deadline": j.deadline, "root": j.root, "paramHash": j.paramHash }));
    }
    let next = page.next.to::<u64>();
    if lines.is_empty() {
        lines.push(format!("no open jobs among ids {}..{}", a.cursor, a.cursor + a.limit));
    }
    if next != 0 {
        lines.push(format!("more: --cursor {next}"));
    }
    Ok(Report::new(lines.join("\n"), json!({ "jobs": jobs, "next": if next == 0 { None } else { Some(next) } })))
}

async fn propose(a: ProposeArgs) -> Result<Report> {
    let key = a.wallet.signer()?;
    let conn = a.chain.connect().await?;
    let j = job(&conn, a.job).await?;
    if j.status != JobStatus::Unprocessed {
        bail!("job {} is {}: it takes proposals only while Unprocessed", j.id, j.status.name());
    }
    read_spec(&a.spec, &j)?;
    let (_, role) = identity_of(&conn, key.address()).await?;
    if role != Role::Worker {
        bail!("{} is not the online key of an active worker identity (it is {})", key.address(), role.name());
    }
    let service = check_score(&conn, j.job.service, "service", a.min_service_score).await?;
    let now = chain::latest_timestamp(&conn.provider).await?;
    let expires_at = parse_when(&a.expires, now)?;
    let terms = a.terms.as_deref().map(parse_reason).transpose()?.unwrap_or(B256::ZERO);
    let proposal = TrainingProposal {
        market: conn.book.job_market(),
        jobId: U256::from(j.id),
        root: j.job.root,
        paramHash: j.job.paramHash,
        worker: key.address(),
        terms,
        expiresAt: expires_at,
    };
    let signed = SignedProposal::sign(proposal, &key, &domain_of(&conn.book));
    write_json(&a.out, &signed)?;
    Ok(Report::new(
        format!(
            "proposal for job {} by {} written to {} (stands until {expires_at})",
            j.id,
            key.address(),
            a.out.display()
        ),
        json!({ "job": j.id, "worker": key.address(), "expiresAt": expires_at, "terms": terms,
                "file": a.out, "serviceReputation": service }),
    ))
}

async fn accept(a: AcceptArgs) -> Result<Report> {
    let signed: SignedProposal = read_json(&a.proposal, "signed proposal")?;
    let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
    let j = job(&conn, a.job).await?;
    let p = &signed.proposal;
    if p.market != conn.book.job_market() || p.jobId != U256::from(j.id) {
        bail!(
            "{} is a proposal for job {} on market {}, not job {} here",
            a.proposal.display(),
            p.jobId,
            p.market,
            j.id
        );
    }
    if signed.signer(&domain_of(&conn.book)) != Some(p.worker) {
        bail!("{}: the signature is not {}'s (forged or altered proposal)", a.proposal.display(), p.worker);
    }
    let (worker, role) = identity_of(&conn, p.worker).await?;
    if role != Role::Worker {
        bail!("{} is not the online key of an active worker identity (it is {})", p.worker, role.name());
    }
    let reputation = check_score(&conn, worker, "worker", a.min_worker_score).await?;
    let receipt = chain::send(market(&conn).acceptTrainingOffer(
        U256::from(j.id),
        p.worker,
        p.terms,
        p.expiresAt,
        signed.signature.clone(),
    ))
    .await?;
    Ok(Report::tx(
        format!("job {}: assigned to worker {worker} (key {})", j.id, p.worker),
        &receipt,
        json!({ "job": j.id, "worker": worker, "workerKey": p.worker, "workerReputation": reputation }),
    ))
}

async fn fetch(a: FetchArgs) -> Result<Report> {
    use iotegrity_core::market::SignedBatchRequest;
    let key = a.wallet.signer()?;
    let conn = a.chain.connect().await?;
    let j = job(&conn, a.job).await?;
    let (spec, _) = read_spec(&a.spec, &j)?;
    std::fs::create_dir_all(&a.out).wrap_err_with(|| format!("cannot create {}", a.out.display()))?;
    let client_cert = a.client_cert.load()?;
    let timeout = std::time::Duration::from_secs(30);
    let peer =
        iotegrity_core::tls::Peer::new(a.service, conn.provider.clone(), conn.book.clone(), timeout, client_cert);
    let path = iotegrity_core::wire::path::JOB_BATCHES;
    let url = peer.url_of(path);
    let domain = domain_of(&conn.book);
    let mut rows = 0;
    for index in 0..spec.dataset.sub_tables {
        let now = iotegrity_core::signatures::unix_now();
        let req = SignedBatchRequest::sign(conn.book.job_market(), U256::from(j.id), index, now, &key, &domain);
        let (status, body) = peer.request(path, Some(serde_json::to_string(&req)?)).await?;
        if !(200..300).contains(&status) {
            let why = serde_json::from_slice::<iotegrity_core::wire::ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            bail!("{url} answered {status} for batch {index}: {why}");
        }
        let batch: iotegrity_core::dataset::DatasetBatch =
            serde_json::from_slice(&body).wrap_err_with(|| format!("{url}: batch {index} is not a dataset batch"))?;
        rows += batch.rows.len();
        let path = a.out.join(super::dataset::batch_file_name(index));
        std::fs::write(&path, &body).wrap_err_with(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Report::new(
        format!(
            "job {}: {} batches ({rows} rows) fetched into {} — verify and train with `market train`",
            j.id,
            spec.dataset.sub_tables,
            a.out.display()
        ),
        json!({ "job": j.id, "batches": spec.dataset.sub_tables, "rows": rows, "dir": a.out }),
    ))
}

async fn train(a: TrainArgs) -> Result<Report> {
    use iotegrity_core::anchors::TableAnchors;
    use iotegrity_core::dataset::DatasetBatch;
    use iotegrity_core::learning::{TrainError, train_verified};
    let spec = super::dataset::read_spec(&a.spec)?;
    let conn = a.chain.connect().await?;
    let d = &spec.dataset;
    let anchors =
        TableAnchors::read(&conn.provider, &conn.book, iotegrity_core::receipt::table_id(&d.table), None).await?;
    let history = anchors.history(Some(d.owner));
    let path = |index: u32| a.batches.join(super::dataset::batch_file_name(index));
    let batches: Vec<DatasetBatch> =
        (0..d.sub_tables).map(|index| read_json(&path(index), "dataset batch")).collect::<Result<_>>()?;
    let trained = train_verified(&spec, &history, &batches).map_err(|e| match &e {
        TrainError::Batch { position, .. } => eyre!("{} refused: nothing was trained: {e}", path(*position).display()),
        _ => eyre!("nothing was trained: {e}"),
    })?;
    std::fs::write(&a.out, &trained.file).wrap_err_with(|| format!("cannot write {}", a.out.display()))?;
    let h = keccak256(&trained.file);
    Ok(Report::new(
        format!(
            "{} batches verified; trained linear-regression on {} rows in {} µs (R² {:.4} on its own rows); model {} ({h})",
            batches.len(),
            trained.rows,
            trained.took.as_micros(),
            trained.fit_r2,
            a.out.display(),
        ),
        json!({ "batches": batches.len(), "rows": trained.rows, "trainR2": trained.fit_r2,
                "trainMs": trained.took.as_secs_f64() * 1e3, "model": a.out, "resultHash": h }),
    ))
}

fn result_path(model: &Path, given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let mut name = model.as_os_str().to_owned();
        name.push(".result.json");
        PathBuf::from(name)
    })
}

async fn report(a: ReportArgs) -> Result<Report> {
    let file = std::fs::read(&a.model).wrap_err_with(|| format!("cannot read {}", a.model.display()))?;
    let key = a.wallet.signer()?;
    let conn = a.chain.connect_signing(key.clone()).await?;
    let j = job(&conn, a.job).await?;
    let signed = SignedResult::sign(
        conn.book.job_market(),
        U256::from(j.id),
        j.job.paramHash,
        &file,
        &key,
        &domain_of(&conn.book),
    );
    let out = result_path(&a.model, a.out);
    let receipt = chain::send(market(&conn).reportTrainingResult(U256::from(j.id), signed.result.resultHash)).await?;
    write_json(&out, &signed)?;
    Ok(Report::tx(
        format!(
            "job {}: reported h_W {}; deliver {} with {}",
            j.id,
            signed.result.resultHash,
            a.model.display(),
            out.display()
        ),
        &receipt,
        json!({ "job": j.id, "resultHash": signed.result.resultHash, "signedResult": out }),
    ))
}

async fn evaluate(a: EvaluateArgs) -> Result<Report> {
    let conn = if a.end { a.chain.connect_signing(a.wallet.signer()?).await? } else { a.chain.connect().await? };
    let j = job(&conn, a.job).await?;
    let (spec, _) = read_spec(&a.spec, &j)?;
    if j.job.resultHash == B256::ZERO {
        bail!("job {} has no report yet: nothing to evaluate", j.id);
    }
    let file = std::fs::read(&a.model).wrap_err_with(|| format!("cannot read {}", a.model.display()))?;
    let signed: SignedResult = read_json(&result_path(&a.model, a.result), "signed result")?;
    let opts = TableOpts { db: a.db.clone(), table: spec.holdout.table.clone(), key: a.key.clone() };
    let (table, pool) = opts.open().await?;
    let judged = iotegrity_core::evaluate::judge(
        &pool,
        &table,
        &conn.provider,
        &conn.book,
        U256::from(j.id),
        &j.job,
        &spec,
        &signed,
        &file,
    )
    .await?;
    let verdict = judged.verdict;
    let mut text = format!("job {}: {} → {}", j.id, judged.why, verdict.name());
    let mut out = json!({ "job": j.id, "passes": verdict == JobStatus::Success, "why": judged.why,
                          "score": judged.score, "verdict": verdict.name() });
    if a.end {
        let receipt = chain::send(market(&conn).endJob(U256::from(j.id), verdict as u8)).await?;
        let sent = Report::tx(text, &receipt, out);
        text = sent.text;
        out = sent.json;
    }
    Ok(Report::new(text, out))
}

async fn vote(a: VoteArgs) -> Result<Report> {
    if a.score == 0 {
        bail!("a score of 0 says nothing: give -100..-1 or 1..100");
    }
    let key = a.wallet.signer()?;
    let me = key.address();
    let conn = a.chain.connect_signing(key).await?;
    let j = job(&conn, a.job).await?;
    if !matches!(j.status, JobStatus::Success | JobStatus::Failed) {
        bail!("job {} is {}: vote once it is finished", j.id, j.status.name());
    }
    let other = if me == j.job.service {
        j.job.worker
    } else if me == j.job.worker {
        j.job.service
    } else {
        bail!(
            "{me} is neither job {}'s service ({}) nor its worker ({}): pass the OFFLINE key of one",
            j.id,
            j.job.service,
            j.job.worker
        );
    };
    let r = Reputation::new(conn.book.reputation(), &conn.provider);
    let deposit: U256 = chain::call(r.VOTE_DEPOSIT()).await?;
    let receipt = chain::send(r.voteReputation(other, a.score).value(deposit)).await?;
    Ok(Report::tx(
        format!("voted {} on {other} for job {} (deposit {} ETH)", a.score, j.id, ether(deposit)),
        &receipt,
        json!({ "job": j.id, "subject": other, "score": a.score, "deposit": deposit.to_string() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_durations_from_now_or_unix_seconds() {
        assert_eq!(parse_when("90m", 1000).unwrap(), 1000 + 5400);
        assert_eq!(parse_when("2h", 0).unwrap(), 7200);
        assert_eq!(parse_when("3d", 10).unwrap(), 10 + 3 * 86_400);
        assert_eq!(parse_when("45s", 10).unwrap(), 55);
        assert_eq!(parse_when("1900000000", 10).unwrap(), 1_900_000_000);
        for bad in ["", "2w", "h", "-1h", "1.5h"] {
            assert!(parse_when(bad, 0).is_err(), "{bad:?}");
        }
    }
}
