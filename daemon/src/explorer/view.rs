//! What each page shows, as data: history from the index, state from the chain now, and — for
//! tables and receipts — what the service's database holds, each claim of the database checked
//! against the chain before it is shown as verified. Each view is served as JSON under `/api`
//! and rendered as HTML by `html.rs`; bad input and things that do not exist are [`ViewError`]s
//! with a status and a sentence, never a panic.

use super::index::{Entry, Key};
use super::state::{AuditState, Explorer};
use alloy::primitives::{Address, B256, U256, keccak256};
use iotegrity_core::anchors::Trust;
use iotegrity_core::audit::covering;
use iotegrity_core::audit::run::{AuditOptions, ReceiptCheck, check_receipt};
use iotegrity_core::contracts::{FederatedLearning, IdentityRegistry, JobMarket, NameRegistry, Role};
use iotegrity_core::merkle::{process_proof, tag_batch_root};
use iotegrity_core::receipt::{Receipt, sub_table_leaf, table_id};
use iotegrity_core::store::TableRef;
use iotegrity_core::{chain, reputation};
use serde::Serialize;

/// Why a page cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The request names nothing this explorer can read (a malformed address, name, key…): 400.
    #[error("{0}")]
    BadInput(String),
    /// Well formed, but the chain (or the database) holds no such thing: 404.
    #[error("{0}")]
    NotFound(String),
    /// The chain or the database cannot be asked now, or none is configured: 503.
    #[error("{0}")]
    Unavailable(String),
}

impl ViewError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadInput(_) => 400,
            Self::NotFound(_) => 404,
            Self::Unavailable(_) => 503,
        }
    }
}

fn chain_down(e: impl std::fmt::Display) -> ViewError {
    ViewError::Unavailable(format!("the chain cannot be asked now: {e}"))
}

fn db_down(e: impl std::fmt::Display) -> ViewError {
    ViewError::Unavailable(format!("the database cannot be read now: {e}"))
}

/// Most history rows a page lists (the newest); the page says how many there are in all.
pub const PAGE_ROWS: usize = 200;

/// A list of entries, the newest first, at most [`PAGE_ROWS`], with the total.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// How many there are.
    pub total: usize,
    /// The newest of them.
    pub entries: Vec<Entry>,
}

impl History {
    fn of<'a>(entries: impl DoubleEndedIterator<Item = &'a Entry>) -> Self {
        let all: Vec<&Entry> = entries.collect();
        Self { total: all.len(), entries: all.iter().rev().take(PAGE_ROWS).map(|e| (*e).clone()).collect() }
    }
}

// ------------------------------------------------------------------------------------ home

/// The front page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Home {
    /// The chain.
    pub chain_id: u64,
    /// The last block indexed.
    pub synced_to: u64,
    /// The deployment's contracts and addresses.
    pub contracts: Vec<(String, Address)>,
    /// Events indexed.
    pub events: usize,
    /// Identities registered, names registered, batches anchored, jobs, trainings.
    pub counts: Counts,
    /// The latest anchors.
    pub anchors: History,
    /// The latest events of any kind.
    pub recent: History,
}

/// How many of each thing the chain holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// `PublicKeySubmitted`.
    pub identities: usize,
    /// `DomainNameSubmitted`.
    pub names: usize,
    /// `RootHashStored`.
    pub anchors: usize,
    /// `JobCreated`.
    pub jobs: usize,
    /// `TrainingCreated`.
    pub trainings: usize,
}

/// The front page's data.
pub fn home(x: &Explorer) -> Home {
    let index = x.index.read().expect("not poisoned");
    let mut counts = Counts::default();
    for e in index.entries() {
        match e.event.event.as_str() {
            "PublicKeySubmitted" => counts.identities += 1,
            "DomainNameSubmitted" => counts.names += 1,
            "RootHashStored" => counts.anchors += 1,
            "JobCreated" => counts.jobs += 1,
            "TrainingCreated" => counts.trainings += 1,
            _ => {}
        }
    }
    Home {
        chain_id: x.book.chain_id,
        synced_to: index.synced_to(),
        contracts: x.book.contracts.iter().map(|(k, a)| (k.clone(), *a)).collect(),
        events: index.entries().len(),
        counts,
        anchors: History::of(index.entries().iter().filter(|e| e.event.event == "RootHashStored")),
        recent: History::of(index.entries().iter()),
    }
}

// ------------------------------------------------------------------------------------ identity

