//! The explorer's index of the chain: every event of the deployment's contracts, read in pages of
//! blocks ([`chain::logs`]), decoded by the contracts' own ABIs ([`iotegrity_core::events`]), with
//! its block's time, and looked up by every address and 32-byte word it names, by job, by training
//! and by transaction. It lives in memory and, with a state directory, its new entries are appended
//! to `index.jsonl` after each read that found something (then `index-head.json` records the block
//! read), so a restart reads only the blocks since and no read rewrites what was saved before; each new entry is also
//! broadcast, for the pages that update without a reload. Only what the chain says is in it.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::Filter;
use eyre::{Result, WrapErr};
use iotegrity_core::events::{self, Decoded};
use iotegrity_core::{AddressBook, chain};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// One event, where and when the chain recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Its block.
    pub block: u64,
    /// The block's timestamp, unix seconds.
    pub time: u64,
    /// Its transaction.
    pub tx: B256,
    /// Its place among the block's logs.
    pub log_index: u64,
    /// The event.
    #[serde(flatten)]
    pub event: Decoded,
}

/// What an entry can be found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// An address it names (an identity's keys, a voter, an owner…).
    Address(Address),
    /// A 32-byte word it names (a name's hash, a table id, a root, a certificate key, a subject…).
    Word(B256),
    /// Its transaction.
    Tx(B256),
    /// The job of a `JobMarket` event.
    Job(U256),
    /// The training of a `FederatedLearning` event.
    Training(U256),
}

/// The index.
#[derive(Debug)]
pub struct Index {
    chain_id: u64,
    registry: Address,
    synced_to: u64,
    entries: Vec<Entry>,
    keys: HashMap<Key, Vec<u32>>,
    names: HashMap<B256, String>,
}

/// What `index-head.json` holds: the deployment the saved entries are of, and the block read.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Head {
    chain_id: u64,
    identity_registry: Address,
    synced_to: u64,
}

