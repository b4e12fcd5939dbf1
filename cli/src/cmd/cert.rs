//! `iotegrity cert`: certificates pinned on chain per name (paper §3.2.2). A certificate is
//! identified by keccak256 of its DER SubjectPublicKeyInfo, read from a PEM file, and pinned only
//! with a proof that its (P-256) key signed the binding to the name, owner and window.

use crate::Report;
use crate::opts::{ChainOpts, Conn, WalletOpts};
use alloy::primitives::B256;
use clap::{Args, Subcommand};
use eyre::{Context, Result, bail};
use iotegrity_core::cert::{CertInfo, CertKey};
use iotegrity_core::chain;
use iotegrity_core::contracts::NameRegistry;
use iotegrity_core::names::validate_name;
use serde_json::json;
use std::path::PathBuf;

/// Certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertCmd {
    /// Make a self-signed P-256 certificate and its key for a name (no openssl needed); pin it
    /// with `cert add`, serve it with `[ingest] tls_cert` / `tls_key`.
    Issue(IssueArgs),
    /// Pin a certificate's key to a name, with its validity window (default: the certificate's own)
    /// and the key's proof of possession.
    Add(AddArgs),
    /// Sign the proof of possession with the certificate's key, for someone else to pin it (a CA).
    Prove(ProveArgs),
    /// Check a certificate for a name on chain; exits 1 if it does not verify.
    Verify(VerifyArgs),
    /// Revoke a certificate of a name.
    Revoke(RevokeArgs),
    /// Roll a name over to its next certificate with no failed handshake: pin the next key beside
    /// the current one, wait until the server at the name presents it (replace the server's files
    /// meanwhile: `iotegrityd` reads them again), then retire the current pin.
    Rotate(RotateArgs),
}

/// `cert rotate`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  iotegrity cert issue svc.iot --cert-out next.pem --key-out next.key\n  \
    iotegrity cert rotate svc.iot --cert next.pem --key next.key --retire svc.pem --port 8443 --keystore keys/svc/offline.json ...\n  \
    # meanwhile: mv next.pem svc.pem; mv next.key svc.key  (the daemon serves the next certificate at its next handshake)")]
pub struct RotateArgs {
    /// The name.
    pub name: String,
    /// The next certificate (PEM, P-256).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Its private key, to prove possession.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The current certificate, retired once the server presents the next one.
    #[arg(long, value_name = "FILE")]
    pub retire: PathBuf,
    /// The server's TCP port, probed until it presents the next key.
    #[arg(long, default_value_t = 443)]
    pub port: u16,
    /// Give up waiting for the server after this many seconds (nothing is retired then).
    #[arg(long, default_value_t = 300)]
    pub wait_secs: u64,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// The name owner's key, which sends both transactions.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `cert issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The name the certificate is for (its subject and its one subject alternative name).
    pub name: String,
    /// Days of validity from now.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert_out: PathBuf,
    /// Where to write its private key (PKCS#8 PEM; created readable by its owner only).
    #[arg(long, value_name = "FILE")]
    pub key_out: PathBuf,
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

/// The certificate and its window, as `add` and `prove` take them.
#[derive(Debug, Args)]
pub struct Binding {
    /// The name.
    pub name: String,
    /// PEM certificate file (its key must be P-256).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Start of validity (unix seconds) [default: the certificate's notBefore].
    #[arg(long, value_name = "UNIX")]
    pub not_before: Option<u64>,
    /// End of validity (unix seconds) [default: the certificate's notAfter].
    #[arg(long, value_name = "UNIX")]
    pub not_after: Option<u64>,
}

/// The proof of possession: made here with the key, or made by its holder (`cert prove`).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Possession {
    /// The certificate's private key (PEM, PKCS#8 or SEC1), to sign the proof here.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The proof signed by the key's holder (`cert prove`): 0x-hex r ‖ s, 64 bytes.
    #[arg(long, value_name = "HEX")]
    pub proof: Option<alloy::primitives::Bytes>,
}

