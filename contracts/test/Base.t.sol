// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Test, Vm} from "./utils/Test.sol";
import {IdentityRegistry} from "../src/IdentityRegistry.sol";
import {NameRegistry} from "../src/NameRegistry.sol";
import {Reputation} from "../src/Reputation.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {INameRegistry} from "../src/interfaces/INameRegistry.sol";
import {IReputation} from "../src/interfaces/IReputation.sol";

/// @notice Shared fixture: the three contracts (names in Decentralized mode, plus a
/// QuasiCentralized registry), a governance that appoints notaries and CAs, a penalty sink, and
/// helpers to make two-key identities and P-256 certificate keys with their proofs of possession.
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

    /// @dev The governance fixed at deployment, and where penalties go.
    address internal constant GOVERNANCE = address(0x6077);
    address internal constant SINK = address(0x51c4);
    /// @dev secp256r1 group order and half of it (proofs of possession use low s).
    uint256 internal constant P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551;

    bytes internal constant IP4 = hex"c0a80001"; // 192.168.0.1
    bytes internal constant IP6 = hex"20010db8000000000000000000000001"; // 2001:db8::1

    function setUp() public virtual {
        vm.warp(1_700_000_000);
        identity = new IdentityRegistry(GOVERNANCE, SINK);
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
        if (role == IIdentityRegistry.Role.Notary || role == IIdentityRegistry.Role.CA) {
            vm.prank(GOVERNANCE);
            identity.appoint(k.offline, role);
        }
        bytes memory sig = pop(k.offline, k.online, k.onlinePk); // before prank: pop() calls the registry
        vm.prank(k.offline);
        identity.submitPublicKey(k.online, k.pub, sig, role);
    }

    /// @dev A P-256 certificate key from a seed: (x, y) and its private key.
    function certKeyOf(uint256 seed) internal pure returns (bytes32[2] memory key, uint256 pk) {
        pk = uint256(keccak256(abi.encode("cert", seed))) % (P256_N - 1) + 1;
        (uint256 x, uint256 y) = vm.publicKeyP256(pk);
        key = [bytes32(x), bytes32(y)];
    }

    /// @dev The certificate key's proof of possession for pinning it to `name` of `owner`.
    function certPop(
        NameRegistry registry,
        uint256 pk,
        bytes32[2] memory key,
        string memory name,
        address owner,
        uint64 nb,
        uint64 na
    ) internal view returns (bytes32[2] memory) {
        bytes32 digest = registry.certificateBindingDigest(
            name, owner, registry.p256KeyHash(key[0], key[1]), nb, na
        );
        (bytes32 r, bytes32 s) = vm.signP256(pk, digest);
        if (uint256(s) > P256_N / 2) s = bytes32(P256_N - uint256(s));
        return [r, s];
    }

    /// @dev Pins the certificate key of `seed` to `name` as `sender`, proof included; returns its hash.
    function pinCert(
        NameRegistry registry,
        address sender,
        uint256 seed,
        string memory name,
        uint64 nb,
        uint64 na
    ) internal returns (bytes32 certKeyHash) {
        (bytes32[2] memory key, uint256 pk) = certKeyOf(seed);
        address owner = registry.nameRecord(name).owner;
        bytes32[2] memory proof = certPop(registry, pk, key, name, owner, nb, na);
        vm.prank(sender);
        registry.addCertificate(name, key, nb, na, proof);
        return registry.p256KeyHash(key[0], key[1]);
    }

    /// @dev A handshake proof of a channel from `client` to `server` for `name`, now.
    function handshakeProof(string memory name, bytes32 certKeyHash, Keys memory server, Keys memory client)
        internal
        view
        returns (IReputation.HandshakeProof memory)
    {
        return IReputation.HandshakeProof({
            name: name,
            certKeyHash: certKeyHash,
            exporterHash: keccak256(abi.encode("tls-exporter", client.online, block.timestamp)),
            server: server.online,
            client: client.online,
            serverTime: uint64(block.timestamp),
            clientTime: uint64(block.timestamp)
        });
    }

    /// @dev `proof` signed by the keys `serverPk` and `clientPk`: (serverSig, clientSig).
    function signProof(IReputation.HandshakeProof memory proof, uint256 serverPk, uint256 clientPk)
        internal
        view
        returns (bytes memory serverSig, bytes memory clientSig)
    {
        bytes32 digest = reputation.handshakeProofDigest(proof);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(serverPk, digest);
        serverSig = abi.encodePacked(r, s, v);
        (v, r, s) = vm.sign(clientPk, digest);
        clientSig = abi.encodePacked(r, s, v);
    }
}
