//! Federated learning's signed model files (paper §5.2.2 steps 2 and 11: sig_global, sig_local;
//! docs/learning.md and docs/eip712.md): the service signs the initial global model, each
//! participant its local model of a round — EIP-712 `FederatedModel` over the file's keccak256,
//! in the iotegrity domain, by the author's online key. The file itself lives on IPFS; the chain
//! holds its reference. A participant checks a download against both before it parses it.

use crate::signatures::sign;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use serde::{Deserialize, Serialize};

alloy::sol! {
    /// An author's word on a model file: `modelHash` = keccak256(file) is its model of `round`
    /// (0: the service's initial global model) in training `trainingId` of contract `learning`.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FederatedModel {
        address learning;
        uint256 trainingId;
        uint256 round;
        bytes32 modelHash;
        address author;
    }
}

/// A signed model, stored next to the file (as `<file>.sig.json`, or on IPFS with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedModel {
    /// What is signed.
    pub model: FederatedModel,
    /// The author key's 65-byte signature.
    pub signature: Bytes,
}

/// Why a signed model is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelSignatureError {
    /// The message is for another contract, training or round.
    #[error("the signature is for {what}, not for this model")]
    OtherModel {
        /// Which field differs.
        what: &'static str,
    },
    /// The signature does not recover to the expected author key.
    #[error("the model is signed by {signer:?}, not by {expected}")]
    WrongSigner {
        /// Who signed (None: not a signature).
        signer: Option<Address>,
        /// The key expected.
        expected: Address,
    },
    /// The file is not the one signed.
    #[error("the file hashes to {file}, the signature says {signed}")]
    NotSigned {
        /// keccak256 of the file.
        file: B256,
        /// The signed hash.
        signed: B256,
    },
}

