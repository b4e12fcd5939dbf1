//! Federated learning's signed model files (paper §5.2.2 steps 2 and 11: sig_global, sig_local;
//! docs/learning.md "Model files and signatures", docs/eip712.md): the service signs the initial
//! global model, each participant its local model of a round — an EIP-712 `FederatedModel` over
//! the file's keccak256, in the iotegrity domain, by the online key that stores the model's
//! reference on chain. On IPFS a model travels **sealed**: the safetensors file followed by that
//! 65-byte signature, so the chain's reference covers both. A participant checks a download
//! against the reference (`ipfs::Ipfs::cat`), then the signature against the key the chain's
//! event names, before it parses the file.

use crate::signatures::sign;
use alloy::primitives::{Address, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};

alloy::sol! {
    /// An author's word on a model file: `modelHash` = keccak256(file) is the model of `round` by
    /// identity `author` (its offline address) in training `trainingId` of contract `learning`.
    /// Round 0 is the service's initial global model, signed before the training exists:
    /// `trainingId` 0.
    #[derive(Debug, PartialEq, Eq)]
    struct FederatedModel {
        address learning;
        uint256 trainingId;
        uint256 round;
        bytes32 modelHash;
        address author;
    }
}

/// Bytes of the signature at the end of a sealed model (`r ‖ s ‖ v`).
pub const SIGNATURE_LEN: usize = 65;

/// Which model a sealed file claims to be: everything the signature binds but the file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelOf {
    /// The `FederatedLearning` contract.
    pub learning: Address,
    /// The training (0 for round 0: the initial model is signed before the id exists).
    pub training_id: u64,
    /// The round (0: the initial global model).
    pub round: u64,
    /// The author's identity (offline address): the service for round 0, else the participant.
    pub author: Address,
}

impl ModelOf {
    /// The model of `round` by `author` in training `id` (the training id is dropped for round 0).
    pub fn new(learning: Address, id: u64, round: u64, author: Address) -> Self {
        Self { learning, training_id: if round == 0 { 0 } else { id }, round, author }
    }

    fn message(&self, file: &[u8]) -> FederatedModel {
        FederatedModel {
            learning: self.learning,
            trainingId: U256::from(self.training_id),
            round: U256::from(self.round),
            modelHash: keccak256(file),
            author: self.author,
        }
    }
}

/// Why a sealed model is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelSignatureError {
    /// Too short to carry a signature.
    #[error("{len} bytes: too short to be a sealed model (a file and its {SIGNATURE_LEN}-byte signature)")]
    Unsigned {
        /// Its length.
        len: usize,
    },
    /// The signature is not the storing key's over this file, training, round and author.
    #[error("not signed by {expected} as this model (the signature recovers to {})", signer.map_or("nobody".into(), |a| a.to_string()))]
    WrongSigner {
        /// Who the signature recovers to for this message (None: not a signature).
        signer: Option<Address>,
        /// The key the chain says stored the model.
        expected: Address,
    },
}

/// Seals `file` as `of`, signed by `key`: the bytes to pin and reference on chain.
pub fn seal(of: &ModelOf, file: &[u8], key: &PrivateKeySigner, domain: &Eip712Domain) -> Vec<u8> {
    let mut sealed = file.to_vec();
    sealed.extend_from_slice(&sign(key, &of.message(file), domain));
    sealed
}

