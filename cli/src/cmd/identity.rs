//! `iotegrity identity`: two-key identities (paper §3.2.1) — key generation, registration,
//! rotation of the online key, irrevocable closing, the staked web of trust, and the governance's
//! appointment of notaries and CAs.

use crate::Report;
use crate::opts::{ChainOpts, Conn, OnlineKeyOpts, WalletOpts, parse_amount, parse_reason, read_password};
use crate::output::ether;
use alloy::primitives::{Address, U256};
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use eyre::{Result, bail};
use iotegrity_core::contracts::{IdentityRegistry, Role};
use iotegrity_core::{chain, keys};
use serde_json::json;
use std::path::PathBuf;

/// The roles the governance appoints (before the identity registers with them): they act on others.
const APPOINTED: [Role; 2] = [Role::Notary, Role::CA];

/// `--role`: the name of one of `roles` (the contract's enum, as `Role::name` spells it).
fn role_parser(roles: &'static [Role]) -> impl clap::builder::TypedValueParser<Value = Role> {
    clap::builder::PossibleValuesParser::new(roles.iter().map(|r| r.name()))
        .map(|name| name.parse::<Role>().expect("a listed role parses"))
}

/// Identity commands. Transactions are sent by the OFFLINE key (--keystore / --private-key);
/// the ONLINE key only signs the proof that it agrees to be bound.
#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Create an offline and an online key as encrypted keystores (offline.json, online.json).
    Keygen(KeygenArgs),
    /// Register the offline key's identity with an online key and a role.
    Register(RegisterArgs),
    /// Replace the online key (the old one is invalid at once).
    Update(UpdateArgs),
    /// Close the identity for good: its names and certificates stop verifying.
    Close(CloseArgs),
    /// Show the identity of an offline or online address.
    Show(ShowArgs),
    /// Stake ether on another identity's online key (web of trust).
    Vouch(ValueTargetArgs),
    /// Add an incentive shared by the vouchers of your online key.
    Incentive(ValueArgs),
    /// Withdraw your stake on a key (after the lock, or once the key is inactive), with incentives.
    Withdraw(TargetArgs),
    /// Claim the incentives you earned by vouching for a key.
    Claim(TargetArgs),
    /// Take back an incentive nobody staked for, once your old key is inactive.
    Reclaim(TargetArgs),
    /// (Notary) slash a voucher's stake on a fraudulent key, with a reason; it goes to the penalty sink.
    Slash(SlashArgs),
    /// Withdraw ether credited to you (the penalty sink's slashed stakes).
    WithdrawCredit(TxArgs),
    /// (Governance) appoint an offline address as notary or CA, before it registers with that role.
    Appoint(AppointArgs),
    /// (Governance) end an appointment: the identity stays open, its role confers no power.
    Dismiss(DismissArgs),
}

/// `identity keygen`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  echo 'correct horse' > pw.txt\n  iotegrity identity keygen --dir keys/gw --password-file pw.txt\n\n\
    Keep offline.json on a separate, safer machine: it is needed only to register, update or close."
)]
pub struct KeygenArgs {
    /// Directory to write offline.json and online.json into (created; existing files are never overwritten).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// File holding the password that encrypts both keystores.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The password itself.
    #[arg(long, env = "ETH_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

/// A transaction with no further arguments.
#[derive(Debug, Args)]
pub struct TxArgs {
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
    /// Key that sends the transaction.
    #[command(flatten)]
    pub wallet: WalletOpts,
}

/// `identity register`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity identity register --role gateway --keystore keys/gw/offline.json \\\n    \
    --online-keystore keys/gw/online.json --password-file pw.txt"
)]
pub struct RegisterArgs {
    /// The entity's role: device (a sensor, a meter), gateway (countersigns and forwards
    /// readings), service (stores data, anchors receipts), worker (trains models), notary or ca
    /// (appointed by the governance first).
    #[arg(long, value_parser = role_parser(&Role::ALL))]
    pub role: Role,
    /// The online key to bind.
    #[command(flatten)]
    pub online: OnlineKeyOpts,
    /// Chain and sending key.
    #[command(flatten)]
    pub tx: TxArgs,
}