/// An identity: its keys now and their history, its vouches, its reputation with the votes that
/// make it, its names, and everything else it took part in.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    /// The address asked for.
    pub queried: Address,
    /// The identity's offline address.
    pub offline: Address,
    /// Its online key now.
    pub online: Address,
    /// The queried address is an online key this identity no longer uses.
    pub queried_is_old_key: bool,
    /// Its role as registered.
    pub role: String,
    /// The role it may act in now (a dismissed notary or CA: none).
    pub acting_role: String,
    /// `active` or `closed`.
    pub status: String,
    /// Its online key is the current key of an open identity.
    pub active: bool,
    /// Ether staked on its online key by vouchers, in wei.
    pub trust_wei: String,
    /// Reputation in points (−100..100) and the number of votes behind it.
    pub score: f64,
    /// Votes counted in the score.
    pub votes: u64,
    /// Every online key it has had, oldest first.
    pub keys: Vec<Address>,
    /// Registration, key updates, closing, appointments.
    pub key_history: History,
    /// Stakes on its keys: vouches, slashes, withdrawals, incentives.
    pub vouches: History,
    /// Votes on it and strikes of them.
    pub reputation: History,
    /// Names it owns or owned.
    pub names: Vec<String>,
    /// Everything else that names one of its addresses (anchors, jobs, trainings, votes it cast…;
    /// votes on it name its subject, never its addresses: an identity cannot vote on itself).
    pub activity: History,
}

/// The offline address of the identity that `addr` is the offline address or an online key of,
/// as the index's `IdentityRegistry` events say.
fn offline_of(x: &Explorer, addr: Address) -> Option<Address> {
    let index = x.index.read().expect("not poisoned");
    index.find(Key::Address(addr)).filter(|e| e.event.contract == "IdentityRegistry").find_map(|e| {
        let offline = e.event.field("offline")?.address()?;
        let named =
            ["offline", "online", "oldOnline"].iter().any(|f| e.event.field(f).and_then(|f| f.address()) == Some(addr));
        named.then_some(offline)
    })
}

/// The identity page's data.
pub async fn identity(x: &Explorer, text: &str) -> Result<IdentityView, ViewError> {
    let queried: Address =
        text.parse().map_err(|_| ViewError::BadInput(format!("{text:?} is not an address (0x and 40 hex digits)")))?;
    let offline = offline_of(x, queried).ok_or_else(|| {
        ViewError::NotFound(format!(
            "{queried} has no identity on this deployment: it is neither an offline address nor an online key"
        ))
    })?;
    let registry = IdentityRegistry::new(x.book.identity_registry(), &x.provider);
    let id = chain::call(registry.identityOf(offline)).await.map_err(chain_down)?;
    let active = chain::call(registry.isActive(id.online)).await.map_err(chain_down)?;
    let trust = chain::call(registry.trustLevel(id.online)).await.map_err(chain_down)?;
    let acting = chain::call(registry.activeRole(offline)).await.map_err(chain_down)?;
    let (score, votes) = reputation::score_of(&x.provider, &x.book, offline).await.map_err(chain_down)?;
    let index = x.index.read().expect("not poisoned");
    let mine = |e: &&Entry| e.event.field("offline").and_then(|f| f.address()) == Some(offline);
    let registry_events: Vec<&Entry> =
        index.find(Key::Address(offline)).filter(|e| e.event.contract == "IdentityRegistry").filter(mine).collect();
    let mut keys: Vec<Address> = Vec::new();
    for e in &registry_events {
        if let Some(k) = e.event.field("online").and_then(|f| f.address())
            && !keys.contains(&k)
        {
            keys.push(k);
        }
    }
    let mut addresses = keys.clone();
    addresses.push(offline);
    let stake_events =
        ["KeyVouched", "StakeSlashed", "StakeWithdrawn", "IncentiveAdded", "IncentiveClaimed", "IncentiveReclaimed"];
    let mut vouches: Vec<&Entry> = keys
        .iter()
        .flat_map(|k| index.find(Key::Address(*k)))
        .filter(|e| {
            stake_events.contains(&e.event.event.as_str())
                && e.event.field("online").and_then(|f| f.address()).is_some_and(|o| keys.contains(&o))
        })
        .collect();
    sort_dedup(&mut vouches);
    let subject = reputation::account_subject(offline);
    let votes_on: Vec<&Entry> = index.find(Key::Word(subject)).collect();
    let names: Vec<String> = index
        .find(Key::Address(offline))
        .filter(|e| e.event.event == "DomainNameSubmitted" || e.event.event == "NameRecovered")
        .filter_map(|e| index.name(e.event.field("nameHash")?.word()?).map(str::to_string))
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    let mut activity: Vec<&Entry> = addresses
        .iter()
        .flat_map(|a| index.find(Key::Address(*a)))
        .filter(|e| {
            !(e.event.contract == "IdentityRegistry" && (mine(e) || stake_events.contains(&e.event.event.as_str())))
        })
        .collect();
    sort_dedup(&mut activity);
    Ok(IdentityView {
        queried,
        offline,
        online: id.online,
        queried_is_old_key: queried != offline && queried != id.online,
        role: Role::from_u8(id.role).name().to_string(),
        acting_role: Role::from_u8(acting).name().to_string(),
        status: iotegrity_core::registry_cache::status_name(id.status).to_string(),
        active,
        trust_wei: trust.to_string(),
        score,
        votes,
        keys,
        key_history: History::of(registry_events.into_iter()),
        vouches: History::of(vouches.into_iter()),
        reputation: History::of(votes_on.into_iter()),
        names,
        activity: History::of(activity.into_iter()),
    })
}