impl SignedModel {
    /// Signs `file` as `key`'s model of `round` in training `training_id`.
    pub fn sign(
        learning: Address,
        training_id: U256,
        round: u64,
        file: &[u8],
        key: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Self {
        let model = FederatedModel {
            learning,
            trainingId: training_id,
            round: U256::from(round),
            modelHash: keccak256(file),
            author: key.address(),
        };
        let signature = sign(key, &model, domain);
        Self { model, signature }
    }

    /// Checks that `file` is `author_key`'s signed model of `round` in `training_id`.
    pub fn verify(
        &self,
        domain: &Eip712Domain,
        learning: Address,
        training_id: U256,
        round: u64,
        author_key: Address,
        file: &[u8],
    ) -> Result<(), ModelSignatureError> {
        let m = &self.model;
        for (differs, what) in [
            (m.learning != learning, "another contract"),
            (m.trainingId != training_id, "another training"),
            (m.round != U256::from(round), "another round"),
        ] {
            if differs {
                return Err(ModelSignatureError::OtherModel { what });
            }
        }
        let signer = crate::signatures::recover_prehash(&m.eip712_signing_hash(domain), &self.signature);
        if signer != Some(author_key) || m.author != author_key {
            return Err(ModelSignatureError::WrongSigner { signer, expected: author_key });
        }
        let file_hash = keccak256(file);
        if file_hash != m.modelHash {
            return Err(ModelSignatureError::NotSigned { file: file_hash, signed: m.modelHash });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEARNING: Address = Address::repeat_byte(0xf1);

    fn domain() -> Eip712Domain {
        alloy::sol_types::eip712_domain! {
            name: "iotegrity",
            version: "1",
            chain_id: 31337,
            verifying_contract: Address::repeat_byte(0x1d),
        }
    }

    #[test]
    fn a_model_signature_is_bound_to_its_file_round_training_and_author() {
        let (d, author) = (domain(), PrivateKeySigner::random());
        let file = b"safetensors bytes".to_vec();
        let id = U256::from(7);
        let signed = SignedModel::sign(LEARNING, id, 2, &file, &author, &d);
        let check =
            |s: &SignedModel, round: u64, key: Address, file: &[u8]| s.verify(&d, LEARNING, id, round, key, file);
        assert_eq!(check(&signed, 2, author.address(), &file), Ok(()));
        assert_eq!(
            check(&signed, 3, author.address(), &file),
            Err(ModelSignatureError::OtherModel { what: "another round" })
        );
        assert_eq!(
            signed.verify(&d, LEARNING, U256::from(8), 2, author.address(), &file),
            Err(ModelSignatureError::OtherModel { what: "another training" })
        );
        let other = PrivateKeySigner::random();
        assert!(matches!(check(&signed, 2, other.address(), &file), Err(ModelSignatureError::WrongSigner { .. })));
        assert!(matches!(check(&signed, 2, author.address(), b"other"), Err(ModelSignatureError::NotSigned { .. })));
        // An edited message no longer recovers to the author.
        let mut bad = signed.clone();
        bad.model.modelHash = keccak256(b"other");
        assert!(matches!(check(&bad, 2, author.address(), b"other"), Err(ModelSignatureError::WrongSigner { .. })));
        // JSON round trip, unknown fields refused.
        let json = serde_json::to_value(&signed).unwrap();
        assert_eq!(serde_json::from_value::<SignedModel>(json.clone()).unwrap(), signed);
        let mut extra = json;
        extra["model"]["extra"] = serde_json::Value::from(1);
        assert!(serde_json::from_value::<SignedModel>(extra).is_err());
    }
}

/// A round's global model as a participant derives it alone (features `ipfs` and `learning`).
#[cfg(all(feature = "ipfs", feature = "learning"))]
pub mod derive {
    use crate::contracts::FederatedLearning;
    use crate::ipfs::{Cid, Ipfs, IpfsError};
    use crate::learning::fedavg::{AggregateError, aggregate};
    use crate::learning::{LinearModel, ModelError};
    use alloy::primitives::{Address, B256, U256};
    use alloy::providers::DynProvider;

    /// The global model after `round` and how it was made.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Derived {
        /// The model file (for round 0: the service's initial model).
        pub file: Vec<u8>,
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

    /// Reads the round's local references from the chain, fetches each file from IPFS (checked
    /// against its reference), leaves out what the scores excluded, and aggregates — the same
    /// bytes for every participant.
    pub async fn global_model(
        provider: &DynProvider,
        learning: Address,
        ipfs: &Ipfs,
        id: u64,
        round: u64,
    ) -> Result<Derived, DeriveError> {
        let fl = FederatedLearning::new(learning, provider);
        let tid = U256::from(id);
        let t = crate::chain::call(fl.trainingOf(tid)).await?;
        if t.status == 0 {
            return Err(DeriveError::NoSuch(format!("no training {id} on {learning}")));
        }
        if round > u64::from(t.targetRound) {
            return Err(DeriveError::NoSuch(format!("training {id} has {} rounds", t.targetRound)));
        }
        let initial = ipfs
            .cat(&Cid { digest: t.modelRef })
            .await
            .map_err(|source| DeriveError::Ipfs { what: "the initial global model".into(), source })?;
        let base = LinearModel::from_safetensors(&initial)?;
        let mut out = Derived { file: initial, used: vec![], excluded: vec![], left_out: vec![] };
        if round == 0 {
            return Ok(out);
        }
        let (mut files, mut authors) = (Vec::new(), Vec::new());
        for who in crate::chain::call(fl.participantsOf(tid)).await? {
            let r = crate::chain::call(fl.localModelOf(tid, U256::from(round), who)).await?;
            if r == B256::ZERO {
                continue;
            }
            if crate::chain::call(fl.isExcluded(tid, U256::from(round), who)).await? {
                out.excluded.push(who);
                continue;
            }
            let cid = Cid { digest: r };
            let what = format!("{who}'s model of round {round} ({cid})");
            files.push(ipfs.cat(&cid).await.map_err(|source| DeriveError::Ipfs { what, source })?);
            authors.push(who);
        }
        let refs: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
        let agg =
            aggregate(&base.features, &base.label, &refs).map_err(|source| DeriveError::Aggregate { round, source })?;
        out.used = agg.used.iter().map(|&i| authors[i]).collect();
        out.left_out = agg.left_out.iter().map(|(i, why)| (authors[*i], why.clone())).collect();
        out.file = agg.model.to_safetensors();
        Ok(out)
    }
}
