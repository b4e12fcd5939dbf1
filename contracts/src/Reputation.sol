// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {INameRegistry} from "./interfaces/INameRegistry.sol";
import {IReputation} from "./interfaces/IReputation.sol";
import {Credits} from "./base/Credits.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title Reputation
/// @notice Deposit-backed votes with age-weighted scores and notary strikes. See {IReputation}.
contract Reputation is IReputation, Credits {
    // ---------------------------------------------------------------- constants

    /// @notice Largest |score| of one vote.
    int8 public constant MAX_SCORE = 100;
    /// @notice Weights stop doubling after this many half-lives. Bound: |Σ sᵢ·wᵢ| · 1e18 must fit
    /// int256 for the mean: 2^7 (score) · 2^121 · 2^33 (weight) · 2^32 (votes) · 2^60 < 2^255.
    uint256 public constant MAX_DOUBLINGS = 120;
    bytes32 private constant DOMAIN_TAG = keccak256("iotegrity.reputation.domain");
    bytes32 private constant ACCOUNT_TAG = keccak256("iotegrity.reputation.account");
    /// @notice How old a handshake proof may be when it backs a vote, in seconds.
    uint256 public constant PROOF_WINDOW = 1 days;
    /// @notice How far the proof's clocks may run ahead of the chain's, or apart, in seconds.
    uint256 public constant MAX_CLOCK_SKEW = 5 minutes;
    bytes32 private constant HANDSHAKE_PROOF_TYPEHASH = keccak256(
        "HandshakeProof(string name,bytes32 certKeyHash,bytes32 exporterHash,address server,address client,uint64 serverTime,uint64 clientTime)"
    );

    // ---------------------------------------------------------------- immutables

    /// @notice The identity registry (voters, notaries, targets).
    IIdentityRegistry public immutable IDENTITY;
    /// @notice The name registry (domain subjects).
    INameRegistry public immutable NAMES;
    /// @notice Deposit posted with every vote, in wei.
    uint256 public immutable VOTE_DEPOSIT;
    /// @notice Where struck deposits go: the identity registry's penalty sink.
    address public immutable PENALTY_SINK;
    /// @notice Length of a voting period: one vote per voter per subject per period, in seconds.
    uint256 public immutable PERIOD;
    /// @notice Time for a notary to strike a vote, in seconds.
    uint256 public immutable DISPUTE_WINDOW;
    /// @notice Age at which a vote weighs half as much as a new one, in seconds.
    uint256 public immutable HALF_LIFE;
    /// @dev The iotegrity EIP-712 domain (IdentityRegistry's), read once.
    bytes32 private immutable _DOMAIN_SEPARATOR;

    // ---------------------------------------------------------------- storage

    mapping(bytes32 subject => mapping(address voter => mapping(uint64 period => Vote))) private _votes;
    mapping(bytes32 subject => Tally) private _tallies;
    mapping(bytes32 digest => bool) private _usedProofs;

    // ---------------------------------------------------------------- constructor

    /// @param identity the IdentityRegistry
    /// @param names the NameRegistry
    /// @param voteDeposit wei posted with each vote (> 0: a free vote cannot be struck at a cost)
    /// @param period seconds per voting period (> 0, < 2^32)
    /// @param disputeWindow seconds during which a notary may strike a vote (< 2^32)
    /// @param halfLife seconds after which a vote weighs half (> 0, < 2^32: keeps MAX_DOUBLINGS'
    /// bound on the weights)
    constructor(
        IIdentityRegistry identity,
        INameRegistry names,
        uint256 voteDeposit,
        uint256 period,
        uint256 disputeWindow,
        uint256 halfLife
    ) {
        if (
            voteDeposit == 0 || period == 0 || period >= 2 ** 32 || halfLife == 0 || halfLife >= 2 ** 32
                || disputeWindow >= 2 ** 32
        ) revert Reputation_InvalidParameter();
        IDENTITY = identity;
        NAMES = names;
        VOTE_DEPOSIT = voteDeposit;
        PENALTY_SINK = identity.PENALTY_SINK();
        PERIOD = period;
        DISPUTE_WINDOW = disputeWindow;
        HALF_LIFE = halfLife;
        _DOMAIN_SEPARATOR = identity.domainSeparator();
    }

    // ---------------------------------------------------------------- votes

    /// @inheritdoc IReputation
    function voteDomain(
        string calldata name,
        int8 score,
        HandshakeProof calldata proof,
        bytes calldata serverSig,
        bytes calldata clientSig
    ) external payable {
        if (NAMES.resolveAddress(name).length == 0) {
            revert Reputation_UnknownName(name);
        }
        address owner = NAMES.nameRecord(name).owner;
        if (owner == msg.sender) revert Reputation_SelfVote();
        bytes32 digest = _checkProof(name, owner, proof, serverSig, clientSig);
        _usedProofs[digest] = true;
        _vote(domainSubject(name), score, digest);
    }

    /// @inheritdoc IReputation
    function handshakeProofDigest(HandshakeProof calldata proof) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                HANDSHAKE_PROOF_TYPEHASH,
                keccak256(bytes(proof.name)),
                proof.certKeyHash,
                proof.exporterHash,
                proof.server,
                proof.client,
                proof.serverTime,
                proof.clientTime
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", _DOMAIN_SEPARATOR, structHash));
    }

    /// @dev The digest of `proof` if it proves a channel from the sender to `name` (owned by
    /// `owner`) as {IReputation-voteDomain} requires; reverts with the first rule it breaks.
    function _checkProof(
        string calldata name,
        address owner,
        HandshakeProof calldata proof,
        bytes calldata serverSig,
        bytes calldata clientSig
    ) private view returns (bytes32 digest) {
        bytes32 nameHash = keccak256(bytes(name));
        if (keccak256(bytes(proof.name)) != nameHash) revert Reputation_ProofForAnotherName(proof.name);
        digest = handshakeProofDigest(proof);
        if (_usedProofs[digest]) revert Reputation_ProofUsed(digest);
        address serverKey = IDENTITY.identityOf(owner).online;
        address signer = _signer(digest, serverSig);
        if (signer == address(0) || signer != serverKey || proof.server != serverKey) {
            revert Reputation_WrongServerSigner(signer, serverKey);
        }
        address clientKey = IDENTITY.identityOf(msg.sender).online;
        if (clientKey == address(0)) revert Reputation_VoterNotActive(msg.sender);
        signer = _signer(digest, clientSig);
        if (signer == address(0) || signer != clientKey || proof.client != clientKey) {
            revert Reputation_WrongClientSigner(signer, clientKey);
        }
        uint256 st = proof.serverTime;
        uint256 ct = proof.clientTime;
        if (
            st > block.timestamp + MAX_CLOCK_SKEW || block.timestamp > st + PROOF_WINDOW
                || (st > ct ? st - ct : ct - st) > MAX_CLOCK_SKEW
        ) revert Reputation_StaleProof(proof.serverTime, proof.clientTime);
        if (NAMES.certificate(proof.certKeyHash).nameHash != nameHash) {
            revert Reputation_UnpinnedKey(proof.certKeyHash);
        }
    }

    /// @dev The signer of `digest`, or zero for a malformed or high-s signature.
    function _signer(bytes32 digest, bytes calldata sig) private pure returns (address signer) {
        ECDSA.RecoverError err;
        // slither-disable-next-line unused-return -- the error's argument adds nothing to `err`
        (signer, err,) = ECDSA.tryRecoverCalldata(digest, sig);
        if (err != ECDSA.RecoverError.NoError) signer = address(0);
    }

    /// @inheritdoc IReputation
    function voteReputation(address target, int8 score) external payable {
        address owner = identityOf(target);
        if (owner == address(0)) revert Reputation_UnknownTarget(target);
        if (owner == msg.sender) revert Reputation_SelfVote();
        _vote(accountSubject(owner), score, bytes32(0));
    }

    /// @inheritdoc IReputation
    function strikeVote(bytes32 subject, address voter, uint64 period, bytes32 reason) external {
        if (IDENTITY.activeRole(msg.sender) != IIdentityRegistry.Role.Notary) {
            revert Reputation_NotNotary(msg.sender);
        }
        if (voter == msg.sender) revert Reputation_SelfStrike();
        if (reason == bytes32(0)) revert Reputation_NoReason();
        Vote storage v = _existingVote(subject, voter, period);
        if (block.timestamp > v.castAt + DISPUTE_WINDOW) revert Reputation_DisputeWindowClosed();

        v.struck = true;
        v.settled = true;
        Tally storage t = _tallies[subject];
        t.weightedScore -= int256(v.score) * int256(v.weight);
        t.totalWeight -= v.weight;
        t.votes -= 1;
        _credit(PENALTY_SINK, VOTE_DEPOSIT);
        emit VoteStruck(subject, voter, period, msg.sender, reason);
    }

    /// @inheritdoc IReputation
    function reclaimDeposit(bytes32 subject, uint64 period) external {
        Vote storage v = _existingVote(subject, msg.sender, period);
        uint256 endsAt = v.castAt + DISPUTE_WINDOW;
        if (block.timestamp <= endsAt) revert Reputation_DisputeWindowOpen(endsAt);
        v.settled = true;
        emit DepositReclaimed(subject, msg.sender, period);
        _pay(msg.sender, VOTE_DEPOSIT);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReputation
    function getReputation(string calldata name) external view returns (int256 score, uint256 votes) {
        return _reputation(domainSubject(name));
    }

    /// @inheritdoc IReputation
    function getReputation(address target) external view returns (int256 score, uint256 votes) {
        return _reputation(accountSubject(identityOf(target)));
    }

    /// @inheritdoc IReputation
    function domainSubject(string calldata name) public pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TAG, keccak256(bytes(name))));
    }

    /// @inheritdoc IReputation
    function accountSubject(address offline) public pure returns (bytes32) {
        return keccak256(abi.encode(ACCOUNT_TAG, offline));
    }

    /// @inheritdoc IReputation
    function identityOf(address target) public view returns (address offline) {
        offline = IDENTITY.offlineOf(target);
        if (offline == address(0) && IDENTITY.identityOf(target).status != IIdentityRegistry.Status.None) {
            offline = target; // an offline address itself
        }
    }

    /// @inheritdoc IReputation
    function periodOf(uint256 timestamp) public view returns (uint64) {
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamp / PERIOD fits uint64 for any real timestamp
        return uint64(timestamp / PERIOD);
    }

    /// @inheritdoc IReputation
    function voteOf(bytes32 subject, address voter, uint64 period) external view returns (Vote memory) {
        return _votes[subject][voter][period];
    }

    /// @inheritdoc IReputation
    function tallyOf(bytes32 subject) external view returns (Tally memory) {
        return _tallies[subject];
    }

    // ---------------------------------------------------------------- internal

    function _vote(bytes32 subject, int8 score, bytes32 proofHash) private {
        if (!IDENTITY.isOpen(msg.sender)) revert Reputation_VoterNotActive(msg.sender);
        if (score == 0 || score > MAX_SCORE || score < -MAX_SCORE) revert Reputation_InvalidScore(score);
        if (msg.value != VOTE_DEPOSIT) revert Reputation_WrongDeposit(msg.value, VOTE_DEPOSIT);
        uint64 period = periodOf(block.timestamp);
        Vote storage v = _votes[subject][msg.sender][period];
        if (v.castAt != 0) revert Reputation_AlreadyVoted(subject, msg.sender, period);

        Tally storage t = _tallies[subject];
        if (t.firstVoteAt == 0) t.firstVoteAt = uint64(block.timestamp);
        uint256 weight = _weight(block.timestamp - t.firstVoteAt);
        v.score = score;
        v.castAt = uint64(block.timestamp);
        v.weight = weight;
        // forge-lint: disable-next-line(unsafe-typecast) -- weight < 2^155 (MAX_DOUBLINGS) fits int256
        t.weightedScore += int256(score) * int256(weight);
        t.totalWeight += weight;
        t.votes += 1;
        _receive(msg.value);
        emit VoteCast(subject, msg.sender, period, score, proofHash);
    }

    /// @dev g(Δ) = 2^k · (H + r), k = min(⌊Δ/H⌋, MAX_DOUBLINGS), r = Δ mod H (H once capped).
    function _weight(uint256 age) private view returns (uint256) {
        uint256 k = age / HALF_LIFE;
        // slither-disable-next-line weak-prng -- a remainder of time, not randomness
        uint256 r = age % HALF_LIFE;
        if (k > MAX_DOUBLINGS) (k, r) = (MAX_DOUBLINGS, HALF_LIFE);
        return (HALF_LIFE + r) << k;
    }

    function _reputation(bytes32 subject) private view returns (int256 score, uint256 votes) {
        Tally storage t = _tallies[subject];
        if (t.totalWeight == 0) return (0, 0);
        return ((t.weightedScore * 1e18) / int256(t.totalWeight), t.votes);
    }

    function _existingVote(bytes32 subject, address voter, uint64 period)
        private
        view
        returns (Vote storage v)
    {
        v = _votes[subject][voter][period];
        if (v.castAt == 0) revert Reputation_NoSuchVote(subject, voter, period);
        if (v.settled) revert Reputation_VoteSettled();
    }
}
