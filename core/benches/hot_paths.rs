//! Hot-path measurements for docs/benchmarks.md (`make bench`): signature recovery with k256 (what
//! alloy uses) against the library's libsecp256k1 `recover_prehash`, and building an OpenZeppelin-layout Merkle tree against the
//! raw keccak rate on all cores. Prints one line per figure; run in release.

use alloy::primitives::{B256, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use iotegrity_core::merkle::{MerkleTree, hash_pair};
use iotegrity_core::signatures::recover_prehash;
use std::hint::black_box;
use std::time::Duration;

mod common;
use common::rate;

fn main() {
    let window = Duration::from_secs(2);
    // --- signature recovery, one core
    let n: usize = 1_000;
    let signer = PrivateKeySigner::random();
    let msgs: Vec<B256> = (0..n as u64).map(|i| keccak256(i.to_be_bytes())).collect();
    let sigs: Vec<_> = msgs.iter().map(|m| signer.sign_hash_sync(m).unwrap()).collect();
    let k256 = rate(window, n, || {
        for (s, m) in sigs.iter().zip(&msgs) {
            black_box(s.recover_address_from_prehash(m).unwrap());
        }
    });
    let encoded: Vec<[u8; 65]> = sigs.iter().map(|s| s.as_bytes()).collect();
    let lib = rate(window, n, || {
        for (s, m) in encoded.iter().zip(&msgs) {
            black_box(recover_prehash(m, s).unwrap());
        }
    });
    println!("recover_k256_per_s {k256:.0}");
    println!("recover_libsecp256k1_per_s {lib:.0}");
    println!("recover_ratio_libsecp_over_k256 {:.2}", lib / k256);

    // --- Merkle build over 1 M leaves vs raw keccak of the same number of pairs on all cores
    let leaves: Vec<B256> = (0..1_000_000u64).map(|i| keccak256(i.to_be_bytes())).collect();
    let build = rate(window, leaves.len() - 1, || {
        black_box(MerkleTree::new(&leaves).root());
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let raw = rate(window, leaves.len() - 1, || {
        std::thread::scope(|s| {
            for part in leaves.chunks(leaves.len().div_ceil(threads)) {
                s.spawn(move || {
                    // One hash per leaf (n - 1 in all, like the tree's inner nodes).
                    let mut acc = B256::ZERO;
                    for pair in part.windows(2) {
                        acc = hash_pair(&pair[0], &pair[1]) ^ acc;
                    }
                    black_box(acc);
                });
            }
        });
    });
    println!("merkle_1m_inner_nodes_per_s {build:.0}");
    println!("keccak_pairs_all_cores_per_s {raw:.0}");
    println!("merkle_over_raw_keccak {:.2}", build / raw);
}