/// `identity update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The online key to bind.
    #[command(flatten)]
    pub online: OnlineKeyOpts,
    /// Chain and sending key.
    #[command(flatten)]
    pub tx: TxArgs,
}

/// `identity close`.
#[derive(Debug, Args)]
pub struct CloseArgs {
    /// Confirm: closing is irrevocable; the offline address can never register again.
    #[arg(long)]
    pub yes: bool,
    /// Chain and sending key.
    #[command(flatten)]
    pub tx: TxArgs,
}

/// `identity show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// An offline or online address.
    pub address: Address,
    /// Chain and deployment.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// A transaction about one online key.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The online address.
    pub online: Address,
    /// Chain and sending key.
    #[command(flatten)]
    pub tx: TxArgs,
}

/// A payment about one online key.
#[derive(Debug, Args)]
pub struct ValueTargetArgs {
    /// The online address to vouch for.
    pub online: Address,
    /// Stake, e.g. 0.1ether.
    #[arg(long, value_name = "AMOUNT")]
    pub value: String,
    /// Chain and sending key.
    #[command(flatten)]
    pub tx: TxArgs,
}

/// A payment.
#[derive(Debug, Args)]
pub struct ValueArgs {
    /// Amount, e.g. 0.1ether.
    #[arg(long, value_name = "AMOUNT")]
    pub value: String,
    /// Chain and sending key.
    #[command(flatten)]
    pub tx: TxArgs,
}

/// `identity slash`.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  iotegrity identity slash 0x<key> 0x<voucher offline> --reason \"vouched for a key that signed forged readings\" \\\n        --keystore keys/notary/offline.json --password-file pw.txt\n\n\
    The stake goes to the penalty sink fixed at deployment (burnt by default), never to the notary;\n\
    a notary cannot slash its own stake."
)]
pub struct SlashArgs {
    /// The key that was vouched for.
    pub online: Address,
    /// The voucher whose stake is slashed (an offline address).
    pub voucher: Address,
    /// Why: text (its keccak256 is recorded on chain; keep the text) or a 0x 32-byte evidence hash.
    #[arg(long)]
    pub reason: String,
    /// Chain and sending key.
    #[command(flatten)]
    pub tx: TxArgs,
}

/// `identity appoint`.
#[derive(Debug, Args)]
#[command(after_help = "Example (the governance key named at deployment):\n  \
    iotegrity identity appoint 0x<notary offline> --role notary --private-key 0x<governance key>\n  \
    iotegrity identity register --role notary --keystore keys/notary/offline.json ...   # then, by the notary")]
pub struct AppointArgs {
    /// The offline address to appoint.
    pub offline: Address,
    /// The role: notary (slashes stakes, strikes votes; penalties go to the sink) or ca (submits
    /// names for owners it checked and pins their certificates, in quasi-centralized mode).
    #[arg(long, value_parser = role_parser(&APPOINTED))]
    pub role: Role,
    /// Chain and sending key (the governance's).
    #[command(flatten)]
    pub tx: TxArgs,
}

/// `identity dismiss`.
#[derive(Debug, Args)]
pub struct DismissArgs {
    /// The offline address to dismiss.
    pub offline: Address,
    /// Chain and sending key (the governance's).
    #[command(flatten)]
    pub tx: TxArgs,
}

impl TxArgs {
    async fn connect(&self) -> Result<Conn> {
        self.chain.connect_signing(self.wallet.signer()?).await
    }
}

fn registry(conn: &Conn) -> IdentityRegistry::IdentityRegistryInstance<&alloy::providers::DynProvider> {
    IdentityRegistry::new(conn.book.identity_registry(), &conn.provider)
}

/// Sends a registry call about one online key; `what` has a `{}` where the key goes.
async fn about_online_key<P, D>(call: alloy::contract::CallBuilder<P, D>, online: Address, what: &str) -> Result<Report>
where
    P: alloy::providers::Provider,
    D: alloy::contract::CallDecoder,
{
    let receipt = chain::send(call).await?;
    Ok(Report::tx(what.replace("{}", &online.to_string()), &receipt, json!({ "online": online })))
}

