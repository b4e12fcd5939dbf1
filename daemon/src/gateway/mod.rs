//! The gateway role (paper Figure 5 a–d, DESIGN §7): sensor threads sample, the device key signs
//! each reading with its per-device sequence number, the gateway key countersigns (or aggregates a
//! group's readings), and every signed item goes into the fsynced [`journal`] before it is sent.
//! The deliverer sends the journal to the service in order, exactly once (the service deduplicates
//! by device and sequence); the local API takes signed commands and answers with signed feedback.
//! State — next sequence numbers, last command per device, unfinished aggregates — is rebuilt
//! from the journal on start, so a power cut at any point loses nothing signed and repeats nothing.

pub mod api;
pub mod config;
pub mod deliver;
pub mod journal;
pub mod profile;
pub mod sensors;

use crate::metrics::{Counter, Histogram, MetricSet, latency};
use alloy::primitives::{Address, B256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use config::{GatewayConfig, ProfileAction};
use eyre::{Result, WrapErr};
use iotegrity_core::signatures::{SignedAggregate, SignedReading, unix_now};
use iotegrity_core::wire::{AggregateSubmission, FeedbackSubmission, ReadingSubmission, SignedCommand};
use journal::Journal;
use profile::{DeviceProfile, Thresholds, Verdict};
use prometheus_client::registry::Registry;
use sensors::SensorError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// One journal record (docs/gateway.md lists them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The gateway's state when a segment starts.
    Checkpoint(Checkpoint),
    /// A signed reading, to be delivered; `flag` says why it is outside its traffic profile.
    Reading {
        /// Device name.
        device: String,
        /// Profile discrepancy, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        flag: Option<String>,
        /// The signed reading and its payload.
        submission: ReadingSubmission,
    },
    /// A signed reading waiting for its aggregate (kept as the original; not delivered alone).
    Member {
        /// Group name.
        group: String,
        /// The signed reading and its payload.
        submission: ReadingSubmission,
    },
    /// An aggregate over a group's members, to be delivered.
    Aggregate {
        /// Group name.
        group: String,
        /// The signed aggregate with its members.
        submission: AggregateSubmission,
    },
    /// A signed reading outside its profile, kept and never delivered (`action = "quarantine"`).
    Quarantined {
        /// Device name.
        device: String,
        /// Why.
        reason: String,
        /// The signed reading and its payload.
        submission: ReadingSubmission,
    },
    /// A verified service command, stored before it is applied.
    Command {
        /// The command as the service signed it.
        command: SignedCommand,
    },
    /// The device's signed feedback to a command, relayed by the gateway, to be delivered.
    Feedback {
        /// The exchange with both payloads.
        submission: FeedbackSubmission,
    },
}

/// What the gateway must remember across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Next sequence number of each device.
    pub next_sequence: BTreeMap<Address, u64>,
    /// Sequence of the last command accepted for each device.
    pub last_command: BTreeMap<Address, u64>,
    /// Signed members of each group not yet in an aggregate.
    pub pending: BTreeMap<String, Vec<ReadingSubmission>>,
}

impl Checkpoint {
    /// Applies a record that is now in the journal.
    pub fn apply(&mut self, record: &Record) {
        let mut saw = |s: &ReadingSubmission| {
            let next = self.next_sequence.entry(s.reading().device).or_insert(FIRST_SEQUENCE);
            *next = (*next).max(s.reading().sequence + 1);
        };
        match record {
            Record::Checkpoint(c) => *self = c.clone(),
            Record::Reading { submission, .. } | Record::Quarantined { submission, .. } => saw(submission),
            Record::Member { group, submission } => {
                saw(submission);
                self.pending.entry(group.clone()).or_default().push(submission.clone());
            }
            Record::Aggregate { group, submission } => {
                submission.members.iter().for_each(&mut saw);
                self.pending.remove(group);
            }
            Record::Command { command } => {
                self.last_command.insert(command.command.device, command.command.sequence);
            }
            Record::Feedback { .. } => {}
        }
    }
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct GatewayMetrics {
    /// Readings signed and journaled.
    pub readings_signed: Counter,
    /// Samples a sensor refused (e.g. a telegram with a bad CRC).
    pub samples_rejected: Counter,
    /// Sensor read errors.
    pub sensor_errors: Counter,
    /// Readings outside their traffic profile.
    pub profile_outliers: Counter,
    /// Aggregates signed.
    pub aggregates_signed: Counter,
    /// Journal records acknowledged by the service.
    pub records_delivered: Counter,
    /// Delivery attempts that failed (retried).
    pub delivery_errors: Counter,
    /// Items the service refused for good (kept in `refused.jsonl`).
    pub items_refused: Counter,
    /// Commands applied.
    pub commands_applied: Counter,
    /// Commands refused.
    pub commands_refused: Counter,
    /// Seconds per delivery request to the service (`POST /v1/readings/batch`, …), answered or not.
    pub delivery: Histogram,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            readings_signed: Counter::default(),
            samples_rejected: Counter::default(),
            sensor_errors: Counter::default(),
            profile_outliers: Counter::default(),
            aggregates_signed: Counter::default(),
            records_delivered: Counter::default(),
            delivery_errors: Counter::default(),
            items_refused: Counter::default(),
            commands_applied: Counter::default(),
            commands_refused: Counter::default(),
            delivery: latency(),
        }
    }
}