/// Opens a sealed model: the file, if the signature is `key`'s over it as `of`.
pub fn open<'a>(
    sealed: &'a [u8],
    of: &ModelOf,
    key: Address,
    domain: &Eip712Domain,
) -> Result<&'a [u8], ModelSignatureError> {
    let split = sealed.len().checked_sub(SIGNATURE_LEN).ok_or(ModelSignatureError::Unsigned { len: sealed.len() })?;
    let (file, signature) = sealed.split_at(split);
    let signer = crate::signatures::recover_prehash(&of.message(file).eip712_signing_hash(domain), signature);
    if signer != Some(key) {
        return Err(ModelSignatureError::WrongSigner { signer, expected: key });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEARNING: Address = Address::repeat_byte(0xf1);
    const AUTHOR: Address = Address::repeat_byte(0xa0);

    fn domain() -> Eip712Domain {
        alloy::sol_types::eip712_domain! {
            name: "iotegrity",
            version: "1",
            chain_id: 31337,
            verifying_contract: Address::repeat_byte(0x1d),
        }
    }

    #[test]
    fn a_sealed_model_opens_only_as_its_file_round_training_author_and_key() {
        let (d, key) = (domain(), PrivateKeySigner::random());
        let file = b"safetensors bytes ".repeat(8); // longer than a signature, as any model file
        let of = ModelOf::new(LEARNING, 7, 2, AUTHOR);
        let sealed = seal(&of, &file, &key, &d);
        assert_eq!(sealed.len(), file.len() + SIGNATURE_LEN);
        assert_eq!(open(&sealed, &of, key.address(), &d), Ok(&file[..]));
        let refused = |of: ModelOf, key: Address, bytes: &[u8]| {
            matches!(open(bytes, &of, key, &d), Err(ModelSignatureError::WrongSigner { .. }))
        };
        assert!(refused(ModelOf { round: 3, ..of }, key.address(), &sealed), "another round");
        assert!(refused(ModelOf { training_id: 8, ..of }, key.address(), &sealed), "another training");
        assert!(refused(ModelOf { author: LEARNING, ..of }, key.address(), &sealed), "another author");
        assert!(refused(ModelOf { learning: AUTHOR, ..of }, key.address(), &sealed), "another contract");
        assert!(refused(of, PrivateKeySigner::random().address(), &sealed), "another key");
        let mut edited = sealed.clone();
        edited[0] ^= 1;
        assert!(refused(of, key.address(), &edited), "an edited file");
        // Another file with the signature of this one; a file with no signature at all.
        let mut moved = b"other file".to_vec();
        moved.extend_from_slice(&sealed[file.len()..]);
        assert!(refused(of, key.address(), &moved));
        assert!(refused(of, key.address(), &file), "the file alone: its tail is no signature");
        assert_eq!(open(&[0; 64], &of, key.address(), &d), Err(ModelSignatureError::Unsigned { len: 64 }));
        // Round 0 is signed without a training id: one initial model may serve several trainings.
        let initial = ModelOf::new(LEARNING, 5, 0, AUTHOR);
        assert_eq!(initial.training_id, 0);
        let sealed0 = seal(&initial, &file, &key, &d);
        assert_eq!(open(&sealed0, &ModelOf::new(LEARNING, 9, 0, AUTHOR), key.address(), &d), Ok(&file[..]));
    }
}

/// A round's global model as a participant derives it alone (features `ipfs` and `learning`).
#[cfg(all(feature = "ipfs", feature = "learning"))]
pub mod derive {
    use super::{ModelOf, ModelSignatureError, open};
    use crate::AddressBook;
    use crate::contracts::FederatedLearning;
    use crate::ipfs::{Cid, Ipfs, IpfsError};
    use crate::learning::fedavg::{AggregateError, aggregate};
    use crate::learning::{LinearModel, ModelError};
    use alloy::primitives::{Address, B256, U256};
    use alloy::providers::DynProvider;
    use alloy::rpc::types::Filter;
    use alloy::sol_types::SolEvent;
    use std::collections::BTreeMap;

