// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {FederatedLearning} from "../src/FederatedLearning.sol";
import {IFederatedLearning} from "../src/interfaces/IFederatedLearning.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";

/// @notice The federated-learning fixture: a service, three participants (two devices and a
/// gateway), a worker (not allowed to take part), and helpers to move through a training's windows.
abstract contract FLBase is Base {
    uint256 internal constant GRACE = 2 days;
    uint32 internal constant D = 1 hours; // round length
    uint16 internal constant T = 3; // rounds
    uint256 internal constant REWARD = 1 ether;
    bytes32 internal constant MODEL = keccak256("initial global model");

    FederatedLearning internal fl;
    Keys internal svc;
    Keys internal svc2;
    Keys internal dev1;
    Keys internal dev2;
    Keys internal gw;
    Keys internal wrk;

    function setUp() public virtual override {
        super.setUp();
        fl = new FederatedLearning(identity, GRACE);
        svc = register(20, IIdentityRegistry.Role.Service);
        svc2 = register(21, IIdentityRegistry.Role.Service);
        dev1 = register(22, IIdentityRegistry.Role.Device);
        dev2 = register(23, IIdentityRegistry.Role.Device);
        gw = register(24, IIdentityRegistry.Role.Gateway);
        wrk = register(25, IIdentityRegistry.Role.Worker);
        vm.deal(svc.online, 100 ether);
        vm.deal(svc2.online, 100 ether);
    }

    // Two-argument assertions (the check's name is the test's).
    function assertEq(uint256 a, uint256 b) internal pure {
        vm.assertEq(a, b, "");
    }

    function assertEq(int256 a, int256 b) internal pure {
        vm.assertEq(a, b, "");
    }

    function assertEq(address a, address b) internal pure {
        vm.assertEq(a, b, "");
    }

    function assertEq(bytes32 a, bytes32 b) internal pure {
        vm.assertEq(a, b, "");
    }

    function assertTrue(bool a) internal pure {
        vm.assertTrue(a, "");
    }

    function assertFalse(bool a) internal pure {
        vm.assertFalse(a, "");
    }

    function create() internal returns (uint256 id) {
        vm.prank(svc.online);
        id = fl.createTrainingRequest{value: REWARD}(MODEL, T, D);
    }

    function join(uint256 id, Keys memory k) internal {
        vm.prank(k.online);
        fl.registerTraining(id);
    }

    /// @dev A training with dev1, dev2 and gw registered.
    function joined() internal returns (uint256 id) {
        id = create();
        join(id, dev1);
        join(id, dev2);
        join(id, gw);
    }

    /// @dev Warps into round `round`'s scoring window (first half) or submission window.
    function toScoring(uint256 id, uint256 round) internal {
        (uint256 start,,) = fl.scheduleOf(id, round);
        vm.warp(start);
    }

    function toSubmission(uint256 id, uint256 round) internal {
        (, uint256 scoringEnds,) = fl.scheduleOf(id, round);
        vm.warp(scoringEnds);
    }

    function toClosing(uint256 id) internal {
        (, uint256 opens,) = fl.scheduleOf(id, T + 1);
        vm.warp(opens);
    }

    function store(uint256 id, Keys memory k, uint256 round) internal {
        vm.prank(k.online);
        fl.storeLocalModel(id, keccak256(abi.encode("local", k.offline, round)));
    }

    function score(uint256 id, Keys memory voter, Keys memory author, int8 s) internal {
        vm.prank(voter.online);
        fl.scoreLocalModel(id, author.offline, s);
    }

    /// @dev Every participant stores a model in every round.
    function allRounds(uint256 id) internal {
        for (uint256 r = 1; r <= T; ++r) {
            toSubmission(id, r);
            store(id, dev1, r);
            store(id, dev2, r);
            store(id, gw, r);
        }
    }

    function weights(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory w) {
        w = new uint256[](3);
        (w[0], w[1], w[2]) = (a, b, c);
    }

    function claim(uint256 id, address who) internal returns (uint256 paid) {
        uint256 before = who.balance;
        vm.prank(who);
        fl.claimReward(id);
        paid = who.balance - before;
    }
}