/// Puts entries found under several keys in chain order, each once.
fn sort_dedup(entries: &mut Vec<&Entry>) {
    entries.sort_by_key(|e| (e.block, e.log_index));
    entries.dedup_by_key(|e| (e.block, e.log_index));
}

// ------------------------------------------------------------------------------------ name

/// A name: its record now, its certificate pins with their windows and revocations (and whether
/// each holds now), its history and its reputation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NameView {
    /// The name.
    pub name: String,
    /// Its owner (offline address).
    pub owner: Address,
    /// Its address on chain, if it resolves (its owner's identity open).
    pub ip: Option<String>,
    /// The backup owner in effect.
    pub backup: Address,
    /// Registered at (unix seconds).
    pub registered_at: u64,
    /// Reputation in points and the votes behind it.
    pub score: f64,
    /// Votes counted.
    pub votes: u64,
    /// Every certificate key ever pinned for it.
    pub certificates: Vec<Pin>,
    /// Registration, address changes, backups, recoveries.
    pub history: History,
    /// Votes on it and strikes of them.
    pub reputation: History,
}

/// One certificate key pinned for a name, like a line of crt.sh.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pin {
    /// keccak256 of the certificate's SubjectPublicKeyInfo.
    pub key_hash: B256,
    /// Its window, unix seconds.
    pub not_before: u64,
    /// End of the window.
    pub not_after: u64,
    /// Who pinned it (the owner, or a CA).
    pub issuer: Address,
    /// Pinned in this entry.
    pub added: Entry,
    /// Revoked in this entry, if it was.
    pub revoked: Option<Entry>,
    /// `verifyCertificate(name, key)` at the latest block.
    pub verifies_now: bool,
}

/// The name page's data.
pub async fn name(x: &Explorer, name: &str) -> Result<NameView, ViewError> {
    iotegrity_core::names::validate_name(name).map_err(|e| ViewError::BadInput(e.to_string()))?;
    let names = NameRegistry::new(x.book.name_registry(), &x.provider);
    let rec = chain::call(names.nameRecord(name.to_string())).await.map_err(chain_down)?;
    if rec.owner.is_zero() {
        return Err(ViewError::NotFound(format!("{name} is not registered on this deployment")));
    }
    let resolved = chain::call(names.resolveAddress(name.to_string())).await.map_err(chain_down)?;
    let ip = iotegrity_core::names::decode_ip(&resolved).map(|ip| ip.to_string());
    let now = chain::latest_timestamp(&x.provider).await.map_err(chain_down)?;
    let backup = if rec.backupSince > now { rec.previousBackup } else { rec.backup };
    let (score, votes) = reputation::score_of_name(&x.provider, &x.book, name).await.map_err(chain_down)?;
    let hash = keccak256(name);
    let (history, reputation_entries, mut certificates) = {
        let index = x.index.read().expect("not poisoned");
        let of_name: Vec<&Entry> = index.find(Key::Word(hash)).filter(|e| e.event.contract == "NameRegistry").collect();
        let mut pins = Vec::new();
        for e in of_name.iter().filter(|e| e.event.event == "CertificateAdded") {
            let Some(key) = e.event.field("certKeyHash").and_then(|f| f.word()) else { continue };
            let number = |f: &str| e.event.field(f).and_then(|f| f.value.parse().ok()).unwrap_or(0);
            let revoked = of_name
                .iter()
                .find(|r| {
                    r.event.event == "CertificateRevoked"
                        && r.event.field("certKeyHash").and_then(|f| f.word()) == Some(key)
                })
                .map(|r| (*r).clone());
            pins.push(Pin {
                key_hash: key,
                not_before: number("notBefore"),
                not_after: number("notAfter"),
                issuer: e.event.field("issuer").and_then(|f| f.address()).unwrap_or_default(),
                added: (*e).clone(),
                revoked,
                verifies_now: false,
            });
        }
        let history = History::of(of_name.iter().copied().filter(|e| !e.event.event.starts_with("Certificate")));
        let votes = History::of(index.find(Key::Word(reputation::domain_subject(name))));
        (history, votes, pins)
    };
    for pin in &mut certificates {
        pin.verifies_now =
            chain::call(names.verifyCertificate(name.to_string(), pin.key_hash)).await.map_err(chain_down)?;
    }
    Ok(NameView {
        name: name.to_string(),
        owner: rec.owner,
        ip,
        backup,
        registered_at: rec.registeredAt,
        score,
        votes,
        certificates,
        history,
        reputation: reputation_entries,
    })
}