impl IdentityCmd {
    /// Runs the identity subcommand.
    pub async fn run(self) -> Result<Report> {
        match self {
            Self::Keygen(a) => {
                let password = read_password(a.password_file.as_deref(), a.password.as_deref())?;
                for f in ["offline.json", "online.json"] {
                    if a.dir.join(f).exists() {
                        bail!("{} exists; refusing to overwrite a key", a.dir.join(f).display());
                    }
                }
                let offline = keys::new_keystore(&a.dir, "offline.json", &password)?;
                let online = keys::new_keystore(&a.dir, "online.json", &password)?;
                let text = format!(
                    "offline {}  {}\nonline  {}  {}\nKeep offline.json off the device: it only registers, updates and closes.",
                    offline.address(),
                    a.dir.join("offline.json").display(),
                    online.address(),
                    a.dir.join("online.json").display()
                );
                Ok(Report::new(
                    text,
                    json!({ "offline": offline.address(), "online": online.address(),
                            "offlineKeystore": a.dir.join("offline.json"), "onlineKeystore": a.dir.join("online.json") }),
                ))
            }
            Self::Register(a) => {
                let online = a.online.signer(&a.tx.wallet)?;
                let conn = a.tx.connect().await?;
                let offline = a.tx.wallet.signer()?.address();
                let pop = keys::key_binding_signature(
                    &online,
                    offline,
                    &keys::domain(conn.chain_id, conn.book.identity_registry()),
                )?;
                let registry = registry(&conn);
                let receipt = chain::send(registry.submitPublicKey(
                    online.address(),
                    keys::public_key(&online),
                    pop,
                    a.role.into(),
                ))
                .await?;
                Ok(Report::tx(
                    format!("registered {offline} as {} with online key {}", a.role, online.address()),
                    &receipt,
                    json!({ "offline": offline, "online": online.address(), "role": a.role.name() }),
                ))
            }
            Self::Update(a) => {
                let online = a.online.signer(&a.tx.wallet)?;
                let conn = a.tx.connect().await?;
                let offline = a.tx.wallet.signer()?.address();
                let pop = keys::key_binding_signature(
                    &online,
                    offline,
                    &keys::domain(conn.chain_id, conn.book.identity_registry()),
                )?;
                let receipt =
                    chain::send(registry(&conn).updatePublicKey(online.address(), keys::public_key(&online), pop))
                        .await?;
                Ok(Report::tx(
                    format!("online key of {offline} is now {} (the old key is invalid)", online.address()),
                    &receipt,
                    json!({ "offline": offline, "online": online.address() }),
                ))
            }
            Self::Close(a) => {
                if !a.yes {
                    bail!(
                        "closing an identity is irrevocable (its names and certificates stop verifying, the offline key can never register again); pass --yes to confirm"
                    );
                }
                let conn = a.tx.connect().await?;
                let offline = a.tx.wallet.signer()?.address();
                let receipt = chain::send(registry(&conn).closePublicKey()).await?;
                Ok(Report::tx(format!("identity {offline} closed for good"), &receipt, json!({ "offline": offline })))
            }
            Self::Show(a) => show(a).await,
            Self::Vouch(a) => {
                let value = parse_amount(&a.value)?;
                let conn = a.tx.connect().await?;
                let r = registry(&conn);
                let receipt = chain::send(r.vouchKey(a.online).value(value)).await?;
                let trust: U256 = chain::call(r.trustLevel(a.online)).await?;
                Ok(Report::tx(
                    format!("vouched {} ETH for {} (trust level now {} ETH)", ether(value), a.online, ether(trust)),
                    &receipt,
                    json!({ "online": a.online, "stake": value.to_string(), "trustLevel": trust.to_string() }),
                ))
            }
            Self::Incentive(a) => {
                let value = parse_amount(&a.value)?;
                let conn = a.tx.connect().await?;
                let receipt = chain::send(registry(&conn).addIncentive().value(value)).await?;
                Ok(Report::tx(
                    format!("added {} ETH of incentive for your vouchers", ether(value)),
                    &receipt,
                    json!({ "incentive": value.to_string() }),
                ))
            }
            Self::Withdraw(a) => {
                let conn = a.tx.connect().await?;
                about_online_key(
                    registry(&conn).withdrawStake(a.online),
                    a.online,
                    "withdrew your stake on {} and its incentives",
                )
                .await
            }
            Self::Claim(a) => {
                let conn = a.tx.connect().await?;
                about_online_key(registry(&conn).claimIncentive(a.online), a.online, "claimed your incentives on {}")
                    .await
            }
            Self::Reclaim(a) => {
                let conn = a.tx.connect().await?;
                about_online_key(
                    registry(&conn).reclaimIncentive(a.online),
                    a.online,
                    "took back the unclaimed incentive of {}",
                )
                .await
            }
            Self::Slash(a) => {
                let reason = parse_reason(&a.reason)?;
                let conn = a.tx.connect().await?;
                let receipt = chain::send(registry(&conn).slashStake(a.online, a.voucher, reason)).await?;
                Ok(Report::tx(
                    format!(
                        "slashed {}'s stake on {} (reason {reason}); it went to the penalty sink {}",
                        a.voucher, a.online, conn.book.penalty_sink
                    ),
                    &receipt,
                    json!({ "online": a.online, "voucher": a.voucher, "reason": reason, "sink": conn.book.penalty_sink }),
                ))
            }
            Self::Appoint(a) => {
                let conn = a.tx.connect().await?;
                let receipt = chain::send(registry(&conn).appoint(a.offline, a.role.into())).await?;
                let role = a.role.name();
                Ok(Report::tx(
                    format!("appointed {} as {role}: it may now register (or act) with that role", a.offline),
                    &receipt,
                    json!({ "offline": a.offline, "role": role }),
                ))
            }
            Self::Dismiss(a) => {
                let conn = a.tx.connect().await?;
                let receipt = chain::send(registry(&conn).dismiss(a.offline)).await?;
                Ok(Report::tx(
                    format!("dismissed {}: its role confers no power from now on", a.offline),
                    &receipt,
                    json!({ "offline": a.offline }),
                ))
            }
            Self::WithdrawCredit(a) => {
                let conn = a.connect().await?;
                let receipt = chain::send(registry(&conn).withdrawCredit()).await?;
                Ok(Report::tx("withdrew your credit", &receipt, json!({})))
            }
        }
    }
}

