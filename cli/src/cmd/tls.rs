//! `iotegrity tls`: the secure channel of paper §3.2.2 from the command line — `probe` resolves a
//! name on chain, reads which certificate keys the chain accepts for it now, opens a TLS 1.3
//! connection to the name's address and accepts the server only if it presents one of those keys
//! (docs/secure-channel.md). Every step is printed; a refusal says which step and why.

use crate::Report;
use crate::opts::{ChainOpts, ClientCertOpts, WalletOpts};
use alloy::primitives::keccak256;
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail};
use iotegrity_core::chain;
use iotegrity_core::contracts::{IdentityRegistry, NameRegistry};
use iotegrity_core::names::validate_name;
use iotegrity_core::tls::{Resolved, connect_as, request_proof};
use serde_json::json;
use std::time::Duration;

/// Secure-channel commands.
#[derive(Debug, Subcommand)]
pub enum TlsCmd {
    /// Resolve a name on chain, handshake with its server over TLS 1.3 and check the presented
    /// certificate key against the keys the chain accepts for the name now; exits non-zero if the
    /// server is refused.
    Probe(ProbeArgs),
}

/// `tls probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The name, e.g. `svc.iot`.
    pub name: String,
    /// The server's TCP port (the chain holds the address, not the port).
    #[arg(long, default_value_t = 443)]
    pub port: u16,
    /// Give up on the handshake after this many seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// After the handshake, ask the server for a proof of this session (EIP-712
    /// `HandshakeProof`), check it, countersign it with the wallet (the client's ONLINE key) and
    /// write it here: what `reputation vote --name NAME --proof FILE` sends.
    #[arg(long, value_name = "FILE")]
    pub proof_out: Option<std::path::PathBuf>,
    /// Mutual TLS: this client's certificate, for a server that lets in only named clients.
    #[command(flatten)]
    pub client_cert: ClientCertOpts,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The client's online key (only with --proof-out).
    #[command(flatten)]
    pub wallet: WalletOpts,
}

impl TlsCmd {
    /// Runs the subcommand.
    pub async fn run(self) -> Result<Report> {
        let Self::Probe(a) = self;
        validate_name(&a.name)?;
        let conn = a.chain.connect().await?;
        let resolved = Resolved::now(&conn.provider, &conn.book, &a.name).await?;
        let client_cert = a.client_cert.load()?;
        let (stream, session) =
            connect_as(&resolved, a.port, Duration::from_secs(a.timeout_secs), client_cert.clone()).await?;
        let tls = stream.get_ref().1;
        let suite = tls.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
        let exporter_hash = keccak256(session.exporter);
        let accepted: Vec<String> = resolved.accepted.iter().map(|k| k.to_string()).collect();
        let mut text = format!(
            "resolve    {} -> {} (NameRegistry at block {})\n\
             pins       {} key(s) accepted for {} now: {}\n\
             connect    {}\n\
             handshake  TLS 1.3 ({suite}), no resumption; handshake signature verified\n\
             pinned     the server's key {} is accepted for {} ✓{}\n\
             channel    tls-exporter (RFC 9266), keccak256: {exporter_hash}",
            a.name,
            resolved.ip,
            resolved.block,
            accepted.len(),
            a.name,
            accepted.join(", "),
            session.addr,
            session.cert_key_hash,
            a.name,
            client_cert.as_ref().map_or(String::new(), |c| format!(
                "\nclient     offered certificate key {} (mutual TLS: the server checks it against its client names)",
                c.current().1
            )),
        );
        let mut json = json!({ "name": a.name, "ip": resolved.ip.to_string(), "port": a.port, "block": resolved.block,
                "accepted": accepted, "certKeyHash": session.cert_key_hash, "tlsVersion": "TLSv1.3",
                "cipherSuite": suite, "exporterHash": exporter_hash });
        if let Some(out) = &a.proof_out {
            let key = a.wallet.signer()?;
            let domain = iotegrity_core::signatures::domain_of(&conn.book);
            let file = request_proof(stream, &session, &a.name, &key, &domain).await?;
            // The server's key must be the name owner's online key now (what voteDomain checks).
            let owner =
                chain::call(NameRegistry::new(conn.book.name_registry(), &conn.provider).nameRecord(a.name.clone()))
                    .await?
                    .owner;
            let identity = IdentityRegistry::new(conn.book.identity_registry(), &conn.provider);
            let owner_key = chain::call(identity.identityOf(owner)).await?.online;
            if file.server != owner_key {
                bail!("{}'s proof is signed by {}, not by its owner's online key {owner_key}", a.name, file.server);
            }
            std::fs::write(out, serde_json::to_string_pretty(&file)? + "\n")
                .wrap_err_with(|| format!("cannot write {}", out.display()))?;
            let digest = file.digest(&domain);
            text.push_str(&format!(
                "\nproof      signed by the owner's online key {}, countersigned by {} -> {} (digest {digest})",
                file.server,
                file.client,
                out.display()
            ));
            json["proof"] = json!({ "file": out, "digest": digest, "server": file.server, "client": file.client });
        }
        Ok(Report::new(text, json))
    }
}