// ------------------------------------------------------------------------------------ table

/// A table: the anchors of its id by every identity, the one trusted, and — with a database —
/// its receipts store and the last audit.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableView {
    /// `schema.table`, when known (the chain holds only its keccak256).
    pub name: Option<String>,
    /// keccak256 of the name.
    pub table_id: B256,
    /// Each identity that anchored it, with its batch and row counts; the trusted one first.
    pub anchorers: Vec<Anchorer>,
    /// The trusted identity's offline address, if one is.
    pub trusted: Option<Address>,
    /// Why it is trusted, or why none is.
    pub trust: String,
    /// The anchors, newest first (at most [`PAGE_ROWS`]).
    pub anchors: History,
    /// The root asked for, if any, and whether it is one of these anchors.
    pub root: Option<(B256, bool)>,
    /// What the service's database holds (with `[database]` and the table in `[[tables]]`).
    pub store: Option<Store>,
    /// The audit of the table (with a database): running, or its report.
    pub audit: Option<AuditState>,
}

/// One identity's anchors of a table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Anchorer {
    /// Its offline address.
    pub owner: Address,
    /// Batches anchored.
    pub batches: usize,
    /// Rows anchored.
    pub rows: u64,
}

/// The receipts store's view of a table (untrusted until the audit holds it against the chain).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    /// Receipts stored.
    pub receipts: usize,
    /// Rows they cover.
    pub rows: u64,
    /// The last key cut into a batch.
    pub watermark: Option<i64>,
}

/// Reads a table name or table id.
fn table_of(x: &Explorer, text: &str) -> Result<(Option<String>, B256), ViewError> {
    if let Ok(id) = text.parse::<B256>() {
        let name = x.tables.iter().map(|t| t.name()).find(|n| table_id(n) == id);
        return Ok((name, id));
    }
    // Schema-qualified, with the identifiers every watched table has (the store's own rule).
    let valid = text.contains('.') && TableRef::new(text, "id").is_ok();
    if !valid {
        return Err(ViewError::BadInput(format!(
            "{text:?} is neither schema.table nor a table id (0x and 64 hex digits)"
        )));
    }
    Ok((Some(text.to_string()), table_id(text)))
}