impl MetricSet for GatewayMetrics {
    fn register(&self, r: &mut Registry) {
        r.register("iotegrity_gateway_readings_signed", "Readings signed and journaled", self.readings_signed.clone());
        r.register(
            "iotegrity_gateway_samples_rejected",
            "Samples refused by a sensor (bad CRC)",
            self.samples_rejected.clone(),
        );
        r.register("iotegrity_gateway_sensor_errors", "Sensor read errors", self.sensor_errors.clone());
        r.register(
            "iotegrity_gateway_profile_outliers",
            "Readings outside the traffic profile",
            self.profile_outliers.clone(),
        );
        r.register("iotegrity_gateway_aggregates_signed", "Aggregates signed", self.aggregates_signed.clone());
        r.register(
            "iotegrity_gateway_records_delivered",
            "Records acknowledged by the service",
            self.records_delivered.clone(),
        );
        r.register("iotegrity_gateway_delivery_errors", "Failed delivery attempts", self.delivery_errors.clone());
        r.register("iotegrity_gateway_items_refused", "Items the service refused for good", self.items_refused.clone());
        r.register("iotegrity_gateway_commands_applied", "Commands applied", self.commands_applied.clone());
        r.register("iotegrity_gateway_commands_refused", "Commands refused", self.commands_refused.clone());
        r.register(
            "iotegrity_gateway_delivery_seconds",
            "Seconds per delivery request to the service",
            self.delivery.clone(),
        );
    }
}

/// A device behind the gateway.
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its online key.
    pub key: PrivateKeySigner,
    /// Its sampling interval, ms (commands change it).
    pub interval_ms: AtomicU64,
    /// Index of its aggregate group.
    pub group: Option<usize>,
    /// Readings outside the profile so far.
    pub outliers: AtomicU64,
}

/// The part the signer and the API share: journal and state change together, under one lock.
pub struct Core {
    /// The journal.
    pub journal: Journal<Record>,
    /// The state after the last journaled record.
    pub state: Checkpoint,
    profiles: BTreeMap<usize, DeviceProfile>,
}

impl Core {
    /// Journals records (one fsync) and applies them to the state; rotates a full segment.
    pub fn commit(&mut self, records: Vec<Record>) -> Result<()> {
        let mut next = self.state.clone();
        records.iter().for_each(|r| next.apply(r));
        self.commit_planned(records, next)
    }

    /// As [`Core::commit`], for a caller that already applied the records to a copy of the state:
    /// `next` becomes the state once they are journaled (and not if the journal fails).
    fn commit_planned(&mut self, records: Vec<Record>, next: Checkpoint) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.journal.append(&records)?;
        self.state = next;
        if self.journal.is_full() {
            self.journal.rotate(Record::Checkpoint(self.state.clone()))?;
        }
        Ok(())
    }
}

/// The running gateway.
pub struct Gateway {
    /// Configuration.
    pub cfg: GatewayConfig,
    /// The signing domain.
    pub domain: Eip712Domain,
    /// The gateway's online key.
    pub key: PrivateKeySigner,
    /// The devices, in config order.
    pub devices: Vec<Device>,
    /// Journal and state.
    pub core: Mutex<Core>,
    /// Counters.
    pub metrics: Arc<GatewayMetrics>,
    /// Woken when records are journaled.
    pub journaled: tokio::sync::Notify,
    book: iotegrity_core::AddressBook,
}

