//! Certificates as the NameRegistry knows them: a certificate key is identified by
//! keccak256 of the DER `SubjectPublicKeyInfo` of its public key, and carries a validity window.

use crate::{Error, Result};
use alloy::primitives::{B256, keccak256};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

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
}

impl CertInfo {
    /// Reads a PEM certificate (`-----BEGIN CERTIFICATE-----`).
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let cert = Certificate::from_pem(pem).map_err(|e| Error::Certificate(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let spki = tbs.subject_public_key_info.to_der().map_err(|e| Error::Certificate(e.to_string()))?;
        Ok(Self {
            key_hash: keccak256(spki),
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            subject: tbs.subject.to_string(),
        })
    }
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
    }
}
