// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MarketBase} from "../JobMarket.t.sol";
import {MarketHandler} from "./MarketHandler.sol";

/// @notice Stateful invariants of JobMarket (README.md, 7–10 and the end-of-run drain), each
/// comparing the handler's own books with the contract's views.
contract MarketInvariantsTest is MarketBase {
    MarketHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new MarketHandler(identity, market, GOVERNANCE);
        targetContract(address(handler));
        bytes4[] memory actions = new bytes4[](10);
        (actions[0], actions[1], actions[2], actions[3], actions[4]) =
        (
            MarketHandler.create.selector,
            MarketHandler.cancel.selector,
            MarketHandler.accept.selector,
            MarketHandler.report.selector,
            MarketHandler.end.selector
        );
        (actions[5], actions[6], actions[7], actions[8], actions[9]) =
        (
            MarketHandler.dispute.selector,
            MarketHandler.resolve.selector,
            MarketHandler.settle.selector,
            MarketHandler.claim.selector,
            MarketHandler.warp.selector
        );
        targetSelector(FuzzSelector({addr: address(handler), selectors: actions}));
    }

    /// The handler's actions really change state, and each kind can succeed.
    function test_handlerDrivesRealStateChanges() public {
        handler.create(0, 1 ether - 1, 10 days); // reward 1 + (x mod 10 ether)
        handler.create(1, 2 ether - 1, 10 days);
        handler.accept(0, 0, 0, 0); // job 1: service 0, worker 0, signed by worker 0
        handler.accept(1, 1, 1, 0); // job 2: a forged proposal — refused
        assertEq(handler.ghostSucceeded(MarketHandler.accept.selector), 1, "only the real proposal");
        handler.report(0, 0);
        handler.end(0, 0, false);
        handler.dispute(0, 1); // the worker disputes the Failed verdict
        handler.resolve(0, true, true);
        handler.claim(0, 2); // the worker's online key
        assertEq(handler.ghostPaid(1), 1 ether, "worker paid on the ruling");
        handler.cancel(1, 1);
        handler.settle(1); // nothing to record: already Failed by the cancel
        handler.claim(1, 5); // service 1's offline address
        assertEq(handler.ghostOut(), 3 ether, "both paid");
        assertEq(address(market).balance, 0, "empty");
    }

    /// 7. Funds conserved: balance = totalOwed = ether in − ether out = Σ rewards of unclaimed jobs.
    function invariant_marketHoldsWhatItOwes() public view {
        uint256 unclaimed;
        for (uint256 id = 1; id <= market.jobCount(); ++id) {
            if (!market.jobOf(id).claimed) unclaimed += handler.ghostReward(id);
        }
        assertEq(address(market).balance, market.totalOwed(), "balance == totalOwed");
        assertEq(address(market).balance, handler.ghostIn() - handler.ghostOut(), "in - out");
        assertEq(address(market).balance, unclaimed, "rewards of unclaimed jobs");
    }

    /// 8. A job pays out exactly once, exactly its reward, only to its payee.
    function invariant_jobsPayOnceToThePayee() public view {
        for (uint256 id = 1; id <= market.jobCount(); ++id) {
            uint256 claims = handler.ghostClaims(id);
            assertTrue(claims <= 1, "claimed at most once");
            assertEq(handler.ghostPaid(id), claims * handler.ghostReward(id), "the reward, once");
            assertEq(market.jobOf(id).claimed, claims == 1, "claimed flag matches the payout");
        }
        assertEq(handler.ghostWrongPayee(), 0, "paid only to the payee");
    }

    /// 9. States only move forward, and no forged proposal is ever accepted.
    function invariant_statesMoveForward() public view {
        assertEq(handler.ghostBackwards(), 0, "no state moved back");
        assertEq(handler.ghostForgedAccepted(), 0, "no forged proposal accepted");
    }

    /// 10 and the drain. Every job reaches a final state by time alone, and then everyone is paid
    /// and the market holds nothing.
    function afterInvariant() public {
        handler.drain();
        for (uint256 id = 1; id <= market.jobCount(); ++id) {
            assertTrue(market.jobOf(id).claimed, "every job paid out");
        }
        assertEq(address(market).balance, 0, "market empty");
        assertEq(market.totalOwed(), 0, "owes nothing");
        assertEq(handler.ghostBackwards(), 0, "forward only");
    }
}