/// A device's first sequence number: sequences count from 1 (docs/eip712.md).
pub(crate) const FIRST_SEQUENCE: u64 = 1;

/// A sample from a sensor thread.
struct Sample {
    device: usize,
    payload: Vec<u8>,
    at: Instant,
}

impl Gateway {
    /// Opens keys and the journal (rebuilding the state from it).
    pub fn open(cfg: GatewayConfig) -> Result<Arc<Self>> {
        let password = crate::files::keystore_password(cfg.gateway.password_file.as_deref(), "gateway.password_file")?;
        let open = |path: &std::path::Path| iotegrity_core::keys::open_keystore(path, &password);
        let key = open(&cfg.gateway.keystore).wrap_err("gateway key")?;
        let mut devices = Vec::new();
        for d in &cfg.devices {
            let group = cfg.aggregates.iter().position(|g| g.devices.contains(&d.name));
            devices.push(Device {
                name: d.name.clone(),
                key: open(&d.keystore).wrap_err_with(|| format!("device {}", d.name))?,
                interval_ms: AtomicU64::new(d.interval_ms),
                group,
                outliers: AtomicU64::new(0),
            });
        }
        let book = iotegrity_core::AddressBook::load(&cfg.chain.deployments)
            .wrap_err_with(|| format!("address book {}", cfg.chain.deployments.display()))?;
        let domain = iotegrity_core::signatures::domain_of(&book);
        let dir = cfg.gateway.state_dir.join("journal");
        let (journal, records) =
            Journal::open(&dir, cfg.gateway.segment_bytes, || Record::Checkpoint(Checkpoint::default()))?;
        let mut state = Checkpoint::default();
        for (_, r) in &records {
            state.apply(r);
        }
        info!(
            records = records.len(),
            backlog = journal.backlog(),
            devices = devices.len(),
            gateway = %key.address(),
            "journal opened"
        );
        Ok(Arc::new(Self {
            cfg,
            domain,
            key,
            devices,
            core: Mutex::new(Core { journal, state, profiles: BTreeMap::new() }),
            metrics: Arc::new(GatewayMetrics::default()),
            journaled: tokio::sync::Notify::new(),
            book,
        }))
    }

    /// The deployment's address book.
    pub fn book(&self) -> &iotegrity_core::AddressBook {
        &self.book
    }