impl Index {
    /// An empty index of the deployment `book`, on chain `chain_id`.
    pub fn new(book: &AddressBook) -> Self {
        Self {
            chain_id: book.chain_id,
            registry: book.identity_registry(),
            synced_to: book.deployed_block.saturating_sub(1),
            entries: Vec::new(),
            keys: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// The last block read.
    pub fn synced_to(&self) -> u64 {
        self.synced_to
    }

    /// Every entry, in chain order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries that name `key`, in chain order.
    pub fn find(&self, key: Key) -> impl DoubleEndedIterator<Item = &Entry> + '_ {
        self.keys.get(&key).into_iter().flatten().map(|&i| &self.entries[i as usize])
    }

    /// Whether any entry names `key`.
    pub fn knows(&self, key: Key) -> bool {
        self.keys.contains_key(&key)
    }

    /// The name whose keccak256 is `hash`, if one was ever registered.
    pub fn name(&self, hash: B256) -> Option<&str> {
        self.names.get(&hash).map(String::as_str)
    }

    /// Adds an entry (in chain order).
    pub fn push(&mut self, entry: Entry) {
        let at = u32::try_from(self.entries.len()).expect("fewer than 2^32 events");
        for key in keys_of(&entry) {
            let list = self.keys.entry(key).or_default();
            if list.last() != Some(&at) {
                list.push(at);
            }
        }
        if entry.event.event == "DomainNameSubmitted"
            && let (Some(hash), Some(name)) = (entry.event.field("nameHash"), entry.event.field("name"))
            && let (Some(hash), Ok(name)) = (hash.word(), serde_json::from_str::<String>(&name.value))
        {
            self.names.insert(hash, name);
        }
        self.entries.push(entry);
    }

    /// Reads the index saved in `dir` if it is of the same deployment: the entries up to the
    /// block its head records (entries appended after it, by a run stopped before it wrote the
    /// head, are dropped from the file and read again from the chain). None if nothing usable is
    /// saved there (none, another chain or deployment, a head that does not parse): rebuilt.
    fn load(dir: &std::path::Path, book: &AddressBook) -> Option<Self> {
        let head: Head = serde_json::from_slice(&std::fs::read(dir.join(HEAD)).ok()?).ok()?;
        if head.chain_id != book.chain_id || head.identity_registry != book.identity_registry() {
            return None;
        }
        let text = std::fs::read_to_string(dir.join(ENTRIES)).unwrap_or_default();
        let mut index = Self::new(book);
        let (mut kept, mut dropped) = (String::new(), false);
        for line in text.lines() {
            match serde_json::from_str::<Entry>(line) {
                Ok(e) if e.block <= head.synced_to => {
                    kept.push_str(line);
                    kept.push('\n');
                    index.push(e);
                }
                _ => dropped = true, // after the head's block, or torn by a crash mid-line
            }
        }
        if dropped {
            crate::files::write_atomic(&dir.join(ENTRIES), kept.as_bytes()).ok()?;
        }
        index.synced_to = head.synced_to;
        Some(index)
    }

    /// Appends `new` (already pushed) to the entries saved in `dir`, then records the block read.
    fn append(&self, dir: &std::path::Path, new: &[Entry]) -> Result<()> {
        use std::io::Write;
        let path = dir.join(ENTRIES);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .wrap_err_with(|| format!("cannot write {}", path.display()))?;
        let mut lines = Vec::new();
        for e in new {
            serde_json::to_writer(&mut lines, e)?;
            lines.push(b'\n');
        }
        file.write_all(&lines)?;
        file.sync_data()?;
        let head = Head { chain_id: self.chain_id, identity_registry: self.registry, synced_to: self.synced_to };
        crate::files::write_atomic(&dir.join(HEAD), &serde_json::to_vec(&head)?)
    }
}

/// The saved entries, one JSON object a line, in chain order.
const ENTRIES: &str = "index.jsonl";
/// The saved index's deployment and block.
const HEAD: &str = "index-head.json";

/// Every key an entry can be found by.
fn keys_of(e: &Entry) -> Vec<Key> {
    let mut keys = vec![Key::Tx(e.tx)];
    for f in &e.event.fields {
        if let Some(a) = f.address() {
            keys.push(Key::Address(a));
        } else if let Some(w) = f.word() {
            keys.push(Key::Word(w));
        } else if let Some(n) = f.uint() {
            match (e.event.contract.as_str(), f.name.as_str()) {
                ("JobMarket", "jobId") => keys.push(Key::Job(n)),
                ("FederatedLearning", "id") => keys.push(Key::Training(n)),
                _ => {}
            }
        }
    }
    keys
}

/// Keeps an [`Index`] up to date with the chain.
pub struct Indexer {
    provider: DynProvider,
    contracts: HashMap<Address, &'static str>,
    index: Arc<RwLock<Index>>,
    news: broadcast::Sender<Arc<Entry>>,
    dir: Option<PathBuf>,
    confirmations: u64,
}

impl Indexer {
    /// An indexer of `book`'s contracts; the index is read from `state_dir` if it was saved there.
    pub fn new(
        provider: DynProvider,
        book: &AddressBook,
        state_dir: Option<PathBuf>,
        confirmations: u64,
    ) -> Result<Self> {
        if let Some(dir) = &state_dir {
            std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        }
        let index = match state_dir.as_deref() {
            Some(dir) => Index::load(dir, book).unwrap_or_else(|| {
                // Nothing usable saved: what entries there are belong to no head, or to another
                // deployment; the index starts afresh, and so does the file.
                let _ = std::fs::remove_file(dir.join(ENTRIES));
                Index::new(book)
            }),
            None => Index::new(book),
        };
        let contracts = iotegrity_core::contracts::CONTRACTS
            .iter()
            .filter_map(|(name, key)| Some((*book.contracts.get(*key)?, *name)))
            .collect();
        Ok(Self {
            provider,
            contracts,
            index: Arc::new(RwLock::new(index)),
            news: broadcast::channel(1024).0,
            dir: state_dir,
            confirmations,
        })
    }

    /// The index, shared.
    pub fn index(&self) -> Arc<RwLock<Index>> {
        self.index.clone()
    }

    /// The channel new entries are broadcast on, as they are indexed.
    pub fn sender(&self) -> broadcast::Sender<Arc<Entry>> {
        self.news.clone()
    }

