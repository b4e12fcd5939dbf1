//! `iotegrity name`: domain names on chain (paper §3.2.1) — register, resolve, show, update the
//! IP, set a backup account, and recover a name whose owner closed.

use crate::Report;
use crate::opts::{ChainOpts, Conn, WalletOpts};
use alloy::primitives::{Address, Bytes};
use clap::{Args, Subcommand};
use eyre::{Result, bail};
use iotegrity_core::chain;
use iotegrity_core::contracts::NameRegistry;
use iotegrity_core::names::{decode_ip, encode_ip, validate_name};
use serde_json::json;
use std::net::IpAddr;

/// Name commands. Transactions are sent by an OFFLINE key: the owner's in decentralized mode,
/// a CA's in quasi-centralized mode (with --owner).
#[derive(Debug, Subcommand)]
pub enum NameCmd {
    /// Register a name for an identity with its IP address.
    Register(RegisterArgs),
    /// Resolve a name to its IP address (fails if unknown or its owner is closed).
    Resolve(QueryArgs),
    /// Show everything stored about a name.
    Show(QueryArgs),
    /// Change the IP address of your name.
    UpdateIp(UpdateIpArgs),
    /// Name a backup offline account that can take the name over if you close (in effect after the
    /// registry's BACKUP_DELAY: 7 days).
    SetBackup(SetBackupArgs),
    /// (Backup) take over a name whose owner closed its identity.
    Recover(NameTxArgs),
}

/// `name register`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  iotegrity name register gateway.bit --ip 192.168.1.20 --keystore keys/gw/offline.json --password-file pw.txt\n  \
    iotegrity name register gw6.bit --ip 2001:db8::20 --owner 0xOwnerOffline --keystore keys/ca/offline.json ...  # as a CA"
)]
pub struct RegisterArgs {
    /// The name: lowercase DNS labels, e.g. gateway.bit.
    pub name: String,
    /// IPv4 or IPv6 address.
    #[arg(long)]
    pub ip: IpAddr,
    /// Owner's offline address [default: the sender].
    #[arg(long)]
    pub owner: Option<Address>,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// A read-only query about a name.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The name.
    pub name: String,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `name update-ip`.
#[derive(Debug, Args)]
pub struct UpdateIpArgs {
    /// The name.
    pub name: String,
    /// New IPv4 or IPv6 address.
    #[arg(long)]
    pub ip: IpAddr,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `name set-backup`.
#[derive(Debug, Args)]
pub struct SetBackupArgs {
    /// The name.
    pub name: String,
    /// Offline address of the backup identity (0x0 clears it).
    pub backup: Address,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// A transaction about a name.
#[derive(Debug, Args)]
pub struct NameTxArgs {
    /// The name.
    pub name: String,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

fn names(conn: &Conn) -> NameRegistry::NameRegistryInstance<&alloy::providers::DynProvider> {
    NameRegistry::new(conn.book.name_registry(), &conn.provider)
}

impl NameCmd {
    /// Runs the name subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Register(a) => {
                validate_name(&a.name)?;
                let signer = a.wallet.signer()?;
                let owner = a.owner.unwrap_or(signer.address());
                let conn = a.chain.connect_signing(signer).await?;
                let ip = Bytes::from(encode_ip(a.ip));
                let receipt = chain::send(names(&conn).submitDomainName(owner, a.name.clone(), ip)).await?;
                Ok(Report::tx(
                    format!("{} → {} registered for {owner}", a.name, a.ip),
                    &receipt,
                    json!({ "name": a.name, "ip": a.ip, "owner": owner }),
                ))
            }
            Self::Resolve(a) => {
                validate_name(&a.name)?;
                let conn = a.chain.connect().await?;
                let bytes: Bytes = chain::call(names(&conn).resolveAddress(a.name.clone())).await?;
                let Some(ip) = decode_ip(&bytes) else {
                    bail!("{} does not resolve: it is not registered, or its owner's identity is closed", a.name)
                };
                Ok(Report::new(ip.to_string(), json!({ "name": a.name, "ip": ip })))
            }
            Self::Show(a) => {
                validate_name(&a.name)?;
                let conn = a.chain.connect().await?;
                let r = names(&conn);
                let rec = chain::call(r.nameRecord(a.name.clone())).await?;
                if rec.owner.is_zero() {
                    bail!("{} is not registered", a.name);
                }
                let resolved: Bytes = chain::call(r.resolveAddress(a.name.clone())).await?;
                let ip = if rec.ipVersion == 4 { decode_ip(&rec.ip[..4]) } else { decode_ip(&rec.ip[..]) };
                let resolves = !resolved.is_empty();
                let now = chain::latest_timestamp(&conn.provider).await?;
                let shown = |a: Address| if a.is_zero() { "-".to_string() } else { a.to_string() };
                let pending = rec.backupSince > now;
                let backup = if pending {
                    format!(
                        "{} (from {}, {} s from now; until then {})",
                        shown(rec.backup),
                        rec.backupSince,
                        rec.backupSince - now,
                        shown(rec.previousBackup)
                    )
                } else {
                    shown(rec.backup)
                };
                let text = format!(
                    "name        {}\nowner       {}\nip          {}\nbackup      {backup}\nregistered  {}\nresolves    {}",
                    a.name,
                    rec.owner,
                    ip.map(|i| i.to_string()).unwrap_or_default(),
                    rec.registeredAt,
                    if resolves { "yes" } else { "no (owner closed)" }
                );
                let effective = if pending { rec.previousBackup } else { rec.backup };
                Ok(Report::new(
                    text,
                    json!({ "name": a.name, "owner": rec.owner, "ip": ip, "backup": effective,
                            "pendingBackup": pending.then_some(rec.backup), "pendingFrom": pending.then_some(rec.backupSince),
                            "registeredAt": rec.registeredAt, "resolves": resolves }),
                ))
            }
            Self::UpdateIp(a) => {
                validate_name(&a.name)?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let receipt =
                    chain::send(names(&conn).updateAddress(a.name.clone(), Bytes::from(encode_ip(a.ip)))).await?;
                Ok(Report::tx(format!("{} → {}", a.name, a.ip), &receipt, json!({ "name": a.name, "ip": a.ip })))
            }
            Self::SetBackup(a) => {
                validate_name(&a.name)?;
                let conn = a.chain.connect_signing(a.wallet.signer()?).await?;
                let receipt = chain::send(names(&conn).setBackup(a.name.clone(), a.backup)).await?;
                let delay = chain::call(names(&conn).BACKUP_DELAY()).await?;
                Ok(Report::tx(
                    format!(
                        "backup of {} will be {} in {delay} s (until then the backup in effect stays: if your offline key \
                         leaked, closing your identity now keeps it)",
                        a.name, a.backup
                    ),
                    &receipt,
                    json!({ "name": a.name, "backup": a.backup, "effectiveIn": delay.to::<u64>() }),
                ))
            }
            Self::Recover(a) => {
                validate_name(&a.name)?;
                let signer = a.wallet.signer()?;
                let me = signer.address();
                let conn = a.chain.connect_signing(signer).await?;
                let receipt = chain::send(names(&conn).recoverName(a.name.clone())).await?;
                Ok(Report::tx(
                    format!("{} now belongs to {me}", a.name),
                    &receipt,
                    json!({ "name": a.name, "owner": me }),
                ))
            }
        }
    }
}
