// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICredits} from "./ICredits.sol";

/// @title Reputation of names and accounts (Oktian et al. 2020, §3.2.2 step 9 and §5; BATM)
/// @notice Active identities vote on a domain name (`voteDomain`, after a secure channel, with a
/// handshake proof the contract checks: see {HandshakeProof}) or on an identity (`voteReputation`, after a job or a model, given
/// any of its online keys or its offline address). A voter is an identity's offline address, votes
/// at most once per subject per period (`PERIOD`), may not vote on itself, and posts
/// `VOTE_DEPOSIT` with each vote. An identity's reputation is the identity's, keyed by its offline
/// address: rotating the online key neither resets nor escapes it.
///
/// For `DISPUTE_WINDOW` after a vote an appointed Notary may strike it as false (`strikeVote`,
/// with a reason recorded in the event; never its own vote): the vote stops counting and its
/// deposit is credited to the identity registry's `PENALTY_SINK`, so striking pays nobody who
/// decides it. After the window the voter takes its deposit back (`reclaimDeposit`). Credits are
/// withdrawn with `withdrawCredit`. The money held sits on the shared escrow base ({ICredits}):
/// `totalOwed()` = open deposits + credits = the balance.
///
/// Score. Vote i has score sᵢ ∈ [-100, 100] \ {0} and time tᵢ. The reputation at time t is the
/// weighted mean  R = Σ sᵢ·wᵢ / Σ wᵢ  with weight  wᵢ = g(tᵢ − t₀), where t₀ is the time of the
/// subject's first vote and g grows continuously, doubling every `HALF_LIFE`:
///     g(Δ) = 2^k · (H + r),   k = ⌊Δ / H⌋,  r = Δ mod H,  H = HALF_LIFE.
/// Relative to the newest vote, a vote of age a weighs about 2^(−a/H): newer votes weigh more,
/// continuously. Weights are fixed when a vote is cast, so a strike removes exactly what the vote
/// added. k is capped at `MAX_DOUBLINGS` = 120 (then weights stop growing; with H = 30 days
/// that is almost 10 years after the subject's first vote).
interface IReputation is ICredits {
    /// @notice One vote. Keyed by (subject, voter, period).
    struct Vote {
        int8 score;
        uint64 castAt;
        bool struck;
        bool settled; // deposit reclaimed or struck
        uint256 weight;
    }

    /// @notice What both ends of a TLS 1.3 channel to `name` sign after the handshake (EIP-712 in
    /// the iotegrity domain, IdentityRegistry's; docs/secure-channel.md): the certificate key the
    /// server presented, keccak256 of the session's RFC 9266 `tls-exporter` value (the same on
    /// both ends, different for every session), the server's and the client's online keys and
    /// their clocks. The server signs first, the client countersigns the same digest.
    struct HandshakeProof {
        string name;
        bytes32 certKeyHash;
        bytes32 exporterHash;
        address server;
        address client;
        uint64 serverTime;
        uint64 clientTime;
    }

    /// @notice Running sums of a subject's counted votes.
    struct Tally {
        int256 weightedScore; // Σ sᵢ·wᵢ
        uint256 totalWeight; // Σ wᵢ
        uint64 firstVoteAt; // t₀
        uint32 votes; // number of counted votes
    }

    // ---------------------------------------------------------------- errors

    /// @notice The voter (sender) is not an active identity.
    error Reputation_VoterNotActive(address voter);
    /// @notice The score is zero or outside [-100, 100].
    error Reputation_InvalidScore(int8 score);
    /// @notice `msg.value` is not exactly the deposit.
    error Reputation_WrongDeposit(uint256 sent, uint256 required);
    /// @notice The voter already voted on this subject in this period.
    error Reputation_AlreadyVoted(bytes32 subject, address voter, uint64 period);
    /// @notice The name does not resolve (unknown, or its owner is closed).
    error Reputation_UnknownName(string name);
    /// @notice The target was never an online key.
    error Reputation_UnknownTarget(address target);
    /// @notice A voter may not vote on its own name or key.
    error Reputation_SelfVote();
    /// @notice No vote by `voter` on `subject` in `period`.
    error Reputation_NoSuchVote(bytes32 subject, address voter, uint64 period);
    /// @notice The vote was already struck or its deposit reclaimed.
    error Reputation_VoteSettled();
    /// @notice The dispute window of the vote is still open until `endsAt`.
    error Reputation_DisputeWindowOpen(uint256 endsAt);
    /// @notice The dispute window of the vote is over.
    error Reputation_DisputeWindowClosed();
    /// @notice The caller is not an active Notary.
    error Reputation_NotNotary(address caller);
    /// @notice A notary may not strike its own vote.
    error Reputation_SelfStrike();
    /// @notice A strike needs a reason (a non-zero hash of the evidence).
    error Reputation_NoReason();
    /// @notice A constructor parameter is out of its safe range: deposit > 0, 0 < period < 2^32,
    /// 0 < halfLife < 2^32, disputeWindow < 2^32 seconds.
    error Reputation_InvalidParameter();

