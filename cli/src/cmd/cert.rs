//! `iotegrity cert`: certificates pinned on chain per name (paper §3.2.2). A certificate is
//! identified by keccak256 of its DER SubjectPublicKeyInfo, read from a PEM file.

use crate::Report;
use crate::opts::{ChainOpts, Conn, WalletOpts};
use alloy::primitives::B256;
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail};
use iotegrity_core::cert::CertInfo;
use iotegrity_core::chain;
use iotegrity_core::contracts::NameRegistry;
use iotegrity_core::names::validate_name;
use serde_json::json;
use std::path::PathBuf;

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertCmd {
    /// Pin a certificate's key to a name, with its validity window (default: the certificate's own).
    Add(AddArgs),
    /// Check a certificate for a name on chain; exits 1 if it does not verify.
    Verify(VerifyArgs),
    /// Revoke a certificate of a name.
    Revoke(RevokeArgs),
}

/// Which certificate: a PEM file or the key hash itself.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct WhichCert {
    /// PEM certificate file.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// keccak256 of the certificate's DER SubjectPublicKeyInfo.
    #[arg(long, value_name = "HASH")]
    pub key_hash: Option<B256>,
}

/// `cert add`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key -out gw.pem \\\n    \
    -days 365 -subj /CN=gateway.bit\n  iotegrity cert add gateway.bit --cert gw.pem --keystore keys/gw/offline.json --password-file pw.txt"
)]
pub struct AddArgs {
    /// The name.
    pub name: String,
    /// PEM certificate file.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Start of validity (unix seconds) [default: the certificate's notBefore].
    #[arg(long, value_name = "UNIX")]
    pub not_before: Option<u64>,
    /// End of validity (unix seconds) [default: the certificate's notAfter].
    #[arg(long, value_name = "UNIX")]
    pub not_after: Option<u64>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `cert verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The name.
    pub name: String,
    /// Which certificate.
    #[command(flatten)]
    pub which: WhichCert,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `cert revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The name.
    pub name: String,
    /// Which certificate.
    #[command(flatten)]
    pub which: WhichCert,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

fn read_cert(path: &PathBuf) -> Result<CertInfo> {
    let pem = std::fs::read(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    CertInfo::from_pem(&pem).wrap_err_with(|| format!("{} is not a PEM certificate", path.display()))
}

impl WhichCert {
    fn key_hash(&self) -> Result<B256> {
        match (&self.cert, self.key_hash) {
            (Some(path), _) => Ok(read_cert(path)?.key_hash),
            (None, Some(h)) => Ok(h),
            (None, None) => bail!("pass --cert FILE or --key-hash HASH"),
        }
    }
}

fn names(conn: &Conn) -> NameRegistry::NameRegistryInstance<&alloy::providers::DynProvider> {
    NameRegistry::new(conn.book.name_registry, &conn.provider)
}

impl CertCmd {
    /// Runs the certificate subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Add(a) => {
                validate_name(&a.name)?;
                let info = read_cert(&a.cert)?;
                let (nb, na) = (a.not_before.unwrap_or(info.not_before), a.not_after.unwrap_or(info.not_after));
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let receipt = chain::send(names(&conn).addCertificate(a.name.clone(), info.key_hash, nb, na)).await?;
                Ok(Report::new(
                    format!(
                        "certificate {} ({}) pinned to {}, valid {nb}..{na}\n  tx {}",
                        info.key_hash, info.subject, a.name, receipt.transaction_hash
                    ),
                    json!({ "name": a.name, "keyHash": info.key_hash, "subject": info.subject, "notBefore": nb, "notAfter": na,
                            "tx": receipt.transaction_hash }),
                ))
            }
            Self::Verify(a) => {
                validate_name(&a.name)?;
                let hash = a.which.key_hash()?;
                let conn = a.chain.connect().await?;
                let r = names(&conn);
                let valid: bool = chain::call(r.verifyCertificate(a.name.clone(), hash)).await?;
                let report = Report::new(
                    format!("{hash} for {}: {}", a.name, if valid { "valid" } else { "NOT valid" }),
                    json!({ "name": a.name, "keyHash": hash, "valid": valid }),
                );
                if valid {
                    return Ok(report);
                }
                // Say why, from the stored record.
                let c = chain::call(r.certificate(hash)).await?;
                let why = if c.nameHash.is_zero() {
                    "no such certificate is registered"
                } else if c.revoked {
                    "it was revoked"
                } else {
                    "it is for another name or owner, outside its validity window, or its owner's identity is closed"
                };
                Ok(Report::new(
                    format!("{}\n  {why}", report.text),
                    json!({ "name": a.name, "keyHash": hash, "valid": false, "reason": why }),
                )
                .negative())
            }
            Self::Revoke(a) => {
                validate_name(&a.name)?;
                let hash = a.which.key_hash()?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let receipt = chain::send(names(&conn).revokeCertificate(a.name.clone(), hash)).await?;
                Ok(Report::new(
                    format!("certificate {hash} of {} revoked\n  tx {}", a.name, receipt.transaction_hash),
                    json!({ "name": a.name, "keyHash": hash, "tx": receipt.transaction_hash }),
                ))
            }
        }
    }
}
