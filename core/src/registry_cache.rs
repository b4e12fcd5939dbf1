//! A local copy of the IdentityRegistry's keys, kept current from its events
//! (`PublicKeySubmitted`, `PublicKeyUpdated`, `PublicKeyClosed`), so that verifying thousands of
//! signatures costs no RPC call each, and a key rotated or closed on chain stops verifying at the
//! next [`RegistryCache::sync`] — no restart.

use crate::contracts::IdentityRegistry;
use crate::signatures::{KeyDirectory, KeyStatus};
use crate::{Error, Result};
use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::collections::HashMap;

/// Most blocks asked for in one `eth_getLogs` (public endpoints cap ranges).
const LOG_PAGE: u64 = 5_000;

#[derive(Debug, Clone, Copy)]
struct Ident {
    online: Address,
    role: u8,
    closed: bool,
}

/// The registry's keys as of block [`RegistryCache::synced_to`].
#[derive(Debug, Clone)]
pub struct RegistryCache {
    registry: Address,
    offline_of: HashMap<Address, Address>,
    identities: HashMap<Address, Ident>,
    next_block: u64,
}

impl RegistryCache {
    /// An empty cache that will read events from `from_block` (the deployment block) on.
    pub fn new(registry: Address, from_block: u64) -> Self {
        Self { registry, offline_of: HashMap::new(), identities: HashMap::new(), next_block: from_block }
    }

    /// The last block applied (or the block before the first one to read).
    pub fn synced_to(&self) -> u64 {
        self.next_block.saturating_sub(1)
    }

    /// Reads and applies every event up to the latest block; returns how many were applied.
    pub async fn sync(&mut self, provider: &DynProvider) -> Result<usize> {
        let latest = provider.get_block_number().await.map_err(|e| Error::Rpc(e.to_string()))?;
        let mut applied = 0;
        while self.next_block <= latest {
            let to = (self.next_block + LOG_PAGE - 1).min(latest);
            let filter = Filter::new().address(self.registry).from_block(self.next_block).to_block(to);
            let logs = provider.get_logs(&filter).await.map_err(|e| Error::Rpc(e.to_string()))?;
            for log in &logs {
                applied += usize::from(self.apply(log));
            }
            self.next_block = to + 1;
        }
        Ok(applied)
    }

    fn apply(&mut self, log: &alloy::rpc::types::Log) -> bool {
        use IdentityRegistry::{PublicKeyClosed, PublicKeySubmitted, PublicKeyUpdated};
        match log.topic0() {
            Some(&PublicKeySubmitted::SIGNATURE_HASH) => {
                let Ok(e) = log.log_decode::<PublicKeySubmitted>() else { return false };
                let e = e.inner.data;
                self.offline_of.insert(e.online, e.offline);
                self.identities.insert(e.offline, Ident { online: e.online, role: e.role, closed: false });
            }
            Some(&PublicKeyUpdated::SIGNATURE_HASH) => {
                let Ok(e) = log.log_decode::<PublicKeyUpdated>() else { return false };
                let e = e.inner.data;
                self.offline_of.insert(e.online, e.offline);
                if let Some(id) = self.identities.get_mut(&e.offline) {
                    id.online = e.online;
                }
            }
            Some(&PublicKeyClosed::SIGNATURE_HASH) => {
                let Ok(e) = log.log_decode::<PublicKeyClosed>() else { return false };
                if let Some(id) = self.identities.get_mut(&e.inner.data.offline) {
                    id.closed = true;
                }
            }
            _ => return false,
        }
        true
    }
}

impl KeyDirectory for RegistryCache {
    fn status(&self, online: Address) -> KeyStatus {
        let Some(offline) = self.offline_of.get(&online) else { return KeyStatus::Unknown };
        match self.identities.get(offline) {
            Some(id) if !id.closed && id.online == online => KeyStatus::Active { role: id.role },
            Some(_) => KeyStatus::Inactive,
            None => KeyStatus::Unknown,
        }
    }
}
