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
        string[16] memory bad = [
            "",
            "Gateway.bit",
            "-gw.bit",
            "gw-.bit",
            "gw..bit",
            "gw.bit.",
            ".gw",
            "gw_1.bit",
            "a123456789012345678901234567890123456789012345678901234567890123.bit", // 64-byte label
            "192.168.0.1", // an IPv4 address (all-numeric top label)
            "127.1", // inet_aton's short form
            "0x7f.0x1", // and its hex form
            "gw.123", // an all-numeric top label
            "xn--bcher-kva.bit", // an A-label (IDN): refused, not checked
            "ab--cd.bit", // R-LDH: '-' as 3rd and 4th characters is reserved
            "0x" // a hex number on its own
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
        assertTrue(h.isValid("0x.bit"), "digit first");
        assertTrue(h.isValid("1.2.3.bit"), "numeric labels below an alphabetic top label");
        assertTrue(h.isValid("gw-1.iot"), "one hyphen");
        assertTrue(h.isValid("ab-c--d.bit"), "a double hyphen elsewhere than 3rd-4th");
        assertTrue(h.isValid("0xg.bit") && h.isValid("io.0xg"), "not a hex number");
        assertTrue(h.isValid("my-gw.iot.bit"), "hyphen inside");
        assertTrue(
            h.isValid("a12345678901234567890123456789012345678901234567890123456789012.bit"), "63-byte label"
        );
    }

    function testFuzz_dnsName_matchesReference(bytes memory raw) public {
        DnsNameHarness h = new DnsNameHarness();
        vm.assume(raw.length < 300);
        // Map bytes onto a small alphabet so valid names are common.
        bytes memory alphabet = "ab9-.Zx0f";
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
        vm.stopPrank();
        bytes32 cert = pinCert(
            names, gw.offline, 1, "gateway.bit", uint64(block.timestamp), uint64(block.timestamp + 365 days)
        );
        vm.warp(block.timestamp + names.BACKUP_DELAY());
        vm.startPrank(gw.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_CannotRecover.selector, gw.offline));
        names.recoverName("gateway.bit");
        identity.closePublicKey();
        vm.stopPrank();

        assertEq(names.resolveAddress("gateway.bit"), "", "closed owner: no resolution");
        assertFalse(names.verifyCertificate("gateway.bit", cert), "closed owner: cert invalid");

        vm.prank(backup.offline);
        names.recoverName("gateway.bit");
        assertEq(names.nameRecord("gateway.bit").owner, backup.offline, "backup owns it");
        assertEq(names.resolveAddress("gateway.bit"), IP4, "resolves again");
        assertFalse(names.verifyCertificate("gateway.bit", cert), "old owner's certs stay invalid");
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

    /// The attack of a stolen offline key: name the thief's own account as backup, close the
    /// identity, take the name. The change is not in effect when the identity closes, so the backup
    /// in effect before it (the owner's own) is the one who recovers — also after the delay.
    function test_RevertWhen_StolenOfflineKeyRedirectsTheBackupAndCloses() public {
        Keys memory honest = register(2, IIdentityRegistry.Role.Gateway);
        Keys memory thief = register(3, IIdentityRegistry.Role.Gateway);
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        names.setBackup("gateway.bit", honest.offline);
        vm.stopPrank();
        vm.warp(block.timestamp + names.BACKUP_DELAY()); // the honest backup is in effect
        // The thief, holding the offline key:
        vm.startPrank(gw.offline);
        vm.expectEmit(address(names));
        emit INameRegistry.BackupSet(
            keccak256("gateway.bit"), thief.offline, uint64(block.timestamp + names.BACKUP_DELAY())
        );
        names.setBackup("gateway.bit", thief.offline);
        identity.closePublicKey();
        vm.stopPrank();
        vm.warp(block.timestamp + 2 * names.BACKUP_DELAY());
        vm.prank(thief.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_CannotRecover.selector, thief.offline));
        names.recoverName("gateway.bit");
        vm.prank(honest.offline);
        names.recoverName("gateway.bit");
        assertEq(names.nameRecord("gateway.bit").owner, honest.offline, "the honest backup has it");
    }

    /// The same thief, waiting out the delay instead: the owner sees `BackupSet` and closes first,
    /// which freezes the backup in effect — none here, so nobody can take the name.
    function test_backupChange_givesTheOwnerTheDelayToClose() public {
        Keys memory thief = register(3, IIdentityRegistry.Role.Gateway);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        vm.prank(gw.offline); // the thief
        names.setBackup("gateway.bit", thief.offline);
        assertEq(names.backupAt("gateway.bit", block.timestamp), address(0), "not yet in effect");
        vm.warp(block.timestamp + names.BACKUP_DELAY() - 1);
        vm.prank(gw.offline); // the owner, one second before
        identity.closePublicKey();
        vm.warp(block.timestamp + 1 days);
        assertEq(names.backupAt("gateway.bit", block.timestamp), thief.offline, "in effect now, but too late");
        vm.prank(thief.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_CannotRecover.selector, thief.offline));
        names.recoverName("gateway.bit");
    }

    // ---------------------------------------------------------------- certificates

    function test_certificate_lifecycle() public {
        uint64 nb = uint64(block.timestamp + 10);
        uint64 na = uint64(block.timestamp + 100);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        (bytes32[2] memory key,) = certKeyOf(1);
        bytes32 cert = names.p256KeyHash(key[0], key[1]);
        vm.expectEmit(address(names));
        emit INameRegistry.CertificateAdded(keccak256("gateway.bit"), cert, nb, na, gw.offline);
        pinCert(names, gw.offline, 1, "gateway.bit", nb, na);

        assertFalse(names.verifyCertificate("gateway.bit", cert), "not yet valid");
        vm.warp(nb);
        assertTrue(names.verifyCertificate("gateway.bit", cert), "valid in window");
        assertFalse(names.verifyCertificate("other.bit", cert), "bound to its name");
        assertFalse(names.verifyCertificate("gateway.bit", keccak256("other key")), "unknown key");
        vm.warp(na + 1);
        assertFalse(names.verifyCertificate("gateway.bit", cert), "expired");
        vm.warp(na);
        vm.prank(gw.offline);
        names.revokeCertificate("gateway.bit", cert);
        assertFalse(names.verifyCertificate("gateway.bit", cert), "revoked");
        assertTrue(names.certificate(cert).revoked, "stored revoked");
    }

    /// The SPKI hash the contract computes is the DER SubjectPublicKeyInfo's, as `cert add` reads
    /// it from a PEM file (prefix of id-ecPublicKey/prime256v1, then the uncompressed point).
    function test_p256KeyHash_isTheSpkiHash() public view {
        bytes32 x = bytes32(uint256(0x11));
        bytes32 y = bytes32(uint256(0x22));
        bytes memory spki =
            abi.encodePacked(hex"3059301306072a8648ce3d020106082a8648ce3d030107034200", hex"04", x, y);
        assertEq(spki.length, 91, "P-256 SPKI length");
        assertEq(names.p256KeyHash(x, y), keccak256(spki), "hash of the DER");
    }

    function test_RevertWhen_CertificateTwiceOrBadWindow() public {
        vm.startPrank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        names.submitDomainName(gw.offline, "second.bit", IP4);
        vm.stopPrank();
        (bytes32[2] memory key, uint256 pk) = certKeyOf(1);
        bytes32[2] memory pop = certPop(names, pk, key, "gateway.bit", gw.offline, 5, 5);
        vm.startPrank(gw.offline);
        vm.expectRevert(
            abi.encodeWithSelector(INameRegistry.Names_InvalidValidity.selector, uint64(5), uint64(5))
        );
        names.addCertificate("gateway.bit", key, 5, 5, pop);
        vm.stopPrank();
        bytes32 cert = pinCert(names, gw.offline, 1, "gateway.bit", 1, 2 ** 40);
        pop = certPop(names, pk, key, "second.bit", gw.offline, 1, 2 ** 40);
        vm.startPrank(gw.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_CertificateExists.selector, cert));
        names.addCertificate("second.bit", key, 1, 2 ** 40, pop);
        names.revokeCertificate("gateway.bit", cert);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_AlreadyRevoked.selector, cert));
        names.revokeCertificate("gateway.bit", cert);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_UnknownCertificate.selector, cert));
        names.revokeCertificate("second.bit", cert);
        vm.stopPrank();
    }

    /// The squatting attack: pin someone else's public key (seen in their certificate) to one's
    /// own name, or replay its proof for another name, owner or window. Each needs the key's own
    /// signature over exactly that binding.
    function test_RevertWhen_PinningAKeyWithoutHoldingIt() public {
        Keys memory squatter = register(2, IIdentityRegistry.Role.Gateway);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        vm.prank(squatter.offline);
        names.submitDomainName(squatter.offline, "squat.bit", IP4);
        (bytes32[2] memory key, uint256 pk) = certKeyOf(1);
        bytes32 cert = names.p256KeyHash(key[0], key[1]);
        (, uint256 squatterPk) = certKeyOf(99);
        bytes32[2] memory byAnotherKey =
            certPop(names, squatterPk, key, "squat.bit", squatter.offline, 1, 2 ** 40);
        bytes32[2] memory forGateway = certPop(names, pk, key, "gateway.bit", gw.offline, 1, 2 ** 40);
        vm.startPrank(squatter.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_BadProofOfPossession.selector, cert));
        names.addCertificate("squat.bit", key, 1, 2 ** 40, byAnotherKey);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_BadProofOfPossession.selector, cert));
        names.addCertificate("squat.bit", key, 1, 2 ** 40, forGateway); // replayed for another name
        vm.stopPrank();
        vm.prank(gw.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_BadProofOfPossession.selector, cert));
        names.addCertificate("gateway.bit", key, 1, 2 ** 41, forGateway); // another window
        // A high-s twin of a valid signature is refused too (one encoding per proof).
        bytes32[2] memory twin = [forGateway[0], bytes32(P256_N - uint256(forGateway[1]))];
        vm.prank(gw.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_BadProofOfPossession.selector, cert));
        names.addCertificate("gateway.bit", key, 1, 2 ** 40, twin);
        vm.prank(gw.offline);
        names.addCertificate("gateway.bit", key, 1, 2 ** 40, forGateway);
        assertTrue(names.verifyCertificate("gateway.bit", cert), "the holder pinned it");
    }

    function test_RevertWhen_CertificateByStranger() public {
        Keys memory stranger = register(2, IIdentityRegistry.Role.Service);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        (bytes32[2] memory key, uint256 pk) = certKeyOf(1);
        bytes32[2] memory pop = certPop(names, pk, key, "gateway.bit", gw.offline, 1, 2 ** 40);
        vm.prank(stranger.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotAuthorized.selector, stranger.offline));
        names.addCertificate("gateway.bit", key, 1, 2 ** 40, pop);
        bytes32 cert = pinCert(names, gw.offline, 1, "gateway.bit", 1, 2 ** 40);
        vm.prank(stranger.offline);
        vm.expectRevert(abi.encodeWithSelector(INameRegistry.Names_NotAuthorized.selector, stranger.offline));
        names.revokeCertificate("gateway.bit", cert);
    }

    function test_quasiCentralized_caIssuesAndRevokes() public {
        Keys memory ca = register(2, IIdentityRegistry.Role.CA);
        vm.prank(ca.offline);
        caNames.submitDomainName(gw.offline, "gateway.bit", IP4);
        bytes32 cert = pinCert(caNames, ca.offline, 1, "gateway.bit", 1, 2 ** 40);
        assertTrue(caNames.verifyCertificate("gateway.bit", cert), "valid");
        vm.prank(ca.offline);
        caNames.revokeCertificate("gateway.bit", cert);
        assertFalse(caNames.verifyCertificate("gateway.bit", cert), "revoked by issuer");
    }

    /// A CA's word ends with its role: certificates it issued stop verifying when its identity
    /// closes or the governance dismisses it; certificates the owner pinned itself are unaffected.
    function test_caIssuedCertificates_stopVerifyingWhenTheCaClosesOrIsDismissed() public {
        Keys memory ca = register(2, IIdentityRegistry.Role.CA);
        Keys memory ca2 = register(3, IIdentityRegistry.Role.CA);
        vm.startPrank(ca.offline);
        caNames.submitDomainName(gw.offline, "gateway.bit", IP4);
        vm.stopPrank();
        bytes32 byCa = pinCert(caNames, ca.offline, 1, "gateway.bit", 1, 2 ** 40);
        bytes32 byCa2 = pinCert(caNames, ca2.offline, 2, "gateway.bit", 1, 2 ** 40);
        bytes32 byOwner = pinCert(caNames, gw.offline, 3, "gateway.bit", 1, 2 ** 40);
        vm.prank(ca.offline);
        identity.closePublicKey();
        assertFalse(caNames.verifyCertificate("gateway.bit", byCa), "issuer closed");
        assertTrue(caNames.verifyCertificate("gateway.bit", byCa2), "another CA's still holds");
        vm.prank(GOVERNANCE);
        identity.dismiss(ca2.offline);
        assertFalse(caNames.verifyCertificate("gateway.bit", byCa2), "issuer dismissed");
        assertTrue(caNames.verifyCertificate("gateway.bit", byOwner), "the owner's own pin holds");
    }

    function testFuzz_verifyCertificate_window(uint64 nb, uint64 na, uint64 t) public {
        vm.assume(nb < na);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        bytes32 cert = pinCert(names, gw.offline, 1, "gateway.bit", nb, na);
        vm.warp(t);
        assertEq(names.verifyCertificate("gateway.bit", cert), t >= nb && t <= na, "valid iff inside window");
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
                if (len >= 4 && b[start + 2] == "-" && b[start + 3] == "-") return false;
                bool digits = true;
                bool hexForm = len >= 2 && b[start] == "0" && b[start + 1] == "x";
                for (uint256 j = start; j < i; ++j) {
                    bytes1 c = b[j];
                    if (!((c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-")) return false;
                    digits = digits && c >= "0" && c <= "9";
                    if (j >= start + 2) {
                        hexForm = hexForm && ((c >= "0" && c <= "9") || (c >= "a" && c <= "f"));
                    }
                }
                if (i == b.length && (digits || hexForm)) return false; // the top label
                start = i + 1;
            }
        }
        return true;
    }
}
