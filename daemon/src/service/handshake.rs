//! `POST /v1/tls/handshake-proof` (docs/secure-channel.md, "Handshake proofs"): over one of its
//! TLS connections, the service signs with its online key a `HandshakeProof` of that very
//! session — the name the client asked for (SNI), the certificate key it presented, the session's
//! `tls-exporter` value (hashed), the client's online key and both clocks — for the client to
//! countersign and back a `voteDomain` with. Over plain HTTP there is no session to prove: 400.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use iotegrity_core::tls::{Channel, ProofFile};
use iotegrity_core::wire::ErrorBody;
use serde::Deserialize;
use std::sync::Arc;

/// What the client sends: its online key and its clock.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofRequest {
    /// The client's online key (the voter's).
    pub client: Address,
    /// The client's clock, unix seconds.
    pub client_time: u64,
}

struct Signer {
    key: PrivateKeySigner,
    domain: Eip712Domain,
}

/// The route, signing with `key` in `domain`.
pub fn router(key: PrivateKeySigner, domain: Eip712Domain) -> Router {
    Router::new().route("/v1/tls/handshake-proof", post(handshake_proof)).with_state(Arc::new(Signer { key, domain }))
}

async fn handshake_proof(
    State(s): State<Arc<Signer>>,
    Extension(channel): Extension<Option<Channel>>,
    Json(req): Json<ProofRequest>,
) -> Result<Json<ProofFile>, (StatusCode, Json<ErrorBody>)> {
    let refuse = |why: &str| (StatusCode::BAD_REQUEST, Json(ErrorBody { error: why.to_string(), step: None }));
    let channel = channel.ok_or_else(|| refuse("a handshake proof is made only over TLS"))?;
    let name = channel.name.clone().ok_or_else(|| refuse("the client sent no server name (SNI) to prove"))?;
    Ok(Json(ProofFile::sign_as_server(&channel, &name, req.client, req.client_time, &s.key, &s.domain)))
}
