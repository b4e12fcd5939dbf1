//! The chain of signatures (paper §4, Figure 5): every step is secp256k1 ECDSA over EIP-712 typed
//! data in the iotegrity domain ([`crate::keys::domain`]), so standard tools verify each one from
//! its exported `eth_signTypedData_v4` JSON. Types and rules: docs/eip712.md.
//!
//! - (a) a device signs its [`Reading`] (per-device sequence number, time, payload hash);
//! - (b) each gateway hop signs [`Countersign`]: the reading and every earlier signature;
//! - (c) a gateway signs an [`Aggregate`] of several devices' readings under a group id, over the
//!   members' last signatures (the originals are kept);
//! - (d) a service signs a [`Command`]; the device signs its [`Feedback`] over the service's
//!   signature; the gateway signs the [`Relay`] over both.
//!
//! Verification recovers every signer and asks a [`KeyDirectory`] whether it is an active online
//! key with the right role, and names the exact step that fails.

use crate::contracts::Role;
use crate::keys::domain;
use alloy::dyn_abi::TypedData;
use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use serde::{Deserialize, Serialize};

alloy::sol! {
    /// (a) What a device signs for each reading.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Reading {
        address device;
        uint64 sequence;
        uint64 timestamp;
        bytes32 payloadHash;
    }

    /// (b) What a gateway hop signs: the reading and all earlier signatures, in order.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Countersign {
        Reading reading;
        bytes[] signatures;
    }

    /// (c) What a gateway signs for an aggregate of several devices' readings.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Aggregate {
        bytes32 aggregateHash;
        bytes32 groupId;
        bytes[] memberSignatures;
    }

    /// (d) What a service signs to command a device.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Command {
        address service;
        address device;
        uint64 sequence;
        uint64 timestamp;
        bytes32 commandHash;
    }

    /// (d) What the device signs in answer: its feedback over the service's signature.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Feedback {
        bytes32 feedbackHash;
        bytes commandSignature;
    }

    /// (d) What the gateway signs to relay the feedback: over both earlier signatures.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Relay {
        bytes32 feedbackHash;
        bytes commandSignature;
        bytes deviceSignature;
    }
}

/// What the chain says of an online key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The current key of an open identity with this role.
    Active {
        /// Its identity's role.
        role: Role,
    },
    /// A key that was rotated out, or whose identity is closed.
    Inactive,
    /// Never registered.
    Unknown,
}

/// Answers whether an online key may sign (the IdentityRegistry, or a cache of it).
pub trait KeyDirectory {
    /// The status of `online` now.
    fn status(&self, online: Address) -> KeyStatus;

    /// If `online` was an active key before the moment this directory describes and is no longer
    /// (rotated out, or its identity closed): its role then, and the block at which it ended.
    /// None if it never ended, or the directory does not know.
    fn ended(&self, _online: Address) -> Option<(Role, u64)> {
        None
    }
}

/// A directory as it was while each ended key was still active: an ended key counts as active
/// with its role. Verifying against it tells a chain whose only fault is a key that ended after it
/// signed from one that never verified.
pub struct WhileActive<'a, D>(pub &'a D);

impl<D: KeyDirectory> KeyDirectory for WhileActive<'_, D> {
    fn status(&self, online: Address) -> KeyStatus {
        match (self.0.status(online), self.0.ended(online)) {
            (KeyStatus::Inactive, Some((role, _))) => KeyStatus::Active { role },
            (status, _) => status,
        }
    }
}

/// Which step of a chain failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The device's signature (hop 0).
    Device,
    /// Gateway hop `n` (1-based).
    Gateway(usize),
    /// The gateway's aggregate signature.
    AggregateGateway,
    /// Member `n` (0-based) of an aggregate.
    Member(usize, Box<Step>),
    /// The service's command signature.
    Service,
    /// The device's feedback signature.
    Feedback,
    /// The gateway's relay signature.
    Relay,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Device => write!(f, "device signature"),
            Self::Gateway(n) => write!(f, "gateway hop {n}"),
            Self::AggregateGateway => write!(f, "aggregate signature"),
            Self::Member(n, step) => write!(f, "member {n}: {step}"),
            Self::Service => write!(f, "service command signature"),
            Self::Feedback => write!(f, "device feedback signature"),
            Self::Relay => write!(f, "gateway relay signature"),
        }
    }
}

/// Why a chain failed: the step, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {kind}")]
pub struct VerifyError {
    /// Where.
    pub step: Step,
    /// What.
    pub kind: Failure,
}

