//! The learner role (paper §5.2.2 steps 5–18 and 23; docs/learning.md "The learner daemon"): a
//! device's or gateway's participant in federated trainings. It joins the open trainings its
//! config allows, and then, each round, on block time: scores the others' models of the previous
//! round in the scoring window (by their R² on its own rows; a model not sealed by the key that
//! stored it scores −100), derives the previous round's global model alone in the submission
//! window (`federated::derive`), trains on its own rows from it, seals its model with its online
//! key, pins it to IPFS and stores the reference; at the end it claims its part.
//!
//! Crash safety: every decision is read back from the chain on every tick — whether it is
//! registered, whether its model of the round is stored — so a `kill -9` at any point, or a round
//! it missed while it was down, costs at most that round; nothing is sent twice (a second score or
//! model is refused by the contract, and skipped). The state directory lists the trainings it
//! joined (one JSON file each, written atomically).

pub mod config;

use crate::metrics::{Counter, MetricSet};
use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use config::LearnerConfig;
use eyre::{Result, WrapErr, eyre};
use iotegrity_core::contracts::{FederatedLearning, IdentityRegistry, Role};
use iotegrity_core::federated::derive::{self, FetchError};
use iotegrity_core::federated::{ModelOf, seal};
use iotegrity_core::ipfs::{Cid, Ipfs};
use iotegrity_core::learning::{Examples, LinearModel, diabetes};
use iotegrity_core::{AddressBook, chain};
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

/// The learner role's metrics.
#[derive(Debug, Default)]
pub struct LearnerMetrics {
    /// Trainings joined.
    pub registrations: Counter,
    /// Local models stored on chain.
    pub models: Counter,
    /// Scores given.
    pub scores: Counter,
    /// Rewards claimed.
    pub claims: Counter,
    /// Failed ticks (retried).
    pub errors: Counter,
}

impl MetricSet for LearnerMetrics {
    fn register(&self, r: &mut Registry) {
        r.register("iotegrity_learner_registrations", "Trainings joined", self.registrations.clone());
        r.register("iotegrity_learner_models", "Local models stored on chain", self.models.clone());
        r.register("iotegrity_learner_scores", "Scores given to others' models", self.scores.clone());
        r.register("iotegrity_learner_claims", "Rewards claimed", self.claims.clone());
        r.register("iotegrity_learner_errors", "Failed ticks (retried)", self.errors.clone());
    }
}

/// How a learner scores another participant's model: its R² on the learner's own rows, in points
/// (`round(100 · R²)`, clamped to −100..100; 0 becomes 1). A model that cannot be read scores −100.
pub fn score_of(file: &[u8], own: &Examples) -> i8 {
    let Ok(model) = LinearModel::from_safetensors(file) else { return -100 };
    match model.r2(own) {
        Ok(r2) if r2.is_finite() => match (r2 * 100.0).round().clamp(-100.0, 100.0) as i8 {
            0 => 1,
            s => s,
        },
        _ => -100,
    }
}

/// The running learner.
pub struct Learner {
    cfg: LearnerConfig,
    /// Its identity (offline address) and the online key that acts and seals its models.
    me: Address,
    key: PrivateKeySigner,
    domain: Eip712Domain,
    provider: DynProvider,
    book: AddressBook,
    ipfs: Ipfs,
    own: Examples,
    /// (training, round, author) scored by this process (the contract refuses a second score anyway).
    scored: HashSet<(u64, u64, Address)>,
    /// Its metrics.
    pub metrics: Arc<LearnerMetrics>,
}

