//! Certificates as the NameRegistry knows them: a certificate key is identified by keccak256 of
//! the DER `SubjectPublicKeyInfo` of its public key, carries a validity window, and is pinned only
//! with a proof of possession — the key's P-256 signature of the EIP-712
//! `CertificateBinding(name, owner, certKeyHash, notBefore, notAfter)` (docs/eip712.md). P-256 is
//! the one TLS key type whose signature the chain checks at a reasonable price.

use crate::{Error, Result};
use alloy::primitives::{B256, keccak256};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode, oid::ObjectIdentifier};

/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// prime256v1 / secp256r1 (RFC 5480).
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// What the chain needs of an X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// keccak256(DER SubjectPublicKeyInfo): the `certKeyHash` stored on chain.
    pub key_hash: B256,
    /// Start of validity, unix seconds.
    pub not_before: u64,
    /// End of validity, unix seconds.
    pub not_after: u64,
    /// The subject, RFC 4514 form.
    pub subject: String,
    /// The public key as (x, y) if it is a P-256 key (the only kind that can be pinned).
    pub p256: Option<[B256; 2]>,
}

impl CertInfo {
    /// Reads a PEM certificate (`-----BEGIN CERTIFICATE-----`).
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let cert = Certificate::from_pem(pem).map_err(|e| Error::Certificate(Box::new(e)))?;
        let tbs = &cert.tbs_certificate;
        let spki_info = &tbs.subject_public_key_info;
        let spki = spki_info.to_der().map_err(|e| Error::Certificate(Box::new(e)))?;
        let curve = spki_info.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        let point = spki_info.subject_public_key.raw_bytes();
        let p256 = (spki_info.algorithm.oid == EC_PUBLIC_KEY
            && curve == Some(PRIME256V1)
            && point.len() == 65
            && point[0] == 4)
            .then(|| [B256::from_slice(&point[1..33]), B256::from_slice(&point[33..65])]);
        Ok(Self {
            key_hash: keccak256(spki),
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            subject: tbs.subject.to_string(),
            p256,
        })
    }

    /// The P-256 point, or an error that says why the certificate cannot be pinned.
    pub fn p256_key(&self) -> Result<[B256; 2]> {
        self.p256.ok_or_else(|| Error::NotP256 { subject: self.subject.clone() })
    }
}

/// A P-256 certificate key, read from a PEM file (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`,
/// as `openssl req -newkey ec … -nodes` writes them).
pub struct CertKey(SigningKey);

impl CertKey {
    /// Reads the key.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .or_else(|_| p256::SecretKey::from_sec1_pem(pem).map(SigningKey::from))
            .map_err(|_| Error::NotP256Key)?;
        Ok(Self(key))
    }

    /// The public key as (x, y).
    pub fn public(&self) -> [B256; 2] {
        let point = self.0.verifying_key().to_encoded_point(false);
        [B256::from_slice(point.x().expect("uncompressed")), B256::from_slice(point.y().expect("uncompressed"))]
    }

    /// Signs `digest` (the binding's EIP-712 digest, signed as is): (r, s) with s in the lower
    /// half, the one encoding the contract accepts.
    pub fn prove(&self, digest: B256) -> Result<[B256; 2]> {
        let sig: Signature = self.0.sign_prehash(digest.as_slice()).map_err(|e| Error::Signing(Box::new(e)))?;
        let sig = sig.normalize_s().unwrap_or(sig);
        let (r, s) = sig.split_bytes();
        Ok([B256::from_slice(&r), B256::from_slice(&s)])
    }
}

/// DER of SubjectPublicKeyInfo{id-ecPublicKey, prime256v1} up to the point, and the 0x04 of an
/// uncompressed point (as `NameRegistry`'s `P256_SPKI_PREFIX`).
const P256_SPKI_PREFIX: [u8; 27] = alloy::primitives::hex!("3059301306072a8648ce3d020106082a8648ce3d03010703420004");

/// keccak256 of the DER SubjectPublicKeyInfo of the P-256 point (x, y), as
/// `NameRegistry.p256KeyHash`: equal to [`CertInfo::key_hash`] of a certificate with that key.
pub fn p256_key_hash(key: &[B256; 2]) -> B256 {
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(key[0].as_slice());
    spki.extend_from_slice(key[1].as_slice());
    keccak256(spki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(CertInfo::from_pem(b"not a certificate"), Err(Error::Certificate(_))));
        assert!(matches!(
            CertInfo::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(Error::Certificate(_))
        ));
        assert!(CertKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
    }

    #[test]
    fn proofs_are_low_s_and_verify() {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let key = CertKey(SigningKey::from_slice(&[7u8; 32]).unwrap());
        let half_n = B256::from_slice(
            &alloy::hex::decode("7fffffff800000007fffffffffffffffde737d56d38bcf4279dce5617e3192a8").unwrap(),
        );
        for i in 0..16u8 {
            let digest = keccak256([i]);
            let [r, s] = key.prove(digest).unwrap();
            assert!(s <= half_n, "low s");
            let sig = Signature::from_scalars(r.0, s.0).unwrap();
            key.0.verifying_key().verify_prehash(digest.as_slice(), &sig).unwrap();
        }
    }
}
