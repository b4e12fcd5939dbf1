// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {INameRegistry} from "../src/interfaces/INameRegistry.sol";
import {NameRegistry} from "../src/NameRegistry.sol";
import {DnsName} from "../src/libraries/DnsName.sol";

/// @dev Exposes the library to external calls so fuzzing can feed it calldata strings.
contract DnsNameHarness {
    function isValid(string calldata name) external pure returns (bool) {
        return DnsName.isValid(name);
    }
}

contract NameRegistryTest is Base {
    bytes32 internal constant CERT = keccak256("spki-der-of-gateway-cert");
    Keys internal gw;

    function setUp() public override {
        super.setUp();
        gw = register(1, IIdentityRegistry.Role.Gateway);
    }

    // ---------------------------------------------------------------- submitDomainName

    function test_submitDomainName_decentralized() public {
        vm.expectEmit(address(names));
        emit INameRegistry.DomainNameSubmitted(
            keccak256("gateway.bit"), "gateway.bit", gw.offline, gw.offline, IP4
        );
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        assertEq(names.resolveAddress("gateway.bit"), IP4, "resolves");
        INameRegistry.Name memory n = names.nameRecord("gateway.bit");
        assertEq(n.owner, gw.offline, "owner");
        assertEq(uint256(n.ipVersion), 4, "v4");
    }

    function test_submitDomainName_ipv6() public {
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gw6.example", IP6);
        assertEq(names.resolveAddress("gw6.example"), IP6, "v6 resolves");
    }

    function test_RevertWhen_DecentralizedForSomeoneElse() public {
        Keys memory other = register(2, IIdentityRegistry.Role.Service);
        vm.prank(other.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotAuthorized.selector, other.offline));
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
    }

    function test_quasiCentralized_onlyCa() public {
        Keys memory ca = register(2, IIdentityRegistry.Role.CA);
        vm.prank(gw.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotAuthorized.selector, gw.offline));
        caNames.submitDomainName(gw.offline, "gateway.bit", IP4);

        vm.prank(ca.offline);
        caNames.submitDomainName(gw.offline, "gateway.bit", IP4);
        assertEq(caNames.nameRecord("gateway.bit").owner, gw.offline, "owner is the entity, not the CA");
        assertTrue(caNames.mode() == INameRegistry.Mode.QuasiCentralized, "mode");
    }

    function test_RevertWhen_CaClosed() public {
        Keys memory ca = register(2, IIdentityRegistry.Role.CA);
        vm.prank(ca.offline);
        identity.closePublicKey();
        vm.prank(ca.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotAuthorized.selector, ca.offline));
        caNames.submitDomainName(gw.offline, "gateway.bit", IP4);
    }

    function test_RevertWhen_NameTaken() public {
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NameTaken.selector, "gateway.bit"));
        names.submitDomainName(gw.offline, "gateway.bit", IP6);
        vm.stopPrank();
    }

    function test_RevertWhen_OwnerNotRegistered() public {
        address nobody = address(0xBEEF);
        vm.prank(nobody);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_OwnerNotOpen.selector, nobody));
        names.submitDomainName(nobody, "gateway.bit", IP4);
    }

    function test_RevertWhen_BadIp() public {
        vm.prank(gw.offline);
        vm.expectRevert(INameRegistry.Names_InvalidIp.selector);
        names.submitDomainName(gw.offline, "gateway.bit", hex"c0a800");
    }

    function test_RevertWhen_InvalidNames() public {
        string[9] memory bad = [
            "",
            "Gateway.bit",
            "-gw.bit",
            "gw-.bit",
            "gw..bit",
            "gw.bit.",
            ".gw",
            "gw_1.bit",
            "a123456789012345678901234567890123456789012345678901234567890123.bit" // 64-byte label
        ];
        vm.startPrank(gw.offline);
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_InvalidName.selector, bad[i]));
            names.submitDomainName(gw.offline, bad[i], IP4);
        }
        vm.stopPrank();
    }

    function test_validNames() public {
        DnsNameHarness h = new DnsNameHarness();
        assertTrue(h.isValid("a"), "single letter");
        assertTrue(h.isValid("0x"), "digit first");
        assertTrue(h.isValid("my-gw.iot.bit"), "hyphen inside");
        assertTrue(
            h.isValid("a12345678901234567890123456789012345678901234567890123456789012.bit"), "63-byte label"
        );
    }

    function testFuzz_dnsName_matchesReference(bytes memory raw) public {
        DnsNameHarness h = new DnsNameHarness();
        vm.assume(raw.length < 300);
        // Map bytes onto a small alphabet so valid names are common.
        bytes memory alphabet = "ab9-.Z";
        for (uint256 i; i < raw.length; ++i) {
            raw[i] = alphabet[uint8(raw[i]) % alphabet.length];
        }
        assertEq(h.isValid(string(raw)), _reference(raw), "library agrees with the reference rules");
    }

    // ---------------------------------------------------------------- update, backup, recovery

    function test_updateAddress_byOwner() public {
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        names.updateAddress("gateway.bit", IP6);
        vm.stopPrank();
        assertEq(names.resolveAddress("gateway.bit"), IP6, "updated");
    }

    function test_RevertWhen_UpdateByStranger() public {
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        vm.prank(gw.online); // the online key controls nothing on chain
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotOwner.selector, gw.online));
        names.updateAddress("gateway.bit", IP6);
    }

    function test_RevertWhen_UpdateUnknownName() public {
        vm.prank(gw.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_UnknownName.selector, "nope.bit"));
        names.updateAddress("nope.bit", IP6);
    }

    function test_closedOwner_stopsResolving_backupRecovers() public {
        Keys memory backup = register(2, IIdentityRegistry.Role.Gateway);
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        names.setBackup("gateway.bit", backup.offline);
        names.addCertificate("gateway.bit", CERT, uint64(block.timestamp), uint64(block.timestamp + 365 days));
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_CannotRecover.selector, gw.offline));
        names.recoverName("gateway.bit");
        identity.closePublicKey();
        vm.stopPrank();

        assertEq(names.resolveAddress("gateway.bit"), "", "closed owner: no resolution");
        assertFalse(names.verifyCertificate("gateway.bit", CERT), "closed owner: cert invalid");

        vm.prank(backup.offline);
        names.recoverName("gateway.bit");
        assertEq(names.nameRecord("gateway.bit").owner, backup.offline, "backup owns it");
        assertEq(names.resolveAddress("gateway.bit"), IP4, "resolves again");
        assertFalse(names.verifyCertificate("gateway.bit", CERT), "old owner's certs stay invalid");
    }

    function test_RevertWhen_RecoverByNonBackup() public {
        Keys memory stranger = register(2, IIdentityRegistry.Role.Gateway);
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        identity.closePublicKey();
        vm.stopPrank();
        vm.prank(stranger.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_CannotRecover.selector, stranger.offline));
        names.recoverName("gateway.bit");
    }

    // ---------------------------------------------------------------- certificates

    function test_certificate_lifecycle() public {
        uint64 nb = uint64(block.timestamp + 10);
        uint64 na = uint64(block.timestamp + 100);
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        vm.expectEmit(address(names));
        emit INameRegistry.CertificateAdded(keccak256("gateway.bit"), CERT, nb, na, gw.offline);
        names.addCertificate("gateway.bit", CERT, nb, na);
        vm.stopPrank();

        assertFalse(names.verifyCertificate("gateway.bit", CERT), "not yet valid");
        vm.warp(nb);
        assertTrue(names.verifyCertificate("gateway.bit", CERT), "valid in window");
        assertFalse(names.verifyCertificate("other.bit", CERT), "bound to its name");
        assertFalse(names.verifyCertificate("gateway.bit", keccak256("other key")), "unknown key");
        vm.warp(na + 1);
        assertFalse(names.verifyCertificate("gateway.bit", CERT), "expired");
        vm.warp(na);
        vm.prank(gw.offline);
        names.revokeCertificate("gateway.bit", CERT);
        assertFalse(names.verifyCertificate("gateway.bit", CERT), "revoked");
        assertTrue(names.certificate(CERT).revoked, "stored revoked");
    }

    function test_RevertWhen_CertificateTwiceOrBadWindow() public {
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        names.submitDomainName(gw.offline, "second.bit", IP4);
        vm.expectRevert(
            abi.encodeWithSelector(INameRegistry.Names_InvalidValidity.selector, uint64(5), uint64(5))
        );
        names.addCertificate("gateway.bit", CERT, 5, 5);
        names.addCertificate("gateway.bit", CERT, 1, 2 ** 40);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_CertificateExists.selector, CERT));
        names.addCertificate("second.bit", CERT, 1, 2 ** 40);
        names.revokeCertificate("gateway.bit", CERT);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_AlreadyRevoked.selector, CERT));
        names.revokeCertificate("gateway.bit", CERT);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_UnknownCertificate.selector, CERT));
        names.revokeCertificate("second.bit", CERT);
        vm.stopPrank();
    }

    function test_RevertWhen_CertificateByStranger() public {
        Keys memory stranger = register(2, IIdentityRegistry.Role.Service);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        vm.startPrank(stranger.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotAuthorized.selector, stranger.offline));
        names.addCertificate("gateway.bit", CERT, 1, 2 ** 40);
        vm.stopPrank();
        vm.prank(gw.offline);
        names.addCertificate("gateway.bit", CERT, 1, 2 ** 40);
        vm.prank(stranger.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotAuthorized.selector, stranger.offline));
        names.revokeCertificate("gateway.bit", CERT);
    }

    function test_quasiCentralized_caIssuesAndRevokes() public {
        Keys memory ca = register(2, IIdentityRegistry.Role.CA);
        vm.startPrank(ca.offline);
        caNames.submitDomainName(gw.offline, "gateway.bit", IP4);
        caNames.addCertificate("gateway.bit", CERT, 1, 2 ** 40);
        assertTrue(caNames.verifyCertificate("gateway.bit", CERT), "valid");
        caNames.revokeCertificate("gateway.bit", CERT);
        vm.stopPrank();
        assertFalse(caNames.verifyCertificate("gateway.bit", CERT), "revoked by issuer");
    }

    function testFuzz_verifyCertificate_window(uint64 nb, uint64 na, uint64 t) public {
        vm.assume(nb < na);
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        names.addCertificate("gateway.bit", CERT, nb, na);
        vm.stopPrank();
        vm.warp(t);
        assertEq(names.verifyCertificate("gateway.bit", CERT), t >= nb && t <= na, "valid iff inside window");
    }

    // ---------------------------------------------------------------- helpers

    /// @dev Straightforward restatement of the rules, label by label.
    function _reference(bytes memory b) private pure returns (bool) {
        if (b.length == 0 || b.length > 253) return false;
        uint256 start;
        for (uint256 i; i <= b.length; ++i) {
            if (i == b.length || b[i] == ".") {
                uint256 len = i - start;
                if (len == 0 || len > 63) return false;
                if (b[start] == "-" || b[i - 1] == "-") return false;
                for (uint256 j = start; j < i; ++j) {
                    bytes1 c = b[j];
                    if (!((c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-")) return false;
                }
                start = i + 1;
            }
        }
        return true;
    }
}