    /// Locks journal and state (a poisoned lock means a panic mid-commit: stop).
    pub fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().expect("gateway core lock poisoned")
    }

    /// Signs a batch of samples and journals the result with one fsync.
    fn sign_batch(&self, samples: Vec<Sample>) -> Result<()> {
        let thresholds = Thresholds {
            learn: self.cfg.profile.learn,
            rate_factor: self.cfg.profile.rate_factor,
            size_factor: self.cfg.profile.size_factor,
        };
        let now = unix_now();
        let mut core = self.core();
        let mut next = core.state.clone();
        let mut records = Vec::with_capacity(samples.len());
        let mut signed = 0;
        for s in samples {
            let dev = &self.devices[s.device];
            let verdict = core.profiles.entry(s.device).or_default().observe(&thresholds, s.payload.len(), s.at);
            let flag = match verdict {
                Verdict::Outlier(why) => {
                    self.metrics.profile_outliers.inc();
                    let n = dev.outliers.fetch_add(1, Ordering::Relaxed) + 1;
                    warn!(device = %dev.name, address = %dev.key.address(), outliers = n, action = ?self.cfg.profile.action, "{why}");
                    if self.cfg.profile.action == ProfileAction::Drop {
                        continue;
                    }
                    Some(why)
                }
                _ => None,
            };
            let seq = next.next_sequence.get(&dev.key.address()).copied().unwrap_or(FIRST_SEQUENCE);
            let mut reading = SignedReading::new(&dev.key, seq, now, keccak256(&s.payload), &self.domain);
            reading.countersign(&self.key, &self.domain);
            let submission = ReadingSubmission::new(&reading, &s.payload);
            let record = match (flag, dev.group) {
                (Some(reason), _) if self.cfg.profile.action == ProfileAction::Quarantine => {
                    Record::Quarantined { device: dev.name.clone(), reason, submission }
                }
                (None, Some(g)) => Record::Member { group: self.cfg.aggregates[g].group.clone(), submission },
                (flag, _) => Record::Reading { device: dev.name.clone(), flag, submission },
            };
            next.apply(&record);
            records.push(record);
            signed += 1;
            if let Some(g) = dev.group {
                let group = &self.cfg.aggregates[g];
                if next.pending.get(&group.group).is_some_and(|p| p.len() >= group.size) {
                    let record = self.aggregate(&group.group, next.pending[&group.group].clone());
                    next.apply(&record);
                    records.push(record);
                }
            }
        }
        core.commit_planned(records, next)?;
        drop(core);
        self.metrics.readings_signed.inc_by(signed);
        self.journaled.notify_one();
        Ok(())
    }

    /// (c) Signs an aggregate over members: hash of their payloads in order, group id keccak(name).
    fn aggregate(&self, group: &str, members: Vec<ReadingSubmission>) -> Record {
        let payloads: Vec<u8> = members.iter().flat_map(|m| m.payload.iter().copied()).collect();
        let signed = SignedAggregate::new(
            &self.key,
            keccak256(&payloads),
            B256::from(keccak256(group.as_bytes())),
            members.iter().map(|m| m.signed.clone()).collect(),
            &self.domain,
        );
        self.metrics.aggregates_signed.inc();
        Record::Aggregate {
            group: group.to_string(),
            submission: AggregateSubmission { aggregate: signed.aggregate, members, signature: signed.signature },
        }
    }

    /// Forgets what the profile learned of a device (its interval was changed on purpose).
    pub fn relearn(&self, device: usize) {
        self.core().profiles.remove(&device);
    }

    /// Starts one thread per sensor and the signer thread. Sensors that cannot be opened are
    /// an error (a misconfigured Pi should not start half-blind).
    pub fn start_sensors(self: &Arc<Self>) -> Result<()> {
        let (tx, rx) = mpsc::sync_channel::<Sample>(4096);
        for (i, d) in self.cfg.devices.iter().enumerate() {
            let mut sensor = d.sensor.open().map_err(|e| eyre::eyre!("device {}: {e}", d.name))?;
            let (tx, gw) = (tx.clone(), self.clone());
            std::thread::Builder::new().name(format!("sensor-{}", d.name)).spawn(move || {
                loop {
                    let interval = Duration::from_millis(gw.devices[i].interval_ms.load(Ordering::Relaxed));
                    match sensor.next(interval) {
                        Ok(payload) => {
                            if tx.send(Sample { device: i, payload, at: Instant::now() }).is_err() {
                                return;
                            }
                        }
                        Err(SensorError::Rejected(why)) => {
                            gw.metrics.samples_rejected.inc();
                            warn!(device = %gw.devices[i].name, "sample refused, not signed: {why}");
                        }
                        Err(e) => {
                            gw.metrics.sensor_errors.inc();
                            warn!(device = %gw.devices[i].name, "{e}");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            })?;
        }
        let gw = self.clone();
        std::thread::Builder::new().name("signer".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < 512 {
                    match rx.try_recv() {
                        Ok(s) => batch.push(s),
                        Err(_) => break,
                    }
                }
                if let Err(e) = gw.sign_batch(batch) {
                    // The journal cannot be written (disk full, card failing): nothing unjournaled
                    // may be sent, so stop the process and let systemd restart it.
                    tracing::error!("cannot journal signed readings: {e:#}");
                    std::process::exit(70);
                }
            }
        })?;
        Ok(())
    }

    /// Runs until `shutdown`: sensors, signer, deliverer, and the API if configured.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        if let Some(addr) = &self.cfg.api.listen {
            let api_cfg = &self.cfg.api;
            let tls = crate::http::Tls::from_config(
                "[api]",
                api_cfg.tls_cert.as_deref(),
                api_cfg.tls_key.as_deref(),
                &api_cfg.client_names,
                &iotegrity_core::chain::reader(&self.cfg.chain.rpc_url)?,
                &self.book,
            )?;
            let listener = crate::http::bind(addr, "gateway API").await?;
            let app = api::router(self.clone()).await;
            let http = self.cfg.http.clone();
            tokio::spawn(async move { crate::http::serve(listener, app, &http, tls, std::future::pending()).await });
        }
        let service = deliver::service_peer(&self)?;
        self.start_sensors()?;
        let deliverer = tokio::spawn(deliver::run(self.clone(), service));
        shutdown.await;
        deliverer.abort();
        // Everything signed is already journaled (fsync before send): nothing to flush.
        let core = self.core();
        info!(backlog = core.journal.backlog(), "gateway stopped; undelivered records stay in the journal");
        Ok(())
    }
}