/// What was wrong with a step's signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The signature bytes are not a valid 65-byte signature or do not recover.
    #[error("malformed signature")]
    Malformed,
    /// The signature recovers to someone other than the claimed signer.
    #[error("signed by {got}, expected {expected}")]
    WrongSigner {
        /// The claimed signer.
        expected: Address,
        /// Who actually signed.
        got: Address,
    },
    /// The signer was never registered.
    #[error("{signer} is not a registered online key")]
    UnknownKey {
        /// The signer.
        signer: Address,
    },
    /// The signer's key was rotated out or its identity closed.
    #[error("{signer} is no longer an active key (rotated or closed)")]
    InactiveKey {
        /// The signer.
        signer: Address,
    },
    /// The signer has the wrong role for this step.
    #[error("{signer} has role {}, not a {} key", role.name(), expected.name())]
    WrongRole {
        /// The signer.
        signer: Address,
        /// Its role.
        role: Role,
        /// The role this step needs.
        expected: Role,
    },
    /// The chain's structure is inconsistent (e.g. an aggregate's member signatures do not match).
    #[error("{0}")]
    Inconsistent(&'static str),
}

impl VerifyError {
    fn new(step: Step, kind: Failure) -> Self {
        Self { step, kind }
    }

    /// Whether the chain itself is sound but a signer may not sign (unknown, inactive, wrong
    /// role): the chain may say otherwise after the next registry event.
    pub fn is_key_problem(&self) -> bool {
        matches!(self.kind, Failure::UnknownKey { .. } | Failure::InactiveKey { .. } | Failure::WrongRole { .. })
    }

    /// The HTTP status every API of the project answers it with: 403 for a key problem, 422 for
    /// a chain that can never verify.
    pub fn http_status(&self) -> u16 {
        if self.is_key_problem() { 403 } else { 422 }
    }
}

/// A reading with its chain: `signatures[0]` by the device, `signatures[k]` by gateway hop k.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedReading {
    /// The signed fields.
    pub reading: Reading,
    /// Device signature, then one per gateway hop.
    pub signatures: Vec<Bytes>,
}

/// An aggregate with its members (the originals) and the gateway's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAggregate {
    /// The signed fields; `memberSignatures` are the members' last signatures.
    pub aggregate: Aggregate,
    /// The members' full chains.
    pub members: Vec<SignedReading>,
    /// The aggregating gateway's signature.
    pub signature: Bytes,
}

/// A command and its answer through a gateway (Figure 5d).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandExchange {
    /// The command.
    pub command: Command,
    /// The service's signature over it.
    pub command_signature: Bytes,
    /// Hash of the device's feedback payload.
    pub feedback_hash: B256,
    /// The device's signature over [`Feedback`].
    pub device_signature: Bytes,
    /// The gateway's signature over [`Relay`].
    pub relay_signature: Bytes,
}

/// Signs `value` (EIP-712 in `domain`) with a local key: the 65-byte `r ‖ s ‖ v` signature.
pub fn sign<S: SolStruct>(signer: &PrivateKeySigner, value: &S, domain: &Eip712Domain) -> Bytes {
    let sig = signer.sign_hash_sync(&value.eip712_signing_hash(domain)).expect("local signing cannot fail");
    Bytes::from(sig.as_bytes().to_vec())
}

/// Recovers the signer of `value`.
pub fn recover<S: SolStruct>(
    value: &S,
    signature: &[u8],
    domain: &Eip712Domain,
    step: &Step,
) -> Result<Address, VerifyError> {
    recover_prehash(&value.eip712_signing_hash(domain), signature)
        .ok_or_else(|| VerifyError::new(step.clone(), Failure::Malformed))
}

/// secp256k1n / 2: larger `s` values are the malleable twin of a valid signature.
const HALF_ORDER: [u8; 32] =
    alloy::primitives::hex!("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");

/// Recovers the address that signed `hash` with a 65-byte `r ‖ s ‖ v` signature, with
/// libsecp256k1. Every signature has one encoding, as OpenZeppelin's ECDSA accepts it: `v` is 27
/// or 28 (not 0 or 1), `s` in the lower half of the order; anything else is refused.
pub fn recover_prehash(hash: &B256, signature: &[u8]) -> Option<Address> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    if signature.len() != 65 || signature[32..64] > HALF_ORDER[..] {
        return None;
    }
    let id = match signature[64] {
        v @ (27 | 28) => v - 27,
        _ => return None,
    };
    let sig = RecoverableSignature::from_compact(&signature[..64], RecoveryId::try_from(i32::from(id)).ok()?).ok()?;
    let key = secp256k1::SECP256K1.recover_ecdsa(secp256k1::Message::from_digest(hash.0), &sig).ok()?;
    Some(Address::from_raw_public_key(&key.serialize_uncompressed()[1..]))
}

