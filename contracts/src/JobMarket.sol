// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {Credits} from "./base/Credits.sol";

/// @title JobMarket
/// @notice Escrowed training jobs with signed proposals, verdicts, disputes and time-based exits.
/// See {IJobMarket}.
contract JobMarket is IJobMarket, Credits {
    // ---------------------------------------------------------------- constants

    /// @notice The largest page of `getAvailableJobList`.
    uint256 public constant MAX_PAGE = 1000;
    /// @notice EIP-712 type of a worker's proposal (docs/eip712.md).
    bytes32 public constant TRAINING_PROPOSAL_TYPEHASH = keccak256(
        "TrainingProposal(address market,uint256 jobId,bytes32 root,bytes32 paramHash,address worker,bytes32 terms,uint64 expiresAt)"
    );

    // ---------------------------------------------------------------- immutables

    /// @notice The identity registry (roles, keys, the EIP-712 domain).
    IIdentityRegistry public immutable IDENTITY;
    /// @notice Time the service has after a report to give its verdict, in seconds.
    uint256 public immutable REVIEW_WINDOW;
    /// @notice Time the worker has to dispute a Failed verdict, in seconds.
    uint256 public immutable DISPUTE_WINDOW;
    /// @notice Time a notary has to rule on a dispute, in seconds.
    uint256 public immutable RULING_WINDOW;

    // ---------------------------------------------------------------- storage

    mapping(uint256 jobId => Job) private _jobs;
    uint256 private _jobCount;

    // ---------------------------------------------------------------- constructor

    /// @param identity the IdentityRegistry
    /// @param reviewWindow seconds for the service's verdict after a report (0 < w < 2^32)
    /// @param disputeWindow seconds for the worker to dispute a Failed verdict (0 < w < 2^32)
    /// @param rulingWindow seconds for a notary to rule on a dispute (0 < w < 2^32)
    constructor(
        IIdentityRegistry identity,
        uint256 reviewWindow,
        uint256 disputeWindow,
        uint256 rulingWindow
    ) {
        if (
            reviewWindow == 0 || reviewWindow >= 2 ** 32 || disputeWindow == 0 || disputeWindow >= 2 ** 32
                || rulingWindow == 0 || rulingWindow >= 2 ** 32
        ) revert JobMarket_InvalidParameter();
        IDENTITY = identity;
        REVIEW_WINDOW = reviewWindow;
        DISPUTE_WINDOW = disputeWindow;
        RULING_WINDOW = rulingWindow;
    }

    // ---------------------------------------------------------------- the job's life

    /// @inheritdoc IJobMarket
    function createJobRequest(bytes32 root, bytes32 paramHash, uint64 deadline)
        external
        payable
        returns (uint256 jobId)
    {
        address service = _identityWithRole(msg.sender, IIdentityRegistry.Role.Service);
        if (msg.value == 0 || msg.value > type(uint96).max) revert JobMarket_BadReward(msg.value);
        if (deadline <= block.timestamp) revert JobMarket_BadDeadline(deadline);
        if (root == bytes32(0) || paramHash == bytes32(0)) revert JobMarket_ZeroHash();

        jobId = ++_jobCount;
        Job storage job = _jobs[jobId];
        job.service = service;
        job.deadline = deadline;
        job.status = Status.Unprocessed;
        // forge-lint: disable-next-line(unsafe-typecast) -- checked above: msg.value <= type(uint96).max
        job.reward = uint96(msg.value);
        job.root = root;
        job.paramHash = paramHash;
        _receive(msg.value);
        emit JobCreated(jobId, service, root, paramHash, msg.value, deadline);
    }

    /// @inheritdoc IJobMarket
    function cancelJob(uint256 jobId) external {
        Job storage job = _existing(jobId);
        _onlyService(job, jobId);
        _requireStatus(job, jobId, Status.Unprocessed);
        _finish(job, jobId, Status.Failed);
    }

    /// @inheritdoc IJobMarket
    function acceptTrainingOffer(
        uint256 jobId,
        address workerKey,
        bytes32 terms,
        uint64 expiresAt,
        bytes calldata signature
    ) external {
        Job storage job = _existing(jobId);
        _onlyService(job, jobId);
        _requireStatus(job, jobId, Status.Unprocessed);
        if (block.timestamp > expiresAt) revert JobMarket_ProposalExpired(expiresAt);
        // slither-disable-next-line unused-return -- the third value only details `err`
        (address recovered, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(proposalDigest(jobId, workerKey, terms, expiresAt), signature);
        if (err != ECDSA.RecoverError.NoError || recovered != workerKey) {
            revert JobMarket_BadProposalSignature(workerKey);
        }
        (address worker, IIdentityRegistry.Role role) = IDENTITY.activeIdentityOf(workerKey);
        if (role != IIdentityRegistry.Role.Worker) revert JobMarket_NotAWorker(workerKey);

        job.worker = worker;
        job.status = Status.InProgress;
        emit JobAccepted(jobId, worker, workerKey, terms);
    }

    /// @inheritdoc IJobMarket
    function reportTrainingResult(uint256 jobId, bytes32 resultHash) external {
        Job storage job = _existing(jobId);
        _onlyWorker(job, jobId);
        _requireStatus(job, jobId, Status.InProgress);
        if (job.reportedAt != 0) revert JobMarket_AlreadyReported(jobId);
        if (resultHash == bytes32(0)) revert JobMarket_ZeroHash();

        job.resultHash = resultHash;
        job.reportedAt = uint64(block.timestamp);
        emit ResultReported(jobId, resultHash);
    }

    /// @inheritdoc IJobMarket
    function endJob(uint256 jobId, Status verdict) external {
        Job storage job = _existing(jobId);
        _onlyService(job, jobId);
        if (verdict != Status.Success && verdict != Status.Failed) revert JobMarket_BadVerdict(verdict);
        _requireStatus(job, jobId, Status.InProgress);
        if (job.reportedAt == 0) revert JobMarket_NotReported(jobId);
        if (job.failedAt != 0 || job.disputedAt != 0) revert JobMarket_WrongStatus(jobId, Status.InProgress);
        // In progress, reported, no verdict, no dispute: the review window is open (else Success).

        emit JobVerdict(jobId, verdict);
        if (verdict == Status.Success) {
            _finish(job, jobId, Status.Success);
        } else {
            job.failedAt = uint64(block.timestamp);
        }
    }

    /// @inheritdoc IJobMarket
    function dispute(uint256 jobId, bytes32 evidence) external {
        Job storage job = _existing(jobId);
        if (evidence == bytes32(0)) revert JobMarket_NoReason();
        _requireStatus(job, jobId, Status.InProgress);
        bool byWorker = false;
        if (job.failedAt != 0 && job.disputedAt == 0) {
            _onlyWorker(job, jobId); // against the Failed verdict, inside its dispute window
            byWorker = true;
        } else if (job.reportedAt != 0 && job.failedAt == 0 && job.disputedAt == 0) {
            _onlyService(job, jobId); // instead of a verdict, inside the review window
        } else {
            revert JobMarket_CannotDispute(jobId);
        }

        job.disputedAt = uint64(block.timestamp);
        job.disputedByWorker = byWorker;
        emit JobDisputed(jobId, msg.sender, evidence);
    }

    /// @inheritdoc IJobMarket
    function resolveDispute(uint256 jobId, Status ruling, bytes32 reason) external {
        _identityWithRole(msg.sender, IIdentityRegistry.Role.Notary);
        Job storage job = _existing(jobId);
        if (ruling != Status.Success && ruling != Status.Failed) revert JobMarket_BadVerdict(ruling);
        if (reason == bytes32(0)) revert JobMarket_NoReason();
        if (job.disputedAt == 0) revert JobMarket_NotDisputed(jobId);
        _requireStatus(job, jobId, Status.InProgress); // else the ruling window is over

        emit DisputeResolved(jobId, msg.sender, ruling, reason);
        _finish(job, jobId, ruling);
    }

    /// @inheritdoc IJobMarket
    function settle(uint256 jobId) external {
        Job storage job = _existing(jobId);
        Status now_ = _statusNow(job);
        if (now_ == job.status) revert JobMarket_WrongStatus(jobId, now_);
        _finish(job, jobId, now_);
    }

    /// @inheritdoc IJobMarket
    function claimReward(uint256 jobId) external {
        Job storage job = _existing(jobId);
        Status now_ = _statusNow(job);
        if (now_ != Status.Success && now_ != Status.Failed) revert JobMarket_WrongStatus(jobId, now_);
        if (job.claimed) revert JobMarket_AlreadyClaimed(jobId);
        address payee = now_ == Status.Success ? job.worker : job.service;
        if (msg.sender != payee && IDENTITY.identityOf(payee).online != msg.sender) {
            revert JobMarket_NotPayee(jobId, msg.sender);
        }

        if (job.status != now_) _finish(job, jobId, now_);
        job.claimed = true;
        uint256 amount = job.reward;
        emit RewardClaimed(jobId, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IJobMarket
    function jobOf(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    /// @inheritdoc IJobMarket
    function statusOf(uint256 jobId) external view returns (Status) {
        return _statusNow(_jobs[jobId]);
    }

    /// @inheritdoc IJobMarket
    function jobCount() external view returns (uint256) {
        return _jobCount;
    }

    /// @inheritdoc IJobMarket
    function getAvailableJobList(uint256 cursor, uint256 limit)
        external
        view
        returns (uint256[] memory ids, Job[] memory jobs, uint256 next)
    {
        if (limit > MAX_PAGE) limit = MAX_PAGE;
        if (cursor == 0) cursor = 1;
        if (cursor > _jobCount) return (ids, jobs, 0);
        uint256 end = cursor + limit; // exclusive
        if (end > _jobCount + 1) end = _jobCount + 1;
        ids = new uint256[](end > cursor ? end - cursor : 0);
        jobs = new Job[](ids.length);
        uint256 found;
        for (uint256 id = cursor; id < end; ++id) {
            Job storage job = _jobs[id];
            if (_statusNow(job) == Status.Unprocessed) {
                ids[found] = id;
                jobs[found] = job;
                ++found;
            }
        }
        // Shrinks both arrays to what was found, in place.
        // slither-disable-next-line assembly
        assembly ("memory-safe") {
            mstore(ids, found)
            mstore(jobs, found)
        }
        next = end <= _jobCount ? end : 0;
    }

    /// @inheritdoc IJobMarket
    function proposalDigest(uint256 jobId, address workerKey, bytes32 terms, uint64 expiresAt)
        public
        view
        returns (bytes32)
    {
        Job storage job = _jobs[jobId];
        bytes32 structHash = keccak256(
            abi.encode(
                TRAINING_PROPOSAL_TYPEHASH,
                address(this),
                jobId,
                job.root,
                job.paramHash,
                workerKey,
                terms,
                expiresAt
            )
        );
        return MessageHashUtils.toTypedDataHash(IDENTITY.domainSeparator(), structHash);
    }

    // ---------------------------------------------------------------- internal

    /// @dev The job's state with the time rules of {IJobMarket} applied.
    function _statusNow(Job storage job) private view returns (Status) {
        Status recorded = job.status;
        if (recorded == Status.Unprocessed) {
            return block.timestamp > job.deadline ? Status.Failed : Status.Unprocessed;
        }
        if (recorded != Status.InProgress) return recorded;
        if (job.disputedAt != 0) {
            if (block.timestamp <= job.disputedAt + RULING_WINDOW) return Status.InProgress;
            return job.disputedByWorker ? Status.Failed : Status.Success; // whoever raised it loses
        }
        if (job.failedAt != 0) {
            return block.timestamp > job.failedAt + DISPUTE_WINDOW ? Status.Failed : Status.InProgress;
        }
        if (job.reportedAt != 0) {
            return block.timestamp > job.reportedAt + REVIEW_WINDOW ? Status.Success : Status.InProgress;
        }
        return block.timestamp > job.deadline ? Status.Failed : Status.InProgress;
    }

    function _finish(Job storage job, uint256 jobId, Status status) private {
        job.status = status;
        emit JobFinished(jobId, status);
    }

    function _existing(uint256 jobId) private view returns (Job storage job) {
        job = _jobs[jobId];
        if (job.status == Status.None) revert JobMarket_UnknownJob(jobId);
    }

    function _requireStatus(Job storage job, uint256 jobId, Status wanted) private view {
        Status now_ = _statusNow(job);
        if (now_ != wanted) {
            if (now_ == Status.Failed && job.status != Status.Failed && job.reportedAt == 0) {
                revert JobMarket_PastDeadline(jobId, job.deadline);
            }
            revert JobMarket_WrongStatus(jobId, now_);
        }
    }

    /// @dev The offline address of the active identity whose current key `key` is, if its role is `role`.
    function _identityWithRole(address key, IIdentityRegistry.Role role)
        private
        view
        returns (address offline)
    {
        IIdentityRegistry.Role actual;
        (offline, actual) = IDENTITY.activeIdentityOf(key);
        if (actual != role) revert JobMarket_WrongRole(key, uint8(role));
    }

    function _onlyService(Job storage job, uint256 jobId) private view {
        // slither-disable-next-line unused-return -- an active identity's offline address names the party
        (address offline,) = IDENTITY.activeIdentityOf(msg.sender);
        if (offline != job.service) revert JobMarket_NotService(jobId, msg.sender);
    }

    function _onlyWorker(Job storage job, uint256 jobId) private view {
        // slither-disable-next-line unused-return -- an active identity's offline address names the party
        (address offline,) = IDENTITY.activeIdentityOf(msg.sender);
        if (offline == address(0) || offline != job.worker) revert JobMarket_NotWorker(jobId, msg.sender);
    }
}
