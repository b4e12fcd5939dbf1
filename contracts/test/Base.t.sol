// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test, Vm} from "./utils/Test.sol";
import {IdentityRegistry} from "../src/IdentityRegistry.sol";
import {NameRegistry} from "../src/NameRegistry.sol";
import {Reputation} from "../src/Reputation.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {INameRegistry} from "../src/interfaces/INameRegistry.sol";

/// @notice Shared fixture: the three contracts (names in Decentralized mode, plus a
/// QuasiCentralized registry) and helpers to make two-key identities.
abstract contract Base is Test {
    uint256 internal constant DEPOSIT = 0.01 ether;
    uint256 internal constant PERIOD = 1 days;
    uint256 internal constant DISPUTE = 7 days;
    uint256 internal constant HALF_LIFE = 30 days;

    /// @dev A two-key identity as tests hold it.
    struct Keys {
        address offline;
        uint256 offlinePk;
        address online;
        uint256 onlinePk;
        bytes pub;
    }

    IdentityRegistry internal identity;
    NameRegistry internal names; // Decentralized
    NameRegistry internal caNames; // QuasiCentralized
    Reputation internal reputation;

    bytes internal constant IP4 = hex"c0a80001"; // 192.168.0.1
    bytes internal constant IP6 = hex"20010db8000000000000000000000001"; // 2001:db8::1

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        identity = new IdentityRegistry();
        names = new NameRegistry(identity, INameRegistry.Mode.Decentralized);
        caNames = new NameRegistry(identity, INameRegistry.Mode.QuasiCentralized);
        reputation = new Reputation(identity, names, DEPOSIT, PERIOD, DISPUTE, HALF_LIFE);
    }

    /// @dev Deterministic keys from a seed; `pub` is the 64-byte uncompressed online key.
    function keysOf(uint256 seed) internal returns (Keys memory k) {
        k.offlinePk = uint256(keccak256(abi.encode("offline", seed)));
        k.onlinePk = uint256(keccak256(abi.encode("online", seed)));
        k.offline = vm.addr(k.offlinePk);
        Vm.Wallet memory w = vm.createWallet(k.onlinePk);
        k.online = w.addr;
        k.pub = abi.encodePacked(w.publicKeyX, w.publicKeyY);
        vm.deal(k.offline, 100 ether);
    }

    /// @dev A fresh online key for rotation.
    function onlineKeyOf(uint256 seed) internal returns (address online, uint256 pk, bytes memory pub) {
        pk = uint256(keccak256(abi.encode("rotated", seed)));
        Vm.Wallet memory w = vm.createWallet(pk);
        return (w.addr, pk, abi.encodePacked(w.publicKeyX, w.publicKeyY));
    }

    /// @dev The online key's EIP-712 proof of possession for (offline, online).
    function pop(address offline, address online, uint256 onlinePk) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(onlinePk, identity.keyBindingDigest(offline, online));
        return abi.encodePacked(r, s, v);
    }

    function register(uint256 seed, IIdentityRegistry.Role role) internal returns (Keys memory k) {
        k = keysOf(seed);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk); // before prank: pop() calls the registry
        vm.prank(k.offline);
        identity.submitPublicKey(k.online, k.pub, sig, role);
    }
}
