// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Blockchain receipts for IoT data at rest (Oktian et al. 2020, §4, Figure 6)
/// @notice A service splits each batch of `m` new rows of a table into `n` sub-tables, hashes each
/// into a leaf (keccak256(keccak256(yᵢ))), builds an OpenZeppelin-compatible Merkle tree (sorted
/// pairs) over the leaves — the *batch root* — and anchors it here. Several batches can share one
/// transaction: each batch root is tagged, `keccak256(abi.encode(BATCH_ROOT_TAG, batchRoot))`, and
/// the tagged roots are the leaves of one more tree whose root (the *anchored root*) is stored —
/// one storage slot per transaction, whatever the number of batches (for one batch: its tagged
/// root). The tag keeps the two levels apart: a batch root can never pass as a row leaf, nor a row
/// leaf as a batch root. A receipt holds the sub-table's proof to its batch root and the tagged
/// batch root's proof to the anchored root (`verifyReceipt`).
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
    /// tagged batch root).
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

    /// @notice True iff `owner` anchored `anchoredRoot`, and the sub-table whose bytes hash to
    /// `subTableHash` (= keccak256(yᵢ); its leaf keccak256(subTableHash) is computed here, so no
    /// inner node can be passed off as a leaf) reaches a batch root by `batchProof` whose tagged
    /// form reaches `anchoredRoot` by `anchorProof`. Either proof is empty when its tree has one leaf.
    function verifyReceipt(
        address owner,
        bytes32 anchoredRoot,
        bytes32 subTableHash,
        bytes32[] calldata batchProof,
        bytes32[] calldata anchorProof
    ) external view returns (bool);

    /// @notice The root stored for `batchRoots` (the same tree the service builds off chain).
    function anchoredRootOf(bytes32[] calldata batchRoots) external pure returns (bytes32);

    /// @notice A batch root as a leaf of the anchor tree: keccak256(abi.encode(BATCH_ROOT_TAG, root)).
    function tagBatchRoot(bytes32 batchRoot) external pure returns (bytes32);
}
