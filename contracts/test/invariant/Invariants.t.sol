// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "../Base.t.sol";
import {Handler} from "./Handlers.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";
import {NameRegistry} from "../../src/NameRegistry.sol";

/// @notice Stateful invariants over IdentityRegistry, both NameRegistry modes and Reputation
/// (README.md, 1–6 and the end-of-run drain). Each compares two independent accounts of the same
/// facts: the contracts' storage read through their views, and the handler's own records.
contract InvariantsTest is Base {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new Handler(identity, names, caNames, reputation, GOVERNANCE, SINK);
        targetContract(address(handler));
        // Every action but the end-of-run drain (afterInvariant calls it), which would close
        // every identity and freeze the rest of the run.
        bytes4[] memory actions = new bytes4[](24);
        (actions[0], actions[1], actions[2], actions[3]) =
        (
            Handler.appoint.selector,
            Handler.dismiss.selector,
            Handler.appointAndRegister.selector,
            Handler.register.selector
        );
        (actions[4], actions[5], actions[6], actions[7]) =
        (
            Handler.update.selector,
            Handler.close.selector,
            Handler.vouch.selector,
            Handler.addIncentive.selector
        );
        (actions[8], actions[9], actions[10], actions[11]) =
        (
            Handler.withdrawStake.selector,
            Handler.claimIncentive.selector,
            Handler.reclaimIncentive.selector,
            Handler.slash.selector
        );
        (actions[12], actions[13], actions[14], actions[15]) =
        (
            Handler.withdrawCredit.selector,
            Handler.submitName.selector,
            Handler.updateAddress.selector,
            Handler.setBackup.selector
        );
        (actions[16], actions[17], actions[18], actions[19]) =
        (
            Handler.recoverName.selector,
            Handler.addCertificate.selector,
            Handler.revokeCertificate.selector,
            Handler.vote.selector
        );
        (actions[20], actions[21], actions[22], actions[23]) =
        (
            Handler.voteDomain.selector,
            Handler.strike.selector,
            Handler.reclaimDeposit.selector,
            Handler.warp.selector
        );
        targetSelector(FuzzSelector({addr: address(handler), selectors: actions}));
    }

    /// The handler's actions really change state (its try/catch must not hide a broken setup),
    /// and every kind of action can succeed.
    function test_handlerDrivesRealStateChanges() public {
        handler.register(0, 1); // a gateway
        handler.register(4, 4); // a self-declared notary: refused
        handler.appointAndRegister(1, false); // an appointed notary
        handler.appointAndRegister(2, true); // an appointed CA
        handler.register(3, 2); // a service
        assertEq(handler.onlineKeyCount(), 4, "registered");
        handler.vouch(3, 0, 1 ether);
        handler.addIncentive(0, 1 ether);
        handler.claimIncentive(3, 0);
        assertTrue(handler.ghostIdentityOut() > 0, "claimed");
        handler.submitName(0, 3, false, 0);
        handler.submitName(2, 4, true, 3); // the CA names the service
        assertEq(handler.nameCount(), 2, "named in both modes");
        handler.addCertificate(0, 1, false, 0);
        handler.addCertificate(1, 2, true, 2);
        assertEq(handler.ghostCertificates(), 2, "pinned, by the owner and by the CA");
        handler.setBackup(0, 3);
        handler.vote(3, 0, 50);
        handler.voteDomain(3, 0, 1, 40); // over name 0's pinned key (seed 1)
        assertEq(handler.ghostCountedVotes(), 2, "voted on an identity and a name");
        handler.strike(1, 0, true);
        assertEq(handler.ghostCountedVotes(), 1, "struck by the notary");
        handler.slash(1, 0, true);
        assertEq(identity.creditOf(SINK), 1 ether + 1e12, "slashed into the sink");
        handler.warp(8 days);
        handler.close(0);
        handler.recoverName(0, 3);
        (,, address owner) = handler.nameAt(0);
        assertEq(owner, handler.offline(3), "recovered by the backup");
        handler.dismiss(1);
        handler.update(3);
        assertEq(handler.onlineKeyCount(), 5, "rotated");
        assertEq(handler.ghostUnappointedActs(), 0, "only appointed roles acted");
        invariant_identityOwesWhatItHoldsFromFirstPrinciples();
        invariant_eachKeysStakesSumToItsTotal();
        invariant_penaltiesCreditOnlyTheSink();
        invariant_onlyAppointedRolesAct();
        invariant_namesChangeHandsOnlyByRecovery();
        invariant_reputationOwesWhatItHolds();
        afterInvariant();
    }

    /// 1. IdentityRegistry's balance is, from first principles, Σ stakes + Σ incentives held +
    /// Σ incentives waiting + Σ credits over every key and account — and what came in minus what
    /// went out. (Not its own `totalOwed` counter.)
    function invariant_identityOwesWhatItHoldsFromFirstPrinciples() public view {
        uint256 owed;
        for (uint256 k; k < handler.onlineKeyCount(); ++k) {
            (uint256 stake, uint256 unallocated, uint256 held) = identity.keyStakesOf(handler.onlineKeys(k));
            owed += stake + unallocated + held;
        }
        address[] memory accounts = handler.accounts();
        for (uint256 i; i < accounts.length; ++i) {
            owed += identity.creditOf(accounts[i]);
        }
        assertEq(address(identity).balance, owed, "balance == stakes + incentives + credits");
        assertEq(
            address(identity).balance, handler.ghostIdentityIn() - handler.ghostIdentityOut(), "== in - out"
        );
    }

    /// 2. Per key, the vouchers' stakes sum to its total stake, and what they can claim never
    /// exceeds the incentive it holds.
    function invariant_eachKeysStakesSumToItsTotal() public view {
        for (uint256 k; k < handler.onlineKeyCount(); ++k) {
            address key = handler.onlineKeys(k);
            (uint256 total,, uint256 held) = identity.keyStakesOf(key);
            uint256 sum;
            uint256 claimable;
            for (uint256 i; i < handler.ACTORS(); ++i) {
                sum += identity.stakeOf(key, handler.offline(i));
                claimable += identity.pendingIncentive(key, handler.offline(i));
            }
            assertEq(sum, total, "stakes sum to the total");
            assertTrue(claimable <= held, "never owes more incentive than it holds");
        }
    }

    /// 3. Slashing and striking pay nobody who decides them: no actor is ever credited, only the sink.
    function invariant_penaltiesCreditOnlyTheSink() public view {
        for (uint256 i; i < handler.ACTORS(); ++i) {
            assertEq(identity.creditOf(handler.offline(i)), 0, "no actor credited by a slash");
            assertEq(reputation.creditOf(handler.offline(i)), 0, "no actor credited by a strike");
        }
    }

    /// 4. Only appointed roles act on others: no slash, strike, CA-submitted name or CA-pinned
    /// certificate ever succeeded for an actor the handler had not seen appointed (and registered
    /// with that role, and open). Closed identities stay closed.
    function invariant_onlyAppointedRolesAct() public view {
        assertEq(handler.ghostUnappointedActs(), 0, "an unappointed actor acted as notary or CA");
        for (uint256 i; i < handler.ACTORS(); ++i) {
            address o = handler.offline(i);
            if (handler.everClosed(o)) {
                assertTrue(
                    identity.identityOf(o).status == IIdentityRegistry.Status.Closed, "closed stays closed"
                );
            }
        }
    }

    /// 5. A name's owner is whoever the handler saw register it or recover it — names change hands
    /// only by recovery.
    function invariant_namesChangeHandsOnlyByRecovery() public view {
        for (uint256 i; i < handler.nameCount(); ++i) {
            (NameRegistry registry, string memory name, address owner) = handler.nameAt(i);
            assertEq(registry.nameRecord(name).owner, owner, "owner as registered or recovered");
        }
    }

    /// 6. Reputation holds exactly the open deposits and the sink's credit — and what came in minus
    /// what went out; its tallies count exactly the votes cast and not struck.
    function invariant_reputationOwesWhatItHolds() public view {
        assertEq(
            address(reputation).balance,
            handler.ghostOpenDeposits() * reputation.VOTE_DEPOSIT() + reputation.creditOf(SINK),
            "balance == open deposits + credits"
        );
        assertEq(
            address(reputation).balance,
            handler.ghostReputationIn() - handler.ghostReputationOut(),
            "== in - out"
        );
        assertEq(reputation.totalOwed(), address(reputation).balance, "its own counter agrees");
    }

    /// 7. At the end of every run everyone takes back everything: the contracts fall to dust
    /// (incentive rounding, at most ~61 wei an allocation with stakes below 60 ether) and nothing.
    function afterInvariant() public {
        handler.drainAll();
        assertTrue(address(identity).balance <= 61 * handler.ghostAllocations(), "identity: dust only");
        assertEq(address(reputation).balance, 0, "reputation: nothing left");
        invariant_identityOwesWhatItHoldsFromFirstPrinciples();
    }
}