    /// Reads the blocks since the last read (up to `confirmations` behind the latest), adds their
    /// events and saves the index if it grew; returns how many entries were added.
    pub async fn tick(&self) -> Result<usize> {
        let from = self.index.read().expect("not poisoned").synced_to + 1;
        let to = chain::latest_block(&self.provider).await?.saturating_sub(self.confirmations);
        if to < from {
            return Ok(0);
        }
        let filter = Filter::new().address(self.contracts.keys().copied().collect::<Vec<_>>());
        let logs = chain::logs(&self.provider, &filter, from, to).await?;
        let mut times: HashMap<u64, u64> = HashMap::new();
        let mut added = Vec::with_capacity(logs.len());
        for log in logs {
            let (Some(block), Some(tx), Some(log_index)) = (log.block_number, log.transaction_hash, log.log_index)
            else {
                continue;
            };
            let Some(contract) = self.contracts.get(&log.address()) else { continue };
            let Some(event) = events::decode(contract, log.topics(), &log.data().data) else { continue };
            let time = match (log.block_timestamp, times.get(&block)) {
                (Some(t), _) | (None, Some(&t)) => t,
                (None, None) => {
                    let header = self
                        .provider
                        .get_block_by_number(block.into())
                        .await
                        .map_err(iotegrity_core::Error::rpc("eth_getBlockByNumber"))?
                        .ok_or(iotegrity_core::Error::NoLatestBlock)?;
                    header.header.timestamp
                }
            };
            times.insert(block, time);
            added.push(Entry { block, time, tx, log_index, event });
        }
        let count = added.len();
        {
            let mut index = self.index.write().expect("not poisoned");
            for e in &added {
                index.push(e.clone());
            }
            index.synced_to = to;
            if let (Some(dir), true) = (&self.dir, count > 0) {
                index.append(dir, &added)?;
            }
        }
        for e in added {
            let _ = self.news.send(Arc::new(e)); // nobody listening is fine
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iotegrity_core::events::Field;

    fn entry(contract: &str, event: &str, fields: &[(&str, &str, String)]) -> Entry {
        let fields =
            fields.iter().map(|(n, t, v)| Field { name: n.to_string(), ty: t.to_string(), value: v.clone() }).collect();
        Entry {
            block: 7,
            time: 100,
            tx: B256::repeat_byte(0xaa),
            log_index: 0,
            event: Decoded { contract: contract.into(), event: event.into(), fields },
        }
    }

    fn book() -> AddressBook {
        AddressBook {
            chain_id: 31337,
            name_mode: "decentralized".into(),
            deployed_block: 1,
            governance: Address::repeat_byte(9),
            penalty_sink: Address::repeat_byte(8),
            contracts: iotegrity_core::contracts::CONTRACTS
                .iter()
                .enumerate()
                .map(|(i, (_, k))| (k.to_string(), Address::repeat_byte(i as u8 + 1)))
                .collect(),
        }
    }

    #[test]
    fn entries_are_found_by_every_address_word_job_training_and_transaction_they_name() {
        let mut index = Index::new(&book());
        let (who, hash) = (Address::repeat_byte(5), alloy::primitives::keccak256("svc.iot"));
        index.push(entry(
            "NameRegistry",
            "DomainNameSubmitted",
            &[
                ("nameHash", "bytes32", hash.to_string()),
                ("name", "string", "\"svc.iot\"".into()),
                ("owner", "address", who.to_checksum(None)),
            ],
        ));
        index.push(entry("JobMarket", "JobCreated", &[("jobId", "uint256", "3".into())]));
        index.push(entry("FederatedLearning", "Registered", &[("id", "uint256", "3".into())]));
        assert_eq!(index.find(Key::Address(who)).count(), 1);
        assert_eq!(index.name(hash), Some("svc.iot"));
        assert_eq!(index.find(Key::Word(hash)).next().unwrap().event.event, "DomainNameSubmitted");
        assert_eq!(index.find(Key::Job(U256::from(3))).next().unwrap().event.contract, "JobMarket");
        assert_eq!(index.find(Key::Training(U256::from(3))).next().unwrap().event.contract, "FederatedLearning");
        assert_eq!(index.find(Key::Tx(B256::repeat_byte(0xaa))).count(), 3);
        assert!(!index.knows(Key::Job(U256::from(4))));
    }

    #[test]
    fn a_saved_index_is_read_back_only_for_its_own_deployment_and_only_up_to_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let b = book();
        let job = |n: &str, block: u64| Entry {
            block,
            ..entry("JobMarket", "JobCreated", &[("jobId", "uint256", n.into())])
        };
        let mut index = Index::new(&b);
        for (n, block) in [("1", 5), ("2", 9)] {
            index.push(job(n, block));
            index.synced_to = block;
            index.append(dir.path(), &[job(n, block)]).unwrap();
        }
        let back = Index::load(dir.path(), &b).unwrap();
        assert_eq!((back.synced_to(), back.entries()), (9, index.entries()));
        assert!(back.knows(Key::Job(U256::from(2))));
        // A run stopped after appending block 12's entry but before recording the block, and a
        // line torn by a crash: both dropped, and from the file too.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.path().join(ENTRIES)).unwrap();
        writeln!(f, "{}", serde_json::to_string(&job("3", 12)).unwrap()).unwrap();
        write!(f, "{{\"block\": 13, \"ti").unwrap();
        let back = Index::load(dir.path(), &b).unwrap();
        assert_eq!((back.synced_to(), back.entries().len()), (9, 2));
        assert!(!back.knows(Key::Job(U256::from(3))), "read again from the chain instead");
        assert_eq!(std::fs::read_to_string(dir.path().join(ENTRIES)).unwrap().lines().count(), 2);
        let mut other = b.clone();
        other.chain_id = 1;
        assert!(Index::load(dir.path(), &other).is_none(), "another chain: rebuilt");
        std::fs::write(dir.path().join(HEAD), b"{ torn").unwrap();
        assert!(Index::load(dir.path(), &b).is_none(), "a head that does not parse: rebuilt");
    }
}
