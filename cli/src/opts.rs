//! Option groups shared by the subcommands (RPC + address book, sending wallet, online key),
//! following cast's conventions, and the connection they build.

use alloy::primitives::{U256, utils::parse_units};
use alloy::providers::DynProvider;
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use eyre::{Context, Result, bail, eyre};
use iotegrity_core::{AddressBook, chain, keys};
use std::path::{Path, PathBuf};

/// Where the chain is.
#[derive(Debug, Clone, Args)]
pub struct RpcOpts {
    /// JSON-RPC endpoint of the chain.
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545", value_name = "URL")]
    pub rpc_url: String,
}

/// Where the chain is and which deployment to use.
#[derive(Debug, Clone, Args)]
pub struct ChainOpts {
    /// The endpoint.
    #[command(flatten)]
    pub rpc: RpcOpts,
    /// Address book of the deployment [default: anvil/deployments/<chain id>.json in the project
    /// around the current directory (the nearest one with foundry.toml), else under it].
    #[arg(long, env = "IOTEGRITY_DEPLOYMENTS", value_name = "FILE")]
    pub deployments: Option<PathBuf>,
}

/// A client certificate for servers that let in only named clients (mutual TLS): its key pinned
/// under the client's own name (`iotegrity cert issue`, `cert add`).
#[derive(Debug, Clone, Args)]
pub struct ClientCertOpts {
    /// The client's certificate (PEM), with `--tls-key`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ClientCertOpts {
    /// The certificate, if given.
    pub fn load(&self) -> Result<Option<std::sync::Arc<iotegrity_core::tls::ReloadingCert>>> {
        Ok(iotegrity_core::tls::ReloadingCert::open_pair(self.tls_cert.as_deref(), self.tls_key.as_deref())?)
    }
}

/// A watched table and the database holding it and its receipts.
#[derive(Debug, Clone, Args)]
pub struct TableOpts {
    /// Postgres URL of the database holding the table and the receipts.
    #[arg(long, env = "IOTEGRITY_DATABASE_URL", value_name = "URL")]
    pub db: String,
    /// The table, `schema.table`.
    #[arg(long)]
    pub table: String,
    /// Its increasing integer key column.
    #[arg(long, default_value = "id")]
    pub key: String,
}

impl TableOpts {
    /// The validated table and a pool with the canonical session settings.
    pub async fn open(&self) -> Result<(iotegrity_core::store::TableRef, sqlx::PgPool)> {
        let table = iotegrity_core::store::TableRef::new(&self.table, &self.key).map_err(|e| eyre!(e))?;
        // Three connections: an audit reads the receipts, the row count and the rows at once.
        let pool = iotegrity_core::store::connect(&self.db, 3).await.wrap_err("cannot connect to Postgres")?;
        Ok((table, pool))
    }
}

/// The key that signs transactions (for identities: the OFFLINE key).
#[derive(Debug, Clone, Args)]
pub struct WalletOpts {
    /// Raw private key (hex). Prefer a keystore: command lines end up in shell history.
    #[arg(long, env = "IOTEGRITY_PRIVATE_KEY", value_name = "HEX", hide_env_values = true)]
    pub private_key: Option<String>,
    /// Encrypted JSON keystore file.
    #[arg(long, env = "ETH_KEYSTORE", value_name = "FILE")]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password (first line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Keystore password.
    #[arg(long, env = "ETH_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

/// The ONLINE key being bound to an identity (it signs the proof of possession, never a transaction).
#[derive(Debug, Clone, Args)]
pub struct OnlineKeyOpts {
    /// Keystore of the online key.
    #[arg(long, value_name = "FILE", required_unless_present = "online_private_key")]
    pub online_keystore: Option<PathBuf>,
    /// Password file of the online keystore [default: the same as --password-file/--password].
    #[arg(long, value_name = "FILE")]
    pub online_password_file: Option<PathBuf>,
    /// Raw online private key (hex).
    #[arg(long, value_name = "HEX", hide_env_values = true)]
    pub online_private_key: Option<String>,
}

/// A connection to the chain with the deployment's address book.
pub struct Conn {
    /// The provider (with a wallet when built by `connect_signing`).
    pub provider: DynProvider,
    /// Where the contracts are.
    pub book: AddressBook,
    /// The chain id.
    pub chain_id: u64,
}

impl ChainOpts {
    /// Connects read-only.
    pub async fn connect(&self) -> Result<Conn> {
        self.finish(chain::reader(&self.rpc.rpc_url)?).await
    }

    /// Connects with a wallet that signs transactions.
    pub async fn connect_signing(&self, signer: PrivateKeySigner) -> Result<Conn> {
        self.finish(chain::writer(&self.rpc.rpc_url, signer)?).await
    }

