//! The job market's off-chain messages (paper §5.2.1 steps 6 and 12–13): the worker's signed
//! [`TrainingProposal`], which `JobMarket.acceptTrainingOffer` checks on chain, and its signed
//! [`TrainingResult`], which travels with the model file to the service. Both are EIP-712 in the
//! iotegrity domain (docs/eip712.md), signed by the worker's online key.

use crate::signatures::sign;
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use serde::{Deserialize, Serialize};

alloy::sol! {
    /// A worker's offer for a job; `root` and `paramHash` are the job's, as the worker saw them.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TrainingProposal {
        address market;
        uint256 jobId;
        bytes32 root;
        bytes32 paramHash;
        address worker;
        bytes32 terms;
        uint64 expiresAt;
    }

    /// A worker's request for one batch of a job's dataset, sent to the service's HTTP API
    /// (docs/market.md, "Serving batches"); `issuedAt` bounds its replay in time.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct BatchRequest {
        address market;
        uint256 jobId;
        uint32 index;
        uint64 issuedAt;
    }

    /// A worker's word on its result: the model file whose keccak256 is `resultHash`, trained for
    /// the job's spec `paramHash`.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TrainingResult {
        address market;
        uint256 jobId;
        bytes32 paramHash;
        bytes32 resultHash;
        address worker;
    }
}

/// A job's state, as `IJobMarket.Status` numbers it (`None`: no such job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum JobStatus {
    /// No such job.
    None = 0,
    /// Offered, nobody assigned.
    Unprocessed = 1,
    /// Assigned to a worker.
    InProgress = 2,
    /// The worker is paid.
    Success = 3,
    /// The service is refunded.
    Failed = 4,
}

impl From<u8> for JobStatus {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Unprocessed,
            2 => Self::InProgress,
            3 => Self::Success,
            4 => Self::Failed,
            _ => Self::None,
        }
    }
}

impl JobStatus {
    /// The paper's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Unprocessed => "Unprocessed",
            Self::InProgress => "InProgress",
            Self::Success => "Success",
            Self::Failed => "Failed",
        }
    }
}

/// A signed proposal, as the worker hands it to the service (`iotegrity market propose` writes it,
/// `market accept` reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedProposal {
    /// What is signed.
    pub proposal: TrainingProposal,
    /// The worker key's 65-byte signature.
    pub signature: Bytes,
}

/// A signed result, sent with the model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedResult {
    /// What is signed.
    pub result: TrainingResult,
    /// The worker key's 65-byte signature.
    pub signature: Bytes,
}

/// A signed batch request: the body of `POST /v1/jobs/batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBatchRequest {
    /// What is signed.
    pub request: BatchRequest,
    /// The worker key's 65-byte signature.
    pub signature: Bytes,
}

/// How far a batch request's `issuedAt` may be from the service's clock, either way (seconds).
pub const BATCH_REQUEST_WINDOW_SECS: u64 = 300;

impl SignedBatchRequest {
    /// Signs a request for batch `index` of job `job_id`, issued at `now`.
    pub fn sign(
        market: Address,
        job_id: U256,
        index: u32,
        now: u64,
        key: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Self {
        let request = BatchRequest { market, jobId: job_id, index, issuedAt: now };
        let signature = sign(key, &request, domain);
        Self { request, signature }
    }

    /// The key that signed it, if the signature is well formed.
    pub fn signer(&self, domain: &Eip712Domain) -> Option<Address> {
        crate::signatures::recover_prehash(&self.request.eip712_signing_hash(domain), &self.signature)
    }
}

/// Why a delivered result is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    /// The signature does not recover to the key assigned to the job.
    #[error("the result is signed by {signer:?}, not by the job's worker key {worker}")]
    WrongSigner {
        /// Who signed (None: not a signature).
        signer: Option<Address>,
        /// The worker key assigned to the job.
        worker: Address,
    },
    /// The signed message is for another job, market or spec.
    #[error("the result is for {what}, not for this job")]
    OtherJob {
        /// Which field differs.
        what: &'static str,
    },
    /// The file is not the one the worker signed (altered on the way, or another file).
    #[error("the model file hashes to {file}, the signed result says {signed}")]
    NotSigned {
        /// keccak256 of the delivered file.
        file: B256,
        /// The hash in the signed result.
        signed: B256,
    },
    /// The worker signed a file other than the one it reported on chain.
    #[error("the model file hashes to {file}, the chain's report says {reported}")]
    NotReported {
        /// keccak256 of the delivered (and signed) file.
        file: B256,
        /// The hash the worker reported on chain.
        reported: B256,
    },
}

impl SignedProposal {
    /// Signs `proposal` with the worker's online key.
    pub fn sign(proposal: TrainingProposal, key: &PrivateKeySigner, domain: &Eip712Domain) -> Self {
        let signature = sign(key, &proposal, domain);
        Self { proposal, signature }
    }