fn check_key(dir: &impl KeyDirectory, signer: Address, expected: Role, step: &Step) -> Result<(), VerifyError> {
    let kind = match dir.status(signer) {
        KeyStatus::Active { role } if role == expected => return Ok(()),
        KeyStatus::Active { role } => Failure::WrongRole { signer, role, expected },
        KeyStatus::Inactive => Failure::InactiveKey { signer },
        KeyStatus::Unknown => Failure::UnknownKey { signer },
    };
    Err(VerifyError::new(step.clone(), kind))
}

impl SignedReading {
    /// (a) The device signs a new reading.
    pub fn new(
        device: &PrivateKeySigner,
        sequence: u64,
        timestamp: u64,
        payload_hash: B256,
        domain: &Eip712Domain,
    ) -> Self {
        let reading = Reading { device: device.address(), sequence, timestamp, payloadHash: payload_hash };
        let sig = sign(device, &reading, domain);
        Self { reading, signatures: vec![sig] }
    }

    /// (b) A gateway countersigns the reading and every signature so far.
    pub fn countersign(&mut self, gateway: &PrivateKeySigner, domain: &Eip712Domain) {
        let value = Countersign { reading: self.reading.clone(), signatures: self.signatures.clone() };
        self.signatures.push(sign(gateway, &value, domain));
    }

    fn recover_step(&self, k: usize, domain: &Eip712Domain) -> Result<Address, VerifyError> {
        if k == 0 {
            return recover(&self.reading, &self.signatures[0], domain, &Step::Device);
        }
        let value = Countersign { reading: self.reading.clone(), signatures: self.signatures[..k].to_vec() };
        recover(&value, &self.signatures[k], domain, &Step::Gateway(k))
    }

    /// Verifies every step: the device signed as `reading.device`, each hop was an active gateway.
    /// Returns the signers, device first.
    pub fn verify(&self, domain: &Eip712Domain, dir: &impl KeyDirectory) -> Result<Vec<Address>, VerifyError> {
        if self.signatures.is_empty() {
            return Err(VerifyError::new(Step::Device, Failure::Inconsistent("no signatures")));
        }
        let mut signers = Vec::with_capacity(self.signatures.len());
        for k in 0..self.signatures.len() {
            let step = if k == 0 { Step::Device } else { Step::Gateway(k) };
            let signer = self.recover_step(k, domain)?;
            if k == 0 && signer != self.reading.device {
                return Err(VerifyError::new(
                    step,
                    Failure::WrongSigner { expected: self.reading.device, got: signer },
                ));
            }
            check_key(dir, signer, if k == 0 { Role::Device } else { Role::Gateway }, &step)?;
            signers.push(signer);
        }
        Ok(signers)
    }

    /// Each signature as `{ typedData, signature, signer }`, for `eth_signTypedData_v4` verifiers.
    pub fn export(&self, domain: &Eip712Domain) -> Result<serde_json::Value, VerifyError> {
        let mut steps = Vec::new();
        for (k, sig) in self.signatures.iter().enumerate() {
            let typed = if k == 0 {
                TypedData::from_struct(&self.reading, Some(domain.clone()))
            } else {
                let value = Countersign { reading: self.reading.clone(), signatures: self.signatures[..k].to_vec() };
                TypedData::from_struct(&value, Some(domain.clone()))
            };
            steps.push(
                serde_json::json!({ "typedData": typed, "signature": sig, "signer": self.recover_step(k, domain)? }),
            );
        }
        Ok(serde_json::Value::Array(steps))
    }
}

impl SignedAggregate {
    /// (c) A gateway aggregates members' readings under `group_id`.
    pub fn new(
        gateway: &PrivateKeySigner,
        aggregate_hash: B256,
        group_id: B256,
        members: Vec<SignedReading>,
        domain: &Eip712Domain,
    ) -> Self {
        let member_signatures = members.iter().map(|m| m.signatures.last().cloned().unwrap_or_default()).collect();
        let aggregate =
            Aggregate { aggregateHash: aggregate_hash, groupId: group_id, memberSignatures: member_signatures };
        let signature = sign(gateway, &aggregate, domain);
        Self { aggregate, members, signature }
    }

