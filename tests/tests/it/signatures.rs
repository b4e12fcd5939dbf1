//! The chain of signatures against a real chain: the registry cache follows the IdentityRegistry's
//! events, so a reading signed by a key rotated out or closed on chain stops verifying after the
//! next sync, without a restart.

use alloy::primitives::B256;
use alloy::providers::{Provider, ProviderBuilder};
use iotegrity_core::AddressBook;
use iotegrity_core::contracts::Role;
use iotegrity_core::keys::open_keystore;
use iotegrity_core::registry_cache::RegistryCache;
use iotegrity_core::signatures::{Failure, KeyDirectory, KeyStatus, SignedReading, Step, VerifyError, domain_of};
use iotegrity_e2e::{PASSWORD, World};

#[tokio::test]
async fn cache_follows_rotation_and_closing() {
    let w = World::new(&[]);
    let dev = w.identity("dev", "device").await;
    let gw = w.identity("gw", "gateway").await;
    let book = AddressBook::load(&w.book).unwrap();
    let provider = ProviderBuilder::new().connect_http(w.anvil.endpoint_url()).erased();
    let mut cache = RegistryCache::new(book.identity_registry(), book.deployed_block);
    assert!(cache.sync(&provider).await.unwrap() >= 2, "both registrations seen");
    assert_eq!(cache.status(dev.online), KeyStatus::Active { role: Role::Device });
    assert_eq!(cache.status(gw.offline), KeyStatus::Unknown, "offline keys never sign data");

    let d = domain_of(&book);
    let dev_key = open_keystore(&dev.dir.join("online.json"), PASSWORD).unwrap();
    let gw_key = open_keystore(&gw.dir.join("online.json"), PASSWORD).unwrap();
    let mut reading = SignedReading::new(&dev_key, 1, 1_700_000_000, B256::repeat_byte(1), &d);
    reading.countersign(&gw_key, &d);
    reading.verify(&d, &cache).unwrap();

    // The gateway rotates its online key on chain: after a sync, its old signatures stop verifying.
    let fresh = w.keys("gw-new").await;
    w.run_as(&gw, &["identity", "update", "--online-keystore", &fresh.dir.join("online.json").display().to_string()])
        .json();
    reading.verify(&d, &cache).unwrap(); // not synced yet
    assert_eq!(cache.sync(&provider).await.unwrap(), 1);
    assert_eq!(
        reading.verify(&d, &cache),
        Err(VerifyError { step: Step::Gateway(1), kind: Failure::InactiveKey { signer: gw.online } })
    );
    assert_eq!(cache.status(fresh.online), KeyStatus::Active { role: Role::Gateway });

    // The device closes its identity.
    w.run_as(&dev, &["identity", "close", "--yes"]).json();
    cache.sync(&provider).await.unwrap();
    assert_eq!(cache.status(dev.online), KeyStatus::Inactive);
    assert!(cache.synced_to() >= book.deployed_block);
}