/// The table page's data; `root`, a root to look for among its anchors.
pub async fn table(x: &Explorer, text: &str, root: Option<B256>) -> Result<TableView, ViewError> {
    let (name, id) = table_of(x, text)?;
    let pinned = match x.anchorer {
        Some(a) => Some(iotegrity_core::audit::run::resolve_owner(&x.provider, &x.book, a).await.map_err(chain_down)?),
        None => None,
    };
    let (anchors, anchorers, trusted, trust) = {
        let index = x.index.read().expect("not poisoned");
        let anchors: Vec<&Entry> = index
            .find(Key::Word(id))
            .filter(|e| {
                e.event.event == "RootHashStored" && e.event.field("tableId").and_then(|f| f.word()) == Some(id)
            })
            .collect();
        let mut anchorers: Vec<Anchorer> = Vec::new();
        for e in &anchors {
            let owner = e.event.field("owner").and_then(|f| f.address()).unwrap_or_default();
            let key = |f: &str| e.event.field(f).and_then(|f| f.value.parse::<i64>().ok()).unwrap_or(0);
            let rows = u64::try_from(key("lastKey") - key("firstKey") + 1).unwrap_or(0);
            match anchorers.iter_mut().find(|a| a.owner == owner) {
                Some(a) => {
                    a.batches += 1;
                    a.rows += rows;
                }
                None => anchorers.push(Anchorer { owner, batches: 1, rows }),
            }
        }
        // The audit's rule (`Trust::of`), in the explorer's words.
        let rule = Trust::of(pinned, anchorers.iter().map(|a| a.owner));
        let trust = match &rule {
            Trust::Pinned { owner } => format!("pinned by this explorer's configuration ({owner})"),
            Trust::Sole { .. } => "the only identity that anchored this table".to_string(),
            Trust::Unanchored => "nobody anchored this table".to_string(),
            Trust::Ambiguous { .. } => {
                "several identities anchored this table id and none is pinned: none is trusted".to_string()
            }
        };
        let trusted = rule.owner();
        anchorers.sort_by_key(|a| (Some(a.owner) != trusted, std::cmp::Reverse(a.batches)));
        (History::of(anchors.into_iter()), anchorers, trusted, trust)
    };
    if anchors.total == 0 && x.db_table(name.as_deref()).is_none() {
        return Err(ViewError::NotFound(format!(
            "{} was never anchored on this deployment",
            name.clone().unwrap_or_else(|| id.to_string())
        )));
    }
    let root = root.map(|r| {
        let index = x.index.read().expect("not poisoned");
        let found = index
            .find(Key::Word(r))
            .any(|e| e.event.event == "RootHashStored" && e.event.field("tableId").and_then(|f| f.word()) == Some(id));
        (r, found)
    });
    let store = match (x.db_table(name.as_deref()), &x.pool) {
        (Some(t), Some(pool)) => {
            let receipts = iotegrity_core::store::receipts::load_receipts(pool, &t.name()).await.map_err(db_down)?;
            let watermark = iotegrity_core::store::receipts::watermark(pool, &t.name()).await.map_err(db_down)?;
            let rows = receipts.iter().map(|r| r.rows.len() as u64).sum();
            Some(Store { receipts: receipts.len(), rows, watermark })
        }
        _ => None,
    };
    let audit = name.as_deref().and_then(|n| x.audits.lock().expect("not poisoned").get(n).cloned());
    Ok(TableView { name, table_id: id, anchorers, trusted, trust, anchors, root, store, audit })
}

/// Starts an audit of a configured table in the background (if none is running for it).
pub async fn start_audit(x: &std::sync::Arc<Explorer>, text: &str) -> Result<(), ViewError> {
    let (name, _) = table_of(x, text)?;
    let (Some(table), Some(pool)) = (x.db_table(name.as_deref()).cloned(), x.pool.clone()) else {
        return Err(ViewError::Unavailable(format!(
            "{} is not a table of this explorer's [database] ([[tables]] in its configuration)",
            name.unwrap_or_else(|| text.to_string())
        )));
    };
    let name = table.name();
    let total = u64::try_from(table.count(&pool).await.map_err(db_down)?).unwrap_or(0);
    {
        let mut audits = x.audits.lock().expect("not poisoned");
        if matches!(audits.get(&name), Some(AuditState::Running { .. })) {
            return Ok(());
        }
        audits.insert(name.clone(), AuditState::Running { rows_read: 0, rows_total: total });
    }
    let x = x.clone();
    tokio::spawn(async move {
        let opts = AuditOptions { anchorer: x.anchorer, ..AuditOptions::default() };
        let progress = |rows: u64| {
            x.audits
                .lock()
                .expect("not poisoned")
                .insert(name.clone(), AuditState::Running { rows_read: rows, rows_total: total.max(rows) });
        };
        let result =
            iotegrity_core::audit::run::audit_database(&pool, &table, &x.provider, &x.book, &opts, progress).await;
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let state = match result {
            Ok(report) => AuditState::Done { report: Box::new(report), at },
            Err(e) => AuditState::Failed { error: e.to_string() },
        };
        x.audits.lock().expect("not poisoned").insert(name, state);
    });
    Ok(())
}

// ------------------------------------------------------------------------------------ receipt

/// A row's receipt, checked step by step from the row the database holds now to the transaction
/// that anchored it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptView {
    /// `schema.table`.
    pub table: String,
    /// The row's key.
    pub key: i64,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// Every step holds.
    pub valid: bool,
    /// What the chain says of the receipt (the anchoring batch, its block and transaction).
    pub chain: ReceiptCheck,
    /// The receipt as the database stores it.
    pub receipt: Receipt,
}