async fn show(a: ShowArgs) -> Result<Report> {
    let conn = a.chain.connect().await?;
    let r = registry(&conn);
    let owner: Address = chain::call(r.offlineOf(a.address)).await?;
    let offline = if owner.is_zero() { a.address } else { owner };
    let id = chain::call(r.identityOf(offline)).await?;
    if id.status == 0 {
        bail!("{} has no identity: it is neither a registered offline address nor an online key", a.address);
    }
    let active: bool = chain::call(r.isActive(id.online)).await?;
    let trust: U256 = chain::call(r.trustLevel(id.online)).await?;
    let acting = chain::call(r.activeRole(offline)).await?;
    let (role, acting) = (Role::from_u8(id.role), Role::from_u8(acting));
    let role_text = match (APPOINTED.contains(&role), acting == role) {
        (false, _) => role.to_string(),
        (true, true) => format!("{role} (appointed)"),
        (true, false) => format!("{role} (NOT appointed: no power over others)"),
    };
    let superseded = !owner.is_zero() && id.online != a.address;
    let text = format!(
        "offline  {offline}\nonline   {}{}\nrole     {}\nstatus   {}\nactive   {active}\ntrust    {} ETH staked\nupdated  {}",
        id.online,
        if superseded { format!("  ({} is an old key of this identity: invalid)", a.address) } else { String::new() },
        role_text,
        iotegrity_core::registry_cache::status_name(id.status),
        ether(trust),
        id.updatedAt
    );
    Ok(Report::new(
        text,
        json!({ "offline": offline, "online": id.online, "role": role.name(), "status": iotegrity_core::registry_cache::status_name(id.status),
                "actingRole": acting.name(), "active": active, "trustLevel": trust.to_string(), "updatedAt": id.updatedAt,
                "queriedKeySuperseded": superseded }),
    ))
}
