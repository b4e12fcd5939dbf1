// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FLBase} from "../FederatedLearning.t.sol";
import {FLHandler} from "./FLHandler.sol";

/// @notice Stateful invariants of FederatedLearning (README.md, 10–13 and the end-of-run drain),
/// each comparing the handler's own books with the contract's views.
contract FLInvariantsTest is FLBase {
    FLHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new FLHandler(identity, fl);
        targetContract(address(handler));
        bytes4[] memory actions = new bytes4[](7);
        (actions[0], actions[1], actions[2], actions[3]) =
        (
            FLHandler.create.selector,
            FLHandler.register.selector,
            FLHandler.store.selector,
            FLHandler.score.selector
        );
        (actions[4], actions[5], actions[6]) =
        (FLHandler.close.selector, FLHandler.claim.selector, FLHandler.warp.selector);
        targetSelector(FuzzSelector({addr: address(handler), selectors: actions}));
    }

    /// The handler's actions really change state, and each kind can succeed.
    function test_handlerDrivesRealStateChanges() public {
        handler.create(0, 1 ether - 1, 0, 3598); // 1 ether, 1 round of 1 hour
        handler.register(0, 0);
        handler.register(0, 1);
        handler.register(0, 3); // the worker: refused
        assertEq(handler.ghostSucceeded(FLHandler.register.selector), 2, "devices only");
        handler.warp(1.5 hours); // round 1's submission window
        handler.store(0, 0);
        handler.store(0, 0); // twice in a round: refused
        handler.store(0, 1);
        assertEq(handler.ghostSucceeded(FLHandler.store.selector), 2, "once per round");
        handler.warp(0.5 hours); // the final scoring window
        handler.score(0, 0, 1, -10);
        assertTrue(fl.isExcluded(1, 1, handler.memberOffline(1)), "scored down");
        handler.warp(0.5 hours); // closing
        handler.close(0, 0, 1);
        assertEq(handler.ghostSucceeded(FLHandler.close.selector), 1, "closed");
        handler.claim(0, 4); // device 0's online key
        handler.claim(0, 8); // device 1's offline address
        handler.claim(0, 8); // again: refused
        handler.drain();
        assertEq(handler.ghostPaid(1), 1 ether, "all of it, once");
        assertEq(address(fl).balance, 0, "empty");
    }

    /// 10. Funds conserved: balance = totalOwed = ether in − ether out; no training pays more than
    /// its reward.
    function invariant_holdsWhatItOwes() public view {
        assertEq(address(fl).balance, fl.totalOwed(), "balance == totalOwed");
        assertEq(address(fl).balance, handler.ghostIn() - handler.ghostOut(), "in - out");
        for (uint256 id = 1; id <= fl.trainingCount(); ++id) {
            assertTrue(handler.ghostPaid(id) <= handler.ghostReward(id), "never more than the reward");
        }
    }

    /// 11. One model per participant per round, and only devices and gateways take part.
    function invariant_oneModelPerParticipantPerRound() public view {
        assertEq(handler.ghostStoredTwice(), 0, "one model per round");
        assertEq(handler.ghostWorkerIn(), 0, "no worker took part");
    }

    /// 12. Rounds and states only move forward.
    function invariant_roundsMonotone() public view {
        assertEq(handler.ghostBackwards(), 0, "forward only");
    }

    /// 13. Nobody is paid twice by one training.
    function invariant_nobodyPaidTwice() public view {
        assertEq(handler.ghostPaidTwice(), 0, "paid once");
    }

    /// The drain: every training ends by time alone, everyone takes its part, the parts of each
    /// training sum exactly to its reward, and the contract holds nothing.
    function afterInvariant() public {
        handler.drain();
        for (uint256 id = 1; id <= fl.trainingCount(); ++id) {
            assertEq(handler.ghostPaid(id), handler.ghostReward(id), "paid out exactly");
        }
        assertEq(address(fl).balance, 0, "empty");
        assertEq(handler.ghostPaidTwice(), 0, "paid once");
    }
}
