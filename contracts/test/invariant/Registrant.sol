// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Test.sol";
import {IdentityRegistry} from "../../src/IdentityRegistry.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";

/// @notice What the invariant handlers share: the cheatcodes and two-key identities registered
/// with a proof of possession, their keys derived from a seed.
abstract contract Registrant {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    IdentityRegistry public immutable identity;

    constructor(IdentityRegistry identity_) {
        identity = identity_;
    }

    /// @dev A new identity from `seed`: its offline address, online key and that key's secret.
    function _register(bytes32 seed, IIdentityRegistry.Role role)
        internal
        returns (address offline, address online, uint256 onlinePk)
    {
        offline = vm.addr(uint256(keccak256(abi.encode(seed, "offline"))));
        onlinePk = uint256(keccak256(abi.encode(seed, "online")));
        online = _registerAs(offline, seed, role);
    }

    /// @dev Registers `offline` (e.g. appointed beforehand) with the online key of `seed`.
    function _registerAs(address offline, bytes32 seed, IIdentityRegistry.Role role)
        internal
        returns (address)
    {
        Vm.Wallet memory w = vm.createWallet(uint256(keccak256(abi.encode(seed, "online"))));
        bytes32 digest = identity.keyBindingDigest(offline, w.addr);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(w.privateKey, digest);
        vm.prank(offline);
        identity.submitPublicKey(
            w.addr, abi.encodePacked(w.publicKeyX, w.publicKeyY), abi.encodePacked(r, s, v), role
        );
        return w.addr;
    }
}
