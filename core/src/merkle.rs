//! Merkle trees exactly as OpenZeppelin builds them: `@openzeppelin/merkle-tree`'s array layout (a
//! complete binary tree in heap order, leaves at the end in reverse order) with sorted-pair keccak
//! hashing, so roots equal `SimpleMerkleTree.of(leaves, {sortLeaves: false}).root` and every proof
//! verifies with `MerkleProof.verify` on chain. (`rs_merkle` hashes pairs by position: not
//! compatible.) Large trees are hashed level by level on all cores.

use alloy::primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

/// keccak256 of the sorted pair, as OpenZeppelin `Hashes.commutativeKeccak256`.
#[inline]
pub fn hash_pair(a: &B256, b: &B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(lo.as_slice());
    buf[32..].copy_from_slice(hi.as_slice());
    keccak256(buf)
}

/// The leaf of a sub-table: keccak256(keccak256(bytes)) — double hashing keeps a leaf from ever
/// being mistaken for an inner node.
pub fn leaf_of(sub_table: &[u8]) -> B256 {
    keccak256(keccak256(sub_table))
}

/// The tag of a batch root in the anchor tree: `keccak256("iotegrity.receipt-anchor.batch-root")`,
/// as `ReceiptAnchor.BATCH_ROOT_TAG`.
pub const BATCH_ROOT_TAG: B256 =
    alloy::primitives::b256!("0xd1da0588fdd7c1c9bea7e600e7a809c832d8bce26b7b4a97417555f679075c45");

/// A batch root as a leaf of the anchor tree: keccak256(abi.encode(BATCH_ROOT_TAG, root)). The tag
/// keeps the levels apart: a batch root can never pass as a row leaf, nor a row leaf as a batch root.
pub fn tag_batch_root(root: B256) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(BATCH_ROOT_TAG.as_slice());
    buf[32..].copy_from_slice(root.as_slice());
    keccak256(buf)
}

/// The anchored root of `batch_roots` (one transaction's batches): the tree over their tagged
/// forms, as `ReceiptAnchor.anchoredRootOf`.
pub fn anchor_tree(batch_roots: &[B256]) -> MerkleTree {
    let tagged: Vec<B256> = batch_roots.iter().copied().map(tag_batch_root).collect();
    MerkleTree::new(&tagged)
}

/// Which side a proof sibling sits on (informational: sorted-pair hashing ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The sibling is the left child.
    Left,
    /// The sibling is the right child.
    Right,
}

/// One step of a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofStep {
    /// The sibling hash.
    pub sibling: B256,
    /// Its side.
    pub side: Side,
}

/// A built tree.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    nodes: Vec<B256>,
    leaves: usize,
}

/// Below this many nodes in a level, hashing it on one thread is faster than splitting.
const PARALLEL_LEVEL: usize = 1 << 14;