/// `cert add`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key -out gw.pem \\\n    \
    -days 365 -subj /CN=gateway.bit\n  iotegrity cert add gateway.bit --cert gw.pem --key gw.key --keystore keys/gw/offline.json --password-file pw.txt\n\n\
    The key signs CertificateBinding(name, owner, certKeyHash, notBefore, notAfter) (docs/eip712.md):\n\
    nobody can pin a key they do not hold. In quasi-centralized mode a CA pins it with the holder's\n\
    --proof from `iotegrity cert prove`."
)]
pub struct AddArgs {
    /// The certificate and its window.
    #[command(flatten)]
    pub binding: Binding,
    /// The proof of possession.
    #[command(flatten)]
    pub possession: Possession,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `cert prove`.
#[derive(Debug, Args)]
#[command(after_help = "Example (the holder of gw.key, for the CA that will pin it):\n  \
    iotegrity cert prove gateway.bit --cert gw.pem --key gw.key > proof.txt")]
pub struct ProveArgs {
    /// The certificate and its window.
    #[command(flatten)]
    pub binding: Binding,
    /// The certificate's private key (PEM, PKCS#8 or SEC1).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The name's owner (offline address) [default: as registered on chain].
    #[arg(long, value_name = "ADDRESS")]
    pub owner: Option<alloy::primitives::Address>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
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

/// Writes a new file with `mode`; an existing file is never overwritten (a key lost is a pin lost).
fn write_new(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .wrap_err_with(|| format!("cannot create {} (an existing file is never overwritten)", path.display()))?;
    f.write_all(bytes).wrap_err_with(|| format!("cannot write {}", path.display()))
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

fn read_key(path: &PathBuf) -> Result<CertKey> {
    let pem = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    CertKey::from_pem(&pem).wrap_err_with(|| format!("{}: not a usable certificate key", path.display()))
}

impl Binding {
    /// The certificate's P-256 key and the window; fails unless `key` is that certificate's key.
    fn read(&self, key: Option<&CertKey>) -> Result<(CertInfo, [B256; 2], u64, u64)> {
        validate_name(&self.name)?;
        let info = read_cert(&self.cert)?;
        let point = info.p256_key()?;
        if key.is_some_and(|k| k.public() != point) {
            bail!("the key file is not the key of {} ({})", self.cert.display(), info.subject);
        }
        let (nb, na) = (self.not_before.unwrap_or(info.not_before), self.not_after.unwrap_or(info.not_after));
        Ok((info, point, nb, na))
    }

    /// The proof of possession for this binding of `owner`, signed by `key`.
    async fn prove(&self, conn: &Conn, key: &CertKey, owner: alloy::primitives::Address) -> Result<[B256; 2]> {
        let (info, _, nb, na) = self.read(Some(key))?;
        let digest =
            chain::call(names(conn).certificateBindingDigest(self.name.clone(), owner, info.key_hash, nb, na)).await?;
        Ok(key.prove(digest)?)
    }
}

/// The name's owner as registered on chain.
async fn owner_of(conn: &Conn, name: &str) -> Result<alloy::primitives::Address> {
    let owner = chain::call(names(conn).nameRecord(name.to_owned())).await?.owner;
    if owner.is_zero() {
        bail!("{name} is not registered");
    }
    Ok(owner)
}

fn names(conn: &Conn) -> NameRegistry::NameRegistryInstance<&alloy::providers::DynProvider> {
    NameRegistry::new(conn.book.name_registry(), &conn.provider)
}

impl CertCmd {
    /// Runs the certificate subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Issue(a) => {
                validate_name(&a.name)?;
                let (cert, key) = iotegrity_core::tls::issue(&a.name, a.days)?;
                write_new(&a.key_out, key.as_bytes(), 0o600)?;
                write_new(&a.cert_out, cert.as_bytes(), 0o644)?;
                let info = CertInfo::from_pem(cert.as_bytes())?;
                Ok(Report::new(
                    format!(
                        "{} -> {} (key {}), valid {}..{}; its key hash {}",
                        info.subject,
                        a.cert_out.display(),
                        a.key_out.display(),
                        info.not_before,
                        info.not_after,
                        info.key_hash
                    ),
                    json!({ "name": a.name, "cert": a.cert_out, "key": a.key_out, "keyHash": info.key_hash,
                            "notBefore": info.not_before, "notAfter": info.not_after }),
                ))
            }
            Self::Add(a) => {
                let key = a.possession.key.as_ref().map(read_key).transpose()?;
                let (info, point, nb, na) = a.binding.read(key.as_ref())?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let name = a.binding.name.clone();
                let pop = match (&key, &a.possession.proof) {
                    (Some(key), _) => a.binding.prove(&conn, key, owner_of(&conn, &name).await?).await?,
                    (None, Some(proof)) if proof.len() == 64 => {
                        [B256::from_slice(&proof[..32]), B256::from_slice(&proof[32..])]
                    }
                    _ => bail!("--proof must be 64 bytes of hex: r ‖ s, as `iotegrity cert prove` prints it"),
                };
                let receipt = chain::send(names(&conn).addCertificate(name.clone(), point, nb, na, pop)).await?;
                Ok(Report::tx(
                    format!(
                        "certificate {} ({}) pinned to {name}, valid {nb}..{na}, possession proven",
                        info.key_hash, info.subject
                    ),
                    &receipt,
                    json!({ "name": name, "keyHash": info.key_hash, "subject": info.subject, "notBefore": nb, "notAfter": na }),
                ))
            }
            Self::Prove(a) => {
                let key = read_key(&a.key)?;
                let conn = a.chain.connect().await?;
                let owner = match a.owner {
                    Some(o) => o,
                    None => owner_of(&conn, &a.binding.name).await?,
                };
                let [r, s] = a.binding.prove(&conn, &key, owner).await?;
                let proof = alloy::primitives::Bytes::from([r.as_slice(), s.as_slice()].concat());
                Ok(Report::new(proof.to_string(), json!({ "name": a.binding.name, "owner": owner, "proof": proof })))
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
                let identity =
                    iotegrity_core::contracts::IdentityRegistry::new(conn.book.identity_registry(), &conn.provider);
                let owner = chain::call(r.nameRecord(a.name.clone())).await?.owner;
                let issuer_is_ca = chain::call(identity.activeRole(c.issuer)).await? == 6;
                let why = if c.nameHash.is_zero() {
                    "no such certificate is registered"
                } else if c.revoked {
                    "it was revoked"
                } else if c.issuer != owner && !issuer_is_ca {
                    "the CA that issued it is closed or no longer appointed"
                } else {
                    "it is for another name or owner, outside its validity window, or its owner's identity is closed"
                };
                Ok(Report::new(
                    format!("{}\n  {why}", report.text),
                    json!({ "name": a.name, "keyHash": hash, "valid": false, "reason": why }),
                )
                .negative())
            }
            Self::Rotate(a) => rotate(a).await,
            Self::Revoke(a) => {
                validate_name(&a.name)?;
                let hash = a.which.key_hash()?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let receipt = chain::send(names(&conn).revokeCertificate(a.name.clone(), hash)).await?;
                Ok(Report::tx(
                    format!("certificate {hash} of {} revoked", a.name),
                    &receipt,
                    json!({ "name": a.name, "keyHash": hash }),
                ))
            }
        }
    }
}

