// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";

/// @notice Gas budgets from the foundation issue, measured on the call itself (snapshots in
/// `snapshots/`; `forge snapshot` keeps `.gas-snapshot` for whole tests).
contract GasTest is Base {
    function test_gas_submitPublicKey() public {
        Keys memory k = keysOf(1);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        identity.submitPublicKey(k.online, k.pub, sig, IIdentityRegistry.Role.Device);
        vm.assertLe(vm.snapshotGasLastCall("submitPublicKey"), 100_000, "submitPublicKey <= 100k");
    }

    function test_gas_updatePublicKey() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Device);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(k.offline, online2, pk2);
        vm.prank(k.offline);
        identity.updatePublicKey(online2, pub2, sig);
        vm.assertLe(vm.snapshotGasLastCall("updatePublicKey"), 40_000, "updatePublicKey <= 40k");
    }

    function test_gas_submitDomainName() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        vm.assertLe(vm.snapshotGasLastCall("submitDomainName"), 90_000, "submitDomainName <= 90k");
    }

    function test_gas_resolveAddress() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        names.resolveAddress("gateway.bit");
        // Cold: two slots of the name, one of the identity, one external call: no loop, no scan.
        vm.assertLe(vm.snapshotGasLastCall("resolveAddress"), 12_000, "resolveAddress is a direct lookup");
    }

    function test_gas_verifyCertificate() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        bytes32 cert = pinCert(names, k.offline, 1, "gateway.bit", 1, 2 ** 40);
        names.verifyCertificate("gateway.bit", cert);
        vm.snapshotGasLastCall("verifyCertificate");
    }

    /// Pinning checks the key's P-256 proof of possession: with OpenZeppelin's Solidity verifier on
    /// chains without the P256VERIFY precompile (RIP-7212 / EIP-7951), which makes it cheap.
    function test_gas_addCertificate() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        (bytes32[2] memory key, uint256 pk) = certKeyOf(1);
        bytes32[2] memory proof = certPop(names, pk, key, "gateway.bit", k.offline, 1, 2 ** 40);
        vm.prank(k.offline);
        names.addCertificate("gateway.bit", key, 1, 2 ** 40, proof);
        vm.snapshotGasLastCall("addCertificate");
    }

    function test_gas_voteReputation() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory voter = register(2, IIdentityRegistry.Role.Service);
        vm.prank(voter.offline);
        reputation.voteReputation{value: DEPOSIT}(target.online, 50);
        vm.snapshotGasLastCall("voteReputation");
    }
}