impl MerkleTree {
    /// Builds the tree over `leaves` (at least one), in the given order.
    pub fn new(leaves: &[B256]) -> Self {
        assert!(!leaves.is_empty(), "a Merkle tree needs at least one leaf");
        let n = leaves.len();
        let mut nodes = vec![B256::ZERO; 2 * n - 1];
        let len = nodes.len();
        for (i, leaf) in leaves.iter().enumerate() {
            nodes[len - 1 - i] = *leaf;
        }
        // Inner nodes are 0..n-1; node i has children 2i+1, 2i+2. Hash one heap level at a time,
        // deepest first: within a level, parents are independent.
        if n > 1 {
            let last_inner = n - 2;
            let mut depth = usize::BITS - 1 - (last_inner + 1).leading_zeros(); // depth of node last_inner
            loop {
                let lo = (1usize << depth) - 1;
                let hi = ((1usize << (depth + 1)) - 2).min(last_inner);
                hash_level(&mut nodes, lo, hi);
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
        }
        Self { nodes, leaves: n }
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.nodes[0]
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.leaves
    }

    /// Always false: a tree has at least one leaf.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The leaf at `index` (in the order given to [`MerkleTree::new`]).
    pub fn leaf(&self, index: usize) -> B256 {
        self.nodes[self.nodes.len() - 1 - index]
    }

    /// The proof of the leaf at `index`, bottom-up.
    pub fn proof(&self, index: usize) -> Vec<ProofStep> {
        assert!(index < self.leaves, "leaf index out of range");
        let mut i = self.nodes.len() - 1 - index;
        let mut proof = Vec::new();
        while i > 0 {
            let (sibling, side) = if i % 2 == 1 { (i + 1, Side::Right) } else { (i - 1, Side::Left) };
            proof.push(ProofStep { sibling: self.nodes[sibling], side });
            i = (i - 1) / 2;
        }
        proof
    }
}

fn hash_level(nodes: &mut [B256], lo: usize, hi: usize) {
    let (parents, children) = nodes.split_at_mut(2 * lo + 1);
    let parents = &mut parents[lo..=hi];
    let work = |parents: &mut [B256], children: &[B256]| {
        for (k, p) in parents.iter_mut().enumerate() {
            *p = hash_pair(&children[2 * k], &children[2 * k + 1]);
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if parents.len() < PARALLEL_LEVEL || threads == 1 {
        work(parents, children);
        return;
    }
    let chunk = parents.len().div_ceil(threads);
    std::thread::scope(|s| {
        let mut rest_children = &children[..];
        for part in parents.chunks_mut(chunk) {
            let (mine, next) = rest_children.split_at((2 * part.len()).min(rest_children.len()));
            rest_children = next;
            s.spawn(move || work(part, mine));
        }
    });
}

/// Folds a proof from `leaf` upwards (sorted pairs: the sides are not needed).
pub fn process_proof(leaf: B256, proof: &[ProofStep]) -> B256 {
    proof.iter().fold(leaf, |acc, step| hash_pair(&acc, &step.sibling))
}

/// True iff `proof` leads from `leaf` to `root`.
pub fn verify(root: B256, leaf: B256, proof: &[ProofStep]) -> bool {
    process_proof(leaf, proof) == root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<B256> {
        (0..n).map(|i| leaf_of(&i.to_be_bytes())).collect()
    }

    #[test]
    fn the_batch_root_tag_is_the_contracts() {
        assert_eq!(BATCH_ROOT_TAG, keccak256("iotegrity.receipt-anchor.batch-root"));
    }

    #[test]
    fn matches_openzeppelin_vector() {
        // SimpleMerkleTree.of([0x11…, 0x22…, 0x33…], {sortLeaves: false}) from @openzeppelin/merkle-tree 1.0.8.
        let l: Vec<B256> = [0x11u8, 0x22, 0x33].iter().map(|b| B256::repeat_byte(*b)).collect();
        let t = MerkleTree::new(&l);
        assert_eq!(t.root().to_string(), "0x87fbd8dad686d9536b2ef65757c3415df1b7a4664deb34eda3d91234936eb5fe");
        let p0: Vec<B256> = t.proof(0).iter().map(|s| s.sibling).collect();
        assert_eq!(p0, vec![B256::repeat_byte(0x22), B256::repeat_byte(0x33)]);
        assert_eq!(
            t.proof(2)[0].sibling.to_string(),
            "0x3e92e0db88d6afea9edc4eedf62fffa4d92bcdfc310dccbe943747fe8302e871"
        );
    }

    #[test]
    fn every_leaf_proves_and_nothing_else_does() {
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 33, 100] {
            let l = leaves(n);
            let t = MerkleTree::new(&l);
            assert_eq!(t.len(), n);
            for (i, leaf) in l.iter().enumerate() {
                assert_eq!(t.leaf(i), *leaf);
                let p = t.proof(i);
                assert!(verify(t.root(), *leaf, &p), "n={n} i={i}");
                assert!(!verify(t.root(), leaf_of(b"forged"), &p), "n={n} i={i}: forged leaf");
            }
        }
    }

    #[test]
    fn single_leaf_is_its_own_root() {
        let l = leaves(1);
        assert_eq!(MerkleTree::new(&l).root(), l[0]);
        assert!(MerkleTree::new(&l).proof(0).is_empty());
    }

    #[test]
    fn parallel_levels_match_sequential() {
        // Big enough for several parallel levels; compare against a plain heap-order loop.
        let l = leaves(3 * PARALLEL_LEVEL + 7);
        let t = MerkleTree::new(&l);
        let mut nodes = vec![B256::ZERO; 2 * l.len() - 1];
        let len = nodes.len();
        for (i, leaf) in l.iter().enumerate() {
            nodes[len - 1 - i] = *leaf;
        }
        for i in (0..len - l.len()).rev() {
            nodes[i] = hash_pair(&nodes[2 * i + 1], &nodes[2 * i + 2]);
        }
        assert_eq!(t.root(), nodes[0]);
    }

    #[test]
    fn sides_are_where_the_siblings_are() {
        let t = MerkleTree::new(&leaves(4));
        // Leaf 0 sits at node 6 (a right child), so its sibling (node 5) is on the left.
        assert_eq!(t.proof(0)[0].side, Side::Left);
        assert_eq!(t.proof(1)[0].side, Side::Right);
    }
}
