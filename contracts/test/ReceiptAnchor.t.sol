// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {ReceiptAnchor} from "../src/ReceiptAnchor.sol";
import {IReceiptAnchor} from "../src/interfaces/IReceiptAnchor.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/// @dev The @openzeppelin/merkle-tree array layout, with proofs, for tests.
library TestTree {
    function build(bytes32[] memory leaves) internal pure returns (bytes32[] memory tree) {
        uint256 n = leaves.length;
        tree = new bytes32[](2 * n - 1);
        for (uint256 i; i < n; ++i) {
            tree[tree.length - 1 - i] = leaves[i];
        }
        for (uint256 i = tree.length - n; i > 0; --i) {
            tree[i - 1] = Hashes.commutativeKeccak256(tree[2 * i - 1], tree[2 * i]);
        }
    }

    function proof(bytes32[] memory tree, uint256 leafIndex) internal pure returns (bytes32[] memory p) {
        uint256 i = tree.length - 1 - leafIndex;
        uint256 depth;
        for (uint256 j = i; j > 0; j = (j - 1) / 2) {
            ++depth;
        }
        p = new bytes32[](depth);
        for (uint256 d; i > 0; ++d) {
            p[d] = tree[i % 2 == 1 ? i + 1 : i - 1];
            i = (i - 1) / 2;
        }
    }

    function concat(bytes32[] memory a, bytes32[] memory b) internal pure returns (bytes32[] memory c) {
        c = new bytes32[](a.length + b.length);
        for (uint256 i; i < a.length; ++i) {
            c[i] = a[i];
        }
        for (uint256 i; i < b.length; ++i) {
            c[a.length + i] = b[i];
        }
    }
}