    /// The key that signed it, if the signature is well formed.
    pub fn signer(&self, domain: &Eip712Domain) -> Option<Address> {
        crate::signatures::recover_prehash(&self.proposal.eip712_signing_hash(domain), &self.signature)
    }
}

impl SignedResult {
    /// Signs that `file` is the result of job `job_id` for spec `param_hash`.
    pub fn sign(
        market: Address,
        job_id: U256,
        param_hash: B256,
        file: &[u8],
        key: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Self {
        let result = TrainingResult {
            market,
            jobId: job_id,
            paramHash: param_hash,
            resultHash: keccak256(file),
            worker: key.address(),
        };
        let signature = sign(key, &result, domain);
        Self { result, signature }
    }

    /// The service's check of a delivery: the signed message is for this market, job and spec,
    /// signed by the job's worker key, over this very file, which is the one reported on chain.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        domain: &Eip712Domain,
        market: Address,
        job_id: U256,
        param_hash: B256,
        worker_key: Address,
        reported: B256,
        file: &[u8],
    ) -> Result<(), ResultError> {
        let r = &self.result;
        for (differs, what) in [
            (r.market != market, "another market"),
            (r.jobId != job_id, "another job"),
            (r.paramHash != param_hash, "another spec"),
        ] {
            if differs {
                return Err(ResultError::OtherJob { what });
            }
        }
        let signer = crate::signatures::recover_prehash(&r.eip712_signing_hash(domain), &self.signature);
        if signer != Some(worker_key) || r.worker != worker_key {
            return Err(ResultError::WrongSigner { signer, worker: worker_key });
        }
        let file_hash = keccak256(file);
        if file_hash != r.resultHash {
            return Err(ResultError::NotSigned { file: file_hash, signed: r.resultHash });
        }
        if file_hash != reported {
            return Err(ResultError::NotReported { file: file_hash, reported });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::domain;

    const MARKET: Address = Address::repeat_byte(0x33);

    #[test]
    fn a_result_is_bound_to_its_job_spec_file_and_worker() {
        let d = domain(31337, Address::repeat_byte(1));
        let worker = PrivateKeySigner::random();
        let (job, spec, file) = (U256::from(4), B256::repeat_byte(9), b"model bytes".to_vec());
        let signed = SignedResult::sign(MARKET, job, spec, &file, &worker, &d);
        let h = keccak256(&file);
        let check = |s: &SignedResult, job: U256, key: Address, reported: B256, file: &[u8]| {
            s.verify(&d, MARKET, job, spec, key, reported, file)
        };
        assert_eq!(check(&signed, job, worker.address(), h, &file), Ok(()));
        assert_eq!(
            check(&signed, U256::from(5), worker.address(), h, &file),
            Err(ResultError::OtherJob { what: "another job" })
        );
        let other = PrivateKeySigner::random();
        assert_eq!(
            check(&signed, job, other.address(), h, &file),
            Err(ResultError::WrongSigner { signer: Some(worker.address()), worker: other.address() })
        );
        // Another file than the signed one; a signed file other than the one reported on chain.
        assert!(matches!(check(&signed, job, worker.address(), h, b"other"), Err(ResultError::NotSigned { .. })));
        let reported = B256::repeat_byte(1);
        assert!(matches!(check(&signed, job, worker.address(), reported, &file), Err(ResultError::NotReported { .. })));
        // In another domain (another deployment) the signature is another key's.
        let elsewhere = SignedResult { ..signed.clone() };
        assert!(matches!(
            elsewhere.verify(&domain(1, Address::repeat_byte(1)), MARKET, job, spec, worker.address(), h, &file),
            Err(ResultError::WrongSigner { .. })
        ));
        // A tampered signature or message.
        let mut bad = signed.clone();
        bad.result.resultHash = keccak256(b"other");
        assert!(matches!(check(&bad, job, worker.address(), h, &file), Err(ResultError::WrongSigner { .. })));
    }

    #[test]
    fn a_proposal_recovers_its_signer_and_nothing_else_after_an_edit() {
        let d = domain(31337, Address::repeat_byte(1));
        let worker = PrivateKeySigner::random();
        let p = TrainingProposal {
            market: MARKET,
            jobId: U256::from(1),
            root: B256::repeat_byte(2),
            paramHash: B256::repeat_byte(3),
            worker: worker.address(),
            terms: B256::ZERO,
            expiresAt: 1_900_000_000,
        };
        let mut signed = SignedProposal::sign(p, &worker, &d);
        assert_eq!(signed.signer(&d), Some(worker.address()));
        let json = serde_json::to_string(&signed).unwrap();
        assert_eq!(serde_json::from_str::<SignedProposal>(&json).unwrap(), signed);
        signed.proposal.jobId = U256::from(2);
        assert_ne!(signed.signer(&d), Some(worker.address()));
    }
}
