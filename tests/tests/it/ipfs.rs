//! The Kubo RPC client against a real IPFS node (js-ipfs, offline): model files added as raw
//! blocks whose CID is the node's own, read back only when their bytes are the CID's, pinned and
//! unpinned; a node that goes away is named, and after a restart nothing is lost.

use iotegrity_core::ipfs::{Cid, Ipfs, IpfsError};
use iotegrity_core::learning::{LinearModel, diabetes};
use iotegrity_e2e::ipfs::IpfsNode;
use std::time::Duration;

fn model_file(rows: std::ops::Range<usize>) -> Vec<u8> {
    let (features, label, examples) = diabetes::examples(rows);
    LinearModel::train(&features, &label, &examples).unwrap().to_safetensors()
}

#[tokio::test]
async fn model_files_are_added_read_back_checked_and_pinned_on_a_real_node() {
    let node = IpfsNode::start();
    let ipfs = Ipfs::new(&node.api(), Duration::from_secs(5));
    assert!(!ipfs.version().await.unwrap().is_empty());

    // A real model file: the node names it by the CID of its bytes, which is what the chain keeps.
    let file = model_file(0..120);
    let cid = ipfs.add(&file).await.unwrap();
    assert_eq!(cid, Cid::of(&file));
    assert!(cid.to_string().starts_with("bafkrei"), "{cid}");
    assert_eq!(ipfs.cat(&cid).await.unwrap(), file);
    // The largest file this client adds is still one raw block.
    let big: Vec<u8> = (0..iotegrity_core::ipfs::MAX_FILE).map(|i| (i * 31 % 251) as u8).collect();
    assert_eq!(ipfs.add(&big).await.unwrap(), Cid::of(&big));

    // Pins: added files are pinned; unpin and pin again.
    let pins = ipfs.pin_ls().await.unwrap();
    assert!(pins.contains(&cid) && pins.contains(&Cid::of(&big)), "{pins:?}");
    ipfs.pin_rm(&cid).await.unwrap();
    assert!(!ipfs.pin_ls().await.unwrap().contains(&cid));
    ipfs.pin_add(&cid).await.unwrap();
    assert!(ipfs.pin_ls().await.unwrap().contains(&cid));

    // A reference the node does not hold (the chain's record of a model nobody added): the read
    // gives up after the timeout and says so, rather than hanging.
    let short = Ipfs::new(&node.api(), Duration::from_secs(2));
    let absent = Cid::of(&model_file(0..121));
    let err = short.cat(&absent).await.unwrap_err();
    assert!(matches!(err, IpfsError::Timeout { .. }), "{err}");
    // A CID that is not a raw block's is refused before any request.
    let err = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".parse::<Cid>().unwrap_err();
    assert!(err.to_string().contains("not a CIDv1 of a raw sha2-256 block"), "{err}");
}

#[tokio::test]
async fn a_node_stopped_is_named_and_after_a_restart_nothing_is_lost() {
    let node = IpfsNode::start();
    let ipfs = Ipfs::new(&node.api(), Duration::from_secs(5));
    let file = model_file(120..240);
    let cid = ipfs.add(&file).await.unwrap();

    node.stop();
    let err = ipfs.cat(&cid).await.unwrap_err();
    assert!(matches!(err, IpfsError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&node.api()), "the node is named: {err}");
    assert!(ipfs.add(&file).await.is_err());

    node.up();
    assert_eq!(ipfs.cat(&cid).await.unwrap(), file, "the block outlived the restart");
    assert!(ipfs.pin_ls().await.unwrap().contains(&cid), "and so did its pin");
}