contract ReceiptAnchorTest is Base {
    ReceiptAnchor internal anchor;
    Keys internal svc;
    bytes32 internal constant TABLE = keccak256("public.readings");
    bytes32 internal constant OTHER_TABLE = keccak256("public.meters");

    function setUp() public override {
        super.setUp();
        anchor = new ReceiptAnchor(identity);
        svc = register(1, IIdentityRegistry.Role.Service);
    }

    /// @dev Sub-table hashes keccak256(yᵢ) of a batch (what verifyReceipt takes).
    function _hashes(uint256 seed, uint256 n) internal pure returns (bytes32[] memory h) {
        h = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            h[i] = keccak256(abi.encode(seed, i));
        }
    }

    /// @dev Their leaves keccak256(keccak256(yᵢ)).
    function _leaves(uint256 seed, uint256 n) internal pure returns (bytes32[] memory l) {
        l = _hashes(seed, n);
        for (uint256 i; i < n; ++i) {
            l[i] = keccak256(abi.encode(l[i]));
        }
    }

    bytes32[] internal none;

    /// @dev A batch of 100 rows with keys first..first+99 in 4 sub-tables.
    function _batch(bytes32 root, int64 first) internal pure returns (IReceiptAnchor.Batch memory) {
        return IReceiptAnchor.Batch(root, TABLE, first, first + 99, 100, 4);
    }

    function _one(IReceiptAnchor.Batch memory b) internal pure returns (IReceiptAnchor.Batch[] memory one) {
        one = new IReceiptAnchor.Batch[](1);
        one[0] = b;
    }

    // ---------------------------------------------------------------- anchoring and verifying

    function test_storeRootHash_andVerify() public {
        bytes32[] memory h = _hashes(1, 4);
        bytes32[] memory tree = TestTree.build(_leaves(1, 4));
        bytes32 tagged = anchor.tagBatchRoot(tree[0]);
        vm.expectEmit(address(anchor));
        emit IReceiptAnchor.RootHashStored(TABLE, svc.offline, tagged, tree[0], 1, 100, 100, 4);
        vm.prank(svc.online);
        bytes32 stored = anchor.storeRootHash(tree[0], TABLE, 1, 100, 100, 4);
        assertEq(stored, tagged, "single batch: the tagged batch root is stored");
        assertEq(tagged, keccak256(abi.encode(anchor.BATCH_ROOT_TAG(), tree[0])), "the tag as documented");
        assertTrue(anchor.verifyRootHash(svc.offline, stored), "anchored, attributed to the offline address");
        assertFalse(anchor.verifyRootHash(svc.online, stored), "not under the online key");
        IReceiptAnchor.Anchor memory a = anchor.anchorOf(svc.offline, stored);
        assertEq(a.anchorer, svc.online, "anchorer");
        assertEq(uint256(a.timestamp), block.timestamp, "time");
        assertEq(uint256(a.blockNumber), block.number, "block");
        IReceiptAnchor.Table memory t = anchor.tableOf(svc.offline, TABLE);
        assertEq(int256(t.lastKey), 100, "last key");
        assertEq(uint256(t.batches), 1, "one batch");
        assertEq(uint256(t.lastBlock), block.number, "last block");
        for (uint256 i; i < 4; ++i) {
            assertTrue(
                anchor.verifyReceipt(svc.offline, stored, h[i], TestTree.proof(tree, i), none), "receipt"
            );
        }
        assertFalse(
            anchor.verifyReceipt(svc.offline, stored, keccak256("forged"), TestTree.proof(tree, 0), none),
            "forged rows"
        );
        assertFalse(anchor.verifyRootHash(svc.offline, keccak256("never")), "unknown root");
    }

    /// One sub-table in one batch: both proofs are empty, and still only its own bytes verify.
    function test_aSingleSubTableAnchoredAlone_verifiesWithEmptyProofs() public {
        bytes32 h = keccak256("the only sub-table");
        bytes32 leaf = keccak256(abi.encode(h));
        vm.prank(svc.online);
        bytes32 stored = anchor.storeRootHash(leaf, TABLE, 1, 1, 1, 1);
        assertTrue(anchor.verifyReceipt(svc.offline, stored, h, none, none), "its own bytes");
        assertFalse(anchor.verifyReceipt(svc.offline, stored, leaf, none, none), "its leaf is not its bytes");
        assertFalse(anchor.verifyReceipt(svc.offline, stored, stored, none, none), "nor is the anchored root");
    }

    function test_storeRootHashes_proofsContinueUpwards() public {
        // Three batches of 4, 3 and 5 sub-tables in one transaction.
        uint8[3] memory sizes = [4, 3, 5];
        bytes32[][] memory trees = new bytes32[][](3);
        IReceiptAnchor.Batch[] memory batches = new IReceiptAnchor.Batch[](3);
        bytes32[] memory roots = new bytes32[](3);
        bytes32[] memory tagged = new bytes32[](3);
        for (uint256 b; b < 3; ++b) {
            trees[b] = TestTree.build(_leaves(b, sizes[b]));
            roots[b] = trees[b][0];
            tagged[b] = anchor.tagBatchRoot(roots[b]);
            batches[b] = _batch(roots[b], int64(int256(b * 100 + 1)));
        }
        vm.prank(svc.online);
        bytes32 stored = anchor.storeRootHashes(batches);
        bytes32[] memory top = TestTree.build(tagged);
        assertEq(stored, top[0], "anchored root = tree over the tagged batch roots");
        assertEq(anchor.anchoredRootOf(roots), stored, "view agrees");
        assertTrue(anchor.verifyRootHash(svc.offline, stored), "anchored");
        assertFalse(anchor.verifyRootHash(svc.offline, roots[1]), "batch roots themselves are not stored");
        assertEq(
            uint256(anchor.tableOf(svc.offline, TABLE).batches), 3, "three batches in the table's history"
        );
        assertEq(int256(anchor.tableOf(svc.offline, TABLE).lastKey), 300, "up to key 300");
        for (uint256 b; b < 3; ++b) {
            _verifyBatch(stored, b, trees[b], TestTree.proof(top, b));
        }
    }

    /// @dev Every sub-table of batch `seed` (tree `tree`) verifies against `stored` through `up`.
    function _verifyBatch(bytes32 stored, uint256 seed, bytes32[] memory tree, bytes32[] memory up)
        internal
        view
    {
        uint256 n = (tree.length + 1) / 2;
        bytes32[] memory h = _hashes(seed, n);
        for (uint256 i; i < n; ++i) {
            assertTrue(
                anchor.verifyReceipt(svc.offline, stored, h[i], TestTree.proof(tree, i), up),
                "sub-table receipt verifies against the anchored root"
            );
        }
    }

    /// The second-preimage attack: pass an inner node — a batch root, or a node inside a batch's
    /// tree — as if it were a row leaf, with the rest of its path as the proof. The contract hashes
    /// the sub-table's bytes hash into the leaf itself and tags batch roots, so neither passes.
    function test_aBatchRootOrInnerNodeNeverPassesAsARowLeaf() public {
        bytes32[] memory batchTree = TestTree.build(_leaves(7, 4)); // nodes 0..6: root, two inner, four leaves
        IReceiptAnchor.Batch[] memory batches = new IReceiptAnchor.Batch[](2);
        batches[0] = _batch(batchTree[0], 1);
        batches[1] = _batch(keccak256("another batch"), 101);
        bytes32[] memory tagged = new bytes32[](2);
        tagged[0] = anchor.tagBatchRoot(batches[0].root);
        tagged[1] = anchor.tagBatchRoot(batches[1].root);
        bytes32[] memory top = TestTree.build(tagged);
        vm.prank(svc.online);
        bytes32 stored = anchor.storeRootHashes(batches);
        bytes32[] memory up = TestTree.proof(top, 0);
        // The batch root, with an empty batch proof: as a "sub-table hash", and as a "leaf".
        assertFalse(anchor.verifyReceipt(svc.offline, stored, batchTree[0], none, up), "batch root as rows");
        // An inner node of the batch tree with its sibling path.
        bytes32[] memory innerPath = new bytes32[](1);
        innerPath[0] = batchTree[2];
        assertFalse(
            anchor.verifyReceipt(svc.offline, stored, batchTree[1], innerPath, up), "inner node as rows"
        );
        // A tagged batch root as the leaf of the anchor tree.
        assertFalse(anchor.verifyReceipt(svc.offline, stored, tagged[0], none, up), "tagged root as rows");
        // While a real sub-table verifies.
        bytes32[] memory h = _hashes(7, 4);
        assertTrue(
            anchor.verifyReceipt(svc.offline, stored, h[2], TestTree.proof(batchTree, 2), up), "real rows"
        );
    }

    function test_RevertWhen_SenderNotAServiceKey() public {
        bytes32 root = keccak256("r");
        // The offline key is not an online key.
        vm.prank(svc.offline);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotServiceKey.selector, svc.offline));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
        // A stranger.
        vm.prank(address(0xBEEF));
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotServiceKey.selector, address(0xBEEF)));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
        // An active identity of another role.
        Keys memory device = register(2, IIdentityRegistry.Role.Device);
        vm.prank(device.online);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotServiceKey.selector, device.online));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
        // A rotated-out key.
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(svc.offline, online2, pk2);
        vm.prank(svc.offline);
        identity.updatePublicKey(online2, pub2, sig);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotServiceKey.selector, svc.online));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
        // A closed identity's key.
        vm.prank(svc.offline);
        identity.closePublicKey();
        vm.prank(online2);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotServiceKey.selector, online2));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
    }

    function test_RevertWhen_InvalidBatches() public {
        vm.startPrank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_InvalidBatch.selector, 0));
        anchor.storeRootHash(bytes32(0), TABLE, 1, 10, 10, 2);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_InvalidBatch.selector, 0));
        anchor.storeRootHash(keccak256("r"), TABLE, 10, 1, 10, 2);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_InvalidBatch.selector, 0));
        anchor.storeRootHash(keccak256("r"), TABLE, 1, 10, 10, 0);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_InvalidBatch.selector, 0));
        anchor.storeRootHash(keccak256("r"), TABLE, 1, 10, 2, 3);
        // 11 distinct keys do not fit in 1..10.
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_InvalidBatch.selector, 0));
        anchor.storeRootHash(keccak256("r"), TABLE, 1, 10, 11, 2);
        // The extreme range is fine arithmetic-wise.
        anchor.storeRootHash(keccak256("wide"), TABLE, type(int64).min, type(int64).max, 2, 1);
        IReceiptAnchor.Batch[] memory noBatches = new IReceiptAnchor.Batch[](0);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_BatchCount.selector, 0));
        anchor.storeRootHashes(noBatches);
        IReceiptAnchor.Batch[] memory two = new IReceiptAnchor.Batch[](2);
        two[0] = _batch(keccak256("a"), 1);
        two[0].tableId = OTHER_TABLE;
        two[1] = _batch(bytes32(0), 101);
        two[1].tableId = OTHER_TABLE;
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_InvalidBatch.selector, 1));
        anchor.storeRootHashes(two);
        IReceiptAnchor.Batch[] memory tooMany = new IReceiptAnchor.Batch[](257);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_BatchCount.selector, 257));
        anchor.storeRootHashes(tooMany);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- a table belongs to one identity

    /// The attack of a database writer with a throwaway identity: anchor a rewritten batch under
    /// the same table id. It lands in the stranger's own namespace; the service's history is untouched.
    function test_strangerAnchoringTheSameTable_landsInItsOwnNamespace() public {
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("genuine"), TABLE, 1, 100, 100, 4);
        Keys memory stranger = register(7, IIdentityRegistry.Role.Service);
        vm.prank(stranger.online);
        anchor.storeRootHash(keccak256("rewritten"), TABLE, 1, 100, 100, 4);
        bytes32 rewritten = anchor.tagBatchRoot(keccak256("rewritten"));
        assertFalse(anchor.verifyRootHash(svc.offline, rewritten), "not the service's anchor");
        assertTrue(anchor.verifyRootHash(stranger.offline, rewritten), "the stranger's own");
        assertEq(uint256(anchor.tableOf(svc.offline, TABLE).batches), 1, "the service's history is unchanged");
        // And the stranger anchoring first does not lock the service out of its next range.
        vm.prank(stranger.online);
        anchor.storeRootHash(keccak256("squat"), TABLE, 101, 200, 100, 4);
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("next"), TABLE, 101, 200, 100, 4);
        assertEq(
            uint256(anchor.tableOf(svc.offline, TABLE).batches), 2, "the service anchored its next range"
        );
    }

    /// Mempool squatting: a stranger who copies the service's pending root and anchors it first
    /// (with any table and range) does not make the service's transaction fail.
    function test_strangerAnchoringTheSameRootFirst_doesNotBlockTheService() public {
        bytes32 root = keccak256("pending root");
        Keys memory stranger = register(7, IIdentityRegistry.Role.Service);
        vm.prank(stranger.online);
        anchor.storeRootHash(root, OTHER_TABLE, 5, 500, 7, 1);
        vm.prank(svc.online);
        anchor.storeRootHash(root, TABLE, 1, 100, 100, 4);
        assertEq(
            anchor.anchorOf(svc.offline, anchor.tagBatchRoot(root)).anchorer,
            svc.online,
            "the service's anchor"
        );
        assertEq(int256(anchor.tableOf(svc.offline, TABLE).lastKey), 100, "its range");
        assertEq(uint256(anchor.tableOf(svc.offline, OTHER_TABLE).batches), 0, "nothing of the stranger's");
    }

    /// The owner is the offline address: a rotated online key continues the same table, and the
    /// append-only rule holds across the rotation.
    function test_rotatedKey_continuesTheSameTable() public {
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("a"), TABLE, 1, 100, 100, 4);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(svc.offline, online2, pk2);
        vm.prank(svc.offline);
        identity.updatePublicKey(online2, pub2, sig);
        vm.prank(online2);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_RangeOverlap.selector, 0, 1, 100));
        anchor.storeRootHash(keccak256("b"), TABLE, 1, 100, 100, 4);
        vm.prank(online2);
        anchor.storeRootHash(keccak256("c"), TABLE, 101, 200, 100, 4);
        assertEq(uint256(anchor.tableOf(svc.offline, TABLE).batches), 2, "one history across the rotation");
        assertEq(
            anchor.anchorOf(svc.offline, anchor.tagBatchRoot(keccak256("c"))).anchorer, online2, "the new key"
        );
    }

    // ---------------------------------------------------------------- history is append-only

    /// The attack of a database writer who rolls the watermark back so the service re-anchors
    /// altered rows with its own key: refused, whatever the overlap.
    function test_RevertWhen_RangeOverlapsTheAnchoredHistory() public {
        vm.startPrank(svc.online);
        anchor.storeRootHash(keccak256("a"), TABLE, 101, 200, 100, 4);
        // The same range with another root; a range reaching into it; one inside it; one below it.
        int64[2][4] memory ranges = [[int64(101), 200], [int64(150), 250], [int64(120), 130], [int64(1), 100]];
        for (uint256 i; i < ranges.length; ++i) {
            int64 first = ranges[i][0];
            int64 last = ranges[i][1];
            vm.expectRevert(
                abi.encodeWithSelector(IReceiptAnchor.Anchor_RangeOverlap.selector, 0, first, 200)
            );
            anchor.storeRootHash(
                keccak256(abi.encode(i)), TABLE, first, last, uint32(uint64(last - first + 1)), 1
            );
        }
        // Inside one transaction: batches of one table out of key order.
        IReceiptAnchor.Batch[] memory two = new IReceiptAnchor.Batch[](2);
        two[0] = _batch(keccak256("x"), 301);
        two[1] = _batch(keccak256("y"), 201);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_RangeOverlap.selector, 1, 201, 400));
        anchor.storeRootHashes(two);
        // Another table of the same owner is independent.
        anchor.storeRootHash(keccak256("other"), OTHER_TABLE, 1, 100, 100, 4);
        vm.stopPrank();
        assertEq(uint256(anchor.tableOf(svc.offline, TABLE).batches), 1, "nothing was appended");
    }

    /// Crash recovery may send the very same batches again: accepted, and changes nothing.
    function test_resendingTheSameBatches_isANoOp() public {
        IReceiptAnchor.Batch[] memory batches = new IReceiptAnchor.Batch[](2);
        batches[0] = _batch(keccak256("a"), 1);
        batches[1] = _batch(keccak256("b"), 101);
        vm.prank(svc.online);
        bytes32 first = anchor.storeRootHashes(batches);
        vm.roll(block.number + 5);
        vm.recordLogs();
        vm.prank(svc.online);
        bytes32 again = anchor.storeRootHashes(batches);
        assertEq(again, first, "same anchored root");
        assertEq(vm.getRecordedLogs().length, 0, "no second event");
        assertEq(uint256(anchor.tableOf(svc.offline, TABLE).batches), 2, "history unchanged");
        assertEq(
            uint256(anchor.anchorOf(svc.offline, first).blockNumber), block.number - 5, "first block kept"
        );
        vm.prank(svc.online);
        assertEq(
            anchor.storeRootHash(keccak256("c"), TABLE, 201, 300, 100, 4),
            anchor.tagBatchRoot(keccak256("c")),
            "single"
        );
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("c"), TABLE, 201, 300, 100, 4);
        assertEq(uint256(anchor.tableOf(svc.offline, TABLE).batches), 3, "single re-send: a no-op too");
    }

    /// A second range is accepted exactly when it starts above the first.
    function testFuzz_secondRangeAcceptedIffItStartsAboveTheFirst(
        int64 a1,
        uint16 len1,
        int64 a2,
        uint16 len2
    ) public {
        vm.assume(a1 <= type(int64).max - int64(uint64(len1)) && a2 <= type(int64).max - int64(uint64(len2)));
        int64 b1 = a1 + int64(uint64(len1));
        int64 b2 = a2 + int64(uint64(len2));
        vm.startPrank(svc.online);
        anchor.storeRootHash(keccak256("first"), TABLE, a1, b1, 1, 1);
        if (a2 > b1) {
            anchor.storeRootHash(keccak256("second"), TABLE, a2, b2, 1, 1);
            assertEq(int256(anchor.tableOf(svc.offline, TABLE).lastKey), int256(b2), "appended");
        } else {
            vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_RangeOverlap.selector, 0, a2, b1));
            anchor.storeRootHash(keccak256("second"), TABLE, a2, b2, 1, 1);
        }
        vm.stopPrank();
    }

    function testFuzz_everyLeafVerifies_andNoOtherDoes(uint256 seed, uint8 size, uint8 pick, bytes32 other)
        public
    {
        uint256 n = bound(size, 1, 40);
        bytes32[] memory leaves = _leaves(seed, n);
        bytes32[] memory tree = TestTree.build(leaves);
        vm.prank(svc.online);
        anchor.storeRootHash(tree[0], TABLE, 0, int64(int256(n)), uint32(n), uint32(n));
        uint256 i = bound(pick, 0, n - 1);
        bytes32[] memory p = TestTree.proof(tree, i);
        bytes32 stored = anchor.tagBatchRoot(tree[0]);
        bytes32 h = _hashes(seed, n)[i];
        assertTrue(anchor.verifyReceipt(svc.offline, stored, h, p, none), "member verifies");
        vm.assume(other != h);
        assertFalse(anchor.verifyReceipt(svc.offline, stored, other, p, none), "other bytes do not");
    }

    function testFuzz_anchoredRootMatchesTestTree(uint256 seed, uint8 count) public view {
        uint256 k = bound(count, 1, 64);
        bytes32[] memory roots = _leaves(seed, k);
        bytes32[] memory tagged = new bytes32[](k);
        for (uint256 i; i < k; ++i) {
            tagged[i] = anchor.tagBatchRoot(roots[i]);
        }
        assertEq(
            anchor.anchoredRootOf(roots),
            TestTree.build(tagged)[0],
            "same layout as @openzeppelin/merkle-tree"
        );
    }

    // ---------------------------------------------------------------- gas budgets

    /// @dev Makes the next call pay for cold accounts and slots, as a transaction of its own does
    /// (a test runs as one transaction, in which every slot touched before stays warm).
    function _coldStart() internal {
        vm.cool(address(anchor));
        vm.cool(address(identity));
    }

    /// A table's first anchor also pays for its table slot (zero to non-zero), once.
    function test_gas_storeRootHash_firstOfTable() public {
        _coldStart();
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("r"), TABLE, 1, 1000, 1000, 16);
        vm.snapshotGasLastCall("storeRootHash_firstOfTable");
    }

    function test_gas_storeRootHash() public {
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("r0"), TABLE, 1, 1000, 1000, 16);
        _coldStart();
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("r"), TABLE, 1001, 2000, 1000, 16);
        vm.assertLe(vm.snapshotGasLastCall("storeRootHash"), 45_000, "one root <= 45k");
    }

    function test_gas_storeRootHashes_perAdditionalRoot() public {
        uint256 k = 10;
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("r0"), TABLE, -99, 0, 100, 4); // the table exists
        _coldStart();
        vm.prank(svc.online);
        anchor.storeRootHashes(_one(_batch(keccak256("single"), 1)));
        uint256 single = vm.snapshotGasLastCall("storeRootHashes_1");
        IReceiptAnchor.Batch[] memory many = new IReceiptAnchor.Batch[](k);
        for (uint256 i; i < k; ++i) {
            many[i] = _batch(keccak256(abi.encode("many", i)), int64(int256(i * 100 + 101)));
        }
        _coldStart();
        vm.prank(svc.online);
        anchor.storeRootHashes(many);
        uint256 multi = vm.snapshotGasLastCall("storeRootHashes_10");
        vm.assertLe((multi - single) / (k - 1), 8_000, "each additional root <= 8k");
    }

    /// Batches of different tables in one transaction: each table's slot is its own (cold) write.
    function test_gas_storeRootHashes_tenTables() public {
        IReceiptAnchor.Batch[] memory many = new IReceiptAnchor.Batch[](10);
        for (uint256 i; i < 10; ++i) {
            many[i] = _batch(keccak256(abi.encode("t", i)), 1);
            many[i].tableId = keccak256(abi.encode("table", i));
        }
        vm.prank(svc.online);
        anchor.storeRootHashes(many); // every table exists
        for (uint256 i; i < 10; ++i) {
            many[i] = _batch(keccak256(abi.encode("u", i)), 101);
            many[i].tableId = keccak256(abi.encode("table", i));
        }
        _coldStart();
        vm.prank(svc.online);
        anchor.storeRootHashes(many);
        vm.snapshotGasLastCall("storeRootHashes_10_tables");
    }
}
