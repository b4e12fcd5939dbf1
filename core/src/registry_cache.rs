//! A local copy of the IdentityRegistry's keys, kept current from its events
//! (`PublicKeySubmitted`, `PublicKeyUpdated`, `PublicKeyClosed`), so that verifying thousands of
//! signatures costs no RPC call each, and a key rotated or closed on chain stops verifying at the
//! next [`RegistryCache::sync`] — no restart. It also remembers the blocks during which each key
//! was active, so an auditor can ask whether a key was valid when a row was anchored
//! ([`RegistryCache::at_block`]).

use crate::Result;
use crate::contracts::{IdentityRegistry, Role};
use crate::signatures::{KeyDirectory, KeyStatus};
use alloy::primitives::Address;
use alloy::providers::DynProvider;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent;
use std::collections::HashMap;

/// The name of an identity's `IIdentityRegistry.Status` (`none`, `active`, `closed`).
pub fn status_name(status: u8) -> &'static str {
    ["none", "active", "closed"].get(status as usize).copied().unwrap_or("unknown")
}

/// One online key's life: active from block `since` until block `until` (exclusive), if ended.
#[derive(Debug, Clone, Copy)]
struct KeyLife {
    role: Role,
    since: u64,
    until: Option<u64>,
}

/// The registry's keys as of block [`RegistryCache::synced_to`].
#[derive(Debug, Clone)]
pub struct RegistryCache {
    registry: Address,
    keys: HashMap<Address, KeyLife>,
    current: HashMap<Address, Address>, // offline → current online key
    next_block: u64,
}

impl RegistryCache {
    /// An empty cache that will read events from `from_block` (the deployment block) on.
    pub fn new(registry: Address, from_block: u64) -> Self {
        Self { registry, keys: HashMap::new(), current: HashMap::new(), next_block: from_block }
    }

    /// The last block applied (or the block before the first one to read).
    pub fn synced_to(&self) -> u64 {
        self.next_block.saturating_sub(1)
    }

    /// Reads and applies every event up to the latest block; returns how many were applied.
    pub async fn sync(&mut self, provider: &DynProvider) -> Result<usize> {
        let latest = crate::chain::latest_block(provider).await?;
        if latest < self.next_block {
            return Ok(0);
        }
        let logs = crate::chain::logs(provider, &Filter::new().address(self.registry), self.next_block, latest).await?;
        self.next_block = latest + 1;
        Ok(logs.iter().map(|log| usize::from(self.apply(log))).sum())
    }

    fn apply(&mut self, log: &alloy::rpc::types::Log) -> bool {
        use IdentityRegistry::{PublicKeyClosed, PublicKeySubmitted, PublicKeyUpdated};
        let Some(block) = log.block_number else { return false };
        match log.topic0() {
            Some(&PublicKeySubmitted::SIGNATURE_HASH) => {
                let Ok(e) = log.log_decode::<PublicKeySubmitted>() else { return false };
                let e = e.inner.data;
                self.keys.insert(e.online, KeyLife { role: Role::from_u8(e.role), since: block, until: None });
                self.current.insert(e.offline, e.online);
            }
            Some(&PublicKeyUpdated::SIGNATURE_HASH) => {
                let Ok(e) = log.log_decode::<PublicKeyUpdated>() else { return false };
                let e = e.inner.data;
                let role = self.end(e.oldOnline, block).map_or(Role::None, |k| k.role);
                self.keys.insert(e.online, KeyLife { role, since: block, until: None });
                self.current.insert(e.offline, e.online);
            }
            Some(&PublicKeyClosed::SIGNATURE_HASH) => {
                let Ok(e) = log.log_decode::<PublicKeyClosed>() else { return false };
                self.end(e.inner.data.online, block);
                self.current.remove(&e.inner.data.offline);
            }
            _ => return false,
        }
        true
    }

    fn end(&mut self, online: Address, block: u64) -> Option<KeyLife> {
        let life = self.keys.get_mut(&online)?;
        life.until.get_or_insert(block);
        Some(*life)
    }

    /// The keys as they were at `block` (a key is active from the block that registered it until,
    /// excluding, the block that rotated it out or closed its identity).
    pub fn at_block(&self, block: u64) -> AtBlock<'_> {
        AtBlock { cache: self, block }
    }
}

impl KeyDirectory for RegistryCache {
    fn status(&self, online: Address) -> KeyStatus {
        match self.keys.get(&online) {
            Some(k) if k.until.is_none() => KeyStatus::Active { role: k.role },
            Some(_) => KeyStatus::Inactive,
            None => KeyStatus::Unknown,
        }
    }

    fn ended(&self, online: Address) -> Option<(Role, u64)> {
        let k = self.keys.get(&online)?;
        Some((k.role, k.until?))
    }
}

/// The registry's keys at one block.
#[derive(Debug, Clone, Copy)]
pub struct AtBlock<'a> {
    cache: &'a RegistryCache,
    block: u64,
}

impl KeyDirectory for AtBlock<'_> {
    fn status(&self, online: Address) -> KeyStatus {
        match self.cache.keys.get(&online) {
            Some(k) if k.since <= self.block && k.until.is_none_or(|u| self.block < u) => {
                KeyStatus::Active { role: k.role }
            }
            Some(_) => KeyStatus::Inactive,
            None => KeyStatus::Unknown,
        }
    }

    fn ended(&self, online: Address) -> Option<(Role, u64)> {
        let k = self.cache.keys.get(&online)?;
        k.until.filter(|until| k.since < *until && *until <= self.block).map(|until| (k.role, until))
    }
}
