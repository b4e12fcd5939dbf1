//! The address book: where a deployment's contracts live on one chain. Written by
//! `iotegrity deploy` and by `contracts/script/Deploy.s.sol` (same format; docs/address-book.md).

use crate::{Error, Result};
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One deployment of the iotegrity contracts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressBook {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// `decentralized` or `quasi-centralized` (NameRegistry mode).
    pub name_mode: String,
    /// Block number at deployment (where event scans can start).
    pub deployed_block: u64,
    /// The governance that appoints and dismisses notaries and CAs.
    pub governance: Address,
    /// Where slashed stakes and struck deposits go.
    pub penalty_sink: Address,
    /// Every contract's address, by its key (`identityRegistry`, …: `contracts::CONTRACTS`), read
    /// through the accessors generated in `contracts.rs` (`book.identity_registry()`, …).
    #[serde(flatten)]
    pub contracts: BTreeMap<String, Address>,
}

impl AddressBook {
    /// Where the address book of `chain_id` lives by default: `anvil/deployments/<id>.json` in
    /// the project the current directory is in — the nearest ancestor holding `foundry.toml`, as
    /// forge finds its project — or under the current directory outside any project.
    pub fn default_path(chain_id: u64) -> PathBuf {
        let here = std::env::current_dir().unwrap_or_default();
        Self::default_path_from(&here, chain_id)
    }

    /// [`AddressBook::default_path`] as seen from `dir`.
    pub fn default_path_from(dir: &Path, chain_id: u64) -> PathBuf {
        let project = dir.ancestors().find(|d| d.join("foundry.toml").is_file());
        project.unwrap_or(Path::new("")).join("anvil/deployments").join(format!("{chain_id}.json"))
    }

    /// Reads an address book; it must name every contract of `contracts::CONTRACTS`.
    pub fn load(path: &Path) -> Result<Self> {
        let err = |source: crate::error::Cause| Error::AddressBook { path: path.to_owned(), source };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.into()))?;
        let book: Self = serde_json::from_str(&text).map_err(|e| err(e.into()))?;
        if let Some(&(contract, key)) =
            crate::contracts::CONTRACTS.iter().find(|(_, key)| !book.contracts.contains_key(*key))
        {
            return Err(Error::AddressBookIncomplete { path: path.to_owned(), key, contract });
        }
        Ok(book)
    }

    /// The address under `key` (one of `contracts::CONTRACTS`; [`AddressBook::load`] checked it).
    pub(crate) fn contract(&self, key: &str) -> Address {
        self.contracts.get(key).copied().unwrap_or_default()
    }

    /// Reads an address book and checks it belongs to `chain_id`.
    pub fn load_for_chain(path: &Path, chain_id: u64) -> Result<Self> {
        let book = Self::load(path)?;
        if book.chain_id != chain_id {
            return Err(Error::WrongChain { path: path.to_owned(), book: book.chain_id, rpc: chain_id });
        }
        Ok(book)
    }

    /// Writes the address book, creating its directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        let err = |source: crate::error::Cause| Error::AddressBook { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(e.into()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| err(e.into()))?;
        std::fs::write(path, text + "\n").map_err(|e| err(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_path_is_in_the_enclosing_project() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("daemon/src");
        std::fs::create_dir_all(&nested).unwrap();
        let outside = AddressBook::default_path_from(&nested, 31337);
        assert_eq!(outside, PathBuf::from("anvil/deployments/31337.json"), "no project: relative to the directory");
        std::fs::write(dir.path().join("foundry.toml"), "").unwrap();
        assert_eq!(
            AddressBook::default_path_from(&nested, 31337),
            dir.path().join("anvil/deployments/31337.json"),
            "found from a subdirectory, as forge finds its project"
        );
    }

    #[test]
    fn reads_what_forge_script_writes() {
        // Key order and number formatting as `vm.serializeX` produces them.
        let json = r#"{"chainId":31337,"deployedBlock":1,"governance":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "identityRegistry":"0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "jobMarket":"0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
            "nameMode":"decentralized","nameRegistry":"0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
            "penaltySink":"0x000000000000000000000000000000000000dEaD",
            "receiptAnchor":"0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
            "reputation":"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"}"#;
        let book: AddressBook = serde_json::from_str(json).unwrap();
        assert_eq!(book.chain_id, 31337);
        assert_eq!(book.name_mode, "decentralized");
        assert_eq!(book.receipt_anchor(), "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9".parse::<Address>().unwrap());
        assert_eq!(book.job_market(), "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9".parse::<Address>().unwrap());
    }

    #[test]
    fn wrong_chain_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.json");
        let book = AddressBook {
            chain_id: 1,
            name_mode: "decentralized".into(),
            deployed_block: 0,
            governance: Address::ZERO,
            penalty_sink: Address::ZERO,
            contracts: crate::contracts::CONTRACTS.iter().map(|(_, key)| (key.to_string(), Address::ZERO)).collect(),
        };
        book.save(&path).unwrap();
        assert_eq!(AddressBook::load(&path).unwrap(), book);
        assert!(matches!(AddressBook::load_for_chain(&path, 5), Err(Error::WrongChain { book: 1, rpc: 5, .. })));
        // A book that lacks a contract is refused by name.
        let mut partial = book.clone();
        partial.contracts.remove("receiptAnchor");
        partial.save(&path).unwrap();
        let err = AddressBook::load(&path).unwrap_err().to_string();
        assert!(err.contains("no receiptAnchor (ReceiptAnchor)"), "{err}");
    }
}
