//! What the roles read from disk the same way: a TOML config file, its `[chain]` section for
//! the roles that only need an RPC URL and an address book, and the password of an encrypted
//! keystore (the environment variable `IOTEGRITYD_PASSWORD` wins over a password file).

use eyre::{Result, WrapErr, bail};
use std::path::{Path, PathBuf};

/// `[chain]` of the worker and learner configs.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// JSON-RPC endpoint. Default `http://127.0.0.1:8545`.
    #[serde(default = "default_rpc")]
    pub rpc_url: String,
    /// Address book of the deployment.
    pub deployments: PathBuf,
}

fn default_rpc() -> String {
    "http://127.0.0.1:8545".into()
}

/// Reads and parses a TOML config; unknown keys are errors (every config type denies them).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).wrap_err_with(|| format!("invalid config {}", path.display()))
}

/// The keystore password: `IOTEGRITYD_PASSWORD`, else the first line of `file`. `setting` names
/// the config key for the error when neither is there.
pub fn keystore_password(file: Option<&Path>, setting: &str) -> Result<String> {
    if let Ok(pw) = std::env::var("IOTEGRITYD_PASSWORD") {
        return Ok(pw);
    }
    let Some(file) = file else { bail!("no keystore password: set {setting} or IOTEGRITYD_PASSWORD") };
    let text = std::fs::read_to_string(file).wrap_err_with(|| format!("cannot read {}", file.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The role's online key: env `IOTEGRITYD_PRIVATE_KEY` (hex), else the keystore at `keystore`
/// (its password as [`keystore_password`] reads it). `section` names the config section for errors.
pub fn online_key(
    keystore: Option<&Path>,
    password_file: Option<&Path>,
    section: &str,
) -> Result<alloy::signers::local::PrivateKeySigner> {
    if let Ok(hex) = std::env::var("IOTEGRITYD_PRIVATE_KEY") {
        return hex.trim().parse().map_err(|_| eyre::eyre!("IOTEGRITYD_PRIVATE_KEY is not a 32-byte hex key"));
    }
    let path = keystore.ok_or_else(|| eyre::eyre!("set {section}.keystore or IOTEGRITYD_PRIVATE_KEY"))?;
    let password = keystore_password(password_file, &format!("{section}.password_file"))?;
    Ok(iotegrity_core::keys::open_keystore(path, &password)?)
}

/// Writes `bytes` to `path` atomically (a temporary file, fsynced, renamed over it, the directory
/// fsynced): after a crash the file is the old one or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).wrap_err_with(|| format!("cannot write {}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