impl Learner {
    /// Opens the key, its rows and the state directory; checks that the key is an active device's
    /// or gateway's.
    pub async fn connect(cfg: LearnerConfig, metrics: Arc<LearnerMetrics>) -> Result<Self> {
        let key: PrivateKeySigner =
            crate::files::online_key(cfg.learner.keystore.as_deref(), cfg.learner.password_file.as_deref(), "learner")?;
        let book = AddressBook::load(&cfg.chain.deployments)?;
        let provider = chain::writer(&cfg.chain.rpc_url, key.clone())?;
        std::fs::create_dir_all(cfg.learner.state_dir.join("trainings"))
            .wrap_err_with(|| format!("cannot create {}", cfg.learner.state_dir.display()))?;
        let registry = IdentityRegistry::new(book.identity_registry(), &provider);
        let who = chain::call(registry.activeIdentityOf(key.address())).await?;
        if !matches!(Role::try_from(who.role).ok(), Some(Role::Device | Role::Gateway)) {
            return Err(eyre!("{} is not the online key of an active device or gateway identity", key.address()));
        }
        let (i, n) = cfg.shard()?;
        let own = diabetes::shards_by_age(0..360, n).swap_remove(i - 1);
        let ipfs = Ipfs::new(&cfg.ipfs.url, Duration::from_secs(cfg.ipfs.timeout_secs));
        let domain = iotegrity_core::signatures::domain_of(&book);
        Ok(Self { me: who.offline, key, domain, provider, book, ipfs, own, scored: HashSet::new(), metrics, cfg })
    }

    fn fl(&self) -> FederatedLearning::FederatedLearningInstance<DynProvider> {
        FederatedLearning::new(self.book.federated_learning(), self.provider.clone())
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let poll = Duration::from_millis(self.cfg.learner.poll_interval_ms);
        info!(participant = %self.me, rows = self.own.len(), "learner: watching the trainings");
        let errors = self.metrics.errors.clone();
        crate::poll::run(&mut self, "learner", poll, &errors, shutdown).await
    }

    fn joined(&self) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(self.cfg.learner.state_dir.join("trainings"))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json").and_then(|s| s.parse::<u64>().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }

    fn remember(&self, id: u64, state: &serde_json::Value) -> Result<()> {
        let path = self.cfg.learner.state_dir.join("trainings").join(format!("{id}.json"));
        crate::files::write_atomic(&path, &serde_json::to_vec_pretty(state)?)
    }

    /// Registers for the open trainings the config allows.
    async fn join_open(&mut self) -> Result<()> {
        let page = chain::call(self.fl().getAvailableTraining(U256::from(1), U256::from(1000))).await?;
        for (id, t) in page.ids.iter().zip(&page.trainings) {
            let id = id.to::<u64>();
            if chain::call(self.fl().participantOf(U256::from(id), self.me)).await?.index != 0 {
                self.remember(id, &serde_json::json!({ "training": id }))?;
                continue;
            }
            let services = &self.cfg.learner.services;
            if !services.is_empty() && !services.contains(&t.service) {
                continue;
            }
            if let Some(min) = self.cfg.learner.min_service_score {
                let (score, _) = iotegrity_core::reputation::score_of(&self.provider, &self.book, t.service).await?;
                if score < min {
                    debug!(training = id, service = %t.service, score, "service below min_service_score");
                    continue;
                }
            }
            self.remember(id, &serde_json::json!({ "training": id }))?; // before the transaction
            chain::send(self.fl().registerTraining(U256::from(id))).await?;
            self.metrics.registrations.inc();
            info!(training = id, service = %t.service, "registered");
        }
        Ok(())
    }

