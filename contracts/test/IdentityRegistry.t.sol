// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {Vm} from "./utils/Test.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {ICredits} from "../src/interfaces/ICredits.sol";
import {IdentityRegistry} from "../src/IdentityRegistry.sol";

/// @dev Refuses ether, to exercise failed transfers.
contract Refuser {
    function call(address target, bytes calldata data) external payable {
        (bool ok, bytes memory ret) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }
}

contract IdentityRegistryTest is Base {
    bytes32 internal constant REASON = keccak256("evidence: the key signed two conflicting readings");
    using {_role} for uint8;

    // ---------------------------------------------------------------- submitPublicKey

    function test_submitPublicKey_registers() public {
        Keys memory k = keysOf(1);
        vm.expectEmit(address(identity));
        emit IIdentityRegistry.PublicKeySubmitted(k.offline, k.online, IIdentityRegistry.Role.Device, k.pub);
        bytes memory sig_ = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        identity.submitPublicKey(k.online, k.pub, sig_, IIdentityRegistry.Role.Device);

        IIdentityRegistry.Identity memory id = identity.identityOf(k.offline);
        assertEq(id.online, k.online, "online");
        assertTrue(id.role == IIdentityRegistry.Role.Device, "role");
        assertTrue(id.status == IIdentityRegistry.Status.Active, "status");
        assertEq(uint256(id.updatedAt), block.timestamp, "updatedAt");
        assertEq(identity.offlineOf(k.online), k.offline, "offlineOf");
        assertTrue(identity.isActive(k.online), "active");
        assertTrue(identity.isOpen(k.offline), "open");
        assertFalse(identity.isActive(k.offline), "offline key is not an online key");
    }

    function test_RevertWhen_RoleNone() public {
        Keys memory k = keysOf(1);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        vm.expectRevert(IIdentityRegistry.Identity_InvalidRole.selector);
        identity.submitPublicKey(k.online, k.pub, sig, IIdentityRegistry.Role.None);
    }

    function test_RevertWhen_RegisteringTwice() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Device);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(k.offline, online2, pk2);
        vm.prank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_AlreadyRegistered.selector, k.offline)
        );
        identity.submitPublicKey(online2, pub2, sig, IIdentityRegistry.Role.Device);
    }

    function test_RevertWhen_PubDoesNotHashToOnline() public {
        Keys memory k = keysOf(1);
        Keys memory other = keysOf(2);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_PublicKeyMismatch.selector, k.online)
        );
        identity.submitPublicKey(k.online, other.pub, sig, IIdentityRegistry.Role.Device);
    }

    function test_RevertWhen_PubWrongLength() public {
        Keys memory k = keysOf(1);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_PublicKeyMismatch.selector, k.online)
        );
        identity.submitPublicKey(
            k.online, abi.encodePacked(bytes1(0x04), k.pub), sig, IIdentityRegistry.Role.Device
        );
    }

    function test_RevertWhen_PopSignedByAnotherKey() public {
        Keys memory k = keysOf(1);
        Keys memory thief = keysOf(2);
        // The thief knows k's public key but not its private key: it cannot bind it to itself.
        bytes memory sig = pop(thief.offline, k.online, thief.onlinePk);
        vm.prank(thief.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_BadProofOfPossession.selector, k.online)
        );
        identity.submitPublicKey(k.online, k.pub, sig, IIdentityRegistry.Role.Device);
    }

    function test_RevertWhen_PopBindsAnotherOffline() public {
        Keys memory k = keysOf(1);
        Keys memory thief = keysOf(2);
        // A proof made for k.offline cannot be replayed by another sender.
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(thief.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_BadProofOfPossession.selector, k.online)
        );
        identity.submitPublicKey(k.online, k.pub, sig, IIdentityRegistry.Role.Device);
    }

    function test_RevertWhen_PopMalformed() public {
        Keys memory k = keysOf(1);
        vm.prank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_BadProofOfPossession.selector, k.online)
        );
        identity.submitPublicKey(k.online, k.pub, hex"1234", IIdentityRegistry.Role.Device);
    }

    function test_RevertWhen_OnlineKeyTakenByAnotherIdentity() public {
        Keys memory a = register(1, IIdentityRegistry.Role.Device);
        Keys memory b = keysOf(2);
        bytes memory sig = pop(b.offline, a.online, a.onlinePk); // even with a's cooperation
        vm.prank(b.offline);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_KeyAlreadyUsed.selector, a.online));
        identity.submitPublicKey(a.online, a.pub, sig, IIdentityRegistry.Role.Device);
    }

    function test_RevertWhen_OnlineEqualsOffline() public {
        Keys memory k = keysOf(1);
        bytes memory sig = pop(k.online, k.online, k.onlinePk);
        vm.prank(k.online);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_KeyAlreadyUsed.selector, k.online));
        identity.submitPublicKey(k.online, k.pub, sig, IIdentityRegistry.Role.Device);
    }

    function test_RevertWhen_OnlineIsAnotherOfflineAddress() public {
        Keys memory a = register(1, IIdentityRegistry.Role.Device);
        Keys memory b = keysOf(2);
        Keys memory aAsKey = keysOf(1); // a.offline's own key pair used as b's online key
        bytes memory pub = _pubOf(aAsKey.offlinePk);
        bytes memory sig = pop(b.offline, a.offline, aAsKey.offlinePk);
        vm.startPrank(b.offline);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_KeyAlreadyUsed.selector, a.offline));
        identity.submitPublicKey(a.offline, pub, sig, IIdentityRegistry.Role.Device);
        vm.stopPrank();
    }

    function test_RevertWhen_OfflineWasUsedAsOnlineKey() public {
        Keys memory a = register(1, IIdentityRegistry.Role.Device);
        // a.online tries to become an offline identity of its own.
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(7);
        bytes memory sig = pop(a.online, online2, pk2);
        vm.prank(a.online);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_AlreadyRegistered.selector, a.online)
        );
        identity.submitPublicKey(online2, pub2, sig, IIdentityRegistry.Role.Device);
    }

    /// Device, Gateway, Service and Worker are self-declared: anyone may take them.
    function testFuzz_submitPublicKey_selfDeclaredRoles(uint256 seed, uint8 role) public {
        IIdentityRegistry.Role r = uint8(bound(role, 1, 4))._role();
        Keys memory k = keysOf(seed);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        identity.submitPublicKey(k.online, k.pub, sig, r);
        assertTrue(identity.activeRole(k.offline) == r, "role stored");
        assertTrue(identity.isActive(k.online), "active");
    }

    /// The attack: register oneself as a Notary (to slash every stake and strike every vote) or a
    /// CA (to submit any name and pin certificates for it). Refused without an appointment.
    function testFuzz_RevertWhen_ClaimingNotaryOrCaUnappointed(uint256 seed, bool ca) public {
        IIdentityRegistry.Role r = ca ? IIdentityRegistry.Role.CA : IIdentityRegistry.Role.Notary;
        Keys memory k = keysOf(seed);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_NotAppointed.selector, k.offline, r)
        );
        identity.submitPublicKey(k.online, k.pub, sig, r);
        // Appointed to the other role is not enough either.
        vm.prank(GOVERNANCE);
        identity.appoint(k.offline, ca ? IIdentityRegistry.Role.Notary : IIdentityRegistry.Role.CA);
        vm.prank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_NotAppointed.selector, k.offline, r)
        );
        identity.submitPublicKey(k.online, k.pub, sig, r);
    }

    function test_governanceAppointsAndDismisses() public {
        Keys memory k = keysOf(1);
        vm.expectEmit(address(identity));
        emit IIdentityRegistry.RoleAppointed(k.offline, IIdentityRegistry.Role.Notary);
        vm.prank(GOVERNANCE);
        identity.appoint(k.offline, IIdentityRegistry.Role.Notary);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        identity.submitPublicKey(k.online, k.pub, sig, IIdentityRegistry.Role.Notary);
        assertTrue(identity.activeRole(k.offline) == IIdentityRegistry.Role.Notary, "an appointed notary");
        vm.expectEmit(address(identity));
        emit IIdentityRegistry.RoleDismissed(k.offline, IIdentityRegistry.Role.Notary);
        vm.prank(GOVERNANCE);
        identity.dismiss(k.offline);
        assertTrue(identity.activeRole(k.offline) == IIdentityRegistry.Role.None, "powerless once dismissed");
        assertTrue(
            identity.isOpen(k.offline) && identity.isActive(k.online), "the identity itself stays open"
        );
        (address offline, IIdentityRegistry.Role role) = identity.activeIdentityOf(k.online);
        assertTrue(offline == address(0) && role == IIdentityRegistry.Role.None, "not as a notary");
        vm.prank(GOVERNANCE);
        identity.appoint(k.offline, IIdentityRegistry.Role.Notary);
        assertTrue(identity.activeRole(k.offline) == IIdentityRegistry.Role.Notary, "appointed again");
    }

    function test_RevertWhen_AppointingIsNotTheGovernances() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Service);
        vm.prank(k.offline);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotGovernance.selector, k.offline));
        identity.appoint(k.offline, IIdentityRegistry.Role.Notary);
        vm.prank(k.offline);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotGovernance.selector, k.offline));
        identity.dismiss(k.offline);
        vm.startPrank(GOVERNANCE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IIdentityRegistry.Identity_NotAnAppointedRole.selector, IIdentityRegistry.Role.Service
            )
        );
        identity.appoint(k.offline, IIdentityRegistry.Role.Service);
        vm.expectRevert(
            abi.encodeWithSelector(
                IIdentityRegistry.Identity_NotAppointed.selector, k.offline, IIdentityRegistry.Role.None
            )
        );
        identity.dismiss(k.offline);
        vm.stopPrank();
    }

    function test_RevertWhen_DeployedWithoutGovernanceOrSink() public {
        vm.expectRevert(IIdentityRegistry.Identity_ZeroAddress.selector);
        new IdentityRegistry(address(0), SINK);
        vm.expectRevert(IIdentityRegistry.Identity_ZeroAddress.selector);
        new IdentityRegistry(GOVERNANCE, address(0));
    }

    function test_domainSeparator_isEip712() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak256("iotegrity"),
                keccak256("1"),
                block.chainid,
                address(identity)
            )
        );
        assertEq(identity.domainSeparator(), expected, "domain as documented in docs/eip712.md");
        bytes32 structHash = keccak256(abi.encode(identity.KEY_BINDING_TYPEHASH(), address(1), address(2)));
        assertEq(
            identity.keyBindingDigest(address(1), address(2)),
            keccak256(abi.encodePacked("\x19\x01", expected, structHash)),
            "digest"
        );
    }

    // ---------------------------------------------------------------- updatePublicKey

    function test_updatePublicKey_oldKeyInvalidAtOnce() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        vm.expectEmit(address(identity));
        emit IIdentityRegistry.PublicKeyUpdated(k.offline, k.online, online2, pub2);
        bytes memory sig_ = pop(k.offline, online2, pk2);
        vm.prank(k.offline);
        identity.updatePublicKey(online2, pub2, sig_);

        assertFalse(identity.isActive(k.online), "old key invalid");
        assertTrue(identity.isActive(online2), "new key valid");
        assertEq(identity.identityOf(k.offline).online, online2, "stored");
        assertEq(identity.offlineOf(k.online), k.offline, "old key remembered (never reusable)");
    }

    function test_RevertWhen_UpdateToOldKey() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig2 = pop(k.offline, online2, pk2);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.startPrank(k.offline);
        identity.updatePublicKey(online2, pub2, sig2);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_KeyAlreadyUsed.selector, k.online));
        identity.updatePublicKey(k.online, k.pub, sig);
        vm.stopPrank();
    }

    function test_RevertWhen_UpdateByStranger() public {
        register(1, IIdentityRegistry.Role.Gateway);
        Keys memory stranger = keysOf(9);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(stranger.offline, online2, pk2);
        vm.prank(stranger.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_NotActive.selector, stranger.offline)
        );
        identity.updatePublicKey(online2, pub2, sig);
    }

    function test_RevertWhen_UpdateByOnlineKey() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(k.online, online2, pk2);
        vm.prank(k.online); // the (possibly stolen) online key controls nothing on chain
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotActive.selector, k.online));
        identity.updatePublicKey(online2, pub2, sig);
    }

    function test_RevertWhen_UpdateWithBadPop() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        (address online2,, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(k.offline, online2, k.onlinePk); // signed by the old key
        vm.prank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_BadProofOfPossession.selector, online2)
        );
        identity.updatePublicKey(online2, pub2, sig);
    }

    // ---------------------------------------------------------------- closePublicKey

    function test_closePublicKey_isIrrevocable() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Service);
        vm.expectEmit(address(identity));
        emit IIdentityRegistry.PublicKeyClosed(k.offline, k.online);
        vm.prank(k.offline);
        identity.closePublicKey();

        assertFalse(identity.isActive(k.online), "key inactive");
        assertFalse(identity.isOpen(k.offline), "closed");
        assertTrue(identity.activeRole(k.offline) == IIdentityRegistry.Role.None, "no role");

        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(k.offline, online2, pk2);
        vm.startPrank(k.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_AlreadyRegistered.selector, k.offline)
        );
        identity.submitPublicKey(online2, pub2, sig, IIdentityRegistry.Role.Service);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotActive.selector, k.offline));
        identity.updatePublicKey(online2, pub2, sig);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotActive.selector, k.offline));
        identity.closePublicKey();
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- web of trust

    function test_vouchKey_raisesTrust() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        vm.expectEmit(address(identity));
        emit IIdentityRegistry.KeyVouched(target.online, v.offline, 1 ether, 1 ether);
        vm.prank(v.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        assertEq(identity.trustLevel(target.online), 1 ether, "trust");
        assertEq(identity.stakeOf(target.online, v.offline), 1 ether, "stake");
        assertEq(address(identity).balance, identity.totalOwed(), "balance owed");
    }

    function test_RevertWhen_VouchTooSmall() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        vm.prank(v.offline);
        vm.expectRevert(IIdentityRegistry.Identity_ZeroValue.selector);
        identity.vouchKey{value: 1e11}(target.online);
    }

    function test_RevertWhen_VouchBySelf() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(target.offline);
        vm.expectRevert(IIdentityRegistry.Identity_SelfVouch.selector);
        identity.vouchKey{value: 1 ether}(target.online);
    }

    function test_RevertWhen_VouchByNonIdentity() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        address anyone = address(0xBEEF);
        vm.deal(anyone, 1 ether);
        vm.prank(anyone);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotActive.selector, anyone));
        identity.vouchKey{value: 1 ether}(target.online);
    }

    function test_RevertWhen_VouchInactiveKey() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        vm.prank(target.offline);
        identity.closePublicKey();
        vm.prank(v.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_KeyNotActive.selector, target.online)
        );
        identity.vouchKey{value: 1 ether}(target.online);
    }

    function test_withdrawStake_lockedThenFree() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        vm.startPrank(v.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        uint256 unlockAt = block.timestamp + identity.STAKE_LOCK();
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_StakeLocked.selector, unlockAt));
        identity.withdrawStake(target.online);

        vm.warp(unlockAt);
        uint256 before = v.offline.balance;
        identity.withdrawStake(target.online);
        vm.stopPrank();
        assertEq(v.offline.balance - before, 1 ether, "stake back");
        assertEq(identity.trustLevel(target.online), 0, "trust gone");
        assertEq(address(identity).balance, 0, "nothing left");
    }

    function test_withdrawStake_freeOnceKeyInactive() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        vm.prank(v.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig_ = pop(target.offline, online2, pk2);
        vm.prank(target.offline);
        identity.updatePublicKey(online2, pub2, sig_);
        assertEq(identity.trustLevel(target.online), 0, "old key has no trust");
        vm.prank(v.offline);
        identity.withdrawStake(target.online); // no lock wait
        assertEq(identity.stakeOf(target.online, v.offline), 0, "withdrawn");
    }

    function test_RevertWhen_WithdrawNothing() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        vm.expectRevert(IIdentityRegistry.Identity_NothingToWithdraw.selector);
        identity.withdrawStake(target.online);
        vm.expectRevert(IIdentityRegistry.Identity_NothingToWithdraw.selector);
        identity.claimIncentive(target.online);
        vm.expectRevert(ICredits.Credits_NothingToWithdraw.selector);
        identity.withdrawCredit();
    }

    function test_incentive_sharedByStake() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory a = register(2, IIdentityRegistry.Role.Service);
        Keys memory b = register(3, IIdentityRegistry.Role.Service);
        vm.prank(a.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        vm.prank(b.offline);
        identity.vouchKey{value: 3 ether}(target.online);
        vm.prank(target.offline);
        identity.addIncentive{value: 4 ether}();

        assertEq(identity.pendingIncentive(target.online, a.offline), 1 ether, "a's quarter");
        assertEq(identity.pendingIncentive(target.online, b.offline), 3 ether, "b's three quarters");
        uint256 before = a.offline.balance;
        vm.prank(a.offline);
        identity.claimIncentive(target.online);
        assertEq(a.offline.balance - before, 1 ether, "claimed");
        assertEq(identity.pendingIncentive(target.online, a.offline), 0, "nothing more");
        assertEq(address(identity).balance, identity.totalOwed(), "balance owed");
    }

    function test_incentive_waitsForFirstStake() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory a = register(2, IIdentityRegistry.Role.Service);
        vm.prank(target.offline);
        identity.addIncentive{value: 2 ether}();
        vm.prank(a.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        assertEq(identity.pendingIncentive(target.online, a.offline), 2 ether, "first voucher takes it");
    }

    function test_incentive_lateVoucherGetsNoPastShare() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory a = register(2, IIdentityRegistry.Role.Service);
        Keys memory b = register(3, IIdentityRegistry.Role.Service);
        vm.prank(a.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        vm.prank(target.offline);
        identity.addIncentive{value: 1 ether}();
        vm.prank(b.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        assertEq(identity.pendingIncentive(target.online, b.offline), 0, "b came later");
        assertEq(identity.pendingIncentive(target.online, a.offline), 1 ether, "a keeps all");
    }

    function test_reclaimIncentive_whenNobodyVouched() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        vm.startPrank(target.offline);
        identity.addIncentive{value: 1 ether}();
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_KeyStillActive.selector, target.online)
        );
        identity.reclaimIncentive(target.online);
        identity.closePublicKey();
        uint256 before = target.offline.balance;
        identity.reclaimIncentive(target.online);
        vm.stopPrank();
        assertEq(target.offline.balance - before, 1 ether, "reclaimed");
        assertEq(address(identity).balance, 0, "empty");
    }

    function test_RevertWhen_ReclaimByStranger() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(address(0xBEEF));
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_NotKeyOwner.selector, target.online)
        );
        identity.reclaimIncentive(target.online);
    }

    function test_RevertWhen_IncentiveZero() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(target.offline);
        vm.expectRevert(IIdentityRegistry.Identity_ZeroValue.selector);
        identity.addIncentive();
    }

    function test_slashStake_paysTheSinkNotTheNotary() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        Keys memory notary = register(3, IIdentityRegistry.Role.Notary);
        vm.prank(v.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        vm.prank(target.offline);
        identity.addIncentive{value: 1 ether}();

        vm.expectEmit(address(identity));
        emit IIdentityRegistry.StakeSlashed(target.online, v.offline, notary.offline, 1 ether, REASON);
        vm.prank(notary.offline);
        identity.slashStake(target.online, v.offline, REASON);
        assertEq(identity.trustLevel(target.online), 0, "trust gone");
        assertEq(identity.creditOf(notary.offline), 0, "nothing for the notary");
        assertEq(identity.creditOf(SINK), 1 ether, "the stake goes to the sink");
        assertEq(identity.pendingIncentive(target.online, v.offline), 1 ether, "earned incentive kept");

        vm.prank(notary.offline);
        vm.expectRevert(ICredits.Credits_NothingToWithdraw.selector);
        identity.withdrawCredit();
        vm.prank(SINK);
        identity.withdrawCredit();
        assertEq(SINK.balance, 1 ether, "the sink withdraws");
        vm.prank(v.offline);
        identity.claimIncentive(target.online);
        assertEq(address(identity).balance, identity.totalOwed(), "balance owed");
        assertEq(address(identity).balance, 0, "all paid");
    }

    function test_RevertWhen_NotarySlashesItsOwnStake() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory notary = register(3, IIdentityRegistry.Role.Notary);
        vm.startPrank(notary.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        vm.expectRevert(IIdentityRegistry.Identity_SelfSlash.selector);
        identity.slashStake(target.online, notary.offline, REASON);
        vm.stopPrank();
    }

    function test_RevertWhen_SlashWithoutReason() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        Keys memory notary = register(3, IIdentityRegistry.Role.Notary);
        vm.prank(v.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        vm.prank(notary.offline);
        vm.expectRevert(IIdentityRegistry.Identity_NoReason.selector);
        identity.slashStake(target.online, v.offline, bytes32(0));
    }

    /// The incentive sandwich: a notary vouches just before the key's owner adds an incentive,
    /// claims its share, slashes itself to skip the 30-day lock and withdraws, all in one block.
    /// The self-slash is refused, the stake stays locked, and a slash by another notary sends the
    /// stake to the sink: the sandwich loses money instead of making it.
    function test_incentiveSandwich_doesNotPay() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory honest = register(2, IIdentityRegistry.Role.Service);
        Keys memory attacker = register(3, IIdentityRegistry.Role.Notary);
        Keys memory other = register(4, IIdentityRegistry.Role.Notary);
        vm.prank(honest.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        uint256 start = attacker.offline.balance;
        vm.prank(attacker.offline);
        identity.vouchKey{value: 1 ether}(target.online); // just before the incentive
        vm.prank(target.offline);
        identity.addIncentive{value: 0.1 ether}();
        vm.startPrank(attacker.offline);
        identity.claimIncentive(target.online); // 0.05 ether
        vm.expectRevert(IIdentityRegistry.Identity_SelfSlash.selector);
        identity.slashStake(target.online, attacker.offline, REASON);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_StakeLocked.selector, block.timestamp + 30 days)
        );
        identity.withdrawStake(target.online);
        vm.expectRevert(ICredits.Credits_NothingToWithdraw.selector);
        identity.withdrawCredit();
        vm.stopPrank();
        vm.prank(other.offline); // an accomplice notary slashing it for it
        identity.slashStake(target.online, attacker.offline, REASON);
        vm.prank(attacker.offline);
        vm.expectRevert(IIdentityRegistry.Identity_NothingToWithdraw.selector);
        identity.withdrawStake(target.online);
        assertEq(start - attacker.offline.balance, 0.95 ether, "the sandwich cost its stake minus its share");
        assertEq(identity.creditOf(other.offline), 0, "and paid the accomplice nothing");
    }

    function test_RevertWhen_SlashByNonNotary() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        vm.prank(v.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        vm.prank(v.offline);
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotNotary.selector, v.offline));
        identity.slashStake(target.online, v.offline, REASON);
    }

    function test_RevertWhen_SlashByClosedOrDismissedNotary() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory v = register(2, IIdentityRegistry.Role.Service);
        Keys memory notary = register(3, IIdentityRegistry.Role.Notary);
        Keys memory dismissed = register(4, IIdentityRegistry.Role.Notary);
        vm.prank(v.offline);
        identity.vouchKey{value: 1 ether}(target.online);
        vm.startPrank(notary.offline);
        identity.closePublicKey();
        vm.expectRevert(abi.encodeWithSelector(IIdentityRegistry.Identity_NotNotary.selector, notary.offline));
        identity.slashStake(target.online, v.offline, REASON);
        vm.stopPrank();
        vm.prank(GOVERNANCE);
        identity.dismiss(dismissed.offline);
        vm.prank(dismissed.offline);
        vm.expectRevert(
            abi.encodeWithSelector(IIdentityRegistry.Identity_NotNotary.selector, dismissed.offline)
        );
        identity.slashStake(target.online, v.offline, REASON);
    }

    function test_RevertWhen_PayoutRefused() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Refuser r = new Refuser();
        // Register the refusing contract as an identity: its offline key is the contract.
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(5);
        vm.deal(address(this), 2 ether);
        bytes memory sig = pop(address(r), online2, pk2);
        r.call(
            address(identity),
            abi.encodeCall(
                IIdentityRegistry.submitPublicKey, (online2, pub2, sig, IIdentityRegistry.Role.Service)
            )
        );
        r.call{value: 1 ether}(address(identity), abi.encodeCall(IIdentityRegistry.vouchKey, (target.online)));
        vm.prank(target.offline);
        identity.closePublicKey();
        vm.expectRevert(abi.encodeWithSelector(ICredits.Credits_TransferFailed.selector, address(r)));
        r.call(address(identity), abi.encodeCall(IIdentityRegistry.withdrawStake, (target.online)));
        assertEq(identity.stakeOf(target.online, address(r)), 1 ether, "stake kept after failed payout");
    }

    function testFuzz_incentiveNeverOverpays(uint96 s1, uint96 s2, uint96 s3, uint96 inc1, uint96 inc2)
        public
    {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory a = register(2, IIdentityRegistry.Role.Service);
        Keys memory b = register(3, IIdentityRegistry.Role.Service);
        uint256 sa = bound(s1, 1e12, 50 ether);
        uint256 sb = bound(s2, 1e12, 50 ether);
        uint256 sa2 = bound(s3, 1e12, 40 ether);
        uint256 i1 = bound(inc1, 1, 40 ether);
        uint256 i2 = bound(inc2, 1, 40 ether);
        vm.prank(a.offline);
        identity.vouchKey{value: sa}(target.online);
        vm.prank(target.offline);
        identity.addIncentive{value: i1}();
        vm.prank(b.offline);
        identity.vouchKey{value: sb}(target.online);
        vm.prank(a.offline);
        identity.vouchKey{value: sa2}(target.online);
        vm.prank(target.offline);
        identity.addIncentive{value: i2}();

        uint256 pa = identity.pendingIncentive(target.online, a.offline);
        uint256 pb = identity.pendingIncentive(target.online, b.offline);
        // Each allocation floors amount·1e18/totalStake: it loses < totalStake/1e18 + 1 wei, and
        // each voucher's floor to whole wei loses < 1 more.
        uint256 dust = 2 * ((sa + sb + sa2) / 1e18 + 1) + 2;
        vm.assertLe(pa + pb, i1 + i2, "never more than added");
        vm.assertGe(pa + pb + dust, i1 + i2, "only rounding dust unpaid");

        vm.prank(target.offline);
        identity.closePublicKey();
        vm.prank(a.offline);
        identity.withdrawStake(target.online);
        vm.prank(b.offline);
        identity.withdrawStake(target.online);
        assertEq(address(identity).balance, identity.totalOwed(), "balance owed");
        vm.assertLe(address(identity).balance, dust, "only dust left");
    }

    // ---------------------------------------------------------------- helpers

    function _pubOf(uint256 pk) private returns (bytes memory) {
        Vm.Wallet memory w = vm.createWallet(pk);
        return abi.encodePacked(w.publicKeyX, w.publicKeyY);
    }
}

function _role(uint8 r) pure returns (IIdentityRegistry.Role) {
    return IIdentityRegistry.Role(r);
}
