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

    function setUp() public override {
        super.setUp();
        anchor = new ReceiptAnchor(identity);
        svc = register(1, IIdentityRegistry.Role.Service);
    }

    function _leaves(uint256 seed, uint256 n) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            l[i] = keccak256(abi.encode(keccak256(abi.encode(seed, i))));
        }
    }

    function _batch(bytes32 root, int64 first) internal pure returns (IReceiptAnchor.Batch memory) {
        return IReceiptAnchor.Batch(root, TABLE, first, first + 99, 100, 4);
    }

    function test_storeRootHash_andVerify() public {
        bytes32[] memory tree = TestTree.build(_leaves(1, 4));
        vm.expectEmit(address(anchor));
        emit IReceiptAnchor.RootHashStored(tree[0], tree[0], TABLE, 1, 100, 100, 4, svc.online);
        vm.prank(svc.online);
        bytes32 stored = anchor.storeRootHash(tree[0], TABLE, 1, 100, 100, 4);
        assertEq(stored, tree[0], "single batch: the batch root is stored");
        assertTrue(anchor.verifyRootHash(tree[0]), "anchored");
        assertEq(anchor.anchorOf(tree[0]).anchorer, svc.online, "anchorer");
        assertEq(uint256(anchor.anchorOf(tree[0]).timestamp), block.timestamp, "time");
        for (uint256 i; i < 4; ++i) {
            assertTrue(
                anchor.verifyReceipt(tree[0], tree[tree.length - 1 - i], TestTree.proof(tree, i)), "receipt"
            );
        }
        assertFalse(
            anchor.verifyReceipt(tree[0], keccak256("forged"), TestTree.proof(tree, 0)), "forged leaf"
        );
        assertFalse(anchor.verifyRootHash(keccak256("never")), "unknown root");
    }

    function test_storeRootHashes_proofsContinueUpwards() public {
        // Three batches of 4, 3 and 5 sub-tables in one transaction.
        uint8[3] memory sizes = [4, 3, 5];
        bytes32[][] memory trees = new bytes32[][](3);
        IReceiptAnchor.Batch[] memory batches = new IReceiptAnchor.Batch[](3);
        bytes32[] memory roots = new bytes32[](3);
        for (uint256 b; b < 3; ++b) {
            trees[b] = TestTree.build(_leaves(b, sizes[b]));
            roots[b] = trees[b][0];
            batches[b] = _batch(roots[b], int64(int256(b * 100 + 1)));
        }
        vm.prank(svc.online);
        bytes32 stored = anchor.storeRootHashes(batches);
        bytes32[] memory top = TestTree.build(roots);
        assertEq(stored, top[0], "anchored root = tree over the batch roots");
        assertEq(anchor.anchoredRootOf(roots), stored, "view agrees");
        assertTrue(anchor.verifyRootHash(stored), "anchored");
        assertFalse(anchor.verifyRootHash(roots[1]), "batch roots themselves are not stored");
        for (uint256 b; b < 3; ++b) {
            bytes32[] memory up = TestTree.proof(top, b);
            for (uint256 i; i < sizes[b]; ++i) {
                bytes32[] memory p = TestTree.concat(TestTree.proof(trees[b], i), up);
                bytes32 leaf = trees[b][trees[b].length - 1 - i];
                assertTrue(
                    anchor.verifyReceipt(stored, leaf, p),
                    "sub-table receipt verifies against the anchored root"
                );
            }
            assertTrue(anchor.verifyReceipt(stored, roots[b], up), "batch root verifies with the upper proof");
        }
    }

    function test_RevertWhen_SenderNotActiveOnlineKey() public {
        bytes32 root = keccak256("r");
        // The offline key is not an online key.
        vm.prank(svc.offline);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotActive.selector, svc.offline));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
        // A stranger.
        vm.prank(address(0xBEEF));
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotActive.selector, address(0xBEEF)));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
        // A rotated-out key.
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(svc.offline, online2, pk2);
        vm.prank(svc.offline);
        identity.updatePublicKey(online2, pub2, sig);
        vm.prank(svc.online);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotActive.selector, svc.online));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
        // A closed identity's key.
        vm.prank(svc.offline);
        identity.closePublicKey();
        vm.prank(online2);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_NotActive.selector, online2));
        anchor.storeRootHash(root, TABLE, 1, 1, 1, 1);
    }

    function test_RevertWhen_AnchoringTwice() public {
        bytes32 root = keccak256("r");
        vm.startPrank(svc.online);
        anchor.storeRootHash(root, TABLE, 1, 10, 10, 2);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_AlreadyAnchored.selector, root));
        anchor.storeRootHash(root, TABLE, 11, 20, 10, 2);
        IReceiptAnchor.Batch[] memory one = new IReceiptAnchor.Batch[](1);
        one[0] = _batch(root, 1);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_AlreadyAnchored.selector, root));
        anchor.storeRootHashes(one);
        vm.stopPrank();
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
        IReceiptAnchor.Batch[] memory none = new IReceiptAnchor.Batch[](0);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_BatchCount.selector, 0));
        anchor.storeRootHashes(none);
        IReceiptAnchor.Batch[] memory two = new IReceiptAnchor.Batch[](2);
        two[0] = _batch(keccak256("a"), 1);
        two[1] = _batch(bytes32(0), 101);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_InvalidBatch.selector, 1));
        anchor.storeRootHashes(two);
        IReceiptAnchor.Batch[] memory tooMany = new IReceiptAnchor.Batch[](257);
        vm.expectRevert(abi.encodeWithSelector(IReceiptAnchor.Anchor_BatchCount.selector, 257));
        anchor.storeRootHashes(tooMany);
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
        assertTrue(anchor.verifyReceipt(tree[0], leaves[i], p), "member verifies");
        vm.assume(other != leaves[i]);
        assertFalse(anchor.verifyReceipt(tree[0], other, p), "another leaf does not");
    }

    function testFuzz_anchoredRootMatchesTestTree(uint256 seed, uint8 count) public view {
        uint256 k = bound(count, 1, 64);
        bytes32[] memory roots = _leaves(seed, k);
        assertEq(
            anchor.anchoredRootOf(roots), TestTree.build(roots)[0], "same layout as @openzeppelin/merkle-tree"
        );
    }

    // ---------------------------------------------------------------- gas budgets (issue #3)

    function test_gas_storeRootHash() public {
        vm.prank(svc.online);
        anchor.storeRootHash(keccak256("r"), TABLE, 1, 1000, 1000, 16);
        vm.assertLe(vm.snapshotGasLastCall("storeRootHash"), 45_000, "one root <= 45k");
    }

    function test_gas_storeRootHashes_perAdditionalRoot() public {
        uint256 k = 10;
        IReceiptAnchor.Batch[] memory one = new IReceiptAnchor.Batch[](1);
        one[0] = _batch(keccak256("single"), 1);
        vm.prank(svc.online);
        anchor.storeRootHashes(one);
        uint256 single = vm.snapshotGasLastCall("storeRootHashes_1");
        IReceiptAnchor.Batch[] memory many = new IReceiptAnchor.Batch[](k);
        for (uint256 i; i < k; ++i) {
            many[i] = _batch(keccak256(abi.encode("many", i)), int64(int256(i * 100 + 1)));
        }
        vm.prank(svc.online);
        anchor.storeRootHashes(many);
        uint256 multi = vm.snapshotGasLastCall("storeRootHashes_10");
        vm.assertLe((multi - single) / (k - 1), 8_000, "each additional root <= 8k");
    }
}
