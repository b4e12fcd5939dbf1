// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Test.sol";
import {IdentityRegistry} from "../../src/IdentityRegistry.sol";
import {ReceiptAnchor} from "../../src/ReceiptAnchor.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";
import {IReceiptAnchor} from "../../src/interfaces/IReceiptAnchor.sol";

/// @notice Drives ReceiptAnchor with random anchors — overlapping ranges, several tables per call,
/// re-sends, key rotations, strangers — from three Service identities and one Device identity.
/// Its ghost history is read from the `RootHashStored` events each call emitted (what an auditor
/// reads), never from the contract's storage, so the invariants compare two independent records.
contract AnchorHandler {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 public constant SERVICES = 3;
    uint256 public constant TABLES = 2;
    bytes32 private constant STORED =
        keccak256("RootHashStored(bytes32,address,bytes32,bytes32,int64,int64,uint32,uint32)");

    IdentityRegistry public immutable identity;
    ReceiptAnchor public immutable anchor;

    address[SERVICES] public offline;
    address[SERVICES] public online; // current online key of each service
    address public deviceOnline;
    mapping(address key => uint256) public actorOfKey; // 1 + index of the service that owns the key
    mapping(uint256 actor => IReceiptAnchor.Batch[]) private _lastSent;
    uint256 private _keySeed;

    /// @dev A range seen in an event: owner, table, keys.
    struct Seen {
        address owner;
        bytes32 tableId;
        int64 firstKey;
        int64 lastKey;
        address sender;
    }

    Seen[] public seen;
    uint256 public ghostAnchorCalls; // successful calls that emitted events
    uint256 public ghostResendEvents; // events emitted by re-sends (must stay 0)
    uint256 public ghostDeviceAnchors; // successful anchors by the device key (must stay 0)

    constructor(IdentityRegistry identity_, ReceiptAnchor anchor_) {
        identity = identity_;
        anchor = anchor_;
        for (uint256 i; i < SERVICES; ++i) {
            offline[i] = vm.addr(uint256(keccak256(abi.encode("service", i))));
            online[i] = _register(offline[i], IIdentityRegistry.Role.Service);
            actorOfKey[online[i]] = i + 1;
        }
        deviceOnline = _register(vm.addr(uint256(keccak256("device"))), IIdentityRegistry.Role.Device);
    }

    function tableId(uint256 t) public pure returns (bytes32) {
        return keccak256(abi.encode("table", t % TABLES));
    }

    function seenCount() external view returns (uint256) {
        return seen.length;
    }

    /// @notice Every batch seen in an event, in emission order.
    function allSeen() external view returns (Seen[] memory) {
        return seen;
    }

    // ------------------------------------------------------------ actions

    /// One to three batches of random tables and ranges near each other (so overlaps are common).
    function anchorBatches(uint256 who, uint256 count, uint256 seed) external {
        uint256 actor = who % SERVICES;
        IReceiptAnchor.Batch[] memory batches = new IReceiptAnchor.Batch[](1 + (count % 3));
        for (uint256 i; i < batches.length; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            int64 first = int64(int256(r % 64)) - 8;
            int64 last = first + int64(int256((r >> 8) % 16));
            uint32 m = uint32(1 + (r >> 16) % uint64(uint256(int256(last - first + 1))));
            batches[i] = IReceiptAnchor.Batch(keccak256(abi.encode(r)), tableId(r >> 32), first, last, m, 1);
        }
        vm.recordLogs();
        vm.prank(online[actor]);
        try anchor.storeRootHashes(batches) {
            if (_collect(online[actor]) != 0) ++ghostAnchorCalls;
            delete _lastSent[actor];
            for (uint256 i; i < batches.length; ++i) {
                _lastSent[actor].push(batches[i]);
            }
        } catch {
            vm.getRecordedLogs(); // drop what a reverted call recorded (nothing is kept on chain)
        }
    }

    /// The same batches as the actor's last successful call: accepted, no event.
    function resend(uint256 who) external {
        uint256 actor = who % SERVICES;
        IReceiptAnchor.Batch[] memory batches = _lastSent[actor];
        if (batches.length == 0) return;
        vm.recordLogs();
        vm.prank(online[actor]);
        try anchor.storeRootHashes(batches) {
            ghostResendEvents += _collect(online[actor]);
        } catch {
            vm.getRecordedLogs(); // a rotated key may not re-send; that is fine
        }
    }

    /// Rotates a service's online key (the table's owner, its offline address, stays).
    function rotate(uint256 who) external {
        uint256 actor = who % SERVICES;
        address key = _newKeyFor(offline[actor], IIdentityRegistry.Role.None);
        if (key == address(0)) return;
        online[actor] = key;
        actorOfKey[key] = actor + 1;
    }

    /// A device key tries to anchor.
    function anchorAsDevice(int64 first, uint8 len) external {
        vm.prank(deviceOnline);
        try anchor.storeRootHash(keccak256(abi.encode(first, len)), tableId(0), first, first, 1, 1) {
            ++ghostDeviceAnchors;
        } catch {}
    }

    // ------------------------------------------------------------ internal

    /// @dev Appends the RootHashStored events just recorded to `seen`; returns how many.
    function _collect(address sender) private returns (uint256 count) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(anchor) || logs[i].topics[0] != STORED) continue;
            (, int64 firstKey, int64 lastKey,,) =
                abi.decode(logs[i].data, (bytes32, int64, int64, uint32, uint32));
            seen.push(
                Seen({
                    owner: address(uint160(uint256(logs[i].topics[2]))),
                    tableId: logs[i].topics[1],
                    firstKey: firstKey,
                    lastKey: lastKey,
                    sender: sender
                })
            );
            ++count;
        }
    }

    function _register(address off, IIdentityRegistry.Role role) private returns (address key) {
        vm.deal(off, 1 ether);
        key = _newKeyFor(off, role);
        require(key != address(0), "setup: registration failed");
    }

    /// @dev A fresh key for `off`: registered with `role`, or rotated in when `role` is None.
    /// Zero if the registry refused it.
    function _newKeyFor(address off, IIdentityRegistry.Role role) private returns (address) {
        uint256 pk = uint256(keccak256(abi.encode("anchor-key", ++_keySeed)));
        Vm.Wallet memory w = vm.createWallet(pk);
        bytes memory pub = abi.encodePacked(w.publicKeyX, w.publicKeyY);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, identity.keyBindingDigest(off, w.addr));
        bytes memory sig = abi.encodePacked(r, s, v);
        vm.prank(off);
        if (role != IIdentityRegistry.Role.None) {
            try identity.submitPublicKey(w.addr, pub, sig, role) {
                return w.addr;
            } catch {
                return address(0);
            }
        }
        try identity.updatePublicKey(w.addr, pub, sig) {
            return w.addr;
        } catch {
            return address(0);
        }
    }
}
