//! Revert decoding: turns revert data from any iotegrity contract into the custom error's name,
//! its arguments, and the sentence from its NatSpec, e.g.
//! `Identity_NotActive(0x70997970…): The sender has no active identity.`

use crate::contracts::{ABIS, ERROR_NOTICES};
use alloy::dyn_abi::{DynSolValue, JsonAbiExt};
use alloy::json_abi::{Error as AbiError, JsonAbi};
use alloy::primitives::{Selector, hex};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A decoded revert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revert {
    /// The custom error's name, `Error` for `require` strings, `Panic` for panics.
    pub name: String,
    /// The arguments, formatted.
    pub args: Vec<String>,
    /// What it means, from the error's `@notice` (empty if none).
    pub explanation: String,
}

impl std::fmt::Display for Revert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name, self.args.join(", "))?;
        if !self.explanation.is_empty() {
            write!(f, ": {}", self.explanation)?;
        }
        Ok(())
    }
}

struct Catalogue {
    errors: HashMap<Selector, AbiError>,
    notices: HashMap<String, String>,
}

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let mut errors = HashMap::new();
        for (_, json) in ABIS {
            let artifact: serde_json::Value = serde_json::from_str(json).expect("artifact JSON is valid");
            let abi: JsonAbi = serde_json::from_value(artifact["abi"].clone()).expect("artifact ABI is valid");
            for error in abi.errors() {
                errors.insert(error.selector(), error.clone());
            }
        }
        let notices = serde_json::from_str(ERROR_NOTICES).expect("errors.json is valid");
        Catalogue { errors, notices }
    })
}

/// Decodes revert data. Unknown selectors come back as `unknown error 0x…`.
pub fn decode(data: &[u8]) -> Revert {
    let unknown =
        || Revert { name: format!("unknown error 0x{}", hex::encode(data)), args: vec![], explanation: String::new() };
    if data.len() < 4 {
        return if data.is_empty() {
            Revert { name: "revert".into(), args: vec![], explanation: "reverted without a reason".into() }
        } else {
            unknown()
        };
    }
    let selector = Selector::from_slice(&data[..4]);
    // Error(string) and Panic(uint256), from require() and checked arithmetic.
    if selector == Selector::from([0x08, 0xc3, 0x79, 0xa0])
        && let Ok(DynSolValue::String(s)) = alloy::dyn_abi::DynSolType::String.abi_decode(&data[4..])
    {
        return Revert { name: "Error".into(), args: vec![format!("{s:?}")], explanation: String::new() };
    }
    if selector == Selector::from([0x4e, 0x48, 0x7b, 0x71]) {
        let code = data.get(4..).map(hex::encode).unwrap_or_default();
        return Revert {
            name: "Panic".into(),
            args: vec![format!("0x{}", code.trim_start_matches('0'))],
            explanation: String::new(),
        };
    }
    let cat = catalogue();
    let Some(error) = cat.errors.get(&selector) else {
        return unknown();
    };
    let Ok(values) = error.abi_decode_input(&data[4..]) else {
        return unknown();
    };
    Revert {
        name: error.name.clone(),
        args: values.iter().map(format_value).collect(),
        explanation: cat.notices.get(&error.name).cloned().unwrap_or_default(),
    }
}

/// Formats an ABI value for people: checksummed addresses, decimal numbers, 0x-hex bytes.
pub fn format_value(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::FixedBytes(w, size) => format!("0x{}", hex::encode(&w[..*size])),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Array(v) | DynSolValue::FixedArray(v) | DynSolValue::Tuple(v) => {
            format!("[{}]", v.iter().map(format_value).collect::<Vec<_>>().join(", "))
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::IdentityRegistry::Identity_NotActive;
    use alloy::primitives::address;
    use alloy::sol_types::SolError;

    #[test]
    fn decodes_custom_error_with_its_notice() {
        let who = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
        let data = Identity_NotActive { offline: who }.abi_encode();
        let r = decode(&data);
        assert_eq!(r.name, "Identity_NotActive");
        assert_eq!(r.args, vec![who.to_checksum(None)]);
        assert_eq!(r.explanation, "The sender has no active identity.");
        assert_eq!(r.to_string(), format!("Identity_NotActive({who}): The sender has no active identity."));
    }

    #[test]
    fn every_iotegrity_error_has_a_notice() {
        let cat = catalogue();
        assert!(cat.errors.len() >= 40, "all three contracts' errors are known");
        // Library errors (OpenZeppelin's ShortStrings, ECDSA) decode by name only.
        let ours = ["Identity_", "Names_", "Reputation_", "Anchor_", "Credits_"];
        for e in cat.errors.values().filter(|e| ours.iter().any(|p| e.name.starts_with(p))) {
            assert!(cat.notices.get(&e.name).is_some_and(|n| !n.is_empty()), "{} has no @notice", e.name);
        }
    }

    #[test]
    fn unknown_and_empty_data() {
        assert_eq!(decode(&[]).name, "revert");
        assert!(decode(&[1, 2, 3, 4, 5]).name.starts_with("unknown error 0x0102030405"));
        let mut require = vec![0x08, 0xc3, 0x79, 0xa0];
        require.extend(alloy::dyn_abi::DynSolValue::String("NAME_MODE".into()).abi_encode());
        assert_eq!(decode(&require).to_string(), "Error(\"NAME_MODE\")");
    }
}
