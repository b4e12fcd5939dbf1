// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Registrant} from "./Registrant.sol";
import {IdentityRegistry} from "../../src/IdentityRegistry.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice Drives JobMarket with random steps from two services, two workers, a notary and a
/// stranger: offers, cancels, proposals (some signed by the wrong worker), reports, verdicts,
/// disputes, rulings, settlements, claims by anyone, and time. It keeps its own books — ether in,
/// ether paid per job, the furthest state each job was seen in — never the contract's storage.
contract MarketHandler is Registrant {
    uint256 public constant MAX_JOBS = 24;

    JobMarket public immutable market;

    address[2] public serviceKey;
    address[2] public workerKey;
    uint256[2] private _workerPk;
    address[2] public serviceOffline;
    address[2] public workerOffline;
    address public notaryKey;
    address public constant STRANGER = address(0x5742);

    uint256 public ghostIn; // ether escrowed by successful offers
    uint256 public ghostOut; // ether paid by successful claims
    mapping(uint256 jobId => uint256) public ghostPaid; // ether paid for a job
    mapping(uint256 jobId => uint256) public ghostClaims; // successful claims of a job
    mapping(uint256 jobId => uint256) public ghostReward;
    mapping(uint256 jobId => IJobMarket.Status) public ghostSeen; // the furthest state seen
    uint256 public ghostBackwards; // times a job's state was seen to move back (must stay 0)
    uint256 public ghostForgedAccepted; // proposals accepted on another worker's signature (must stay 0)
    uint256 public ghostWrongPayee; // claims that paid someone other than the job's payee (must stay 0)
    mapping(bytes4 action => uint256) public ghostSucceeded;

    constructor(IdentityRegistry identity_, JobMarket market_, address governance) Registrant(identity_) {
        market = market_;
        for (uint256 i; i < 2; ++i) {
            (serviceOffline[i], serviceKey[i],) =
                _register(keccak256(abi.encode("svc", i)), IIdentityRegistry.Role.Service);
            vm.deal(serviceKey[i], 1000 ether);
            uint256 pk;
            (workerOffline[i], workerKey[i], pk) =
                _register(keccak256(abi.encode("wrk", i)), IIdentityRegistry.Role.Worker);
            _workerPk[i] = pk;
        }
        address notaryOffline = vm.addr(uint256(keccak256("notary-offline")));
        vm.prank(governance);
        identity.appoint(notaryOffline, IIdentityRegistry.Role.Notary);
        notaryKey = _registerAs(notaryOffline, keccak256("notary"), IIdentityRegistry.Role.Notary);
    }

    // ---------------------------------------------------------------- actions

    function create(uint256 s, uint256 reward, uint256 duration) external {
        if (market.jobCount() >= MAX_JOBS) return;
        reward = 1 + (reward % 10 ether);
        uint64 deadline = uint64(block.timestamp + 1 + (duration % 20 days));
        vm.prank(serviceKey[s % 2]);
        try market.createJobRequest{value: reward}(
            keccak256(abi.encode(s)), keccak256("spec"), deadline
        ) returns (
            uint256 id
        ) {
            ghostIn += reward;
            ghostReward[id] = reward;
            _ok(this.create.selector);
        } catch {}
        _observe();
    }

    function cancel(uint256 j, uint256 s) external {
        uint256 id = _job(j); // before the prank: it reads the market
        vm.prank(serviceKey[s % 2]);
        try market.cancelJob(id) {
            _ok(this.cancel.selector);
        } catch {}
        _observe();
    }

    /// @dev Worker `w` proposes; service `s` accepts — on `signer`'s signature (the wrong one half the time).
    function accept(uint256 j, uint256 s, uint256 w, uint256 signer) external {
        uint256 id = _job(j);
        uint64 expiresAt = uint64(block.timestamp + 1 hours);
        bytes32 digest = market.proposalDigest(id, workerKey[w % 2], keccak256("terms"), expiresAt);
        (uint8 v, bytes32 r, bytes32 sig) = vm.sign(_workerPk[signer % 2], digest);
        vm.prank(serviceKey[s % 2]);
        try market.acceptTrainingOffer(
            id, workerKey[w % 2], keccak256("terms"), expiresAt, abi.encodePacked(r, sig, v)
        ) {
            if (signer % 2 != w % 2) ghostForgedAccepted += 1;
            _ok(this.accept.selector);
        } catch {}
        _observe();
    }

    function report(uint256 j, uint256 w) external {
        uint256 id = _job(j);
        vm.prank(workerKey[w % 2]);
        try market.reportTrainingResult(id, keccak256(abi.encode("result", j))) {
            _ok(this.report.selector);
        } catch {}
        _observe();
    }

    function end(uint256 j, uint256 s, bool success) external {
        uint256 id = _job(j);
        vm.prank(serviceKey[s % 2]);
        try market.endJob(id, success ? IJobMarket.Status.Success : IJobMarket.Status.Failed) {
            _ok(this.end.selector);
        } catch {}
        _observe();
    }

    function dispute(uint256 j, uint256 who) external {
        address by =
            who % 3 == 2 ? STRANGER : (who % 2 == 0 ? serviceKey[(who / 3) % 2] : workerKey[(who / 3) % 2]);
        uint256 id = _job(j);
        vm.prank(by);
        try market.dispute(id, keccak256("case")) {
            _ok(this.dispute.selector);
        } catch {}
        _observe();
    }

    function resolve(uint256 j, bool success, bool byNotary) external {
        uint256 id = _job(j);
        vm.prank(byNotary ? notaryKey : STRANGER);
        try market.resolveDispute(
            id, success ? IJobMarket.Status.Success : IJobMarket.Status.Failed, keccak256("ruling")
        ) {
            _ok(this.resolve.selector);
        } catch {}
        _observe();
    }

    function settle(uint256 j) external {
        try market.settle(_job(j)) {
            _ok(this.settle.selector);
        } catch {}
        _observe();
    }

    /// @dev Anyone of the six tries to claim; only the payee (either of its keys) can.
    function claim(uint256 j, uint256 who) external {
        uint256 id = _job(j);
        address by = _anyone(who);
        IJobMarket.Status now_ = market.statusOf(id);
        IJobMarket.Job memory job = market.jobOf(id);
        address payee = now_ == IJobMarket.Status.Success ? job.worker : job.service;
        uint256 before = by.balance;
        vm.prank(by);
        try market.claimReward(id) {
            uint256 paid = by.balance - before;
            ghostOut += paid;
            ghostPaid[id] += paid;
            ghostClaims[id] += 1;
            if (identity.offlineOf(by) != payee && by != payee) ghostWrongPayee += 1;
            _ok(this.claim.selector);
        } catch {}
        _observe();
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + (secs % 5 days));
        _observe();
    }

    // ---------------------------------------------------------------- end of run

    /// @dev Time past every window; every final job claimed by its payee. Returns what was paid.
    function drain() external returns (uint256 paid) {
        vm.warp(block.timestamp + 60 days);
        for (uint256 id = 1; id <= market.jobCount(); ++id) {
            IJobMarket.Status s = market.statusOf(id);
            require(s == IJobMarket.Status.Success || s == IJobMarket.Status.Failed, "a job with no exit");
            if (market.jobOf(id).claimed) continue;
            IJobMarket.Job memory job = market.jobOf(id);
            address payee = s == IJobMarket.Status.Success ? job.worker : job.service;
            uint256 before = payee.balance;
            vm.prank(payee); // the offline address: works even after a rotation or a close
            market.claimReward(id);
            paid += payee.balance - before;
            ghostOut += payee.balance - before;
            ghostPaid[id] += payee.balance - before;
            ghostClaims[id] += 1;
        }
        _observe();
    }

    // ---------------------------------------------------------------- internal

    /// @dev Records the furthest state of every job, counting any move back.
    function _observe() private {
        for (uint256 id = 1; id <= market.jobCount(); ++id) {
            IJobMarket.Status s = market.statusOf(id);
            IJobMarket.Status seen = ghostSeen[id];
            bool isFinal = seen == IJobMarket.Status.Success || seen == IJobMarket.Status.Failed;
            if (
                uint8(s) < uint8(seen)
                    && !(seen == IJobMarket.Status.Failed && s == IJobMarket.Status.Success)
            ) {
                ghostBackwards += 1;
            }
            if (isFinal && s != seen) ghostBackwards += 1; // a final state never changes
            if (!isFinal) ghostSeen[id] = s;
        }
    }

    function _ok(bytes4 action) private {
        ghostSucceeded[action] += 1;
    }

    function _job(uint256 j) private view returns (uint256) {
        uint256 n = market.jobCount();
        return n == 0 ? 1 : 1 + (j % n);
    }

    function _anyone(uint256 who) private view returns (address) {
        uint256 k = who % 9;
        if (k < 2) return serviceKey[k];
        if (k < 4) return workerKey[k - 2];
        if (k < 6) return serviceOffline[k - 4];
        if (k < 8) return workerOffline[k - 6];
        return STRANGER;
    }
}
