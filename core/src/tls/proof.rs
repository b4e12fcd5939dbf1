//! Handshake proofs (docs/secure-channel.md): an EIP-712 `HandshakeProof` bound to one session's
//! RFC 9266 `tls-exporter` value, signed by the server's online key and countersigned by the client's.

use super::{Channel, Session, Stream, request};
use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{Eip712Domain, SolStruct};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub use crate::contracts::IReputation::HandshakeProof;

/// A handshake proof and its two signatures, as `iotegrity tls probe --proof-out` writes it and
/// `iotegrity reputation vote --proof` reads it (docs/secure-channel.md, "Handshake proofs").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofFile {
    /// The name the channel was opened to.
    pub name: String,
    /// keccak256 of the certificate key the server presented.
    pub cert_key_hash: B256,
    /// keccak256 of the session's `tls-exporter` value.
    pub exporter_hash: B256,
    /// The server's online key (the name owner's).
    pub server: Address,
    /// The client's online key (the voter's).
    pub client: Address,
    /// The server's clock when it signed, unix seconds.
    pub server_time: u64,
    /// The client's clock when it asked, unix seconds.
    pub client_time: u64,
    /// The server's 65-byte signature of the EIP-712 digest.
    pub server_sig: Bytes,
    /// The client's countersignature of the same digest (empty until it countersigns).
    #[serde(default)]
    pub client_sig: Bytes,
}

/// Why a handshake proof was not obtained.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The exchange over the channel failed.
    #[error("asking {name} for a handshake proof: {why}")]
    Exchange {
        /// The name.
        name: String,
        /// Why.
        why: String,
    },
    /// The server's proof is not a proof of this session, or not signed by the key it names.
    #[error("{name}'s handshake proof does not hold: {why}")]
    Invalid {
        /// The name.
        name: String,
        /// What differs.
        why: String,
    },
}

impl ProofFile {
    /// The signed message.
    pub fn proof(&self) -> HandshakeProof {
        HandshakeProof {
            name: self.name.clone(),
            certKeyHash: self.cert_key_hash,
            exporterHash: self.exporter_hash,
            server: self.server,
            client: self.client,
            serverTime: self.server_time,
            clientTime: self.client_time,
        }
    }

    /// The EIP-712 digest both ends sign (`Reputation.handshakeProofDigest`).
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.proof().eip712_signing_hash(domain)
    }

    /// The server's side: a proof of `channel` for `client`, signed by `key`.
    pub fn sign_as_server(
        channel: &Channel,
        name: &str,
        client: Address,
        client_time: u64,
        key: &PrivateKeySigner,
        domain: &Eip712Domain,
    ) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut file = Self {
            name: name.to_string(),
            cert_key_hash: channel.cert_key_hash,
            exporter_hash: keccak256(channel.exporter),
            server: key.address(),
            client,
            server_time: now,
            client_time,
            server_sig: Bytes::new(),
            client_sig: Bytes::new(),
        };
        file.server_sig = crate::signatures::sign(key, &file.proof(), domain);
        file
    }

    /// The client's side: checks that the server's proof is of this session (name, key,
    /// exporter, client, time) and signed by the key it names, then countersigns it.
    pub fn countersign(
        mut self,
        session: &Session,
        name: &str,
        key: &PrivateKeySigner,
        client_time: u64,
        domain: &Eip712Domain,
    ) -> Result<Self, ProofError> {
        let invalid = |why: String| ProofError::Invalid { name: name.to_string(), why };
        for (differs, what) in [
            (self.name != name, "it is for another name"),
            (self.cert_key_hash != session.cert_key_hash, "it names another certificate key than the one presented"),
            (self.exporter_hash != keccak256(session.exporter), "it is bound to another session (tls-exporter)"),
            (self.client != key.address(), "it names another client"),
            (self.client_time != client_time, "it carries another client time than the one sent"),
        ] {
            if differs {
                return Err(invalid(what.to_string()));
            }
        }
        let digest = self.digest(domain);
        let signer = crate::signatures::recover_prehash(&digest, &self.server_sig);
        if signer != Some(self.server) {
            return Err(invalid(format!("the server's signature recovers to {signer:?}, not to {}", self.server)));
        }
        self.client_sig = crate::signatures::sign(key, &self.proof(), domain);
        Ok(self)
    }
}

/// Asks the server at the other end of `stream` for a handshake proof of this session
/// (`POST /v1/tls/handshake-proof`, the connection closed after it) and countersigns it as `key`.
pub async fn request_proof(
    stream: Stream,
    session: &Session,
    name: &str,
    key: &PrivateKeySigner,
    domain: &Eip712Domain,
) -> Result<ProofFile, ProofError> {
    let exchange = |why: String| ProofError::Exchange { name: name.to_string(), why };
    let client_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let body = serde_json::json!({ "client": key.address(), "clientTime": client_time }).to_string();
    let (status, answer) =
        request(stream, session, name, "/v1/tls/handshake-proof", Some(body), Duration::from_secs(10))
            .await
            .map_err(|e| exchange(e.to_string()))?;
    let text = String::from_utf8_lossy(&answer);
    if status != 200 {
        return Err(exchange(format!("HTTP {status}: {}", text.trim())));
    }
    let file: ProofFile = serde_json::from_str(text.trim()).map_err(|e| exchange(format!("not a proof: {e}")))?;
    file.countersign(session, name, key, client_time, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_countersigned_only_if_it_is_of_this_session_and_signed_by_its_server() {
        let domain = alloy::sol_types::eip712_domain! {
            name: "iotegrity", version: "1", chain_id: 31337, verifying_contract: Address::repeat_byte(0x1d),
        };
        let (server, client) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let channel = Channel {
            name: Some("svc.iot".into()),
            cert_key_hash: B256::repeat_byte(7),
            exporter: B256::repeat_byte(9),
            client: None,
        };
        let session = Session {
            addr: "127.0.0.1:1".parse().unwrap(),
            cert_key_hash: channel.cert_key_hash,
            exporter: channel.exporter,
        };
        let signed = ProofFile::sign_as_server(&channel, "svc.iot", client.address(), 100, &server, &domain);
        let ok = signed.clone().countersign(&session, "svc.iot", &client, 100, &domain).unwrap();
        let digest = ok.digest(&domain);
        assert_eq!(crate::signatures::recover_prehash(&digest, &ok.server_sig), Some(server.address()));
        assert_eq!(crate::signatures::recover_prehash(&digest, &ok.client_sig), Some(client.address()));
        let refused = |f: ProofFile, s: &Session, name: &str, time: u64| {
            matches!(f.countersign(s, name, &client, time, &domain), Err(ProofError::Invalid { .. }))
        };
        assert!(refused(signed.clone(), &session, "other.iot", 100), "another name");
        assert!(
            refused(signed.clone(), &Session { exporter: B256::repeat_byte(1), ..session.clone() }, "svc.iot", 100),
            "another session"
        );
        assert!(
            refused(signed.clone(), &Session { cert_key_hash: B256::ZERO, ..session.clone() }, "svc.iot", 100),
            "another key"
        );
        assert!(refused(signed.clone(), &session, "svc.iot", 101), "another client time");
        let mut liar = signed.clone();
        liar.server = client.address(); // claims another signer
        assert!(refused(liar, &session, "svc.iot", 100));
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<ProofFile>(&json).unwrap(), ok);
        assert!(json.contains("\"exporterHash\"") && json.contains("\"clientSig\""), "{json}");
    }
}