    /// Verifies every member's chain, that the signed member list is theirs, and the gateway.
    /// Returns who signed: the gateway, and each member's signers (device first).
    pub fn verify(&self, domain: &Eip712Domain, dir: &impl KeyDirectory) -> Result<AggregateSigners, VerifyError> {
        if self.aggregate.memberSignatures.len() != self.members.len() {
            return Err(VerifyError::new(
                Step::AggregateGateway,
                Failure::Inconsistent("member count differs from the signed list"),
            ));
        }
        let mut members = Vec::with_capacity(self.members.len());
        for (i, (m, signed)) in self.members.iter().zip(&self.aggregate.memberSignatures).enumerate() {
            members.push(m.verify(domain, dir).map_err(|e| nest(i, e))?);
            if m.signatures.last() != Some(signed) {
                return Err(VerifyError::new(
                    Step::Member(i, Box::new(Step::AggregateGateway)),
                    Failure::Inconsistent("member signature differs from the signed list"),
                ));
            }
        }
        let gateway = recover(&self.aggregate, &self.signature, domain, &Step::AggregateGateway)?;
        check_key(dir, gateway, Role::Gateway, &Step::AggregateGateway)?;
        Ok(AggregateSigners { gateway, members })
    }
}

/// Who signed a verified aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateSigners {
    /// The aggregating gateway.
    pub gateway: Address,
    /// Each member's signers, device first.
    pub members: Vec<Vec<Address>>,
}

fn nest(i: usize, e: VerifyError) -> VerifyError {
    VerifyError { step: Step::Member(i, Box::new(e.step)), kind: e.kind }
}

/// (d) Verifies a service's command: signed by `command.service`, an active service key.
pub fn verify_command(
    command: &Command,
    signature: &[u8],
    domain: &Eip712Domain,
    dir: &impl KeyDirectory,
) -> Result<(), VerifyError> {
    let service = recover(command, signature, domain, &Step::Service)?;
    if service != command.service {
        return Err(VerifyError::new(Step::Service, Failure::WrongSigner { expected: command.service, got: service }));
    }
    check_key(dir, service, Role::Service, &Step::Service)
}

impl CommandExchange {
    /// (d) The service signs a command.
    pub fn command(
        service: &PrivateKeySigner,
        device: Address,
        sequence: u64,
        timestamp: u64,
        command_hash: B256,
        domain: &Eip712Domain,
    ) -> (Command, Bytes) {
        let command = Command { service: service.address(), device, sequence, timestamp, commandHash: command_hash };
        let sig = sign(service, &command, domain);
        (command, sig)
    }

