//! What both roles read from disk the same way: a TOML config file, and the password of an
//! encrypted keystore (the environment variable `IOTEGRITYD_PASSWORD` wins over a password file).

use eyre::{Result, WrapErr, bail};
use std::path::Path;

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