/// One step of a receipt's check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// What is checked.
    pub what: String,
    /// Whether it holds.
    pub ok: bool,
    /// The values compared, or why it fails.
    pub detail: String,
}

/// The receipt page's data.
pub async fn receipt(x: &Explorer, text: &str, key: &str) -> Result<ReceiptView, ViewError> {
    let (name, _) = table_of(x, text)?;
    let key: i64 = key.parse().map_err(|_| ViewError::BadInput(format!("{key:?} is not a row key (an integer)")))?;
    let (Some(table), Some(pool)) = (x.db_table(name.as_deref()), &x.pool) else {
        return Err(ViewError::Unavailable(format!(
            "{} is not a table of this explorer's [database]: its receipts cannot be read here (iotegrity receipt verify takes a receipt file)",
            name.unwrap_or_else(|| text.to_string())
        )));
    };
    let name = table.name();
    let receipts = iotegrity_core::store::receipts::load_receipts(pool, &name).await.map_err(db_down)?;
    let Some(r) = covering(&receipts, key).cloned() else {
        return Err(ViewError::NotFound(format!(
            "no receipt covers row {key} of {name} (not anchored yet, or not a key of it)"
        )));
    };
    let live = table.rows(pool, key.saturating_sub(1), key, Some(1)).await.map_err(db_down)?;
    let held = r.rows.iter().find(|h| h.key == key).map(|h| h.hash);
    let mut steps = Vec::new();
    let row_step = match (live.first().filter(|l| l.key == key), held) {
        (Some(l), Some(h)) if l.hash == h => {
            Step { what: "row".into(), ok: true, detail: format!("row {key} hashes to {h}, as the receipt holds") }
        }
        (Some(l), Some(h)) => Step {
            what: "row".into(),
            ok: false,
            detail: format!(
                "row {key} was altered after it was anchored: it hashes to {}, the receipt holds {h}",
                l.hash
            ),
        },
        (None, Some(h)) => Step {
            what: "row".into(),
            ok: false,
            detail: format!("row {key} was deleted after it was anchored (the receipt holds {h})"),
        },
        (_, None) => {
            Step { what: "row".into(), ok: false, detail: format!("the receipt covering {key} holds no row {key}") }
        }
    };
    steps.push(row_step);
    let leaf = sub_table_leaf(&r.rows);
    steps.push(Step {
        what: "leaf".into(),
        ok: leaf == r.leaf,
        detail: format!("the sub-table's {} rows hash to {leaf}; the receipt's leaf is {}", r.rows.len(), r.leaf),
    });
    let batch = process_proof(r.leaf, &r.proof);
    steps.push(Step {
        what: "proof".into(),
        ok: batch == r.batch_root,
        detail: format!(
            "{} proof steps lead from the leaf to {batch}; the receipt's batch root is {}",
            r.proof.len(),
            r.batch_root
        ),
    });
    let anchored = process_proof(tag_batch_root(r.batch_root), &r.anchor_proof);
    steps.push(Step {
        what: "anchored root".into(),
        ok: anchored == r.anchor.anchored_root,
        detail: format!(
            "{} steps lead from the tagged batch root to {anchored}; the receipt names {}",
            r.anchor_proof.len(),
            r.anchor.anchored_root
        ),
    });
    let check = check_receipt(&x.provider, &x.book, &r, x.anchorer).await.map_err(chain_down)?;
    steps.push(match &check.anchored {
        Ok(b) => Step {
            what: "on chain".into(),
            ok: true,
            detail: format!(
                "{} anchored batch {}..{} (m={}, n={}) under {} in block {}, transaction {}",
                b.owner, b.first_key, b.last_key, b.m, b.n, b.anchored_root, b.block, b.tx
            ),
        },
        Err(finding) => Step { what: "on chain".into(), ok: false, detail: format!("{} — {finding}", check.trust) },
    });
    steps.push(Step {
        what: "contract".into(),
        ok: check.contract_verifies,
        detail: format!("ReceiptAnchor.verifyReceipt says {}", check.contract_verifies),
    });
    let valid = steps.iter().all(|s| s.ok);
    Ok(ReceiptView { table: name, key, steps, valid, chain: check, receipt: r })
}

// ------------------------------------------------------------------------------------ job, training

