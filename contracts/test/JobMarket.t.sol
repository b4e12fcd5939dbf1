// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {Refuser} from "./IdentityRegistry.t.sol";
import {JobMarket} from "../src/JobMarket.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {ICredits} from "../src/interfaces/ICredits.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";

/// @notice The market fixture: a service, two workers, a notary, a device, and helpers for a
/// worker's signed proposal and for each step of a job.
abstract contract MarketBase is Base {
    uint256 internal constant REVIEW = 3 days;
    uint256 internal constant MARKET_DISPUTE = 3 days;
    uint256 internal constant RULING = 7 days;
    uint256 internal constant REWARD = 1 ether;
    bytes32 internal constant ROOT = keccak256("dataset root h_S");
    bytes32 internal constant SPEC = keccak256("job spec");
    bytes32 internal constant RESULT = keccak256("model.safetensors");
    bytes32 internal constant TERMS = keccak256("terms");
    bytes32 internal constant WHY = keccak256("evidence");

    JobMarket internal market;
    Keys internal svc;
    Keys internal svc2;
    Keys internal wrk;
    Keys internal wrk2;
    Keys internal notary;
    Keys internal dev;

    function setUp() public virtual override {
        super.setUp();
        market = new JobMarket(identity, REVIEW, MARKET_DISPUTE, RULING);
        svc = register(10, IIdentityRegistry.Role.Service);
        svc2 = register(11, IIdentityRegistry.Role.Service);
        wrk = register(12, IIdentityRegistry.Role.Worker);
        wrk2 = register(13, IIdentityRegistry.Role.Worker);
        notary = register(14, IIdentityRegistry.Role.Notary);
        dev = register(15, IIdentityRegistry.Role.Device);
        vm.deal(svc.online, 100 ether);
        vm.deal(svc2.online, 100 ether);
    }

    function deadline() internal view returns (uint64) {
        return uint64(block.timestamp + 10 days);
    }

    function create() internal returns (uint256 id) {
        vm.prank(svc.online);
        id = market.createJobRequest{value: REWARD}(ROOT, SPEC, deadline());
    }

    /// @dev The worker's signed proposal for `id`, valid for a day.
    function proposal(uint256 id, Keys memory w) internal view returns (uint64 expiresAt, bytes memory sig) {
        expiresAt = uint64(block.timestamp + 1 days);
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(w.onlinePk, market.proposalDigest(id, w.online, TERMS, expiresAt));
        sig = abi.encodePacked(r, s, v);
    }

    function accept(uint256 id, Keys memory w) internal {
        (uint64 exp, bytes memory sig) = proposal(id, w);
        vm.prank(svc.online);
        market.acceptTrainingOffer(id, w.online, TERMS, exp, sig);
    }

    function report(uint256 id) internal {
        vm.prank(wrk.online);
        market.reportTrainingResult(id, RESULT);
    }

    function end(uint256 id, IJobMarket.Status verdict) internal {
        vm.prank(svc.online);
        market.endJob(id, verdict);
    }

    /// @dev A job reported by `wrk`.
    function reported() internal returns (uint256 id) {
        id = create();
        accept(id, wrk);
        report(id);
    }
}