    /// Does what training `id`'s current window asks of a participant.
    async fn advance(&mut self, id: u64) -> Result<()> {
        let fl = self.fl();
        let tid = U256::from(id);
        let status = chain::call(fl.statusOf(tid)).await?;
        let t = chain::call(fl.trainingOf(tid)).await?;
        match status {
            3 => {
                let owed = chain::call(fl.claimableOf(tid, self.me)).await?;
                if !owed.is_zero() {
                    chain::send(fl.claimReward(tid)).await?;
                    self.metrics.claims.inc();
                    info!(training = id, amount = %owed, "reward claimed");
                }
                return Ok(());
            }
            2 => {}
            _ => return Ok(()),
        }
        if chain::call(fl.participantOf(tid, self.me)).await?.index == 0 {
            return Ok(()); // its registration never made it
        }
        let round = chain::call(fl.roundOf(tid)).await?.to::<u64>();
        let sched = chain::call(fl.scheduleOf(tid, U256::from(round))).await?;
        let now = U256::from(chain::latest_timestamp(&self.provider).await?);
        if now < sched.scoringEnds {
            if round >= 2 {
                self.score_round(id, round - 1).await?;
            }
        } else if round >= 1 && round <= u64::from(t.targetRound) && now < sched.end {
            let mine = chain::call(fl.localModelOf(tid, U256::from(round), self.me)).await?;
            if mine == B256::ZERO {
                self.train_and_store(id, round).await?;
            }
        }
        Ok(())
    }

    async fn score_round(&mut self, id: u64, round: u64) -> Result<()> {
        let fl = self.fl();
        let tid = U256::from(id);
        for model in derive::stored(&self.provider, &self.book, id, round).await? {
            let who = model.author;
            if who == self.me || self.scored.contains(&(id, round, who)) {
                continue;
            }
            // A model not sealed by the key that stored it scores the minimum, as an unreadable one.
            let score = match derive::fetch(&self.book, &self.ipfs, id, round, &model).await {
                Ok(file) => score_of(&file, &self.own),
                Err(FetchError::Unsigned(e)) => {
                    warn!(training = id, round, author = %who, error = %e, "model refused");
                    -100
                }
                Err(e) => return Err(eyre!(e).wrap_err(format!("{who}'s model of round {round}"))),
            };
            self.scored.insert((id, round, who));
            match chain::send(fl.scoreLocalModel(tid, who, score)).await {
                Ok(_) => {
                    self.metrics.scores.inc();
                    info!(training = id, round, author = %who, score, "scored");
                }
                Err(e) if e.to_string().contains("FederatedLearning_AlreadyScored") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn train_and_store(&mut self, id: u64, round: u64) -> Result<()> {
        let derived = derive::global_model(&self.provider, &self.book, &self.ipfs, id, round - 1).await?;
        let global = LinearModel::from_safetensors(&derived.file)?;
        let local = LinearModel::train_from(&global, &self.own, self.cfg.learner.mu)?;
        let of = ModelOf::new(self.book.federated_learning(), id, round, self.me);
        let cid = self.ipfs.add(&seal(&of, &local.to_safetensors(), &self.key, &self.domain)).await?;
        match chain::send(self.fl().storeLocalModel(U256::from(id), cid.digest)).await {
            Ok(_) => {
                self.metrics.models.inc();
                info!(
                    training = id,
                    round,
                    global = %Cid::of(&derived.file),
                    used = derived.used.len(),
                    excluded = derived.excluded.len(),
                    model = %cid,
                    "local model stored"
                );
            }
            Err(e) if e.to_string().contains("FederatedLearning_AlreadyStored") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

impl crate::poll::Ticks for Learner {
    async fn tick(&mut self) -> Result<()> {
        self.join_open().await?;
        for id in self.joined()? {
            self.advance(id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_r2_on_own_rows_and_a_poisoned_model_gets_the_minimum() {
        let own = diabetes::shards_by_age(0..360, 3).swap_remove(0);
        let (features, label, rows) = diabetes::examples(0..360);
        let good = LinearModel::train(&features, &label, &rows).unwrap();
        let s = score_of(&good.to_safetensors(), &own);
        assert!((20..=100).contains(&s), "{s}");
        let mut poisoned = good.clone();
        poisoned.weights.iter_mut().for_each(|w| *w *= 50.0);
        assert_eq!(score_of(&poisoned.to_safetensors(), &own), -100);
        assert_eq!(score_of(b"junk", &own), -100);
    }
}