    async fn finish(&self, provider: DynProvider) -> Result<Conn> {
        let chain_id =
            chain::chain_id(&provider).await.wrap_err_with(|| format!("cannot reach {}", self.rpc.rpc_url))?;
        let path = self.deployments.clone().unwrap_or_else(|| AddressBook::default_path(chain_id));
        let book = AddressBook::load_for_chain(&path, chain_id)?;
        Ok(Conn { provider, book, chain_id })
    }
}

impl WalletOpts {
    /// The signer, or an error listing every way to give one.
    pub fn signer(&self) -> Result<PrivateKeySigner> {
        if let Some(hex) = &self.private_key {
            return parse_private_key(hex);
        }
        if let Some(path) = &self.keystore {
            let password = read_password(self.password_file.as_deref(), self.password.as_deref())?;
            return Ok(keys::open_keystore(path, &password)?);
        }
        bail!(
            "no key to sign with: pass --keystore FILE with --password-file FILE (or --password / ETH_PASSWORD), \
             or --private-key HEX (or IOTEGRITY_PRIVATE_KEY), or set ETH_KEYSTORE"
        )
    }

    /// The password given for the wallet's keystore, if any.
    pub fn password(&self) -> Result<Option<String>> {
        match (&self.password_file, &self.password) {
            (None, None) => Ok(None),
            (file, pw) => read_password(file.as_deref(), pw.as_deref()).map(Some),
        }
    }
}

impl OnlineKeyOpts {
    /// The online signer; its keystore password defaults to the wallet's.
    pub fn signer(&self, wallet: &WalletOpts) -> Result<PrivateKeySigner> {
        if let Some(hex) = &self.online_private_key {
            return parse_private_key(hex);
        }
        let path = self
            .online_keystore
            .as_ref()
            .ok_or_else(|| eyre!("pass --online-keystore FILE or --online-private-key HEX"))?;
        let password = match &self.online_password_file {
            Some(file) => read_password(Some(file), None)?,
            None => wallet
                .password()?
                .ok_or_else(|| eyre!("no password for {}: pass --online-password-file", path.display()))?,
        };
        Ok(keys::open_keystore(path, &password)?)
    }
}

/// Parses a hex private key, with or without 0x.
pub fn parse_private_key(hex: &str) -> Result<PrivateKeySigner> {
    hex.trim().parse::<PrivateKeySigner>().map_err(|_| eyre!("malformed private key: expected 32 bytes of hex"))
}

/// Reads a password from a file (first line) or takes the given one.
pub fn read_password(file: Option<&Path>, password: Option<&str>) -> Result<String> {
    if let Some(file) = file {
        let text =
            std::fs::read_to_string(file).wrap_err_with(|| format!("cannot read password file {}", file.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_owned());
    }
    password
        .map(str::to_owned)
        .ok_or_else(|| eyre!("no password: pass --password-file FILE or --password (ETH_PASSWORD)"))
}

/// A penalty's recorded reason: a 32-byte hash given as 0x-hex (of an evidence file, say), or any
/// other text, which is hashed with keccak256 (keep the text: the chain holds only its hash).
pub fn parse_reason(reason: &str) -> Result<alloy::primitives::B256> {
    let reason = reason.trim();
    if reason.is_empty() {
        bail!("a slash or strike needs a reason: --reason TEXT (hashed) or --reason 0x<32-byte hash>");
    }
    Ok(reason.parse().unwrap_or_else(|_| alloy::primitives::keccak256(reason.as_bytes())))
}

/// Parses an amount like cast: `1ether`, `0.5ether`, `10gwei`, `1000wei` or `1000` (wei).
pub fn parse_amount(s: &str) -> Result<U256> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = if unit.is_empty() { "wei" } else { unit };
    let value = parse_units(number, unit)
        .map_err(|e| eyre!("bad amount {s:?}: {e} (try 0.1ether, 10gwei or a number of wei)"))?;
    Ok(value.get_absolute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("1ether").unwrap(), U256::from(10u128.pow(18)));
        assert_eq!(parse_amount("0.5ether").unwrap(), U256::from(5 * 10u128.pow(17)));
        assert_eq!(parse_amount("10gwei").unwrap(), U256::from(10u128.pow(10)));
        assert_eq!(parse_amount("42").unwrap(), U256::from(42));
        assert!(parse_amount("lots").is_err());
        assert!(parse_amount("1parsec").is_err());
    }

    #[test]
    fn reasons() {
        let h = "0x1111111111111111111111111111111111111111111111111111111111111111";
        assert_eq!(parse_reason(h).unwrap().to_string(), h);
        assert_eq!(parse_reason("double signing").unwrap(), alloy::primitives::keccak256("double signing"));
        assert!(parse_reason("  ").is_err());
    }

    #[test]
    fn private_keys() {
        assert!(parse_private_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80").is_ok());
        assert!(parse_private_key("0x1234").is_err());
    }
}