    /// @notice The proof is for another name than the vote.
    error Reputation_ProofForAnotherName(string name);
    /// @notice `signer` signed as the server; the name's owner's current online key is `expected`.
    error Reputation_WrongServerSigner(address signer, address expected);
    /// @notice `signer` countersigned as the client; the voter's current online key is `expected`.
    error Reputation_WrongClientSigner(address signer, address expected);
    /// @notice The proof's server time is outside [now − PROOF_WINDOW, now + MAX_CLOCK_SKEW], or
    /// the two clocks differ by more than MAX_CLOCK_SKEW.
    error Reputation_StaleProof(uint64 serverTime, uint64 clientTime);
    /// @notice The certificate key of the proof was never pinned for the name.
    error Reputation_UnpinnedKey(bytes32 certKeyHash);
    /// @notice This proof was already used for a vote.
    error Reputation_ProofUsed(bytes32 digest);

    // ---------------------------------------------------------------- events

    /// @notice A vote was cast. `proofHash` is zero for account votes.
    event VoteCast(
        bytes32 indexed subject, address indexed voter, uint64 indexed period, int8 score, bytes32 proofHash
    );
    /// @notice A notary struck a vote for `reason`; its deposit went to the penalty sink.
    event VoteStruck(
        bytes32 indexed subject, address indexed voter, uint64 indexed period, address notary, bytes32 reason
    );
    /// @notice The voter took its deposit back.
    event DepositReclaimed(bytes32 indexed subject, address indexed voter, uint64 indexed period);

    // ---------------------------------------------------------------- votes

    /// @notice Votes on a domain name after a secure channel to it. Counted only with a proof of
    /// that handshake that verifies here: for this name; `serverSig` by the name owner's current
    /// online key (`proof.server`); `clientSig` over the same digest by the voter's current online
    /// key (`proof.client`; the vote is sent by the voter's offline address); `serverTime` within
    /// `PROOF_WINDOW` before now (and at most `MAX_CLOCK_SKEW` ahead), `clientTime` within
    /// `MAX_CLOCK_SKEW` of it; the certificate key pinned for the name at some time (a vote after
    /// a revocation may well be negative); and each proof used once. The event's `proofHash` is
    /// the proof's EIP-712 digest.
    function voteDomain(
        string calldata name,
        int8 score,
        HandshakeProof calldata proof,
        bytes calldata serverSig,
        bytes calldata clientSig
    ) external payable;

    /// @notice The EIP-712 digest of `proof` that both ends sign.
    function handshakeProofDigest(HandshakeProof calldata proof) external view returns (bytes32);

    /// @notice Votes on an identity (a service, worker or device), named by an online key it ever
    /// had or by its offline address.
    function voteReputation(address target, int8 score) external payable;

    /// @notice An appointed Notary strikes another's false vote within its dispute window; `reason`
    /// (non-zero) is a hash of the evidence.
    function strikeVote(bytes32 subject, address voter, uint64 period, bytes32 reason) external;

    /// @notice The voter takes back the deposit of a vote whose dispute window is over.
    function reclaimDeposit(bytes32 subject, uint64 period) external;

    // ---------------------------------------------------------------- views

    /// @notice Reputation of a domain name: (weighted mean score scaled by 1e18, counted votes).
    function getReputation(string calldata name) external view returns (int256 score, uint256 votes);

    /// @notice Reputation of an identity, named by any of its online keys or its offline address:
    /// (weighted mean score scaled by 1e18, counted votes).
    function getReputation(address target) external view returns (int256 score, uint256 votes);

    /// @notice The subject id of a domain name.
    function domainSubject(string calldata name) external pure returns (bytes32);

    /// @notice The subject id of an identity, by its offline address.
    function accountSubject(address offline) external pure returns (bytes32);

    /// @notice The offline address of the identity `target` names (an online key it ever had, or
    /// its offline address), or zero if it names none.
    function identityOf(address target) external view returns (address offline);

    /// @notice The period (index) containing `timestamp`.
    function periodOf(uint256 timestamp) external view returns (uint64);

    /// @notice A vote record.
    function voteOf(bytes32 subject, address voter, uint64 period) external view returns (Vote memory);

    /// @notice The running tally of a subject.
    function tallyOf(bytes32 subject) external view returns (Tally memory);
}