/// `cert rotate`: pin the next key, wait for the server to present it, retire the current one.
async fn rotate(a: RotateArgs) -> Result<Report> {
    use iotegrity_core::tls::{Resolved, connect};
    validate_name(&a.name)?;
    let key = read_key(&a.key)?;
    let binding = Binding { name: a.name.clone(), cert: a.cert.clone(), not_before: None, not_after: None };
    let (next, point, nb, na) = binding.read(Some(&key))?;
    let current = read_cert(&a.retire)?.key_hash;
    if current == next.key_hash {
        bail!("--cert and --retire are the same key");
    }
    let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
    let accepted = Resolved::now(&conn.provider, &conn.book, &a.name).await?.accepted;
    if !accepted.contains(&current) {
        bail!("{current} is not a key the chain accepts for {} now: nothing to roll over from (use cert add)", a.name);
    }
    let mut text = String::new();
    let mut txs = Vec::new();
    if accepted.contains(&next.key_hash) {
        text.push_str(&format!("next     {} already pinned to {}\n", next.key_hash, a.name));
    } else {
        let pop = binding.prove(&conn, &key, owner_of(&conn, &a.name).await?).await?;
        let receipt = chain::send(names(&conn).addCertificate(a.name.clone(), point, nb, na, pop)).await?;
        text.push_str(&format!(
            "next     {} pinned to {} beside {current} (tx {})\n",
            next.key_hash, a.name, receipt.transaction_hash
        ));
        txs.push(receipt.transaction_hash);
    }
    // Both pins hold now: every client accepts either key while the server switches.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(a.wait_secs);
    let timeout = std::time::Duration::from_secs(5);
    loop {
        let resolved = Resolved::now(&conn.provider, &conn.book, &a.name).await?;
        if let Ok((_, session)) = connect(&resolved, a.port, timeout).await
            && session.cert_key_hash == next.key_hash
        {
            text.push_str(&format!("switched {}:{} presents the next key\n", resolved.ip, a.port));
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "{} on port {} still does not present {} after {} s: the next key stays pinned, {current} is not retired \
                 (replace the server's certificate files, then run this again)",
                a.name,
                a.port,
                next.key_hash,
                a.wait_secs
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let receipt = chain::send(names(&conn).revokeCertificate(a.name.clone(), current)).await?;
    text.push_str(&format!("retired  {current} (tx {})", receipt.transaction_hash));
    txs.push(receipt.transaction_hash);
    Ok(Report::new(text, json!({ "name": a.name, "next": next.key_hash, "retired": current, "transactions": txs })))
}
