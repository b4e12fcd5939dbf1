// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {IReputation} from "../src/interfaces/IReputation.sol";
import {ICredits} from "../src/interfaces/ICredits.sol";
import {Refuser} from "./IdentityRegistry.t.sol";
import {Reputation} from "../src/Reputation.sol";

contract ReputationTest is Base {
    bytes32 internal constant REASON = keccak256("evidence: the voter never opened a channel to the name");
    Keys internal gw;
    Keys internal svc;
    Keys internal svc2;
    Keys internal notary;
    bytes32 internal cert; // gateway.bit's pinned certificate key

    function setUp() public override {
        super.setUp();
        gw = register(1, IIdentityRegistry.Role.Gateway);
        svc = register(2, IIdentityRegistry.Role.Service);
        svc2 = register(3, IIdentityRegistry.Role.Service);
        notary = register(4, IIdentityRegistry.Role.Notary);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        cert = pinCert(names, gw.offline, 1, "gateway.bit", 1, 2 ** 40);
    }

    /// @dev `voter` votes on gateway.bit with a fresh, valid proof of a channel to it.
    function voteOnGateway(Keys memory voter, int8 score) internal returns (bytes32 digest) {
        IReputation.HandshakeProof memory p = handshakeProof("gateway.bit", cert, gw, voter);
        (bytes memory ss, bytes memory cs) = signProof(p, gw.onlinePk, voter.onlinePk);
        digest = reputation.handshakeProofDigest(p);
        vm.prank(voter.offline);
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", score, p, ss, cs);
    }

    /// @dev Expects `voter`'s vote with proof `p` signed by (serverPk, clientPk) to revert with `err`.
    function expectRefused(
        Keys memory voter,
        IReputation.HandshakeProof memory p,
        uint256 serverPk,
        uint256 clientPk,
        bytes memory err
    ) internal {
        (bytes memory ss, bytes memory cs) = signProof(p, serverPk, clientPk);
        vm.prank(voter.offline);
        vm.expectRevert(err);
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 10, p, ss, cs);
    }

    function test_voteDomain_counts() public {
        bytes32 subject = reputation.domainSubject("gateway.bit");
        uint64 period = reputation.periodOf(block.timestamp);
        IReputation.HandshakeProof memory p = handshakeProof("gateway.bit", cert, gw, svc);
        vm.expectEmit(address(reputation));
        emit IReputation.VoteCast(subject, svc.offline, period, 80, reputation.handshakeProofDigest(p));
        voteOnGateway(svc, 80);
        (int256 score, uint256 votes) = reputation.getReputation("gateway.bit");
        assertEq(score, 80e18, "mean of one vote");
        assertEq(votes, 1, "one vote");
        assertEq(address(reputation).balance, DEPOSIT, "deposit held");
    }

    function test_RevertWhen_HandshakeProofDoesNotHold() public {
        IReputation.HandshakeProof memory p = handshakeProof("gateway.bit", cert, gw, svc);
        bytes memory err;
        // For another name (which svc2 owns, so the vote itself would be allowed).
        vm.prank(svc2.offline);
        names.submitDomainName(svc2.offline, "other.bit", IP4);
        p.name = "other.bit";
        expectRefused(
            svc,
            p,
            gw.onlinePk,
            svc.onlinePk,
            abi.encodeWithSelector(IReputation.Reputation_ProofForAnotherName.selector, "other.bit")
        );
        p.name = "gateway.bit";
        // The server's part signed by someone else than the owner's online key (here: its offline key).
        address wrong = vm.addr(gw.offlinePk);
        err = abi.encodeWithSelector(IReputation.Reputation_WrongServerSigner.selector, wrong, gw.online);
        expectRefused(svc, p, gw.offlinePk, svc.onlinePk, err);
        // The client's part by another key than the voter's online key; or another voter's proof.
        err = abi.encodeWithSelector(
            IReputation.Reputation_WrongClientSigner.selector, svc2.online, svc.online
        );
        expectRefused(svc, p, gw.onlinePk, svc2.onlinePk, err);
        err = abi.encodeWithSelector(
            IReputation.Reputation_WrongClientSigner.selector, svc.online, svc2.online
        );
        expectRefused(svc2, p, gw.onlinePk, svc.onlinePk, err);
        // A key never pinned for the name.
        IReputation.HandshakeProof memory q = handshakeProof("gateway.bit", keccak256("another key"), gw, svc);
        expectRefused(
            svc,
            q,
            gw.onlinePk,
            svc.onlinePk,
            abi.encodeWithSelector(IReputation.Reputation_UnpinnedKey.selector, keccak256("another key"))
        );
        // Clocks: too far ahead, too old, too far apart.
        q = handshakeProof("gateway.bit", cert, gw, svc);
        q.serverTime = uint64(block.timestamp + 6 minutes);
        q.clientTime = q.serverTime;
        err = abi.encodeWithSelector(IReputation.Reputation_StaleProof.selector, q.serverTime, q.clientTime);
        expectRefused(svc, q, gw.onlinePk, svc.onlinePk, err);
        q.serverTime = uint64(block.timestamp);
        q.clientTime = q.serverTime + 6 minutes;
        err = abi.encodeWithSelector(IReputation.Reputation_StaleProof.selector, q.serverTime, q.clientTime);
        expectRefused(svc, q, gw.onlinePk, svc.onlinePk, err);
        (bytes memory ss, bytes memory cs) = signProof(p, gw.onlinePk, svc.onlinePk);
        vm.warp(block.timestamp + 1 days + 1);
        vm.prank(svc.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IReputation.Reputation_StaleProof.selector, p.serverTime, p.clientTime)
        );
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 10, p, ss, cs);
        assertEq(
            uint256(reputation.tallyOf(reputation.domainSubject("gateway.bit")).votes), 0, "nothing counted"
        );
    }

    function test_RevertWhen_HandshakeProofReplayed() public {
        IReputation.HandshakeProof memory p = handshakeProof("gateway.bit", cert, gw, svc);
        (bytes memory ss, bytes memory cs) = signProof(p, gw.onlinePk, svc.onlinePk);
        bytes32 digest = reputation.handshakeProofDigest(p);
        vm.prank(svc.offline);
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 10, p, ss, cs);
        // In the next period the voter may vote again — with a new handshake, not this one.
        vm.warp(block.timestamp + PERIOD);
        vm.prank(svc.offline);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_ProofUsed.selector, digest));
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 10, p, ss, cs);
        voteOnGateway(svc, 10);
        assertEq(
            uint256(reputation.tallyOf(reputation.domainSubject("gateway.bit")).votes),
            2,
            "two handshakes, two votes"
        );
    }

    function test_RevertWhen_TheOwnerRotatedItsKeyAfterTheHandshake() public {
        IReputation.HandshakeProof memory p = handshakeProof("gateway.bit", cert, gw, svc);
        (bytes memory ss, bytes memory cs) = signProof(p, gw.onlinePk, svc.onlinePk);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(gw.offline, online2, pk2);
        vm.prank(gw.offline);
        identity.updatePublicKey(online2, pub2, sig);
        vm.prank(svc.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IReputation.Reputation_WrongServerSigner.selector, gw.online, online2)
        );
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 10, p, ss, cs);
    }

    /// Freshness is exactly the window: a proof of age a counts iff a <= PROOF_WINDOW.
    function testFuzz_proofFreshness(uint32 age) public {
        IReputation.HandshakeProof memory p = handshakeProof("gateway.bit", cert, gw, svc);
        (bytes memory ss, bytes memory cs) = signProof(p, gw.onlinePk, svc.onlinePk);
        uint256 window = reputation.PROOF_WINDOW();
        vm.warp(block.timestamp + age);
        vm.prank(svc.offline);
        if (age > window) {
            vm.expectRevert(
                abi.encodeWithSelector(IReputation.Reputation_StaleProof.selector, p.serverTime, p.clientTime)
            );
        }
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 10, p, ss, cs);
    }

    function test_voteReputation_counts() public {
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, -20);
        (int256 score, uint256 votes) = reputation.getReputation(gw.online);
        assertEq(score, -20e18, "negative mark");
        assertEq(votes, 1, "one vote");
    }

    function test_newerVotesWeighMore() public {
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 100);
        vm.warp(block.timestamp + HALF_LIFE);
        vm.prank(svc2.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, -100);
        // weights 1 : 2 → (100·1 − 100·2) / 3 = −33.3…
        (int256 score,) = reputation.getReputation(gw.online);
        assertEq(score, int256(-100e18) / 3, "newer vote weighs double after one half-life");
    }

    function test_weightIsContinuous() public {
        // Half a half-life later the new vote weighs 1.5× the first.
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 100);
        vm.warp(block.timestamp + HALF_LIFE / 2);
        vm.prank(svc2.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, -100);
        (int256 score,) = reputation.getReputation(gw.online);
        assertEq(score, -20e18, "(100 - 150) / 2.5 = -20");
    }

    function test_RevertWhen_VotingTwiceInOnePeriod() public {
        vm.startPrank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 10);
        bytes32 subject = reputation.accountSubject(gw.offline);
        uint64 period = reputation.periodOf(block.timestamp);
        vm.expectRevert(
            abi.encodeWithSelector(IReputation.Reputation_AlreadyVoted.selector, subject, svc.offline, period)
        );
        reputation.voteReputation{value: DEPOSIT}(gw.online, 10);
        vm.warp(block.timestamp + PERIOD);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 10); // next period is fine
        vm.stopPrank();
        (, uint256 votes) = reputation.getReputation(gw.online);
        assertEq(votes, 2, "two periods, two votes");
    }

    function test_RevertWhen_VoterNotActive() public {
        address anyone = address(0xBEEF);
        vm.deal(anyone, 1 ether);
        vm.prank(anyone);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_VoterNotActive.selector, anyone));
        reputation.voteReputation{value: DEPOSIT}(gw.online, 10);

        vm.prank(svc.offline);
        identity.closePublicKey();
        vm.prank(svc.offline);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_VoterNotActive.selector, svc.offline));
        reputation.voteReputation{value: DEPOSIT}(gw.online, 10);
    }

    function test_RevertWhen_BadScoreOrDeposit() public {
        vm.startPrank(svc.offline);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_InvalidScore.selector, int8(0)));
        reputation.voteReputation{value: DEPOSIT}(gw.online, 0);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_InvalidScore.selector, int8(101)));
        reputation.voteReputation{value: DEPOSIT}(gw.online, 101);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_InvalidScore.selector, int8(-128)));
        reputation.voteReputation{value: DEPOSIT}(gw.online, -128);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_WrongDeposit.selector, 1, DEPOSIT));
        reputation.voteReputation{value: 1}(gw.online, 5);
        vm.stopPrank();
    }

    function test_RevertWhen_UnknownTargets() public {
        vm.startPrank(svc.offline);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_UnknownName.selector, "nope.bit"));
        IReputation.HandshakeProof memory none;
        reputation.voteDomain{value: DEPOSIT}("nope.bit", 5, none, "", "");
        vm.expectRevert(
            abi.encodeWithSelector(IReputation.Reputation_UnknownTarget.selector, address(0xBEEF))
        );
        reputation.voteReputation{value: DEPOSIT}(address(0xBEEF), 5);
        vm.stopPrank();
    }

    function test_RevertWhen_SelfVote() public {
        IReputation.HandshakeProof memory none;
        vm.startPrank(gw.offline);
        vm.expectRevert(IReputation.Reputation_SelfVote.selector);
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 5, none, "", "");
        vm.expectRevert(IReputation.Reputation_SelfVote.selector);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 5);
        vm.stopPrank();
    }

    function test_strikeVote_removesItAndPaysTheSinkNotTheNotary() public {
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 90);
        vm.prank(svc2.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, -50);
        bytes32 subject = reputation.accountSubject(gw.offline);
        uint64 period = reputation.periodOf(block.timestamp);

        vm.prank(notary.offline);
        reputation.strikeVote(subject, svc2.offline, period, REASON);
        (int256 score, uint256 votes) = reputation.getReputation(gw.online);
        assertEq(score, 90e18, "struck vote no longer counts");
        assertEq(votes, 1, "one vote left");
        assertEq(reputation.creditOf(notary.offline), 0, "nothing for the notary");
        assertEq(reputation.creditOf(SINK), DEPOSIT, "the deposit goes to the sink");

        vm.warp(block.timestamp + DISPUTE + 1);
        vm.prank(svc2.offline);
        vm.expectRevert(IReputation.Reputation_VoteSettled.selector);
        reputation.reclaimDeposit(subject, period);

        vm.prank(notary.offline);
        vm.expectRevert(ICredits.Credits_NothingToWithdraw.selector);
        reputation.withdrawCredit();
        vm.prank(SINK);
        reputation.withdrawCredit();
        assertEq(SINK.balance, DEPOSIT, "the sink withdraws");
        vm.prank(svc.offline);
        reputation.reclaimDeposit(subject, period);
        assertEq(address(reputation).balance, 0, "all paid out");
        assertEq(reputation.totalOwed(), 0, "nothing owed");
    }

    function test_RevertWhen_NotaryStrikesItsOwnVoteOrGivesNoReason() public {
        vm.startPrank(notary.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, -90);
        bytes32 subject = reputation.accountSubject(gw.offline);
        uint64 period = reputation.periodOf(block.timestamp);
        vm.expectRevert(IReputation.Reputation_SelfStrike.selector);
        reputation.strikeVote(subject, notary.offline, period, REASON);
        vm.stopPrank();
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 50);
        vm.prank(notary.offline);
        vm.expectRevert(IReputation.Reputation_NoReason.selector);
        reputation.strikeVote(subject, svc.offline, period, bytes32(0));
    }

    /// The attack: a key with a bad name rotates to a fresh online key to start over. The score is
    /// the identity's: it follows the new key, and the old key still names it.
    function test_rotatingTheOnlineKey_keepsTheReputation() public {
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, -80);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(gw.offline, online2, pk2);
        vm.prank(gw.offline);
        identity.updatePublicKey(online2, pub2, sig);
        (int256 byNew, uint256 votes) = reputation.getReputation(online2);
        assertEq(byNew, -80e18, "the new key carries the identity's score");
        assertEq(votes, 1, "its one vote");
        (int256 byOld,) = reputation.getReputation(gw.online);
        (int256 byOffline,) = reputation.getReputation(gw.offline);
        assertEq(byOld, byNew, "so does the old key");
        assertEq(byOffline, byNew, "and the offline address");
        // Voting again on the new key in the same period is the same subject: refused.
        bytes32 subject = reputation.accountSubject(gw.offline);
        uint64 period = reputation.periodOf(block.timestamp); // before the prank: calls consume it
        vm.prank(svc.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IReputation.Reputation_AlreadyVoted.selector, subject, svc.offline, period)
        );
        reputation.voteReputation{value: DEPOSIT}(online2, -80);
    }

    function test_RevertWhen_ConstructedOutsideTheSafeRanges() public {
        uint256[4][6] memory bad = [
            [uint256(0), PERIOD, DISPUTE, HALF_LIFE], // a free vote
            [DEPOSIT, 0, DISPUTE, HALF_LIFE],
            [DEPOSIT, 2 ** 32, DISPUTE, HALF_LIFE],
            [DEPOSIT, PERIOD, 2 ** 32, HALF_LIFE],
            [DEPOSIT, PERIOD, DISPUTE, 0],
            [DEPOSIT, PERIOD, DISPUTE, 2 ** 32]
        ];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(IReputation.Reputation_InvalidParameter.selector);
            new Reputation(identity, names, bad[i][0], bad[i][1], bad[i][2], bad[i][3]);
        }
    }

    function test_RevertWhen_StrikeByNonNotaryOrLate() public {
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 90);
        bytes32 subject = reputation.accountSubject(gw.offline);
        uint64 period = reputation.periodOf(block.timestamp);
        vm.prank(svc2.offline);
        vm.expectRevert(abi.encodeWithSelector(IReputation.Reputation_NotNotary.selector, svc2.offline));
        reputation.strikeVote(subject, svc.offline, period, REASON);

        vm.warp(block.timestamp + DISPUTE + 1);
        vm.prank(notary.offline);
        vm.expectRevert(IReputation.Reputation_DisputeWindowClosed.selector);
        reputation.strikeVote(subject, svc.offline, period, REASON);

        vm.prank(notary.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IReputation.Reputation_NoSuchVote.selector, subject, svc2.offline, period)
        );
        reputation.strikeVote(subject, svc2.offline, period, REASON);
    }

    function test_RevertWhen_ReclaimTooEarly() public {
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 90);
        bytes32 subject = reputation.accountSubject(gw.offline);
        uint64 period = reputation.periodOf(block.timestamp);
        vm.prank(svc.offline);
        vm.expectRevert(
            abi.encodeWithSelector(
                IReputation.Reputation_DisputeWindowOpen.selector, block.timestamp + DISPUTE
            )
        );
        reputation.reclaimDeposit(subject, period);
        vm.prank(svc.offline);
        vm.expectRevert(ICredits.Credits_NothingToWithdraw.selector);
        reputation.withdrawCredit();
    }

    function test_RevertWhen_DepositPayoutRefused() public {
        Refuser r = new Refuser();
        (address online, uint256 pk, bytes memory pub) = onlineKeyOf(9);
        bytes memory sig = pop(address(r), online, pk);
        r.call(
            address(identity),
            abi.encodeCall(
                IIdentityRegistry.submitPublicKey, (online, pub, sig, IIdentityRegistry.Role.Service)
            )
        );
        vm.deal(address(this), 1 ether);
        r.call{value: DEPOSIT}(
            address(reputation), abi.encodeCall(IReputation.voteReputation, (gw.online, 7))
        );
        bytes32 subject = reputation.accountSubject(gw.offline);
        uint64 period = reputation.periodOf(block.timestamp);
        vm.warp(block.timestamp + DISPUTE + 1);
        vm.expectRevert(abi.encodeWithSelector(ICredits.Credits_TransferFailed.selector, address(r)));
        r.call(address(reputation), abi.encodeCall(IReputation.reclaimDeposit, (subject, period)));
        assertEq(address(reputation).balance, DEPOSIT, "deposit kept after a failed payout");
    }

    function testFuzz_scoreIsWeightedMean(int8 a, int8 b, uint32 gap) public {
        int256 sa = int256(bound(uint256(int256(a) + 128), 0, 199)) - 99; // [-99, 100]
        int256 sb = int256(bound(uint256(int256(b) + 128), 0, 199)) - 99;
        vm.assume(sa != 0 && sb != 0);
        uint256 dt = bound(gap, 0, 10 * HALF_LIFE);
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, int8(sa));
        vm.warp(block.timestamp + dt);
        vm.prank(svc2.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, int8(sb));

        uint256 wa = HALF_LIFE;
        uint256 wb = (HALF_LIFE + dt % HALF_LIFE) << (dt / HALF_LIFE);
        int256 expected = ((sa * int256(wa) + sb * int256(wb)) * 1e18) / int256(wa + wb);
        (int256 score,) = reputation.getReputation(gw.online);
        assertEq(score, expected, "formula from the NatSpec");
        vm.assertTrue(score >= -100e18 && score <= 100e18, "mean stays in range");
    }

    function testFuzz_weightCapHoldsWithoutOverflow(uint64 age) public {
        vm.prank(svc.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 100);
        vm.warp(block.timestamp + bound(age, 0, 2 ** 40));
        vm.prank(svc2.offline);
        reputation.voteReputation{value: DEPOSIT}(gw.online, 100);
        (int256 score,) = reputation.getReputation(gw.online);
        assertEq(score, 100e18, "two 100s average to 100 at any age");
    }
}
