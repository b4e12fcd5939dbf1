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
/// This contract, not the service's database, is the record of what was anchored (the database
/// is what receipts exist to check). Three rules make that record hold against whoever can write
/// the database, and against whoever holds any key but the service's:
/// - **A table belongs to one identity.** Only the current online key of an active *Service*
///   identity may anchor, and every anchor is attributed to that identity's offline address, the
///   table's *owner*. Tables are namespaced by owner: `(owner, tableId)` is the table, so a
///   stranger anchoring `public.readings` writes into its own namespace and can neither lock the
///   real service out nor pass for it. The owner is the offline address, so rotating the online
///   key keeps the table's history.
/// - **History is append-only.** A table's batches cover increasing, disjoint key ranges: a batch
///   must start above the table's last anchored key, so not even the owner's key can anchor a
///   range twice or rewrite an anchored one. The table's anchored history covers every key up to
///   `tableOf(owner, tableId).lastKey`; an auditor requires a receipt for each `RootHashStored`.
/// - **Anchors are keyed by owner.** A root anchored by one identity says nothing about another's
///   (no squatting a root seen in the mempool). Sending the very same batches again is a no-op
///   that succeeds (a daemon's crash recovery may re-send), with no second event.
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

    /// @notice Who anchored a root for an owner, and when.
    struct Anchor {
        address anchorer; // the online key that sent it
        uint48 blockNumber; // block of the anchoring transaction
        uint48 timestamp; // its block time
    }

    /// @notice The anchored history of one owner's table. Fits one storage slot.
    struct Table {
        int64 lastKey; // last key anchored (meaningful once batches > 0)
        uint64 batches; // batches anchored: the number of RootHashStored events of this table
        uint64 lastBlock; // block of the latest anchor
        uint64 lastTimestamp; // its block time
    }

    // ---------------------------------------------------------------- errors

    /// @notice The sender is not the current online key of an active Service identity.
    error Anchor_NotServiceKey(address sender);
    /// @notice No batches were given, or more than `MAX_BATCHES`.
    error Anchor_BatchCount(uint256 count);
    /// @notice A batch root is zero, or its range or sizes are inconsistent (n = 0, n > m, or a key
    /// range too short to hold m distinct keys, which includes firstKey > lastKey).
    error Anchor_InvalidBatch(uint256 index);
    /// @notice Batch `index` starts at or below the last key already anchored for its table:
    /// anchored history is append-only (the receipts store was rolled back or altered?).
    error Anchor_RangeOverlap(uint256 index, int64 firstKey, int64 lastAnchoredKey);

    // ---------------------------------------------------------------- events

    /// @notice A batch of `owner`'s table `tableId` covering keys `firstKey..lastKey` was anchored,
    /// within the tree whose root `anchoredRoot` is stored. Emitted once per batch, in the order of
    /// the batches; `anchorOf(owner, anchoredRoot)` names the online key that sent them.
    event RootHashStored(
        bytes32 indexed tableId,
        address indexed owner,
        bytes32 indexed anchoredRoot,
        bytes32 root,
        int64 firstKey,
        int64 lastKey,
        uint32 m,
        uint32 n
    );

    // ---------------------------------------------------------------- functions

    /// @notice Anchors one batch root (the paper's StoreRootHash); returns the stored root (the
    /// batch root itself).
    function storeRootHash(bytes32 root, bytes32 tableId, int64 firstKey, int64 lastKey, uint32 m, uint32 n)
        external
        returns (bytes32 anchoredRoot);

    /// @notice Anchors several batches in one transaction; returns the stored root over them.
    /// Batches of one table must come in key order.
    function storeRootHashes(Batch[] calldata batches) external returns (bytes32 anchoredRoot);

    /// @notice True iff `owner` anchored `anchoredRoot` (the paper's VerifyRootHash, per owner).
    function verifyRootHash(address owner, bytes32 anchoredRoot) external view returns (bool);

    /// @notice Who sent `owner`'s anchor of `anchoredRoot`, and when (zero if never).
    function anchorOf(address owner, bytes32 anchoredRoot) external view returns (Anchor memory);

    /// @notice The anchored history of `owner`'s table `tableId` (zero if never anchored).
    function tableOf(address owner, bytes32 tableId) external view returns (Table memory);

    /// @notice True iff `proof` leads from `leaf` to `anchoredRoot` and `owner` anchored that root.
    function verifyReceipt(address owner, bytes32 anchoredRoot, bytes32 leaf, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /// @notice The root stored for `batchRoots` (the same tree the service builds off chain).
    function anchoredRootOf(bytes32[] calldata batchRoots) external pure returns (bytes32);
}