/// A job of the market: its state now and its timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Its id.
    pub id: U256,
    /// Its status now (`statusOf`: the time rules applied).
    pub status: String,
    /// The service identity that offered it.
    pub service: Address,
    /// The worker identity assigned, if any.
    pub worker: Address,
    /// The escrowed reward, wei.
    pub reward_wei: String,
    /// The dataset root h_S.
    pub root: B256,
    /// keccak256 of the job spec.
    pub param_hash: B256,
    /// The reported result's hash (zero until reported).
    pub result_hash: B256,
    /// Every event of the job, oldest first.
    pub timeline: Vec<Entry>,
}

/// The job page's data.
pub async fn job(x: &Explorer, text: &str) -> Result<JobView, ViewError> {
    let id: U256 = text.parse().map_err(|_| ViewError::BadInput(format!("{text:?} is not a job id (a number)")))?;
    let timeline: Vec<Entry> = x.index.read().expect("not poisoned").find(Key::Job(id)).cloned().collect();
    if timeline.is_empty() {
        return Err(ViewError::NotFound(format!("there is no job {id} on this deployment")));
    }
    let market = JobMarket::new(x.book.job_market(), &x.provider);
    let j = chain::call(market.jobOf(id)).await.map_err(chain_down)?;
    let status = chain::call(market.statusOf(id)).await.map_err(chain_down)?;
    Ok(JobView {
        id,
        status: iotegrity_core::market::JobStatus::from(status).name().to_string(),
        service: j.service,
        worker: j.worker,
        reward_wei: j.reward.to_string(),
        root: j.root,
        param_hash: j.paramHash,
        result_hash: j.resultHash,
        timeline,
    })
}

/// A federated training: its state, its participants and their models round by round (with
/// their IPFS references and scores), and its payouts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingView {
    /// Its id (the initial model's reference).
    pub id: U256,
    /// The initial model's IPFS CID.
    pub initial_model: String,
    /// The service identity.
    pub service: Address,
    /// `Unprocessed`, `InProgress` or `Finished`, and the round now.
    pub state: String,
    /// The round now (0: registration).
    pub round: u64,
    /// Rounds to train.
    pub target_round: u64,
    /// The escrowed reward, wei.
    pub reward_wei: String,
    /// Participants (their identities' offline addresses).
    pub participants: Vec<Address>,
    /// Every local model: round, author, CID, its score sum and whether it is left out.
    pub models: Vec<Model>,
    /// Every event of the training, oldest first (scores, payouts…).
    pub timeline: Vec<Entry>,
}

/// One local model of a training.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    /// Its round.
    pub round: u64,
    /// Its author (offline address).
    pub participant: Address,
    /// Its IPFS CID (v1, raw).
    pub cid: String,
    /// The sum of its scores.
    pub score: i64,
    /// Left out of aggregation by every participant (score sum below zero).
    pub excluded: bool,
}

/// The training page's data.
pub async fn training(x: &Explorer, text: &str) -> Result<TrainingView, ViewError> {
    let id: U256 =
        text.parse().map_err(|_| ViewError::BadInput(format!("{text:?} is not a training id (a number)")))?;
    let timeline: Vec<Entry> = x.index.read().expect("not poisoned").find(Key::Training(id)).cloned().collect();
    if timeline.is_empty() {
        return Err(ViewError::NotFound(format!("there is no training {id} on this deployment")));
    }
    let fl = FederatedLearning::new(x.book.federated_learning(), &x.provider);
    let t = chain::call(fl.trainingOf(id)).await.map_err(chain_down)?;
    let round = chain::call(fl.roundOf(id)).await.map_err(chain_down)?.to::<u64>();
    let status = chain::call(fl.statusOf(id)).await.map_err(chain_down)?;
    let state = ["None", "Unprocessed", "InProgress", "Finished"].get(status as usize).copied().unwrap_or("unknown");
    let field_u64 = |e: &Entry, f: &str| e.event.field(f).and_then(|f| f.value.parse::<u64>().ok()).unwrap_or(0);
    let field_addr = |e: &Entry, f: &str| e.event.field(f).and_then(|f| f.address()).unwrap_or_default();
    let participants =
        timeline.iter().filter(|e| e.event.event == "Registered").map(|e| field_addr(e, "participant")).collect();
    let models = timeline
        .iter()
        .filter(|e| e.event.event == "LocalModelStored")
        .map(|e| {
            let (round, participant) = (field_u64(e, "round"), field_addr(e, "participant"));
            let reference = e.event.field("localRef").and_then(|f| f.word()).unwrap_or_default();
            let score: i64 = timeline
                .iter()
                .filter(|s| {
                    s.event.event == "ModelScored"
                        && field_u64(s, "round") == round
                        && field_addr(s, "author") == participant
                })
                .filter_map(|s| s.event.field("score")?.value.parse::<i64>().ok())
                .sum();
            Model {
                round,
                participant,
                cid: iotegrity_core::ipfs::Cid { digest: reference }.to_string(),
                score,
                excluded: score < 0,
            }
        })
        .collect();
    Ok(TrainingView {
        id,
        initial_model: iotegrity_core::ipfs::Cid { digest: t.modelRef }.to_string(),
        service: t.service,
        state: state.to_string(),
        round,
        target_round: u64::from(t.targetRound),
        reward_wei: t.reward.to_string(),
        participants,
        models,
        timeline,
    })
}

