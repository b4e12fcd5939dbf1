//! `iotegrity fl`: federated learning (paper §5.2.2) from the command line — offer a training over
//! a model pinned to IPFS, register, train locally, submit, score, derive a round's global model
//! from the chain and IPFS alone, close with a softmax split, claim. Rules: docs/learning.md.

use crate::Report;
use crate::opts::{ChainOpts, Conn, WalletOpts, parse_amount};
use crate::output::ether;
use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail, eyre};
use iotegrity_core::chain;
use iotegrity_core::contracts::{FederatedLearning, IFederatedLearning, IdentityRegistry};
use iotegrity_core::federated::derive::global_model;
use iotegrity_core::federated::{ModelOf, seal};
use iotegrity_core::ipfs::{Cid, Ipfs};
use iotegrity_core::learning::fedavg::PROXIMAL_MU;
use iotegrity_core::learning::{LinearModel, diabetes};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Federated-learning commands. Transactions are sent by ONLINE keys: the service's (create,
/// close) or a participant's — an active device or gateway (register, submit, vote).
#[derive(Debug, Subcommand)]
pub enum FlCmd {
    /// (Service) pin the initial global model to IPFS and offer a training, escrowing the reward.
    Create(CreateArgs),
    /// The trainings open for registration.
    List(ListArgs),
    /// One training: its schedule and round, participants, models, scores and claimable parts.
    Show(ShowArgs),
    /// (Device or gateway) register for a training while registration is open.
    Register(IdArgs),
    /// (Participant) train locally from a global model on a shard of the diabetes table.
    Train(TrainArgs),
    /// (Participant) pin a local model to IPFS and store its reference for the current round.
    Submit(SubmitArgs),
    /// (Participant or service) score another participant's model of the previous round.
    Vote(VoteArgs),
    /// The global model of a round, derived from the chain and IPFS alone (round 0: the initial model).
    Model(ModelArgs),
    /// (Service) close: split the reward by softmax of scores (or explicit weights), exactly.
    Close(CloseArgs),
    /// (Any party) take its part of a finished training.
    Claim(IdArgs),
}

/// The IPFS node's RPC API.
#[derive(Debug, Args)]
pub struct IpfsOpts {
    /// Kubo RPC API base URL.
    #[arg(long, env = "IOTEGRITY_IPFS", default_value = "http://127.0.0.1:5001", value_name = "URL")]
    pub ipfs: String,
    /// Give up on an IPFS request after this many seconds (a block nobody has never arrives).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub ipfs_timeout: u64,
}

impl IpfsOpts {
    fn node(&self) -> Ipfs {
        Ipfs::new(&self.ipfs, Duration::from_secs(self.ipfs_timeout))
    }
}

