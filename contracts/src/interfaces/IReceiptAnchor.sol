// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Blockchain receipts for IoT data at rest (Oktian et al. 2020, §4, Figure 6)
/// @notice A service splits each batch of `m` new rows of a table into `n` sub-tables, hashes each
/// into a leaf (keccak256(keccak256(yᵢ))), builds an OpenZeppelin-compatible Merkle tree (sorted
/// pairs) and anchors its root here. Several batches can share one transaction: their roots
/// become the leaves of one more tree level, and only the root of that tree (the *anchored
/// root*) is stored — one storage slot per transaction, whatever the number of batches. Proofs
/// simply continue upwards: a sub-table's proof to its batch root, followed by the batch root's
/// proof to the anchored root, verifies with one `MerkleProof.verify` against the anchored root.
/// For a single batch the anchored root is the batch root itself.
///
/// Only the current online key of an active identity may anchor (the service daemon holds its
/// online key; if it leaks, the offline key rotates it and anchors from the old key stop).
interface IReceiptAnchor {
    /// @notice One batch: the Merkle root of its sub-tables and what it covers.
    struct Batch {
        bytes32 root; // Merkle root over the batch's n sub-table leaves
        bytes32 tableId; // keccak256 of the table's qualified name (docs/receipts.md)
        int64 firstKey; // first row key in the batch
        int64 lastKey; // last row key in the batch
        uint32 m; // rows in the batch
        uint32 n; // sub-tables
    }

    /// @notice Who anchored a root, and when.
    struct Anchor {
        address anchorer; // the online key that sent it
        uint64 timestamp; // block time
    }

    // ---------------------------------------------------------------- errors

    /// @notice The sender is not the current online key of an active identity.
    error Anchor_NotActive(address sender);
    /// @notice No batches were given, or more than `MAX_BATCHES`.
    error Anchor_BatchCount(uint256 count);
    /// @notice A batch root is zero, or its range or sizes are inconsistent (firstKey > lastKey,
    /// n = 0, n > m).
    error Anchor_InvalidBatch(uint256 index);
    /// @notice This root was already anchored (anchoring is idempotent: look up its event).
    error Anchor_AlreadyAnchored(bytes32 anchoredRoot);

    // ---------------------------------------------------------------- events

    /// @notice A batch root was anchored, within the tree whose root `anchoredRoot` is stored.
    event RootHashStored(
        bytes32 indexed root,
        bytes32 indexed anchoredRoot,
        bytes32 indexed tableId,
        int64 firstKey,
        int64 lastKey,
        uint32 m,
        uint32 n,
        address anchorer
    );

    // ---------------------------------------------------------------- functions

    /// @notice Anchors one batch root (the paper's StoreRootHash).
    function storeRootHash(bytes32 root, bytes32 tableId, int64 firstKey, int64 lastKey, uint32 m, uint32 n)
        external
        returns (bytes32 anchoredRoot);

    /// @notice Anchors several batches in one transaction; returns the stored root over them.
    function storeRootHashes(Batch[] calldata batches) external returns (bytes32 anchoredRoot);

    /// @notice True iff `anchoredRoot` was anchored.
    function verifyRootHash(bytes32 anchoredRoot) external view returns (bool);

    /// @notice Who anchored `anchoredRoot` and when (zero if never).
    function anchorOf(bytes32 anchoredRoot) external view returns (Anchor memory);

    /// @notice True iff `proof` leads from `leaf` to `anchoredRoot` and that root was anchored.
    function verifyReceipt(bytes32 anchoredRoot, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The root stored for `batchRoots` (the same tree the service builds off chain).
    function anchoredRootOf(bytes32[] calldata batchRoots) external pure returns (bytes32);
}