contract FederatedLearningTest is FLBase {
    function test_constructor_refusesBadGrace() public {
        vm.expectRevert(IFederatedLearning.FederatedLearning_InvalidParameter.selector);
        new FederatedLearning(identity, 0);
        vm.expectRevert(IFederatedLearning.FederatedLearning_InvalidParameter.selector);
        new FederatedLearning(identity, 2 ** 32);
    }

    // ---------------------------------------------------------------- create

    function test_create_escrowsAndLists() public {
        vm.expectEmit(address(fl));
        emit IFederatedLearning.TrainingCreated(1, svc.offline, MODEL, REWARD, T, D, svc.online);
        uint256 id = create();
        assertEq(id, 1);
        assertEq(address(fl).balance, REWARD);
        assertEq(fl.totalOwed(), REWARD);
        IFederatedLearning.Training memory t = fl.trainingOf(id);
        assertEq(t.service, svc.offline);
        assertEq(t.modelRef, MODEL);
        assertEq(t.reward, REWARD);
        assertEq((t.targetRound), T);
        assertEq(t.roundDuration, D);
        assertEq(uint8(fl.statusOf(id)), uint8(IFederatedLearning.Status.Unprocessed));
        assertEq(fl.roundOf(id), 0);
        (uint256[] memory ids,,) = fl.getAvailableTraining(0, 10);
        assertEq(ids.length, 1);
        assertEq(ids[0], id);
    }

    function test_create_sameModelTwice_twoTrainings() public {
        uint256 a = create();
        uint256 b = create();
        assertTrue(a != b);
        assertEq(fl.trainingOf(b).modelRef, MODEL);
        assertEq(fl.trainingCount(), 2);
    }

    function test_create_onlyActiveService() public {
        vm.deal(dev1.online, 1 ether);
        vm.prank(dev1.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_WrongRole.selector, dev1.online, uint8(3)
            )
        );
        fl.createTrainingRequest{value: REWARD}(MODEL, T, D);
        vm.prank(svc.offline); // the offline key does not act
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_WrongRole.selector, svc.offline, uint8(3)
            )
        );
        fl.createTrainingRequest{value: REWARD}(MODEL, T, D);
    }

    function test_create_refusesBadInput() public {
        vm.startPrank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadReward.selector, 0));
        fl.createTrainingRequest(MODEL, T, D);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadSchedule.selector, 0, D)
        );
        fl.createTrainingRequest{value: REWARD}(MODEL, 0, D);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadSchedule.selector, 1001, D)
        );
        fl.createTrainingRequest{value: REWARD}(MODEL, 1001, D);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadSchedule.selector, T, 1)
        );
        fl.createTrainingRequest{value: REWARD}(MODEL, T, 1);
        vm.expectRevert(IFederatedLearning.FederatedLearning_ZeroRef.selector);
        fl.createTrainingRequest{value: REWARD}(bytes32(0), T, D);
        vm.stopPrank();
        vm.deal(svc.online, uint256(type(uint96).max) + 1);
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_BadReward.selector, uint256(type(uint96).max) + 1
            )
        );
        fl.createTrainingRequest{value: uint256(type(uint96).max) + 1}(MODEL, T, D);
    }

    function test_availableList_pagesAndDropsStartedTrainings() public {
        uint256 a = create();
        vm.warp(block.timestamp + 10 minutes);
        uint256 b = create();
        uint256 c = create();
        (uint256[] memory ids,, uint256 next) = fl.getAvailableTraining(1, 2);
        assertEq(ids.length, 2);
        assertEq(next, 3);
        (ids,, next) = fl.getAvailableTraining(next, 2);
        assertEq(ids.length, 1);
        assertEq(ids[0], c);
        assertEq(next, 0);
        vm.warp(fl.trainingOf(a).createdAt + D); // a's registration is over, b's and c's not yet
        (ids,,) = fl.getAvailableTraining(0, 100);
        assertEq(ids.length, 2);
        assertEq(ids[0], b);
        (ids,, next) = fl.getAvailableTraining(99, 10);
        assertEq((ids.length), 0);
        assertEq(next, 0);
    }

    // ---------------------------------------------------------------- register

    function test_register_devicesAndGatewaysJoin() public {
        uint256 id = joined();
        address[] memory ps = fl.participantsOf(id);
        assertEq(ps.length, 3);
        assertEq(ps[0], dev1.offline);
        assertEq(ps[2], gw.offline);
        assertEq(fl.participantOf(id, dev2.offline).index, 2);
        assertEq(fl.trainingOf(id).participants, 3);
    }

    function test_register_refusals() public {
        uint256 id = create();
        for (uint256 i; i < 2; ++i) {
            Keys memory k = i == 0 ? wrk : svc;
            vm.prank(k.online);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IFederatedLearning.FederatedLearning_WrongRole.selector, k.online, uint8(1)
                )
            );
            fl.registerTraining(id);
        }
        join(id, dev1);
        vm.prank(dev1.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_AlreadyRegistered.selector, id, dev1.offline
            )
        );
        fl.registerTraining(id);
        vm.prank(dev2.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_UnknownTraining.selector, 9)
        );
        fl.registerTraining(9);
        toScoring(id, 1); // registration is over
        vm.prank(dev2.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_WrongStatus.selector,
                id,
                IFederatedLearning.Status.InProgress
            )
        );
        fl.registerTraining(id);
    }

    function test_register_fullAtMaxParticipants() public {
        uint256 id = create();
        for (uint256 i; i < fl.MAX_PARTICIPANTS(); ++i) {
            join(id, register(1000 + i, IIdentityRegistry.Role.Device));
        }
        Keys memory late = register(2000, IIdentityRegistry.Role.Device);
        vm.prank(late.online);
        vm.expectRevert(abi.encodeWithSelector(IFederatedLearning.FederatedLearning_Full.selector, id));
        fl.registerTraining(id);
    }

    // ---------------------------------------------------------------- store

    function test_store_onlyInTheSubmissionWindowOnce() public {
        uint256 id = joined();
        bytes32 ref = keccak256("dev1 round 1");
        vm.prank(dev1.online); // registration
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_WrongStatus.selector,
                id,
                IFederatedLearning.Status.Unprocessed
            )
        );
        fl.storeLocalModel(id, ref);
        toScoring(id, 1);
        vm.prank(dev1.online); // scoring window
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_OutsideWindow.selector, id, 1)
        );
        fl.storeLocalModel(id, ref);
        toSubmission(id, 1);
        vm.prank(dev1.online);
        fl.storeLocalModel(id, ref);
        assertEq(fl.localModelOf(id, 1, dev1.offline), ref);
        assertEq(fl.participantOf(id, dev1.offline).models, 1);
        assertEq(fl.trainingOf(id).contributors, 1);
        vm.prank(dev1.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_AlreadyStored.selector, id, 1, dev1.offline
            )
        );
        fl.storeLocalModel(id, keccak256("again"));
        // Next round: again, once; the contributor count does not grow.
        toSubmission(id, 2);
        store(id, dev1, 2);
        assertEq(fl.participantOf(id, dev1.offline).models, 2);
        assertEq(fl.trainingOf(id).contributors, 1);
        // No submissions in the final scoring round.
        toSubmission(id, T + 1);
        vm.prank(dev2.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_OutsideWindow.selector, id, T + 1)
        );
        fl.storeLocalModel(id, ref);
    }

    function test_store_refusals() public {
        uint256 id = joined();
        toSubmission(id, 1);
        Keys memory outsider = register(30, IIdentityRegistry.Role.Device);
        vm.prank(outsider.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_NotParticipant.selector, id, outsider.online
            )
        );
        fl.storeLocalModel(id, keccak256("x"));
        vm.prank(dev1.offline); // the offline key does not act
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_NotParticipant.selector, id, dev1.offline
            )
        );
        fl.storeLocalModel(id, keccak256("x"));
        vm.prank(dev1.online);
        vm.expectRevert(IFederatedLearning.FederatedLearning_ZeroRef.selector);
        fl.storeLocalModel(id, bytes32(0));
    }

    function test_store_rotatedKeyActsForTheSameParticipant() public {
        uint256 id = joined();
        (address online, uint256 pk, bytes memory pub) = onlineKeyOf(22);
        bytes memory sig = pop(dev1.offline, online, pk);
        vm.prank(dev1.offline);
        identity.updatePublicKey(online, pub, sig);
        toSubmission(id, 1);
        vm.prank(dev1.online); // the old key no longer acts
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_NotParticipant.selector, id, dev1.online
            )
        );
        fl.storeLocalModel(id, keccak256("x"));
        // The event names the key that stored it: the one whose signature the file must carry.
        vm.expectEmit(address(fl));
        emit IFederatedLearning.LocalModelStored(id, 1, dev1.offline, keccak256("x"), online);
        vm.prank(online);
        fl.storeLocalModel(id, keccak256("x"));
        assertEq(fl.localModelOf(id, 1, dev1.offline), keccak256("x"));
    }

    // ---------------------------------------------------------------- score

    function test_score_inTheNextRoundsScoringWindowOnce() public {
        uint256 id = joined();
        toSubmission(id, 1);
        store(id, dev1, 1);
        store(id, dev2, 1);
        vm.prank(dev2.online); // round 1 has nothing to score
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_OutsideWindow.selector, id, 1)
        );
        fl.scoreLocalModel(id, dev1.offline, 50);
        toScoring(id, 2);
        score(id, dev2, dev1, -60);
        score(id, gw, dev1, 20);
        score(id, svc, dev1, -10); // the service scores too
        score(id, dev1, dev2, 70);
        (int256 sum, uint256 votes) = fl.scoreOf(id, 1, dev1.offline);
        assertEq(sum, -50);
        assertEq(votes, 3);
        assertTrue(fl.isExcluded(id, 1, dev1.offline));
        assertFalse(fl.isExcluded(id, 1, dev2.offline));
        assertFalse(fl.isExcluded(id, 1, gw.offline)); // no model, no score: nothing to exclude
        vm.prank(dev2.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_AlreadyScored.selector, id, 1, dev2.offline, dev1.offline
            )
        );
        fl.scoreLocalModel(id, dev1.offline, 1);
        // The scoring window is over: the set is fixed before anyone aggregates.
        toSubmission(id, 2);
        vm.prank(gw.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_OutsideWindow.selector, id, 2)
        );
        fl.scoreLocalModel(id, dev2.offline, -100);
        assertFalse(fl.isExcluded(id, 1, dev2.offline));
    }

    function test_score_refusals() public {
        uint256 id = joined();
        toSubmission(id, 1);
        store(id, dev1, 1);
        toScoring(id, 2);
        vm.startPrank(dev2.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadScore.selector, int256(0))
        );
        fl.scoreLocalModel(id, dev1.offline, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadScore.selector, int256(101))
        );
        fl.scoreLocalModel(id, dev1.offline, 101);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadScore.selector, int256(-101))
        );
        fl.scoreLocalModel(id, dev1.offline, -101);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_NoModel.selector, id, 1, gw.offline)
        );
        fl.scoreLocalModel(id, gw.offline, 10);
        vm.stopPrank();
        vm.prank(dev1.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_OwnModel.selector, dev1.offline)
        );
        fl.scoreLocalModel(id, dev1.offline, 100);
        Keys memory outsider = register(31, IIdentityRegistry.Role.Device);
        vm.prank(outsider.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_NotParticipant.selector, id, outsider.online
            )
        );
        fl.scoreLocalModel(id, dev1.offline, -100);
        vm.prank(svc2.online); // another service
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_NotParticipant.selector, id, svc2.online
            )
        );
        fl.scoreLocalModel(id, dev1.offline, -100);
    }

    function test_score_finalRoundsModelsInTheFinalScoringWindow() public {
        uint256 id = joined();
        allRounds(id);
        toScoring(id, T + 1);
        score(id, dev1, gw, -5);
        assertTrue(fl.isExcluded(id, T, gw.offline));
        assertEq(fl.roundOf(id), T + 1);
    }

    // ---------------------------------------------------------------- close and claim

    function test_close_splitsExactlyAndEachClaimsOnce() public {
        uint256 id = joined();
        allRounds(id);
        // 1 wei of reward and weights that round down: the dust goes back to the service.
        uint256[] memory w = weights(0.5e18, 0.333333333333333333e18, 0.166666666666666667e18);
        toClosing(id);
        vm.prank(svc.online);
        fl.closeTraining(id, w);
        assertEq(uint8(fl.statusOf(id)), uint8(IFederatedLearning.Status.Finished));
        uint256 a = claim(id, dev1.online);
        uint256 b = claim(id, dev2.online);
        uint256 c = claim(id, gw.online);
        uint256 dust = fl.claimableOf(id, svc.offline);
        assertEq(a, 0.5 ether);
        assertEq(b, REWARD * 0.333333333333333333e18 / 1e18);
        assertEq(a + b + c + dust, REWARD, "parts sum exactly to the escrow");
        if (dust > 0) claim(id, svc.online);
        assertEq(address(fl).balance, 0);
        assertEq(fl.totalOwed(), 0);
        vm.prank(dev1.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_NothingToClaim.selector, id, dev1.online
            )
        );
        fl.claimReward(id);
    }

    function test_close_refusals() public {
        uint256 id = joined();
        allRounds(id);
        uint256[] memory w = weights(0.5e18, 0.25e18, 0.25e18);
        toScoring(id, T + 1); // the final scoring is not over
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_OutsideWindow.selector, id, T + 1)
        );
        fl.closeTraining(id, w);
        toClosing(id);
        vm.prank(svc2.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_NotService.selector, id, svc2.online)
        );
        fl.closeTraining(id, w);
        vm.startPrank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadRewardParam.selector, 2, 0)
        );
        fl.closeTraining(id, new uint256[](2));
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadRewardParam.selector, 3, 0.9e18)
        );
        fl.closeTraining(id, weights(0.5e18, 0.2e18, 0.2e18));
        vm.expectRevert(
            abi.encodeWithSelector(IFederatedLearning.FederatedLearning_BadRewardParam.selector, 3, 2e18)
        );
        fl.closeTraining(id, weights(2e18, 0, 0));
        fl.closeTraining(id, w);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_WrongStatus.selector,
                id,
                IFederatedLearning.Status.Finished
            )
        );
        fl.closeTraining(id, w);
        vm.stopPrank();
        // After the closing window the service can no longer choose the split.
        uint256 id2 = joined();
        allRounds(id2);
        (, uint256 opens,) = fl.scheduleOf(id2, T + 1);
        vm.warp(opens + GRACE);
        vm.prank(svc.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_WrongStatus.selector,
                id2,
                IFederatedLearning.Status.Finished
            )
        );
        fl.closeTraining(id2, w);
    }

    function test_claim_beforeTheEnd_refused() public {
        uint256 id = joined();
        allRounds(id);
        vm.prank(dev1.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_WrongStatus.selector,
                id,
                IFederatedLearning.Status.InProgress
            )
        );
        fl.claimReward(id);
        assertEq(fl.claimableOf(id, dev1.offline), 0);
    }

    function test_exit_nobodyRegistered_serviceTakesItBack() public {
        uint256 id = create();
        vm.warp(block.timestamp + D);
        assertEq(uint8(fl.statusOf(id)), uint8(IFederatedLearning.Status.Finished));
        assertEq(claim(id, svc.online), REWARD);
        assertEq(fl.totalOwed(), 0);
    }

    function test_exit_serviceNeverCloses_equalPartsToContributors() public {
        uint256 id = create();
        join(id, dev1);
        join(id, dev2);
        join(id, gw);
        Keys memory idle = register(32, IIdentityRegistry.Role.Device);
        join(id, idle); // registers, never stores a model
        allRounds(id);
        vm.prank(svc2.online);
        fl.createTrainingRequest{value: 1}(MODEL, 1, D); // unrelated, 1 wei
        (, uint256 opens,) = fl.scheduleOf(id, T + 1);
        vm.warp(opens + GRACE);
        assertEq(uint8(fl.statusOf(id)), uint8(IFederatedLearning.Status.Finished));
        uint256 share = REWARD / 3;
        assertEq(claim(id, dev1.online), share);
        assertEq(claim(id, dev2.offline), share, "the offline address may claim too");
        assertEq(claim(id, gw.online), share);
        assertEq(fl.claimableOf(id, idle.offline), 0);
        vm.prank(idle.online);
        vm.expectRevert(
            abi.encodeWithSelector(
                IFederatedLearning.FederatedLearning_NothingToClaim.selector, id, idle.online
            )
        );
        fl.claimReward(id);
        assertEq(claim(id, svc.online), REWARD - 3 * share, "the remainder goes back to the service");
        assertEq(fl.totalOwed(), 1); // the other training's wei
    }

    function test_exit_nobodyContributed_serviceTakesItBack() public {
        uint256 id = joined();
        (, uint256 opens,) = fl.scheduleOf(id, T + 1);
        vm.warp(opens + GRACE);
        assertEq(fl.claimableOf(id, dev1.offline), 0);
        assertEq(claim(id, svc.online), REWARD);
    }

    function test_schedule_roundsFollowBlockTime() public {
        uint256 id = create();
        uint256 c = block.timestamp;
        (uint256 s1, uint256 v1, uint256 e1) = fl.scheduleOf(id, 1);
        assertEq((s1), c + D);
        assertEq(v1, c + D + D / 2);
        assertEq(e1, c + 2 * D);
        uint256 last;
        for (uint256 dt; dt < (T + 4) * uint256(D); dt += 17 minutes) {
            vm.warp(c + dt);
            uint256 r = fl.roundOf(id);
            vm.assertGe(r, last, "rounds never go back");
            vm.assertLe(r, T + 1, "at most the final scoring round");
            last = r;
        }
        assertEq(last, T + 1);
    }

    // ---------------------------------------------------------------- fuzz

    /// @dev Any split the service may choose sums exactly to the escrow with its dust.
    function testFuzz_close_partsSumToTheEscrow(uint96 reward, uint64 a, uint64 b) public {
        vm.assume(reward > 0);
        uint256 wa = uint256(a) % (1e18 + 1);
        uint256 wb = uint256(b) % (1e18 + 1 - wa);
        uint256 wc = 1e18 - wa - wb;
        vm.deal(svc.online, reward);
        vm.prank(svc.online);
        uint256 id = fl.createTrainingRequest{value: reward}(MODEL, 1, D);
        join(id, dev1);
        join(id, dev2);
        join(id, gw);
        toClosing(id);
        vm.prank(svc.online);
        fl.closeTraining(id, weights(wa, wb, wc));
        uint256 total = fl.claimableOf(id, dev1.offline) + fl.claimableOf(id, dev2.offline)
            + fl.claimableOf(id, gw.offline) + fl.claimableOf(id, svc.offline);
        assertEq(total, reward);
        vm.assertLe(fl.claimableOf(id, svc.offline), 2, "dust is under one wei per participant");
    }

    /// @dev The equal split of an unclosed training sums exactly to the escrow.
    function testFuzz_equalSplit_sumsToTheEscrow(uint96 reward, uint8 contributors) public {
        vm.assume(reward > 0);
        uint256 n = bound(contributors, 1, 12);
        vm.deal(svc.online, reward);
        vm.prank(svc.online);
        uint256 id = fl.createTrainingRequest{value: reward}(MODEL, 1, D);
        Keys[] memory ks = new Keys[](n);
        for (uint256 i; i < n; ++i) {
            ks[i] = register(500 + i, IIdentityRegistry.Role.Device);
            join(id, ks[i]);
        }
        toSubmission(id, 1);
        for (uint256 i; i < n; ++i) {
            store(id, ks[i], 1);
        }
        (, uint256 opens,) = fl.scheduleOf(id, 2);
        vm.warp(opens + GRACE);
        uint256 total = fl.claimableOf(id, svc.offline);
        for (uint256 i; i < n; ++i) {
            total += fl.claimableOf(id, ks[i].offline);
        }
        assertEq(total, reward);
    }

    /// @dev Whatever the time, a model is stored only inside its round's submission window.
    function testFuzz_store_onlyInsideTheSubmissionWindow(uint32 dt) public {
        uint256 id = joined();
        uint256 c = block.timestamp;
        vm.warp(c + bound(dt, 0, (T + 3) * uint256(D)));
        uint256 elapsed = block.timestamp - c;
        uint256 round = elapsed / D;
        bool inside = round >= 1 && round <= T && elapsed % D >= D / 2;
        vm.prank(dev1.online);
        if (!inside) vm.expectRevert();
        fl.storeLocalModel(id, keccak256("m"));
        if (inside) assertEq(fl.localModelOf(id, round, dev1.offline), keccak256("m"));
    }
}