/// A training id with the chain and the sending key.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The training id.
    pub id: u64,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The sending key (an online key of the step's party).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `fl create`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity fl create --model initial.safetensors --rounds 3 --round-secs 600 --reward 1ether \\\n    \
    --keystore keys/svc/online.json --password-file pw.txt"
)]
pub struct CreateArgs {
    /// The initial global model (a linear model file; `fl train --zero` writes one).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Rounds of local training and aggregation.
    #[arg(long, default_value_t = 3)]
    pub rounds: u16,
    /// Length of a round (its first half scores the previous round's models, the second takes this round's).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub round_secs: u32,
    /// The reward, e.g. `1ether`, `0.5ether`, `1000gwei`, escrowed now.
    #[arg(long)]
    pub reward: String,
    /// The IPFS node.
    #[command(flatten)]
    pub ipfs: IpfsOpts,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The service's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `fl list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// First training id to look at.
    #[arg(long, default_value_t = 1)]
    pub cursor: u64,
    /// How many ids to look at.
    #[arg(long, default_value_t = 100)]
    pub limit: u64,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `fl show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The training id.
    pub id: u64,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `fl train`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  iotegrity fl train --zero --out initial.safetensors\n  \
    iotegrity fl train --global global-1.safetensors --shard 2/3 --out local.safetensors")]
pub struct TrainArgs {
    /// Start from this global model (see `fl model`).
    #[arg(long, value_name = "FILE", required_unless_present = "zero")]
    pub global: Option<PathBuf>,
    /// Write an all-zero model of the diabetes table instead (an initial global model).
    #[arg(long, conflicts_with_all = ["global", "shard"])]
    pub zero: bool,
    /// This participant's shard of the diabetes table's rows 1..=360, `I/N`: the I-th of N age bands.
    #[arg(long, value_name = "I/N", required_unless_present = "zero")]
    pub shard: Option<String>,
    /// The proximal weight μ (docs/learning.md, "Local training").
    #[arg(long, default_value_t = PROXIMAL_MU)]
    pub mu: f64,
    /// Where to write the model file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `fl submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The training id.
    pub id: u64,
    /// The local model file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The IPFS node.
    #[command(flatten)]
    pub ipfs: IpfsOpts,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The participant's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `fl vote`.
#[derive(Debug, Args)]
pub struct VoteArgs {
    /// The training id.
    pub id: u64,
    /// The participant (offline address) whose model of the previous round is scored.
    #[arg(long)]
    pub author: Address,
    /// −100..100, not 0; a model whose scores sum below 0 is left out by everyone.
    #[arg(long, allow_hyphen_values = true)]
    pub score: i8,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The voter's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `fl model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The training id.
    pub id: u64,
    /// The round whose local models are aggregated (0: the initial global model).
    #[arg(long)]
    pub round: u64,
    /// Where to write the global model file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also pin it to the IPFS node (the service pins the final model).
    #[arg(long)]
    pub pin: bool,
    /// Also score it (R²) on the diabetes table's held-out rows 361..=441 (the demo's and tests' data).
    #[arg(long)]
    pub score_diabetes: bool,
    /// The IPFS node.
    #[command(flatten)]
    pub ipfs: IpfsOpts,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `fl close`.
#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The training id.
    pub id: u64,
    /// The service's rating of each participant in registration order; the split is their
    /// softmax, rounded so that it sums to exactly 1.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        conflicts_with = "weights",
        required_unless_present = "weights"
    )]
    pub scores: Vec<f64>,
    /// Explicit weights in registration order, decimal fractions summing to exactly 1 (e.g. 0.6,0.4,0).
    #[arg(long, value_delimiter = ',')]
    pub weights: Vec<String>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The service's online key.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

const STATUS: [&str; 4] = ["None", "Unprocessed", "InProgress", "Finished"];

fn contract(conn: &Conn) -> FederatedLearning::FederatedLearningInstance<&alloy::providers::DynProvider> {
    FederatedLearning::new(conn.book.federated_learning(), &conn.provider)
}

/// The training, refused by name if there is none.
async fn training(conn: &Conn, id: u64) -> Result<IFederatedLearning::Training> {
    let t = chain::call(contract(conn).trainingOf(U256::from(id))).await?;
    if t.status == 0 {
        bail!("no training {id} on this deployment ({})", conn.book.federated_learning());
    }
    Ok(t)
}

/// `1` in 18-decimal fixed point.
const ONE: u128 = 1_000_000_000_000_000_000;

/// Softmax of `scores` in 18-decimal fixed point, summing to exactly [`ONE`] (the rounding
/// remainder goes to the first of the largest weights).
pub fn softmax_weights(scores: &[f64]) -> Result<Vec<U256>> {
    if scores.iter().any(|s| !s.is_finite()) {
        bail!("scores must be finite numbers");
    }
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    // f64 carries ~16 digits: the rounded parts may sum a little above or below 1e18; the
    // difference (a few hundred units at most) goes to the first of the largest weights.
    let mut w: Vec<i128> = exps.iter().map(|e| (e / sum * ONE as f64).floor() as i128).collect();
    let total: i128 = w.iter().sum();
    if let Some(i) = w.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).map(|(i, _)| i) {
        w[i] += ONE as i128 - total;
    }
    w.into_iter().map(|v| u128::try_from(v).map(U256::from).map_err(|_| eyre!("a negative weight"))).collect()
}

/// Exact decimal fractions ("0.6") in 18-decimal fixed point.
fn parse_weights(ws: &[String]) -> Result<Vec<U256>> {
    ws.iter()
        .map(|s| {
            let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
            if int.is_empty() && frac.is_empty()
                || frac.len() > 18
                || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
            {
                bail!("{s:?} is not a decimal fraction with at most 18 decimals");
            }
            let int: u128 = if int.is_empty() { 0 } else { int.parse()? };
            let frac: u128 = if frac.is_empty() { 0 } else { format!("{frac:0<18}").parse()? };
            Ok(U256::from(int * ONE + frac))
        })
        .collect()
}

