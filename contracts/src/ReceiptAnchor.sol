// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IReceiptAnchor} from "./interfaces/IReceiptAnchor.sol";

/// @title ReceiptAnchor
/// @notice Anchors Merkle roots of IoT data batches. See {IReceiptAnchor}.
contract ReceiptAnchor is IReceiptAnchor {
    /// @notice Most batches in one transaction (bounds the loop; the caller pays for it).
    uint256 public constant MAX_BATCHES = 256;

    /// @notice The identity registry that says which online keys are active.
    IIdentityRegistry public immutable IDENTITY;

    mapping(bytes32 anchoredRoot => Anchor) private _anchors;

    /// @param identity the IdentityRegistry
    constructor(IIdentityRegistry identity) {
        IDENTITY = identity;
    }

    /// @inheritdoc IReceiptAnchor
    function storeRootHash(bytes32 root, bytes32 tableId, int64 firstKey, int64 lastKey, uint32 m, uint32 n)
        external
        returns (bytes32)
    {
        _checkSender();
        Batch memory b = Batch(root, tableId, firstKey, lastKey, m, n);
        _checkBatch(b, 0);
        _store(root);
        emit RootHashStored(root, root, tableId, firstKey, lastKey, m, n, msg.sender);
        return root;
    }

    /// @inheritdoc IReceiptAnchor
    function storeRootHashes(Batch[] calldata batches) external returns (bytes32 anchoredRoot) {
        _checkSender();
        uint256 count = batches.length;
        if (count == 0 || count > MAX_BATCHES) revert Anchor_BatchCount(count);
        bytes32[] memory roots = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            _checkBatch(batches[i], i);
            roots[i] = batches[i].root;
        }
        anchoredRoot = _treeRoot(roots);
        _store(anchoredRoot);
        for (uint256 i; i < count; ++i) {
            Batch calldata b = batches[i];
            emit RootHashStored(b.root, anchoredRoot, b.tableId, b.firstKey, b.lastKey, b.m, b.n, msg.sender);
        }
    }

    /// @inheritdoc IReceiptAnchor
    function verifyRootHash(bytes32 anchoredRoot) external view returns (bool) {
        return _anchors[anchoredRoot].anchorer != address(0);
    }

    /// @inheritdoc IReceiptAnchor
    function anchorOf(bytes32 anchoredRoot) external view returns (Anchor memory) {
        return _anchors[anchoredRoot];
    }

    /// @inheritdoc IReceiptAnchor
    function verifyReceipt(bytes32 anchoredRoot, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return _anchors[anchoredRoot].anchorer != address(0)
            && MerkleProof.verifyCalldata(proof, anchoredRoot, leaf);
    }

    /// @inheritdoc IReceiptAnchor
    function anchoredRootOf(bytes32[] calldata batchRoots) external pure returns (bytes32) {
        return _treeRoot(batchRoots);
    }

    // ---------------------------------------------------------------- internal

    function _checkSender() private view {
        if (!IDENTITY.isActive(msg.sender)) revert Anchor_NotActive(msg.sender);
    }

    function _checkBatch(Batch memory b, uint256 index) private pure {
        if (b.root == bytes32(0) || b.firstKey > b.lastKey || b.n == 0 || b.n > b.m) {
            revert Anchor_InvalidBatch(index);
        }
    }

    function _store(bytes32 anchoredRoot) private {
        Anchor storage a = _anchors[anchoredRoot];
        if (a.anchorer != address(0)) revert Anchor_AlreadyAnchored(anchoredRoot);
        a.anchorer = msg.sender;
        a.timestamp = uint64(block.timestamp);
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
