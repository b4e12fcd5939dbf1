// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICredits} from "./ICredits.sol";

/// @title A job market for training on anchored IoT data (Oktian et al. 2020, §5.2.1, Figure 7)
/// @notice A Service offers a job: the dataset's Merkle root h_S (`root`, docs/market.md), the hash
/// of a machine-checkable job spec (`paramHash`), a report deadline, and the reward, escrowed. A
/// Worker proposes off chain (an EIP-712 `TrainingProposal` signed by its online key); the service
/// assigns it on chain with that signature (`acceptTrainingOffer`), the worker reports the hash of
/// its result (`reportTrainingResult`), the service gives its verdict (`endJob`), and whoever the
/// job pays takes the reward (`claimReward`, a pull payment). Parties are identities: a job records
/// the offline addresses of its service and worker; they act with their *current* online keys, and
/// claim with that key or the offline address (so a rotated or closed identity can still be paid).
///
/// States are the paper's: `Unprocessed → InProgress → Success | Failed`, forward only. Every
/// non-terminal state has an exit the waiting party can take alone; these time rules apply by
/// themselves (`statusOf` shows them at once, `settle` — anyone — or `claimReward` records them):
/// - Unprocessed: the service may `cancelJob`; after `deadline` the job is Failed (refund).
/// - InProgress, no report: after `deadline` the job is Failed (the service is refunded).
/// - InProgress, reported: the service ends it (`endJob`) within `REVIEW_WINDOW` of the report.
///   Success is final at once. A Failed verdict becomes final `DISPUTE_WINDOW` after it unless
///   the worker disputes it. No verdict by the end of the review window: Success.
/// - A dispute (`dispute`): the worker against a Failed verdict within `DISPUTE_WINDOW`, or the
///   service during the review window instead of a verdict. An active Notary rules Success or
///   Failed (`resolveDispute`) within `RULING_WINDOW` of the dispute; if none does, whoever raised
///   the dispute loses it (so a dispute can never be used to stall).
/// Funds: `totalOwed()` = the rewards of all unclaimed jobs = the contract's balance.
interface IJobMarket is ICredits {
    /// @notice The paper's job states (None: no such job).
    enum Status {
        None,
        Unprocessed,
        InProgress,
        Success,
        Failed
    }

    /// @notice One job, in six slots. Times are unix seconds; zero means "not yet".
    struct Job {
        address service; // offline address of the service identity
        uint64 deadline; // the report is due by this time
        Status status; // as last recorded; `statusOf` applies the time rules
        bool claimed; // the reward was paid out
        address worker; // offline address of the assigned worker identity
        uint96 reward; // wei escrowed
        bytes32 root; // h_S, the dataset's Merkle root
        bytes32 paramHash; // keccak256 of the job spec
        bytes32 resultHash; // h_W, keccak256 of the result file
        uint64 reportedAt;
        uint64 failedAt; // the service's Failed verdict
        uint64 disputedAt;
        bool disputedByWorker;
    }

    // ---------------------------------------------------------------- errors

    /// @notice The sender is not the current online key of an active identity with `role`
    /// (3 = Service, 4 = Worker, 5 = Notary).
    error JobMarket_WrongRole(address sender, uint8 role);
    /// @notice No job has this id.
    error JobMarket_UnknownJob(uint256 jobId);
    /// @notice The job is not in the state the call needs; `status` is its state now.
    error JobMarket_WrongStatus(uint256 jobId, Status status);
    /// @notice The sender is not the job's service (its current online key).
    error JobMarket_NotService(uint256 jobId, address sender);
    /// @notice The sender is not the job's worker (its current online key).
    error JobMarket_NotWorker(uint256 jobId, address sender);
    /// @notice The sender is neither the party the job pays nor that party's online key.
    error JobMarket_NotPayee(uint256 jobId, address sender);
    /// @notice No reward was sent, or more than 2^96 - 1 wei.
    error JobMarket_BadReward(uint256 value);
    /// @notice The deadline is not in the future.
    error JobMarket_BadDeadline(uint64 deadline);
    /// @notice The root, spec hash or result hash is zero.
    error JobMarket_ZeroHash();
    /// @notice The deadline passed at `deadline`.
    error JobMarket_PastDeadline(uint256 jobId, uint64 deadline);
    /// @notice The proposal expired at `expiresAt`.
    error JobMarket_ProposalExpired(uint64 expiresAt);
    /// @notice The proposal's signature is malformed or not the worker's.
    error JobMarket_BadProposalSignature(address worker);
    /// @notice The assigned worker is not the current online key of an active Worker identity.
    error JobMarket_NotAWorker(address worker);
    /// @notice A verdict must be Success or Failed.
    error JobMarket_BadVerdict(Status status);
    /// @notice The job has no report yet: a service can end a job only after one (paper step 15).
    error JobMarket_NotReported(uint256 jobId);
    /// @notice The worker already reported.
    error JobMarket_AlreadyReported(uint256 jobId);
    /// @notice The job is already disputed, or the sender may not dispute it now.
    error JobMarket_CannotDispute(uint256 jobId);
    /// @notice The job is not disputed.
    error JobMarket_NotDisputed(uint256 jobId);
    /// @notice A dispute and its ruling need a reason (a non-zero hash of the evidence).
    error JobMarket_NoReason();
    /// @notice The reward was already paid out.
    error JobMarket_AlreadyClaimed(uint256 jobId);
    /// @notice A constructor parameter is out of range: every window 0 < w < 2^32 seconds.
    error JobMarket_InvalidParameter();