    /// (d) The device answers with feedback, and the gateway relays it.
    pub fn answer(
        command: Command,
        command_signature: Bytes,
        feedback_hash: B256,
        device: &PrivateKeySigner,
        gateway: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Self {
        let device_signature = sign(
            device,
            &Feedback { feedbackHash: feedback_hash, commandSignature: command_signature.clone() },
            domain,
        );
        let relay = Relay {
            feedbackHash: feedback_hash,
            commandSignature: command_signature.clone(),
            deviceSignature: device_signature.clone(),
        };
        let relay_signature = sign(gateway, &relay, domain);
        Self { command, command_signature, feedback_hash, device_signature, relay_signature }
    }

    /// Verifies the service, the device (the command's addressee) and the relaying gateway;
    /// returns the gateway.
    pub fn verify(&self, domain: &Eip712Domain, dir: &impl KeyDirectory) -> Result<Address, VerifyError> {
        verify_command(&self.command, &self.command_signature, domain, dir)?;
        let feedback = Feedback { feedbackHash: self.feedback_hash, commandSignature: self.command_signature.clone() };
        let device = recover(&feedback, &self.device_signature, domain, &Step::Feedback)?;
        if device != self.command.device {
            return Err(VerifyError::new(
                Step::Feedback,
                Failure::WrongSigner { expected: self.command.device, got: device },
            ));
        }
        check_key(dir, device, Role::Device, &Step::Feedback)?;
        let relay = Relay {
            feedbackHash: self.feedback_hash,
            commandSignature: self.command_signature.clone(),
            deviceSignature: self.device_signature.clone(),
        };
        let gateway = recover(&relay, &self.relay_signature, domain, &Step::Relay)?;
        check_key(dir, gateway, Role::Gateway, &Step::Relay)?;
        Ok(gateway)
    }
}

/// Seconds since the Unix epoch (0 before it): the time a device puts in a reading and a service
/// in a command.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The iotegrity domain for a deployment (re-exported here for signers of readings).
pub fn domain_of(book: &crate::AddressBook) -> Eip712Domain {
    domain(book.chain_id, book.identity_registry())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Dir(HashMap<Address, KeyStatus>);
    impl KeyDirectory for Dir {
        fn status(&self, online: Address) -> KeyStatus {
            self.0.get(&online).copied().unwrap_or(KeyStatus::Unknown)
        }
    }

    struct World {
        d: Eip712Domain,
        dev: PrivateKeySigner,
        gw1: PrivateKeySigner,
        gw2: PrivateKeySigner,
        svc: PrivateKeySigner,
        dir: Dir,
    }

    fn world() -> World {
        let (dev, gw1, gw2, svc) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        let mut m = HashMap::new();
        m.insert(dev.address(), KeyStatus::Active { role: Role::Device });
        m.insert(gw1.address(), KeyStatus::Active { role: Role::Gateway });
        m.insert(gw2.address(), KeyStatus::Active { role: Role::Gateway });
        m.insert(svc.address(), KeyStatus::Active { role: Role::Service });
        World { d: domain(31337, Address::repeat_byte(1)), dev, gw1, gw2, svc, dir: Dir(m) }
    }

    fn two_hops(w: &World) -> SignedReading {
        let mut r = SignedReading::new(&w.dev, 7, 1_700_000_000, B256::repeat_byte(9), &w.d);
        r.countersign(&w.gw1, &w.d);
        r.countersign(&w.gw2, &w.d);
        r
    }

    #[test]
    fn reading_with_two_hops_verifies() {
        let w = world();
        let r = two_hops(&w);
        assert_eq!(r.verify(&w.d, &w.dir).unwrap(), vec![w.dev.address(), w.gw1.address(), w.gw2.address()]);
    }

    #[test]
    fn tampering_pinpoints_the_step() {
        let w = world();
        // Altered payload: the device's signature no longer matches (recovers to someone else).
        let mut r = two_hops(&w);
        r.reading.payloadHash = B256::repeat_byte(8);
        assert!(matches!(
            r.verify(&w.d, &w.dir),
            Err(VerifyError { step: Step::Device, kind: Failure::WrongSigner { .. } })
        ));
        // A hop's signature replaced by garbage.
        let mut r = two_hops(&w);
        r.signatures[2] = Bytes::from(vec![1u8; 10]);
        assert_eq!(r.verify(&w.d, &w.dir), Err(VerifyError::new(Step::Gateway(2), Failure::Malformed)));
        // Hops reordered: hop 1 now signs over a different prefix and recovers to an unknown key.
        let mut r = two_hops(&w);
        r.signatures.swap(1, 2);
        assert!(matches!(
            r.verify(&w.d, &w.dir),
            Err(VerifyError { step: Step::Gateway(1), kind: Failure::UnknownKey { .. } })
        ));
        // Another chain's domain.
        let r = two_hops(&w);
        assert!(r.verify(&domain(1, Address::repeat_byte(1)), &w.dir).is_err());
    }

    #[test]
    fn key_status_is_enforced() {
        let mut w = world();
        let r = two_hops(&w);
        w.dir.0.insert(w.gw1.address(), KeyStatus::Inactive);
        assert_eq!(
            r.verify(&w.d, &w.dir),
            Err(VerifyError::new(Step::Gateway(1), Failure::InactiveKey { signer: w.gw1.address() }))
        );
        w.dir.0.insert(w.gw1.address(), KeyStatus::Active { role: Role::Service });
        assert!(matches!(
            r.verify(&w.d, &w.dir),
            Err(VerifyError { step: Step::Gateway(1), kind: Failure::WrongRole { role: Role::Service, .. } })
        ));
        let stranger = PrivateKeySigner::random();
        let r = SignedReading::new(&stranger, 1, 1, B256::ZERO, &w.d);
        assert!(matches!(
            r.verify(&w.d, &w.dir),
            Err(VerifyError { step: Step::Device, kind: Failure::UnknownKey { .. } })
        ));
    }

    #[test]
    fn aggregate_verifies_and_detects_swapped_members() {
        let w = world();
        let a = two_hops(&w);
        let mut b = SignedReading::new(&w.dev, 8, 1_700_000_001, B256::repeat_byte(3), &w.d);
        b.countersign(&w.gw1, &w.d);
        let agg =
            SignedAggregate::new(&w.gw1, B256::repeat_byte(5), B256::repeat_byte(6), vec![a.clone(), b.clone()], &w.d);
        assert_eq!(agg.verify(&w.d, &w.dir).unwrap().gateway, w.gw1.address());
        let mut swapped = agg.clone();
        swapped.members.swap(0, 1);
        assert!(matches!(swapped.verify(&w.d, &w.dir), Err(VerifyError { kind: Failure::Inconsistent(_), .. })));
        let mut bad_member = agg.clone();
        bad_member.members[1].reading.sequence = 99;
        assert!(matches!(
            bad_member.verify(&w.d, &w.dir),
            Err(VerifyError { step: Step::Member(1, _), kind: Failure::WrongSigner { .. } })
        ));
    }

    #[test]
    fn command_exchange_verifies_each_party() {
        let w = world();
        let (cmd, sig) =
            CommandExchange::command(&w.svc, w.dev.address(), 1, 1_700_000_000, B256::repeat_byte(1), &w.d);
        let ex = CommandExchange::answer(cmd, sig, B256::repeat_byte(2), &w.dev, &w.gw1, &w.d);
        assert_eq!(ex.verify(&w.d, &w.dir).unwrap(), w.gw1.address());
        let mut forged = ex.clone();
        forged.feedback_hash = B256::repeat_byte(3);
        assert!(matches!(
            forged.verify(&w.d, &w.dir),
            Err(VerifyError { step: Step::Feedback, kind: Failure::WrongSigner { .. } })
        ));
        // A device cannot issue commands.
        let (cmd, sig) = CommandExchange::command(&w.dev, w.dev.address(), 1, 1, B256::ZERO, &w.d);
        let ex = CommandExchange::answer(cmd, sig, B256::ZERO, &w.dev, &w.gw1, &w.d);
        let err = ex.verify(&w.d, &w.dir).unwrap_err();
        assert!(matches!(err, VerifyError { step: Step::Service, kind: Failure::WrongRole { .. } }));
        assert_eq!((err.is_key_problem(), err.http_status()), (true, 403));
        assert!(err.to_string().ends_with("has role device, not a service key"), "{err}");
    }

    #[test]
    fn libsecp256k1_recovery_agrees_with_k256_and_rejects_malleable_twins() {
        use alloy::primitives::{Signature, U256, keccak256};
        let signer = PrivateKeySigner::random();
        for i in 0..50u64 {
            let hash = keccak256(i.to_be_bytes());
            let sig = signer.sign_hash_sync(&hash).unwrap();
            let k256 = sig.recover_address_from_prehash(&hash).unwrap();
            assert_eq!(recover_prehash(&hash, &sig.as_bytes()), Some(k256));
            // The high-s twin (n - s, flipped v) recovers the same key in plain ECDSA: refused here.
            let n = U256::from_be_bytes(alloy::primitives::hex!(
                "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
            ));
            let twin = Signature::new(sig.r(), n - sig.s(), !sig.v());
            assert_eq!(recover_prehash(&hash, &twin.as_bytes()), None, "malleable twin refused");
        }
        assert_eq!(recover_prehash(&B256::ZERO, &[0u8; 64]), None, "short");
        let good = PrivateKeySigner::random().sign_hash_sync(&B256::ZERO).unwrap().as_bytes();
        assert!(matches!(good[64], 27 | 28), "alloy signs with v = 27 or 28");
        assert!(recover_prehash(&B256::ZERO, &good).is_some());
        for v in [0u8, 1, 5, 29] {
            let mut other = good;
            other[64] = v;
            assert_eq!(recover_prehash(&B256::ZERO, &other), None, "v = {v}: not the one encoding");
        }
    }

    #[test]
    fn exported_typed_data_hashes_like_the_typed_struct() {
        let w = world();
        let r = two_hops(&w);
        let steps = r.export(&w.d).unwrap();
        for (k, step) in steps.as_array().unwrap().iter().enumerate() {
            // Round-trip through JSON, as another tool would read it, and recover from its hash.
            let typed: TypedData = serde_json::from_value(step["typedData"].clone()).unwrap();
            let hash = typed.eip712_signing_hash().unwrap();
            let sig = alloy::primitives::Signature::try_from(r.signatures[k].as_ref()).unwrap();
            let expected = [w.dev.address(), w.gw1.address(), w.gw2.address()][k];
            assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), expected, "step {k} (k256, independent)");
        }
        assert_eq!(steps[1]["typedData"]["primaryType"], "Countersign");
    }
}
