// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IReceiptAnchor} from "./interfaces/IReceiptAnchor.sol";

/// @title ReceiptAnchor
/// @notice Anchors Merkle roots of IoT data batches, per owner and table, append-only.
/// See {IReceiptAnchor}.
contract ReceiptAnchor is IReceiptAnchor {
    // ---------------------------------------------------------------- constants

    /// @notice Most batches in one transaction (bounds the loops; the caller pays for them).
    uint256 public constant MAX_BATCHES = 256;
    /// @notice Tags a batch root before it enters the anchor tree (keeps the levels apart).
    bytes32 public constant BATCH_ROOT_TAG = keccak256("iotegrity.receipt-anchor.batch-root");

    /// @notice The identity registry that says which online keys are active, and whose.
    IIdentityRegistry public immutable IDENTITY;

    // ---------------------------------------------------------------- storage

    mapping(address owner => mapping(bytes32 anchoredRoot => Anchor)) private _anchors;
    mapping(address owner => mapping(bytes32 tableId => Table)) private _tables;

    // ---------------------------------------------------------------- constructor

    /// @param identity the IdentityRegistry
    constructor(IIdentityRegistry identity) {
        IDENTITY = identity;
    }

    // ---------------------------------------------------------------- external

    /// @inheritdoc IReceiptAnchor
    function storeRootHash(bytes32 root, bytes32 tableId, int64 firstKey, int64 lastKey, uint32 m, uint32 n)
        external
        returns (bytes32)
    {
        address owner = _owner();
        bytes32 anchoredRoot = tagBatchRoot(root);
        if (!_record(owner, anchoredRoot)) return anchoredRoot; // the same batch again: nothing to do
        _append(_tables[owner], tableId, root, firstKey, lastKey, m, n, 0);
        emit RootHashStored(tableId, owner, anchoredRoot, root, firstKey, lastKey, m, n);
        return anchoredRoot;
    }

    /// @inheritdoc IReceiptAnchor
    function storeRootHashes(Batch[] calldata batches) external returns (bytes32 anchoredRoot) {
        address owner = _owner();
        uint256 count = batches.length;
        if (count == 0 || count > MAX_BATCHES) revert Anchor_BatchCount(count);
        bytes32[] memory tagged = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            tagged[i] = tagBatchRoot(batches[i].root);
        }
        anchoredRoot = _treeRoot(tagged);
        if (!_record(owner, anchoredRoot)) return anchoredRoot; // the same batches again
        mapping(bytes32 => Table) storage tables = _tables[owner];
        for (uint256 i; i < count; ++i) {
            Batch calldata b = batches[i];
            _append(tables, b.tableId, b.root, b.firstKey, b.lastKey, b.m, b.n, i);
            emit RootHashStored(b.tableId, owner, anchoredRoot, b.root, b.firstKey, b.lastKey, b.m, b.n);
        }
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IReceiptAnchor
    function verifyRootHash(address owner, bytes32 anchoredRoot) external view returns (bool) {
        return _anchors[owner][anchoredRoot].anchorer != address(0);
    }

    /// @inheritdoc IReceiptAnchor
    function anchorOf(address owner, bytes32 anchoredRoot) external view returns (Anchor memory) {
        return _anchors[owner][anchoredRoot];
    }

    /// @inheritdoc IReceiptAnchor
    function tableOf(address owner, bytes32 tableId) external view returns (Table memory) {
        return _tables[owner][tableId];
    }

    /// @inheritdoc IReceiptAnchor
    function verifyReceipt(
        address owner,
        bytes32 anchoredRoot,
        bytes32 subTableHash,
        bytes32[] calldata batchProof,
        bytes32[] calldata anchorProof
    ) external view returns (bool) {
        if (_anchors[owner][anchoredRoot].anchorer == address(0)) return false;
        bytes32 batchRoot = MerkleProof.processProofCalldata(batchProof, keccak256(abi.encode(subTableHash)));
        return MerkleProof.processProofCalldata(anchorProof, tagBatchRoot(batchRoot)) == anchoredRoot;
    }

    /// @inheritdoc IReceiptAnchor
    function anchoredRootOf(bytes32[] calldata batchRoots) external pure returns (bytes32) {
        bytes32[] memory tagged = new bytes32[](batchRoots.length);
        for (uint256 i; i < batchRoots.length; ++i) {
            tagged[i] = tagBatchRoot(batchRoots[i]);
        }
        return _treeRoot(tagged);
    }

    /// @inheritdoc IReceiptAnchor
    function tagBatchRoot(bytes32 batchRoot) public pure returns (bytes32) {
        return keccak256(abi.encode(BATCH_ROOT_TAG, batchRoot));
    }

    // ---------------------------------------------------------------- internal

    /// @dev The offline address of the sender's identity, which must be an active Service whose
    /// current online key the sender is.
    function _owner() private view returns (address owner) {
        IIdentityRegistry.Role role;
        (owner, role) = IDENTITY.activeIdentityOf(msg.sender);
        if (role != IIdentityRegistry.Role.Service) revert Anchor_NotServiceKey(msg.sender);
    }

    /// @dev Records `owner`'s anchor of `anchoredRoot`; false if it was already recorded.
    function _record(address owner, bytes32 anchoredRoot) private returns (bool fresh) {
        Anchor storage a = _anchors[owner][anchoredRoot];
        if (a.anchorer != address(0)) return false;
        // forge-lint: disable-next-line(unsafe-typecast) -- block numbers and times fit 48 bits for millions of years
        (a.anchorer, a.blockNumber, a.timestamp) = (msg.sender, uint48(block.number), uint48(block.timestamp));
        return true;
    }

    /// @dev Checks batch `index` of table `tableId` and appends it to the table's history: it must
    /// hold m distinct keys and start above every key anchored for the table so far. The table's
    /// slot is read once and written once.
    function _append(
        mapping(bytes32 => Table) storage tables,
        bytes32 tableId,
        bytes32 root,
        int64 firstKey,
        int64 lastKey,
        uint32 m,
        uint32 n,
        uint256 index
    ) private {
        // m distinct integer keys need lastKey - firstKey >= m - 1 (which also refuses
        // firstKey > lastKey); int256 holds every difference of two int64 values.
        if (
            root == bytes32(0) || n == 0 || n > m
                || int256(lastKey) - int256(firstKey) < int256(uint256(m)) - 1
        ) {
            revert Anchor_InvalidBatch(index);
        }
        Table memory t = tables[tableId];
        if (t.batches != 0 && firstKey <= t.lastKey) revert Anchor_RangeOverlap(index, firstKey, t.lastKey);
        tables[tableId] = Table(lastKey, t.batches + 1, uint64(block.number), uint64(block.timestamp));
    }

    /// @dev The OpenZeppelin `@openzeppelin/merkle-tree` layout (a complete binary tree in an array,
    /// leaves at the end in reverse order, sorted-pair hashing) over `leaves`, in place.
    function _treeRoot(bytes32[] memory leaves) private pure returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 1) return leaves[0];
        bytes32[] memory tree = new bytes32[](2 * n - 1);
        for (uint256 i; i < n; ++i) {
            tree[tree.length - 1 - i] = leaves[i];
        }
        for (uint256 i = tree.length - n; i > 0; --i) {
            tree[i - 1] = Hashes.commutativeKeccak256(tree[2 * i - 1], tree[2 * i]);
        }
        return tree[0];
    }
}