/// Seals `file` as `key`'s model of `round` in training `id` (docs/learning.md, "Model files and
/// signatures"): the key must be an active identity's online key, the identity is the author.
async fn seal_as(conn: &Conn, key: &PrivateKeySigner, id: u64, round: u64, file: &[u8]) -> Result<Vec<u8>> {
    let registry = IdentityRegistry::new(conn.book.identity_registry(), &conn.provider);
    let (author, _) = chain::call(registry.activeIdentityOf(key.address())).await?.into();
    let of = ModelOf::new(conn.book.federated_learning(), id, round, author);
    Ok(seal(&of, file, key, &iotegrity_core::signatures::domain_of(&conn.book)))
}

/// The global model of `round` of training `id`, from the chain's references and IPFS alone.
async fn derive(conn: &Conn, ipfs: &Ipfs, id: u64, round: u64) -> Result<(Vec<u8>, serde_json::Value, String)> {
    let d = global_model(&conn.provider, &conn.book, ipfs, id, round).await?;
    let mut text = match d.from_round {
        0 if round > 0 => format!("  nothing to aggregate in rounds 1..={round}: the initial model"),
        0 => String::new(),
        r if r < round => {
            format!("  nothing to aggregate in round {round}: aggregated {} model(s) of round {r}", d.used.len())
        }
        r => format!("  aggregated {} model(s) of round {r}", d.used.len()),
    };
    for who in &d.excluded {
        text.push_str(&format!("\n  excluded {who} (scored below 0)"));
    }
    for (who, why) in &d.left_out {
        text.push_str(&format!("\n  left out {who}: {why}"));
    }
    let left: Vec<serde_json::Value> =
        d.left_out.iter().map(|(who, why)| json!({ "participant": who, "why": why })).collect();
    let info =
        json!({ "round": round, "fromRound": d.from_round, "used": d.used, "excluded": d.excluded, "leftOut": left });
    Ok((d.file, info, text))
}

