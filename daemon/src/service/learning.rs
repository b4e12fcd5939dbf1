//! The service's part in its federated trainings after it offers them (docs/learning.md, "The
//! service daemon"; paper §5.2.2 step 23: the service keeps the models): `[learning]` pins, on
//! its IPFS node, the initial global model of each training its identity created, then, round by
//! round once the round's scores are final, every stored local model and the global model
//! derived from them (`federated::derive`) — the last one being the final model. So a training
//! stays derivable from the chain and the service's node after the participants' nodes are gone.
//!
//! Everything is read from the chain on each tick; what was pinned is kept in memory only — after
//! a restart the daemon pins again, which IPFS makes idempotent (the same bytes, the same CID).

use crate::metrics::Counter;
use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use eyre::Result;
use iotegrity_core::contracts::{FederatedLearning, IdentityRegistry};
use iotegrity_core::federated::derive::{global_model, stored};
use iotegrity_core::ipfs::{Cid, Ipfs};
use iotegrity_core::{AddressBook, chain};
use std::collections::BTreeMap;
use tracing::info;

/// `Finished` in `statusOf`.
const FINISHED: u8 = 3;

/// Pins what the service's trainings need.
pub struct Pinner {
    provider: DynProvider,
    book: AddressBook,
    ipfs: Ipfs,
    /// The service's online key, and its identity (offline address) once looked up.
    key: Address,
    owner: Option<Address>,
    /// The next training id to look at.
    next: u64,
    /// The service's trainings not done yet: the next round to pin (0: the initial model).
    open: BTreeMap<u64, u64>,
    /// Models pinned (counted by the service's metrics).
    pinned: Counter,
}

impl Pinner {
    /// A pinner for the trainings of the identity whose online key is `key`.
    pub fn new(provider: DynProvider, book: AddressBook, ipfs: Ipfs, key: Address, pinned: Counter) -> Self {
        Self { provider, book, ipfs, key, owner: None, next: 1, open: BTreeMap::new(), pinned }
    }

    /// Pins, in order, each of training `id`'s models that are final by `now`.
    async fn pin_ready(&mut self, id: u64, now: u64) -> Result<()> {
        let fl = FederatedLearning::new(self.book.federated_learning(), &self.provider);
        let tid = U256::from(id);
        let t = chain::call(fl.trainingOf(tid)).await?;
        let finished = chain::call(fl.statusOf(tid)).await? == FINISHED;
        let target = u64::from(t.targetRound);
        while let Some(&round) = self.open.get(&id) {
            if round > target || (round > 0 && finished && t.participants == 0) {
                self.open.remove(&id);
                break;
            }
            if round == 0 {
                let cid = Cid { digest: t.modelRef };
                self.ipfs.pin_add(&cid).await?;
                self.pinned.inc();
                info!(training = id, model = %cid, "initial global model pinned");
            } else {
                // Round r's scores are final once round r + 1's scoring window has closed.
                let next = chain::call(fl.scheduleOf(tid, U256::from(round + 1))).await?;
                if !finished && U256::from(now) < next.scoringEnds {
                    break;
                }
                let models = stored(&self.provider, &self.book, id, round).await?;
                for m in &models {
                    self.ipfs.pin_add(&m.cid).await?;
                    self.pinned.inc();
                }
                let d = global_model(&self.provider, &self.book, &self.ipfs, id, round).await?;
                let cid = self.ipfs.add(&d.file).await?;
                self.pinned.inc();
                info!(
                    training = id,
                    round,
                    global = %cid,
                    local = models.len(),
                    used = d.used.len(),
                    excluded = d.excluded.len(),
                    left_out = d.left_out.len(),
                    "{}",
                    if round == target { "final global model pinned" } else { "global model pinned" }
                );
            }
            self.open.insert(id, round + 1);
        }
        Ok(())
    }
}

impl crate::poll::Ticks for Pinner {
    async fn tick(&mut self) -> Result<()> {
        let owner = match self.owner {
            Some(owner) => owner,
            None => {
                let registry = IdentityRegistry::new(self.book.identity_registry(), &self.provider);
                let owner = chain::call(registry.activeIdentityOf(self.key)).await?.offline;
                *self.owner.insert(owner)
            }
        };
        let fl = FederatedLearning::new(self.book.federated_learning(), &self.provider);
        let count = chain::call(fl.trainingCount()).await?.to::<u64>();
        while self.next <= count {
            if chain::call(fl.trainingOf(U256::from(self.next))).await?.service == owner {
                self.open.insert(self.next, 0);
            }
            self.next += 1;
        }
        let now = chain::latest_timestamp(&self.provider).await?;
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            self.pin_ready(id, now).await?;
        }
        Ok(())
    }
}