    // ---------------------------------------------------------------- events

    /// @notice A service offered a job with `reward` escrowed.
    event JobCreated(
        uint256 indexed jobId,
        address indexed service,
        bytes32 indexed root,
        bytes32 paramHash,
        uint256 reward,
        uint64 deadline
    );
    /// @notice The service assigned the job to a worker on its signed proposal.
    event JobAccepted(uint256 indexed jobId, address indexed worker, address workerKey, bytes32 terms);
    /// @notice The worker reported the hash of its result.
    event ResultReported(uint256 indexed jobId, bytes32 resultHash);
    /// @notice The service gave its verdict (a Failed verdict is final after the dispute window).
    event JobVerdict(uint256 indexed jobId, Status verdict);
    /// @notice A party disputed the job; `evidence` is a hash of its case.
    event JobDisputed(uint256 indexed jobId, address indexed by, bytes32 evidence);
    /// @notice A notary ruled on the dispute.
    event DisputeResolved(uint256 indexed jobId, address indexed notary, Status ruling, bytes32 reason);
    /// @notice The job reached its final state (recorded by the call that made or noticed it).
    event JobFinished(uint256 indexed jobId, Status status);
    /// @notice The reward went to `to` (the worker on Success, the service on Failed).
    event RewardClaimed(uint256 indexed jobId, address indexed to, uint256 amount);

    // ---------------------------------------------------------------- the job's life

    /// @notice Offers a job (sender: an active Service's online key); `msg.value` is the reward,
    /// escrowed. `root` is h_S, `paramHash` keccak256 of the spec, `deadline` when the report is due.
    /// Returns the new job's id (ids count from 1, so re-offering a root makes a new job).
    function createJobRequest(bytes32 root, bytes32 paramHash, uint64 deadline)
        external
        payable
        returns (uint256 jobId);

    /// @notice The service cancels a job nobody took yet; the reward becomes the service's to claim.
    function cancelJob(uint256 jobId) external;

    /// @notice The service assigns an Unprocessed job before its deadline to `workerKey` — the
    /// current online key of an active Worker — on the worker's signed `TrainingProposal` (binds
    /// this market, the job id, its root and spec, the worker key, `terms`, `expiresAt`).
    function acceptTrainingOffer(
        uint256 jobId,
        address workerKey,
        bytes32 terms,
        uint64 expiresAt,
        bytes calldata signature
    ) external;

    /// @notice The assigned worker reports h_W, the hash of its result file, by the deadline.
    function reportTrainingResult(uint256 jobId, bytes32 resultHash) external;

    /// @notice The service's verdict (Success or Failed), after the report, within the review window.
    function endJob(uint256 jobId, Status verdict) external;

    /// @notice Raises a dispute (see the time rules above); `evidence` (non-zero) hashes the case.
    function dispute(uint256 jobId, bytes32 evidence) external;

    /// @notice An active Notary rules a disputed job Success or Failed within the ruling window;
    /// `reason` (non-zero) hashes the ruling's grounds.
    function resolveDispute(uint256 jobId, Status ruling, bytes32 reason) external;

    /// @notice Records a final state that the time rules reached (anyone; nothing else changes).
    function settle(uint256 jobId) external;

    /// @notice Pays the reward of a final job to its payee: the worker on Success, the service on
    /// Failed. Sender: the payee's offline address or its current online key; paid to the sender.
    function claimReward(uint256 jobId) external;

    // ---------------------------------------------------------------- views

    /// @notice A job as stored (its `status` as last recorded).
    function jobOf(uint256 jobId) external view returns (Job memory);

    /// @notice A job's state now, time rules applied (None for an unknown id).
    function statusOf(uint256 jobId) external view returns (Status);

    /// @notice How many jobs were ever created (ids are 1..jobCount).
    function jobCount() external view returns (uint256);

    /// @notice Unprocessed jobs (time rules applied) among ids `cursor .. cursor + limit - 1`
    /// (limit ≤ `MAX_PAGE`); `next` is the cursor of the next page, 0 after the last.
    function getAvailableJobList(uint256 cursor, uint256 limit)
        external
        view
        returns (uint256[] memory ids, Job[] memory jobs, uint256 next);

    /// @notice The EIP-712 digest of the `TrainingProposal` a worker signs for `jobId` (in the
    /// IdentityRegistry's domain, docs/eip712.md).
    function proposalDigest(uint256 jobId, address workerKey, bytes32 terms, uint64 expiresAt)
        external
        view
        returns (bytes32);
}