impl FlCmd {
    /// Runs the subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Create(a) => {
                let file = std::fs::read(&a.model).wrap_err_with(|| format!("cannot read {}", a.model.display()))?;
                LinearModel::from_safetensors(&file).wrap_err_with(|| format!("{}", a.model.display()))?;
                let key = a.wallet.signer()?;
                let conn = a.chain.connect_signing(key.clone()).await?;
                let reward = parse_amount(&a.reward)?;
                let cid = a.ipfs.node().add(&seal_as(&conn, &key, 0, 0, &file).await?).await?;
                let fl = contract(&conn);
                let receipt =
                    chain::send(fl.createTrainingRequest(cid.digest, a.rounds, a.round_secs).value(reward)).await?;
                let id = receipt
                    .inner
                    .logs()
                    .iter()
                    .find_map(|l| l.log_decode::<FederatedLearning::TrainingCreated>().ok())
                    .map(|l| l.inner.data.id.to::<u64>())
                    .ok_or_else(|| eyre!("no TrainingCreated event in {}", receipt.transaction_hash))?;
                Ok(Report::tx(
                    format!(
                        "training {id}: {} rounds of {} s, reward {} ETH, model {cid} (signed, pinned)",
                        a.rounds,
                        a.round_secs,
                        ether(reward)
                    ),
                    &receipt,
                    json!({ "training": id, "model": cid.to_string(), "modelRef": cid.digest, "reward": reward.to_string() }),
                ))
            }
            Self::List(a) => {
                let conn = a.chain.connect().await?;
                let page = chain::call(contract(&conn).getAvailableTraining(U256::from(a.cursor), U256::from(a.limit)))
                    .await?;
                let mut text = format!("{} training(s) open for registration", page.ids.len());
                let mut items = Vec::new();
                for (id, t) in page.ids.iter().zip(&page.trainings) {
                    let cid = Cid { digest: t.modelRef };
                    text.push_str(&format!(
                        "\n  {id}: service {}, {} rounds of {} s, reward {} ETH, {} registered, model {cid}",
                        t.service,
                        t.targetRound,
                        t.roundDuration,
                        ether(U256::from(t.reward)),
                        t.participants
                    ));
                    items.push(json!({ "training": id.to::<u64>(), "service": t.service, "rounds": t.targetRound,
                        "roundSecs": t.roundDuration, "reward": t.reward.to_string(), "participants": t.participants,
                        "model": cid.to_string() }));
                }
                Ok(Report::new(text, json!({ "trainings": items, "next": page.next.to::<u64>() })))
            }
            Self::Show(a) => show(a).await,
            Self::Register(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                training(&conn, a.id).await?;
                let receipt = chain::send(contract(&conn).registerTraining(U256::from(a.id))).await?;
                Ok(Report::tx(format!("registered for training {}", a.id), &receipt, json!({ "training": a.id })))
            }
            Self::Train(a) => {
                let model = if a.zero {
                    let (features, label, _) = diabetes::examples(0..1);
                    LinearModel { weights: vec![0.0; features.len()], features, label, intercept: 0.0, examples: 0 }
                } else {
                    let path = a.global.as_ref().expect("clap requires --global");
                    let global = LinearModel::from_safetensors(
                        &std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?,
                    )
                    .wrap_err_with(|| format!("{}", path.display()))?;
                    let shard = a.shard.as_deref().expect("clap requires --shard");
                    let (i, n) = shard
                        .split_once('/')
                        .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
                        .filter(|&(i, n)| i >= 1 && i <= n && n <= 360)
                        .ok_or_else(|| eyre!("--shard {shard:?}: expected I/N with 1 <= I <= N <= 360"))?;
                    let examples = &diabetes::shards_by_age(0..360, n)[i - 1];
                    LinearModel::train_from(&global, examples, a.mu)?
                };
                let file = model.to_safetensors();
                std::fs::write(&a.out, &file).wrap_err_with(|| format!("cannot write {}", a.out.display()))?;
                let cid = Cid::of(&file);
                Ok(Report::new(
                    format!(
                        "{} ({} examples) -> {} ({cid})",
                        if a.zero { "zero model" } else { "trained" },
                        model.examples,
                        a.out.display()
                    ),
                    json!({ "out": a.out, "examples": model.examples, "cid": cid.to_string() }),
                ))
            }
            Self::Submit(a) => {
                let file = std::fs::read(&a.model).wrap_err_with(|| format!("cannot read {}", a.model.display()))?;
                LinearModel::from_safetensors(&file).wrap_err_with(|| format!("{}", a.model.display()))?;
                let key = a.wallet.signer()?;
                let conn = a.chain.connect_signing(key.clone()).await?;
                training(&conn, a.id).await?;
                let round = chain::call(contract(&conn).roundOf(U256::from(a.id))).await?;
                let sealed = seal_as(&conn, &key, a.id, round.to::<u64>(), &file).await?;
                let cid = a.ipfs.node().add(&sealed).await?;
                let receipt = chain::send(contract(&conn).storeLocalModel(U256::from(a.id), cid.digest)).await?;
                Ok(Report::tx(
                    format!("training {}: model of round {round} stored, {cid} (signed, pinned)", a.id),
                    &receipt,
                    json!({ "training": a.id, "round": round.to::<u64>(), "cid": cid.to_string() }),
                ))
            }
            Self::Vote(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                training(&conn, a.id).await?;
                let round = chain::call(contract(&conn).roundOf(U256::from(a.id))).await?;
                let receipt = chain::send(contract(&conn).scoreLocalModel(U256::from(a.id), a.author, a.score)).await?;
                let scored = round.to::<u64>().saturating_sub(1);
                Ok(Report::tx(
                    format!("training {}: scored {}'s model of round {scored}: {}", a.id, a.author, a.score),
                    &receipt,
                    json!({ "training": a.id, "round": scored, "author": a.author, "score": a.score }),
                ))
            }
            Self::Model(a) => {
                let conn = a.chain.connect().await?;
                let ipfs = a.ipfs.node();
                let (file, mut info, detail) = derive(&conn, &ipfs, a.id, a.round).await?;
                std::fs::write(&a.out, &file).wrap_err_with(|| format!("cannot write {}", a.out.display()))?;
                let cid = if a.pin { ipfs.add(&file).await? } else { Cid::of(&file) };
                info["cid"] = json!(cid.to_string());
                info["out"] = json!(a.out);
                let mut scored = String::new();
                if a.score_diabetes {
                    let (_, _, held_out) = diabetes::examples(360..441);
                    let r2 = LinearModel::from_safetensors(&file)?.r2(&held_out)?;
                    info["r2"] = json!(r2);
                    scored = format!(", R² {r2:.4} on the 81 held-out rows");
                }
                Ok(Report::new(
                    format!(
                        "training {}: global model after round {} -> {} ({cid}){}{scored}{}{detail}",
                        a.id,
                        a.round,
                        a.out.display(),
                        if a.pin { ", pinned" } else { "" },
                        if detail.is_empty() { "" } else { "\n" }
                    ),
                    info,
                ))
            }
            Self::Close(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                training(&conn, a.id).await?;
                let weights =
                    if a.weights.is_empty() { softmax_weights(&a.scores)? } else { parse_weights(&a.weights)? };
                let receipt = chain::send(contract(&conn).closeTraining(U256::from(a.id), weights.clone())).await?;
                let shown: Vec<String> =
                    weights.iter().map(|w| format!("{:.6}", w.to::<u128>() as f64 / ONE as f64)).collect();
                Ok(Report::tx(
                    format!("training {} closed; split {}", a.id, shown.join(", ")),
                    &receipt,
                    json!({ "training": a.id, "weights": weights.iter().map(|w| w.to_string()).collect::<Vec<_>>() }),
                ))
            }
            Self::Claim(a) => {
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                training(&conn, a.id).await?;
                let before = chain::call(contract(&conn).totalOwed()).await?;
                let receipt = chain::send(contract(&conn).claimReward(U256::from(a.id))).await?;
                let after = chain::call(contract(&conn).totalOwed()).await?;
                let amount = before - after;
                Ok(Report::tx(
                    format!("training {}: claimed {} ETH", a.id, ether(amount)),
                    &receipt,
                    json!({ "training": a.id, "amount": amount.to_string() }),
                ))
            }
        }
    }
}

