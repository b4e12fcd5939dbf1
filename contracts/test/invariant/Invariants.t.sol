// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "../Base.t.sol";
import {Handler} from "./Handlers.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";

/// @notice Stateful invariants over IdentityRegistry, NameRegistry and Reputation; see README.md.
contract InvariantsTest is Base {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new Handler(identity, names, reputation);
        targetContract(address(handler));
    }

    /// The handler's actions really change state (its try/catch must not hide a broken setup).
    function test_handlerDrivesRealStateChanges() public {
        handler.register(0, 1);
        handler.register(1, 4); // a notary
        handler.register(2, 2);
        assertEq(handler.onlineKeyCount(), 3, "registered");
        handler.vouch(1, 0, 1 ether);
        assertTrue(handler.ghostIdentityIn() > 0, "vouched");
        handler.addIncentive(0, 1 ether);
        handler.claimIncentive(1, 0);
        assertTrue(handler.ghostIdentityOut() > 0, "claimed");
        handler.submitName(0, 3);
        assertEq(handler.nameCount(), 1, "named");
        handler.vote(2, 0, 50);
        assertEq(handler.ghostCountedVotes(), 1, "voted");
        handler.strike(1, 0, 2);
        assertEq(handler.ghostCountedVotes(), 0, "struck by the notary");
        handler.update(0);
        assertEq(handler.onlineKeyCount(), 4, "rotated");
        handler.close(0);
        assertTrue(handler.everClosed(handler.offline(0)), "closed");
        invariant_identityBalanceEqualsOwed();
        invariant_reputationBalanceEqualsOwed();
        invariant_nameResolvesOnlyWhileOwnerOpen();
    }

    /// Identity: the ether held is exactly what is owed, and what came in minus what went out.
    function invariant_identityBalanceEqualsOwed() public view {
        assertEq(address(identity).balance, identity.totalOwed(), "balance == owed");
        assertEq(
            address(identity).balance,
            handler.ghostIdentityIn() - handler.ghostIdentityOut(),
            "balance == in - out"
        );
    }

    /// Identity: once closed, always closed; no closed identity's key is active.
    function invariant_closedStaysClosed() public view {
        for (uint256 i; i < handler.ACTORS(); ++i) {
            address o = handler.offline(i);
            if (handler.everClosed(o)) {
                IIdentityRegistry.Identity memory id = identity.identityOf(o);
                assertTrue(id.status == IIdentityRegistry.Status.Closed, "closed stays closed");
                assertFalse(identity.isActive(id.online), "closed key inactive");
            }
        }
    }

    /// Identity: at most one active key per identity, and every key maps to one offline address.
    function invariant_keysBelongToOneIdentity() public view {
        uint256 n = handler.onlineKeyCount();
        for (uint256 i; i < n; ++i) {
            address k = handler.onlineKeys(i);
            address o = identity.offlineOf(k);
            assertTrue(o != address(0), "registered key remembered");
            assertEq(
                identity.isActive(k),
                identity.isOpen(o) && identity.identityOf(o).online == k,
                "active iff current"
            );
        }
    }

    /// Names: a name resolves exactly while its owner's identity is open.
    function invariant_nameResolvesOnlyWhileOwnerOpen() public view {
        uint256 n = handler.nameCount();
        for (uint256 i; i < n; ++i) {
            string memory name = handler.registeredNames(i);
            address owner = names.nameRecord(name).owner;
            assertEq(
                names.resolveAddress(name).length != 0, identity.isOpen(owner), "resolves iff owner open"
            );
        }
    }

    /// Reputation: the ether held is exactly the open deposits and credits.
    function invariant_reputationBalanceEqualsOwed() public view {
        assertEq(address(reputation).balance, reputation.totalOwed(), "balance == owed");
        assertEq(
            address(reputation).balance,
            handler.ghostReputationIn() - handler.ghostReputationOut(),
            "balance == in - out"
        );
    }

    /// Reputation: the tallies count exactly the votes cast and not struck.
    function invariant_tallyCountsCountedVotes() public view {
        uint256 total;
        uint256 n = handler.onlineKeyCount();
        for (uint256 i; i < n; ++i) {
            total += reputation.tallyOf(reputation.accountSubject(handler.onlineKeys(i))).votes;
        }
        assertEq(total, handler.ghostCountedVotes(), "votes counted");
    }
}