    /// The global model after `round` and how it was made.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Derived {
        /// The model file (for round 0: the service's initial model, unsealed).
        pub file: Vec<u8>,
        /// The round whose models it aggregates: the round asked for, or the last one before it
        /// with something to aggregate (0: the initial model).
        pub from_round: u64,
        /// Participants whose model of the round was aggregated.
        pub used: Vec<Address>,
        /// Participants whose model the scores excluded.
        pub excluded: Vec<Address>,
        /// Participants whose file was left out, and why.
        pub left_out: Vec<(Address, String)>,
    }

    /// Why no global model could be derived.
    #[derive(Debug, thiserror::Error)]
    pub enum DeriveError {
        /// The chain failed.
        #[error(transparent)]
        Chain(#[from] crate::Error),
        /// A model file could not be fetched, or was not the chain's.
        #[error("{what}: {source}")]
        Ipfs {
            /// Which model.
            what: String,
            /// Why.
            source: IpfsError,
        },
        /// The initial model is not the service's sealed model.
        #[error("the initial global model: {0}")]
        Unsigned(#[from] ModelSignatureError),
        /// The initial model is not a model file.
        #[error("the initial global model: {0}")]
        Initial(#[from] ModelError),
        /// Nothing to aggregate.
        #[error("round {round}: {source}")]
        Aggregate {
            /// The round.
            round: u64,
            /// Why.
            source: AggregateError,
        },
        /// No such round or training.
        #[error("{0}")]
        NoSuch(String),
    }

    /// A participant's stored model of a round, as the chain records it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Stored {
        /// The participant (offline address).
        pub author: Address,
        /// Its reference: the sealed file's sha2-256.
        pub cid: Cid,
        /// The online key that stored it: the one whose signature the file must carry.
        pub key: Address,
    }

    /// The models of `round` in training `id`, in registration order, with the key that stored
    /// each (from `LocalModelStored`; for round 0, the service's initial model and the key that
    /// created the training, from `TrainingCreated`). Events and storage must agree: an endpoint
    /// that hides or alters an event is an error, never a left-out model.
    pub async fn stored(
        provider: &DynProvider,
        book: &AddressBook,
        id: u64,
        round: u64,
    ) -> Result<Vec<Stored>, crate::Error> {
        let fl = FederatedLearning::new(book.federated_learning(), provider);
        let tid = U256::from(id);
        // Events and storage read at one block, so a model stored meanwhile is in both or neither.
        let latest = crate::chain::latest_block(provider).await?;
        let at = alloy::eips::BlockId::number(latest);
        let filter = Filter::new().address(book.federated_learning()).topic1(tid);
        let inconsistent = |what: String| crate::Error::InconsistentRpc(what);
        if round == 0 {
            let t = crate::chain::call(fl.trainingOf(tid).block(at)).await?;
            let filter = filter.event_signature(FederatedLearning::TrainingCreated::SIGNATURE_HASH);
            let logs = crate::chain::logs(provider, &filter, book.deployed_block, latest).await?;
            let created = logs
                .iter()
                .find_map(|l| l.log_decode::<FederatedLearning::TrainingCreated>().ok())
                .ok_or_else(|| inconsistent(format!("no TrainingCreated event for training {id}")))?;
            let e = created.inner.data;
            if e.modelRef != t.modelRef || e.service != t.service {
                return Err(inconsistent(format!("training {id}'s TrainingCreated event differs from its record")));
            }
            return Ok(vec![Stored { author: t.service, cid: Cid { digest: t.modelRef }, key: e.key }]);
        }
        let filter =
            filter.event_signature(FederatedLearning::LocalModelStored::SIGNATURE_HASH).topic2(U256::from(round));
        let mut keys = BTreeMap::new();
        for log in crate::chain::logs(provider, &filter, book.deployed_block, latest).await? {
            let e = log
                .log_decode::<FederatedLearning::LocalModelStored>()
                .map_err(|e| crate::Error::MalformedLog {
                    event: "LocalModelStored",
                    what: "undecodable",
                    source: Some(Box::new(e)),
                })?
                .inner
                .data;
            keys.insert(e.participant, (e.localRef, e.key));
        }
        let mut out = Vec::new();
        for who in crate::chain::call(fl.participantsOf(tid).block(at)).await? {
            let r = crate::chain::call(fl.localModelOf(tid, U256::from(round), who).block(at)).await?;
            if r == B256::ZERO {
                continue;
            }
            match keys.get(&who) {
                Some(&(logged, key)) if logged == r => out.push(Stored { author: who, cid: Cid { digest: r }, key }),
                _ => return Err(inconsistent(format!("no LocalModelStored event for {who}'s model of round {round}"))),
            }
        }
        Ok(out)
    }

    /// Why a stored model cannot be used.
    #[derive(Debug, thiserror::Error)]
    pub enum FetchError {
        /// Not fetched, or not the bytes of its reference (worth a retry: the node may come back).
        #[error(transparent)]
        Ipfs(#[from] IpfsError),
        /// The bytes are the reference's but not sealed by the key that stored them (final).
        #[error(transparent)]
        Unsigned(#[from] ModelSignatureError),
    }

    /// Fetches a stored model (checked against its reference), checks its seal against the
    /// storing key and returns the file inside.
    pub async fn fetch(
        book: &AddressBook,
        ipfs: &Ipfs,
        id: u64,
        round: u64,
        model: &Stored,
    ) -> Result<Vec<u8>, FetchError> {
        let sealed = ipfs.cat(&model.cid).await?;
        let of = ModelOf::new(book.federated_learning(), id, round, model.author);
        Ok(open(&sealed, &of, model.key, &crate::signatures::domain_of(book))?.to_vec())
    }

    /// Reads the round's local references from the chain, fetches each file from IPFS (checked
    /// against its reference, then its seal against the key that stored it), leaves out what the
    /// scores excluded and what is not sealed by its author, and aggregates — the same bytes for
    /// every participant. A round with nothing to aggregate (nobody submitted, or every model was
    /// excluded or left out) keeps the global model of the round before it.
    pub async fn global_model(
        provider: &DynProvider,
        book: &AddressBook,
        ipfs: &Ipfs,
        id: u64,
        round: u64,
    ) -> Result<Derived, DeriveError> {
        let fl = FederatedLearning::new(book.federated_learning(), provider);
        let tid = U256::from(id);
        let t = crate::chain::call(fl.trainingOf(tid)).await?;
        if t.status == 0 {
            return Err(DeriveError::NoSuch(format!("no training {id} on {}", book.federated_learning())));
        }
        if round > u64::from(t.targetRound) {
            return Err(DeriveError::NoSuch(format!("training {id} has {} rounds", t.targetRound)));
        }
        let [initial] = &stored(provider, book, id, 0).await?[..] else { unreachable!("one initial model") };
        let initial = match fetch(book, ipfs, id, 0, initial).await {
            Ok(file) => file,
            Err(FetchError::Ipfs(source)) => {
                return Err(DeriveError::Ipfs { what: "the initial global model".into(), source });
            }
            Err(FetchError::Unsigned(e)) => return Err(e.into()),
        };
        let base = LinearModel::from_safetensors(&initial)?;
        let mut out = Derived { file: initial, from_round: 0, used: vec![], excluded: vec![], left_out: vec![] };
        for r in (1..=round).rev() {
            let (mut files, mut authors) = (Vec::new(), Vec::new());
            for model in stored(provider, book, id, r).await? {
                let who = model.author;
                if crate::chain::call(fl.isExcluded(tid, U256::from(r), who)).await? {
                    out.excluded.push(who);
                    continue;
                }
                match fetch(book, ipfs, id, r, &model).await {
                    Ok(file) => {
                        files.push(file);
                        authors.push(who);
                    }
                    Err(FetchError::Unsigned(e)) => out.left_out.push((who, e.to_string())),
                    Err(FetchError::Ipfs(source)) => {
                        let what = format!("{who}'s model of round {r} ({})", model.cid);
                        return Err(DeriveError::Ipfs { what, source });
                    }
                }
            }
            let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
            match aggregate(&base.features, &base.label, &refs) {
                Ok(agg) => {
                    out.used = agg.used.iter().map(|&i| authors[i]).collect();
                    out.left_out.extend(agg.left_out.iter().map(|(i, why)| (authors[*i], why.clone())));
                    out.file = agg.model.to_safetensors();
                    out.from_round = r;
                    return Ok(out);
                }
                // Nothing usable in round r: the round before it decides (what r excluded and
                // left out stays reported).
                Err(AggregateError::NothingToAggregate { left_out }) => {
                    out.left_out.extend(left_out.into_iter().map(|(i, why)| (authors[i], why)));
                }
                Err(source) => return Err(DeriveError::Aggregate { round: r, source }),
            }
        }
        Ok(out)
    }
}