async fn show(a: ShowArgs) -> Result<Report> {
    let conn = a.chain.connect().await?;
    let fl = contract(&conn);
    let id = U256::from(a.id);
    let t = training(&conn, a.id).await?;
    let status = chain::call(fl.statusOf(id)).await?;
    let round = chain::call(fl.roundOf(id)).await?.to::<u64>();
    let sched = chain::call(fl.scheduleOf(id, U256::from(round))).await?;
    let parts = chain::call(fl.participantsOf(id)).await?;
    let when = if round > u64::from(t.targetRound) {
        format!("after its {} rounds; the last scores until {}", t.targetRound, sched.scoringEnds)
    } else {
        format!("round {round} of {}; it scores until {}, ends at {}", t.targetRound, sched.scoringEnds, sched.end)
    };
    let mut text = format!(
        "training {}: {} ({when})\n  service  {}\n  reward   {} ETH\n  model    {}",
        a.id,
        STATUS.get(status as usize).unwrap_or(&"?"),
        t.service,
        ether(U256::from(t.reward)),
        Cid { digest: t.modelRef }
    );
    let mut people = Vec::new();
    for who in &parts {
        let p = chain::call(fl.participantOf(id, *who)).await?;
        let claimable = chain::call(fl.claimableOf(id, *who)).await?;
        let mut models = Vec::new();
        for r in 1..=u64::from(t.targetRound).min(round) {
            let m = chain::call(fl.localModelOf(id, U256::from(r), *who)).await?;
            if m == B256::ZERO {
                continue;
            }
            let s = chain::call(fl.scoreOf(id, U256::from(r), *who)).await?;
            models.push(json!({ "round": r, "cid": Cid { digest: m }.to_string(), "score": s.sum.to_string(),
                                "votes": s.votes.to::<u64>(), "excluded": s.sum.is_negative() }));
        }
        text.push_str(&format!("\n  {who}: {} model(s), claimable {} ETH", p.models, ether(claimable)));
        people.push(json!({ "participant": who, "models": models, "claimable": claimable.to_string() }));
    }
    Ok(Report::new(
        text,
        json!({ "training": a.id, "status": STATUS.get(status as usize).unwrap_or(&"?"), "round": round,
                "rounds": t.targetRound, "roundSecs": t.roundDuration, "service": t.service,
                "reward": t.reward.to_string(), "model": Cid { digest: t.modelRef }.to_string(),
                "scoringEnds": sched.scoringEnds.to::<u64>(), "roundEnds": sched.end.to::<u64>(),
                "participants": people }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_weights_sum_to_exactly_one_and_follow_the_scores() {
        let w = softmax_weights(&[2.0, 1.0, -1.0]).unwrap();
        assert_eq!(w.iter().fold(U256::ZERO, |a, b| a + b), U256::from(ONE));
        assert!(w[0] > w[1] && w[1] > w[2]);
        let equal = softmax_weights(&[0.5, 0.5, 0.5]).unwrap();
        assert_eq!(equal.iter().fold(U256::ZERO, |a, b| a + b), U256::from(ONE));
        assert!(softmax_weights(&[f64::NAN]).is_err());
        let exact = parse_weights(&["0.6".into(), ".4".into(), "0".into()]).unwrap();
        assert_eq!(exact, vec![U256::from(6 * ONE / 10), U256::from(4 * ONE / 10), U256::ZERO]);
        assert!(parse_weights(&["0.1234567890123456789".into()]).is_err());
        assert!(parse_weights(&["-1".into()]).is_err());
    }
}