// ------------------------------------------------------------------------------------ tx, search

/// The events of one transaction.
pub fn transaction(x: &Explorer, text: &str) -> Result<Vec<Entry>, ViewError> {
    let hash: B256 = text
        .parse()
        .map_err(|_| ViewError::BadInput(format!("{text:?} is not a transaction hash (0x and 64 hex digits)")))?;
    let entries: Vec<Entry> = x.index.read().expect("not poisoned").find(Key::Tx(hash)).cloned().collect();
    if entries.is_empty() {
        return Err(ViewError::NotFound(format!("transaction {hash} emitted no event of this deployment's contracts")));
    }
    Ok(entries)
}

/// Where a search lands: the path of the page for what `q` names. Takes a name, an address
/// (offline or online), a transaction, a root, a table id, `schema.table`, `schema.table:row`, a
/// job id or a training id (`job:N`, `training:N` when a number is both).
pub fn search(x: &Explorer, q: &str) -> Result<String, ViewError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(ViewError::BadInput(
            "type a name, an address, a transaction, a root, schema.table:row, a job or a training".into(),
        ));
    }
    let index = x.index.read().expect("not poisoned");
    let hex = |n: usize| q.len() == 2 + n && q.starts_with("0x") && q[2..].chars().all(|c| c.is_ascii_hexdigit());
    if hex(40) {
        return Ok(format!("/identity/{q}"));
    }
    if hex(64) {
        let word: B256 = q.parse().expect("64 hex digits");
        if index.knows(Key::Tx(word)) {
            return Ok(format!("/tx/{word}"));
        }
        if let Some(e) = index.find(Key::Word(word)).find(|e| e.event.event == "RootHashStored") {
            let table = e.event.field("tableId").and_then(|f| f.word()).unwrap_or_default();
            return Ok(format!("/table/{table}?root={word}"));
        }
        if index.find(Key::Word(word)).any(|e| e.event.event == "RootHashStored")
            || x.tables.iter().any(|t| table_id(&t.name()) == word)
        {
            return Ok(format!("/table/{word}"));
        }
        return Err(ViewError::NotFound(format!(
            "{word} is no transaction, root or table id this deployment's contracts recorded"
        )));
    }
    if let Some((kind, n)) = q.split_once(':')
        && (kind == "job" || kind == "training")
    {
        return Ok(format!("/{kind}/{}", n.trim()));
    }
    if let Some((table, row)) = q.rsplit_once(':') {
        return Ok(format!("/receipt/{table}/{row}"));
    }
    if let Ok(n) = q.parse::<U256>() {
        return match (index.knows(Key::Job(n)), index.knows(Key::Training(n))) {
            (true, false) => Ok(format!("/job/{n}")),
            (false, true) => Ok(format!("/training/{n}")),
            (true, true) => {
                Err(ViewError::NotFound(format!("{n} is both a job and a training: search job:{n} or training:{n}")))
            }
            (false, false) => Err(ViewError::NotFound(format!("there is no job or training {n} on this deployment"))),
        };
    }
    if iotegrity_core::names::validate_name(q).is_ok() && index.name(keccak256(q)).is_some() {
        return Ok(format!("/name/{q}"));
    }
    let id = table_id(q);
    if index.find(Key::Word(id)).any(|e| e.event.event == "RootHashStored") || x.tables.iter().any(|t| t.name() == q) {
        return Ok(format!("/table/{q}"));
    }
    if iotegrity_core::names::validate_name(q).is_ok() {
        return Ok(format!("/name/{q}"));
    }
    Err(ViewError::BadInput(format!("{q:?} is not a name, an address, a hash, schema.table[:row] or a number")))
}