contract JobMarketTest is MarketBase {
    // ---------------------------------------------------------------- constructor

    function test_constructor_refusesBadWindows() public {
        vm.expectRevert(IJobMarket.JobMarket_InvalidParameter.selector);
        new JobMarket(identity, 0, 1, 1);
        vm.expectRevert(IJobMarket.JobMarket_InvalidParameter.selector);
        new JobMarket(identity, 1, 2 ** 32, 1);
        vm.expectRevert(IJobMarket.JobMarket_InvalidParameter.selector);
        new JobMarket(identity, 1, 1, 0);
    }

    // ---------------------------------------------------------------- create

    function test_create_escrowsAndLists() public {
        vm.expectEmit(address(market));
        emit IJobMarket.JobCreated(1, svc.offline, ROOT, SPEC, REWARD, deadline());
        uint256 id = create();
        assertEq(id, 1, "ids count from 1");
        IJobMarket.Job memory job = market.jobOf(id);
        assertEq(job.service, svc.offline, "the service identity, by its offline address");
        assertEq(uint256(job.reward), REWARD, "reward");
        assertEq(job.root, ROOT, "root");
        assertEq(job.paramHash, SPEC, "spec");
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.Unprocessed), "Unprocessed");
        assertEq(address(market).balance, REWARD, "escrowed");
        assertEq(market.totalOwed(), REWARD, "owed");
    }

    function test_create_sameRootTwice_twoJobs() public {
        uint256 a = create();
        uint256 b = create();
        assertTrue(a != b, "a re-offered root is a new job");
        assertEq(market.jobCount(), 2, "two jobs");
    }

    function test_create_onlyActiveService() public {
        vm.deal(wrk.online, 1 ether);
        vm.prank(wrk.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_WrongRole.selector, wrk.online, 3));
        market.createJobRequest{value: REWARD}(ROOT, SPEC, deadline());
        // The offline key is not a service's key either: the online key acts.
        vm.prank(svc.offline);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_WrongRole.selector, svc.offline, 3));
        market.createJobRequest{value: REWARD}(ROOT, SPEC, deadline());
    }

    function test_create_refusesBadInput() public {
        vm.startPrank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_BadReward.selector, 0));
        market.createJobRequest(ROOT, SPEC, deadline());
        uint64 past = uint64(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_BadDeadline.selector, past));
        market.createJobRequest{value: REWARD}(ROOT, SPEC, past);
        vm.expectRevert(IJobMarket.JobMarket_ZeroHash.selector);
        market.createJobRequest{value: REWARD}(bytes32(0), SPEC, deadline());
        vm.expectRevert(IJobMarket.JobMarket_ZeroHash.selector);
        market.createJobRequest{value: REWARD}(ROOT, bytes32(0), deadline());
        vm.stopPrank();
        uint256 huge = uint256(type(uint96).max) + 1;
        vm.deal(svc.online, huge);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_BadReward.selector, huge));
        market.createJobRequest{value: huge}(ROOT, SPEC, deadline());
    }

    // ---------------------------------------------------------------- available list

    function test_availableList_pagesAndSkipsTakenJobs() public {
        for (uint256 i; i < 5; ++i) {
            create();
        }
        accept(2, wrk);
        vm.prank(svc.online);
        market.cancelJob(4);
        (uint256[] memory ids, IJobMarket.Job[] memory jobs, uint256 next) = market.getAvailableJobList(0, 3);
        assertEq(ids.length, 2, "ids 1 and 3 among 1..3");
        assertEq(ids[0], 1, "first");
        assertEq(ids[1], 3, "second");
        assertEq(jobs[1].root, ROOT, "the job comes with it");
        assertEq(next, 4, "next page");
        (ids,, next) = market.getAvailableJobList(next, 3);
        assertEq(ids.length, 1, "only 5 among 4..5");
        assertEq(ids[0], 5, "fifth");
        assertEq(next, 0, "last page");
        (ids,, next) = market.getAvailableJobList(99, 3);
        assertEq(ids.length + next, 0, "past the end: empty");
    }

    function test_availableList_dropsExpiredJobs() public {
        create();
        vm.warp(block.timestamp + 11 days);
        (uint256[] memory ids,,) = market.getAvailableJobList(1, 10);
        assertEq(ids.length, 0, "expired: not available");
    }

    // ---------------------------------------------------------------- cancel

    function test_cancel_refundsTheService() public {
        uint256 id = create();
        vm.prank(svc.online);
        market.cancelJob(id);
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.Failed), "Failed");
        uint256 before = svc.online.balance;
        vm.prank(svc.online);
        market.claimReward(id);
        assertEq(svc.online.balance - before, REWARD, "refunded");
    }

    function test_cancel_onlyServiceAndOnlyUnprocessed() public {
        uint256 id = create();
        vm.prank(svc2.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotService.selector, id, svc2.online));
        market.cancelJob(id);
        accept(id, wrk);
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.InProgress
            )
        );
        market.cancelJob(id);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_UnknownJob.selector, 9));
        market.cancelJob(9);
    }

    // ---------------------------------------------------------------- accept

    function test_accept_assignsTheWorker() public {
        uint256 id = create();
        (uint64 exp, bytes memory sig) = proposal(id, wrk);
        vm.expectEmit(address(market));
        emit IJobMarket.JobAccepted(id, wrk.offline, wrk.online, TERMS);
        vm.prank(svc.online);
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
        assertEq(market.jobOf(id).worker, wrk.offline, "worker identity");
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.InProgress), "InProgress");
    }

    function test_accept_refusesAWorkerWhoNeverOffered() public {
        uint256 id = create();
        (uint64 exp, bytes memory sig) = proposal(id, wrk); // wrk's proposal, assigned to wrk2
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadProposalSignature.selector, wrk2.online)
        );
        market.acceptTrainingOffer(id, wrk2.online, TERMS, exp, sig);
        // Other terms than signed.
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadProposalSignature.selector, wrk.online)
        );
        market.acceptTrainingOffer(id, wrk.online, bytes32(uint256(1)), exp, sig);
        // Malformed.
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadProposalSignature.selector, wrk.online)
        );
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, hex"1234");
    }

    function test_accept_proposalCannotBeReplayedForAnotherJob() public {
        uint256 a = create();
        uint256 b = create();
        (uint64 exp, bytes memory sig) = proposal(a, wrk);
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadProposalSignature.selector, wrk.online)
        );
        market.acceptTrainingOffer(b, wrk.online, TERMS, exp, sig);
        // Nor on another market sharing the identity registry.
        JobMarket other = new JobMarket(identity, REVIEW, MARKET_DISPUTE, RULING);
        vm.prank(svc.online);
        other.createJobRequest{value: REWARD}(ROOT, SPEC, deadline());
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadProposalSignature.selector, wrk.online)
        );
        other.acceptTrainingOffer(a, wrk.online, TERMS, exp, sig);
    }

    function test_accept_onlyActiveWorkers() public {
        uint256 id = create();
        // A device signs a proposal for itself: valid signature, wrong role.
        (uint64 exp, bytes memory sig) = proposal(id, dev);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotAWorker.selector, dev.online));
        market.acceptTrainingOffer(id, dev.online, TERMS, exp, sig);
        // A worker that closed its identity after proposing.
        (exp, sig) = proposal(id, wrk);
        vm.prank(wrk.offline);
        identity.closePublicKey();
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotAWorker.selector, wrk.online));
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
    }

    function test_accept_refusesExpiredProposalOtherServiceAndTakenJob() public {
        uint256 id = create();
        (uint64 exp, bytes memory sig) = proposal(id, wrk);
        vm.prank(svc2.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotService.selector, id, svc2.online));
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
        vm.warp(exp + 1);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_ProposalExpired.selector, exp));
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
        accept(id, wrk);
        (exp, sig) = proposal(id, wrk2);
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.InProgress
            )
        );
        market.acceptTrainingOffer(id, wrk2.online, TERMS, exp, sig);
    }

    function test_accept_afterDeadline_refused() public {
        uint256 id = create();
        uint64 dl = market.jobOf(id).deadline;
        vm.warp(dl + 1);
        (uint64 exp, bytes memory sig) = proposal(id, wrk);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_PastDeadline.selector, id, dl));
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
    }

    function test_accept_rotatedServiceKeyStillActs() public {
        uint256 id = create();
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(10);
        bytes memory popSig = pop(svc.offline, online2, pk2);
        vm.prank(svc.offline);
        identity.updatePublicKey(online2, pub2, popSig);
        (uint64 exp, bytes memory sig) = proposal(id, wrk);
        vm.prank(svc.online); // the old key no longer acts
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotService.selector, id, svc.online));
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
        vm.prank(online2);
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.InProgress), "the new key acted");
    }

    // ---------------------------------------------------------------- report

    function test_report_recordsTheHash() public {
        uint256 id = create();
        accept(id, wrk);
        vm.expectEmit(address(market));
        emit IJobMarket.ResultReported(id, RESULT);
        report(id);
        assertEq(market.jobOf(id).resultHash, RESULT, "h_W");
        assertEq(uint256(market.jobOf(id).reportedAt), block.timestamp, "reported now");
    }

    function test_report_refusals() public {
        uint256 id = create();
        vm.prank(wrk.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotWorker.selector, id, wrk.online));
        market.reportTrainingResult(id, RESULT); // not assigned yet
        accept(id, wrk);
        vm.prank(wrk2.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotWorker.selector, id, wrk2.online));
        market.reportTrainingResult(id, RESULT);
        vm.prank(wrk.online);
        vm.expectRevert(IJobMarket.JobMarket_ZeroHash.selector);
        market.reportTrainingResult(id, bytes32(0));
        report(id);
        vm.prank(wrk.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_AlreadyReported.selector, id));
        market.reportTrainingResult(id, RESULT);
    }

    function test_report_afterDeadline_refused() public {
        uint256 id = create();
        accept(id, wrk);
        uint64 dl = market.jobOf(id).deadline;
        vm.warp(dl + 1);
        vm.prank(wrk.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_PastDeadline.selector, id, dl));
        market.reportTrainingResult(id, RESULT);
    }

    // ---------------------------------------------------------------- end

    function test_end_successPaysTheWorker() public {
        uint256 id = reported();
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinished(id, IJobMarket.Status.Success);
        end(id, IJobMarket.Status.Success);
        uint256 before = wrk.online.balance;
        vm.prank(wrk.online);
        market.claimReward(id);
        assertEq(wrk.online.balance - before, REWARD, "paid");
        assertEq(market.totalOwed(), 0, "nothing owed");
        assertEq(address(market).balance, 0, "nothing held");
    }

    function test_end_onlyAfterAReport() public {
        uint256 id = create();
        accept(id, wrk);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotReported.selector, id));
        market.endJob(id, IJobMarket.Status.Failed);
    }

    function test_end_refusals() public {
        uint256 id = reported();
        vm.prank(svc2.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotService.selector, id, svc2.online));
        market.endJob(id, IJobMarket.Status.Success);
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadVerdict.selector, IJobMarket.Status.InProgress)
        );
        market.endJob(id, IJobMarket.Status.InProgress);
        end(id, IJobMarket.Status.Failed);
        vm.prank(svc.online); // a second verdict
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.InProgress
            )
        );
        market.endJob(id, IJobMarket.Status.Success);
    }

    function test_end_afterTheReviewWindow_refused() public {
        uint256 id = reported();
        vm.warp(block.timestamp + REVIEW + 1);
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.Success)
        );
        market.endJob(id, IJobMarket.Status.Failed);
    }

    function test_failedVerdict_finalAfterTheDisputeWindow() public {
        uint256 id = reported();
        end(id, IJobMarket.Status.Failed);
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.InProgress), "worker may dispute");
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.InProgress
            )
        );
        market.claimReward(id);
        vm.warp(block.timestamp + MARKET_DISPUTE + 1);
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.Failed), "Failed");
        uint256 before = svc.online.balance;
        vm.prank(svc.online);
        market.claimReward(id);
        assertEq(svc.online.balance - before, REWARD, "refunded");
        assertEq(uint256(market.jobOf(id).status), uint256(IJobMarket.Status.Failed), "recorded by the claim");
    }

    // ---------------------------------------------------------------- exits by time

    function test_exit_noReport_serviceReclaimsAfterDeadline() public {
        uint256 id = create();
        accept(id, wrk);
        vm.warp(market.jobOf(id).deadline + 1);
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.Failed), "expired");
        vm.prank(wrk.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotPayee.selector, id, wrk.online));
        market.claimReward(id);
        // Anyone records the expiry.
        vm.expectEmit(address(market));
        emit IJobMarket.JobFinished(id, IJobMarket.Status.Failed);
        market.settle(id);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.Failed)
        );
        market.settle(id);
        vm.prank(svc.offline); // the offline address claims too
        market.claimReward(id);
        assertEq(market.totalOwed(), 0, "paid out");
    }

    function test_exit_unacceptedJob_expires() public {
        uint256 id = create();
        vm.warp(market.jobOf(id).deadline + 1);
        vm.prank(svc.online);
        market.claimReward(id);
        assertEq(uint256(market.jobOf(id).status), uint256(IJobMarket.Status.Failed), "Failed");
    }

    function test_exit_silentService_workerPaidAfterReview() public {
        uint256 id = reported();
        vm.warp(block.timestamp + REVIEW);
        vm.prank(wrk.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.InProgress
            )
        );
        market.claimReward(id); // the window is still open at its last second
        vm.warp(block.timestamp + 1);
        vm.prank(wrk.online);
        market.claimReward(id);
        assertEq(uint256(market.jobOf(id).status), uint256(IJobMarket.Status.Success), "Success by silence");
    }

    // ---------------------------------------------------------------- disputes

    function test_dispute_workerAgainstFailed_notaryRulesSuccess() public {
        uint256 id = reported();
        end(id, IJobMarket.Status.Failed);
        vm.expectEmit(address(market));
        emit IJobMarket.JobDisputed(id, wrk.online, WHY);
        vm.prank(wrk.online);
        market.dispute(id, WHY);
        vm.warp(block.timestamp + MARKET_DISPUTE + 1); // the dispute stops the verdict's clock
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.InProgress), "awaiting a ruling");
        vm.prank(notary.online);
        market.resolveDispute(id, IJobMarket.Status.Success, WHY);
        vm.prank(wrk.offline);
        market.claimReward(id);
        assertEq(wrk.offline.balance, 100 ether + REWARD, "worker paid on the ruling");
    }

    function test_dispute_serviceDuringReview_notaryRulesFailed() public {
        uint256 id = reported();
        vm.prank(svc.online);
        market.dispute(id, WHY);
        vm.prank(svc.online); // no verdict while disputed
        vm.expectRevert(
            abi.encodeWithSelector(
                IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.InProgress
            )
        );
        market.endJob(id, IJobMarket.Status.Failed);
        vm.prank(notary.online);
        market.resolveDispute(id, IJobMarket.Status.Failed, WHY);
        assertEq(uint256(market.statusOf(id)), uint256(IJobMarket.Status.Failed), "ruled Failed");
    }

    function test_dispute_noRuling_theDisputantLoses() public {
        uint256 a = reported();
        end(a, IJobMarket.Status.Failed);
        vm.prank(wrk.online);
        market.dispute(a, WHY);
        uint256 b = create();
        accept(b, wrk);
        report(b);
        vm.prank(svc.online);
        market.dispute(b, WHY);
        vm.warp(block.timestamp + RULING + 1);
        assertEq(uint256(market.statusOf(a)), uint256(IJobMarket.Status.Failed), "worker's dispute lost");
        assertEq(uint256(market.statusOf(b)), uint256(IJobMarket.Status.Success), "service's dispute lost");
        vm.prank(notary.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_WrongStatus.selector, a, IJobMarket.Status.Failed)
        );
        market.resolveDispute(a, IJobMarket.Status.Success, WHY);
    }

    function test_dispute_refusals() public {
        uint256 id = create();
        accept(id, wrk);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_CannotDispute.selector, id));
        market.dispute(id, WHY); // nothing reported yet
        report(id);
        vm.prank(wrk.online); // the worker has no verdict to dispute yet
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotService.selector, id, wrk.online));
        market.dispute(id, WHY);
        vm.prank(svc.online);
        vm.expectRevert(IJobMarket.JobMarket_NoReason.selector);
        market.dispute(id, bytes32(0));
        end(id, IJobMarket.Status.Failed);
        vm.prank(svc.online); // the service cannot dispute its own verdict
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotWorker.selector, id, svc.online));
        market.dispute(id, WHY);
        vm.prank(wrk.online);
        market.dispute(id, WHY);
        vm.prank(wrk.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_CannotDispute.selector, id));
        market.dispute(id, WHY); // once
    }

    function test_dispute_afterTheWindow_refused() public {
        uint256 id = reported();
        end(id, IJobMarket.Status.Failed);
        vm.warp(block.timestamp + MARKET_DISPUTE + 1);
        vm.prank(wrk.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_WrongStatus.selector, id, IJobMarket.Status.Failed)
        );
        market.dispute(id, WHY);
    }

    function test_resolve_refusals() public {
        uint256 id = reported();
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_WrongRole.selector, svc.online, 5));
        market.resolveDispute(id, IJobMarket.Status.Success, WHY);
        vm.prank(notary.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotDisputed.selector, id));
        market.resolveDispute(id, IJobMarket.Status.Success, WHY);
        vm.prank(svc.online);
        market.dispute(id, WHY);
        vm.startPrank(notary.online);
        vm.expectRevert(IJobMarket.JobMarket_NoReason.selector);
        market.resolveDispute(id, IJobMarket.Status.Success, bytes32(0));
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadVerdict.selector, IJobMarket.Status.None)
        );
        market.resolveDispute(id, IJobMarket.Status.None, WHY);
        vm.stopPrank();
        // A dismissed notary rules nothing.
        vm.prank(GOVERNANCE);
        identity.dismiss(notary.offline);
        vm.prank(notary.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_WrongRole.selector, notary.online, 5));
        market.resolveDispute(id, IJobMarket.Status.Success, WHY);
    }

    // ---------------------------------------------------------------- claims

    function test_claim_once_andOnlyByThePayee() public {
        uint256 id = reported();
        end(id, IJobMarket.Status.Success);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_NotPayee.selector, id, svc.online));
        market.claimReward(id);
        vm.prank(wrk.online);
        market.claimReward(id);
        vm.prank(wrk.offline);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_AlreadyClaimed.selector, id));
        market.claimReward(id);
    }

    function test_claim_closedWorkerIdentity_stillPaid() public {
        uint256 id = reported();
        end(id, IJobMarket.Status.Success);
        vm.prank(wrk.offline);
        identity.closePublicKey();
        vm.prank(wrk.offline);
        market.claimReward(id);
        assertEq(market.totalOwed(), 0, "not stranded");
    }

    function test_claim_refusingReceiver_changesNothing() public {
        Refuser refuser = new Refuser();
        uint256 id = reported();
        end(id, IJobMarket.Status.Success);
        // A payee that refuses ether: the claim reverts whole and the reward stays claimable.
        vm.etch(wrk.online, address(refuser).code);
        vm.prank(wrk.online);
        vm.expectRevert(abi.encodeWithSelector(ICredits.Credits_TransferFailed.selector, wrk.online));
        market.claimReward(id);
        assertFalse(market.jobOf(id).claimed, "still claimable");
        vm.prank(wrk.offline);
        market.claimReward(id);
        assertEq(market.totalOwed(), 0, "paid to the offline address");
    }

    // ---------------------------------------------------------------- fuzz

    /// Whatever happens and whenever, exactly one party is paid exactly the reward, once.
    function testFuzz_lifecycle_paysExactlyOnce(uint8 path, uint32 wait, uint96 reward) public {
        reward = uint96(bound(reward, 1, 50 ether));
        vm.prank(svc.online);
        uint256 id = market.createJobRequest{value: reward}(ROOT, SPEC, deadline());
        path = uint8(bound(path, 0, 5));
        if (path >= 1) accept(id, wrk);
        if (path >= 2) report(id);
        if (path == 3) end(id, IJobMarket.Status.Success);
        if (path == 4) end(id, IJobMarket.Status.Failed);
        if (path == 5) {
            vm.prank(svc.online);
            market.dispute(id, WHY);
        }
        vm.warp(block.timestamp + bound(wait, 0, 30 days));
        IJobMarket.Status s = market.statusOf(id);
        if (s != IJobMarket.Status.Success && s != IJobMarket.Status.Failed) {
            vm.warp(block.timestamp + 30 days); // every state has an exit by time alone
            s = market.statusOf(id);
        }
        assertTrue(s == IJobMarket.Status.Success || s == IJobMarket.Status.Failed, "final");
        address payee = s == IJobMarket.Status.Success ? wrk.online : svc.online;
        uint256 before = payee.balance;
        vm.prank(payee);
        market.claimReward(id);
        assertEq(payee.balance - before, reward, "the reward, exactly");
        vm.prank(payee);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.JobMarket_AlreadyClaimed.selector, id));
        market.claimReward(id);
        assertEq(address(market).balance, 0, "nothing left");
    }

    /// A proposal signed by any key other than the assigned worker's is refused.
    function testFuzz_accept_foreignSignature_refused(uint256 pk) public {
        pk = bound(pk, 1, 2 ** 200);
        vm.assume(pk != wrk.onlinePk);
        uint256 id = create();
        uint64 exp = uint64(block.timestamp + 1 days);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, market.proposalDigest(id, wrk.online, TERMS, exp));
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.JobMarket_BadProposalSignature.selector, wrk.online)
        );
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, abi.encodePacked(r, s, v));
    }
}
