//! Keys of a two-key identity: the 64-byte public key the registry checks, the EIP-712
//! proof of possession (`KeyBinding`), and encrypted Ethereum keystore files.

use crate::{Error, Result};
use alloy::primitives::{Address, Bytes};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};
use std::path::Path;

alloy::sol! {
    /// What an online key signs to prove it agrees to belong to an offline address.
    struct KeyBinding {
        address offline;
        address online;
    }
}

/// The EIP-712 domain of every iotegrity signature: name `iotegrity`, version `1`, the chain, and
/// the IdentityRegistry as verifying contract (docs/eip712.md).
pub fn domain(chain_id: u64, identity_registry: Address) -> Eip712Domain {
    eip712_domain! {
        name: "iotegrity",
        version: "1",
        chain_id: chain_id,
        verifying_contract: identity_registry,
    }
}

/// The 64-byte uncompressed public key (x ‖ y, no 0x04 prefix) whose keccak256 gives the address.
pub fn public_key(signer: &PrivateKeySigner) -> Bytes {
    let point = signer.credential().verifying_key().to_encoded_point(false);
    Bytes::copy_from_slice(&point.as_bytes()[1..])
}

/// The online key's signature of `KeyBinding(offline, online)`: 65 bytes r ‖ s ‖ v.
pub fn key_binding_signature(online: &PrivateKeySigner, offline: Address, domain: &Eip712Domain) -> Result<Bytes> {
    let hash = KeyBinding { offline, online: online.address() }.eip712_signing_hash(domain);
    let sig = online.sign_hash_sync(&hash).map_err(|e| Error::Signing(Box::new(e)))?;
    Ok(Bytes::from(sig.as_bytes().to_vec()))
}

/// Creates a random key and writes it encrypted (Web3 Secret Storage, as geth and cast do) to
/// `dir/name`. Refuses to overwrite an existing file.
pub fn new_keystore(dir: &Path, name: &str, password: &str) -> Result<PrivateKeySigner> {
    if dir.join(name).exists() {
        return Err(Error::KeyExists { path: dir.join(name) });
    }
    let failed = |source: crate::error::Cause| Error::Keystore { path: dir.join(name), source };
    std::fs::create_dir_all(dir).map_err(|e| failed(e.into()))?;
    let (signer, _) = PrivateKeySigner::new_keystore(dir, &mut rand::thread_rng(), password, Some(name))
        .map_err(|e| failed(e.into()))?;
    Ok(signer)
}

/// Decrypts a keystore file.
pub fn open_keystore(path: &Path, password: &str) -> Result<PrivateKeySigner> {
    use alloy::signers::local::LocalSignerError;
    PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| match e {
        LocalSignerError::EthKeystoreError(eth_keystore::KeystoreError::MacMismatch) => {
            Error::WrongPassword { path: path.to_owned() }
        }
        e => Error::Keystore { path: path.to_owned(), source: Box::new(e) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::keccak256;

    #[test]
    fn public_key_hashes_to_address() {
        let s = PrivateKeySigner::random();
        let pub_key = public_key(&s);
        assert_eq!(pub_key.len(), 64);
        assert_eq!(Address::from_slice(&keccak256(&pub_key)[12..]), s.address());
    }

    #[test]
    fn binding_signature_recovers_to_online_key() {
        let online = PrivateKeySigner::random();
        let offline = Address::repeat_byte(7);
        let d = domain(31337, Address::repeat_byte(1));
        let sig = key_binding_signature(&online, offline, &d).unwrap();
        let parsed = alloy::primitives::Signature::try_from(sig.as_ref()).unwrap();
        let hash = KeyBinding { offline, online: online.address() }.eip712_signing_hash(&d);
        assert_eq!(parsed.recover_address_from_prehash(&hash).unwrap(), online.address());
        // Another chain or registry gives another digest: the proof does not travel.
        let other =
            KeyBinding { offline, online: online.address() }.eip712_signing_hash(&domain(1, Address::repeat_byte(1)));
        assert_ne!(parsed.recover_address_from_prehash(&other).ok(), Some(online.address()));
    }

    #[test]
    fn keystore_round_trip_and_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_keystore(dir.path(), "k.json", "pw").unwrap();
        let path = dir.path().join("k.json");
        assert_eq!(open_keystore(&path, "pw").unwrap().address(), s.address());
        let err = open_keystore(&path, "nope").unwrap_err();
        assert!(matches!(&err, Error::WrongPassword { path: p } if *p == path), "{err:?}");
        assert!(err.to_string().ends_with("k.json: wrong password"), "{err}");
        assert!(matches!(new_keystore(dir.path(), "k.json", "pw"), Err(Error::KeyExists { .. })), "no overwrite");
        // Not a keystore: an error that keeps its cause, not a wrong password.
        std::fs::write(dir.path().join("bad.json"), "{}").unwrap();
        let err = open_keystore(&dir.path().join("bad.json"), "pw").unwrap_err();
        assert!(matches!(err, Error::Keystore { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some(), "the keystore's own error is kept");
    }
}
