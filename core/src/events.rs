//! Events of the iotegrity contracts, decoded from any log by the contracts' own ABIs: the event's
//! name and its fields in declaration order, each with its Solidity type and its value formatted
//! for people (checksummed addresses, decimal numbers, 0x-hex words). What the explorer indexes
//! and shows (docs/explorer.md); one catalogue, built once from `contracts::ABIS`.

use crate::contracts::ABIS;
use crate::revert::format_value;
use alloy::dyn_abi::EventExt;
use alloy::json_abi::{Event, JsonAbi};
use alloy::primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// One field of a decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// Its name in the contract's source, e.g. `offline`.
    pub name: String,
    /// Its Solidity type, e.g. `address` (an indexed `string` or `bytes` is its keccak256: `bytes32`).
    #[serde(rename = "type")]
    pub ty: String,
    /// Its value, formatted by [`format_value`].
    pub value: String,
}

impl Field {
    /// The value as an address, if the field is one.
    pub fn address(&self) -> Option<Address> {
        (self.ty == "address").then(|| self.value.parse().ok()).flatten()
    }

    /// The value as a 32-byte word, if the field is a `bytes32`.
    pub fn word(&self) -> Option<B256> {
        (self.ty == "bytes32").then(|| self.value.parse().ok()).flatten()
    }

    /// The value as an unsigned number, if the field is a `uint…`.
    pub fn uint(&self) -> Option<U256> {
        self.ty.starts_with("uint").then(|| self.value.parse().ok()).flatten()
    }
}

/// A log of one of the contracts, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decoded {
    /// The contract that emitted it, as `contracts/manifest.json` names it.
    pub contract: String,
    /// The event's name, e.g. `PublicKeySubmitted`.
    pub event: String,
    /// Its fields, in declaration order.
    pub fields: Vec<Field>,
}

impl Decoded {
    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Every contract's events, by (contract, topic 0).
fn catalogue() -> &'static HashMap<(&'static str, B256), Event> {
    static CATALOGUE: OnceLock<HashMap<(&'static str, B256), Event>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let mut events = HashMap::new();
        for (contract, json) in ABIS {
            let artifact: serde_json::Value = serde_json::from_str(json).expect("artifact JSON is valid");
            let abi: JsonAbi = serde_json::from_value(artifact["abi"].clone()).expect("artifact ABI is valid");
            for event in abi.events() {
                events.insert((*contract, event.selector()), event.clone());
            }
        }
        events
    })
}

/// Decodes a log that `contract` emitted; `None` for an event its ABI does not declare, or data
/// that does not decode as it.
pub fn decode(contract: &str, topics: &[B256], data: &[u8]) -> Option<Decoded> {
    let name = ABIS.iter().map(|(c, _)| *c).find(|c| *c == contract)?;
    let event = catalogue().get(&(name, *topics.first()?))?;
    let values = event.decode_log_parts(topics.iter().copied(), data).ok()?;
    let (mut indexed, mut body) = (values.indexed.into_iter(), values.body.into_iter());
    let fields = event
        .inputs
        .iter()
        .map(|input| {
            let (value, ty) = if input.indexed {
                let dynamic = matches!(input.ty.as_str(), "string" | "bytes") || input.ty.ends_with(']');
                (indexed.next()?, if dynamic { "bytes32".to_string() } else { input.ty.clone() })
            } else {
                (body.next()?, input.ty.clone())
            };
            Some(Field { name: input.name.clone(), ty, value: format_value(&value) })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Decoded { contract: name.to_string(), event: event.name.clone(), fields })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::{IdentityRegistry, NameRegistry, ReceiptAnchor};
    use alloy::primitives::{Bytes, address, keccak256};
    use alloy::sol_types::SolEvent;

    fn parts(e: &impl SolEvent) -> (Vec<B256>, Vec<u8>) {
        let log = e.encode_log_data();
        (log.topics().to_vec(), log.data.to_vec())
    }

    #[test]
    fn a_log_decodes_into_its_named_fields_in_declaration_order() {
        let (offline, online) = (
            address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
            address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        );
        let event =
            IdentityRegistry::PublicKeySubmitted { offline, online, role: 3, r#pub: Bytes::from(vec![4u8; 65]) };
        let (topics, data) = parts(&event);
        let d = decode("IdentityRegistry", &topics, &data).unwrap();
        assert_eq!((d.contract.as_str(), d.event.as_str()), ("IdentityRegistry", "PublicKeySubmitted"));
        let names: Vec<&str> = d.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["offline", "online", "role", "pub"]);
        assert_eq!(d.field("offline").unwrap().address(), Some(offline));
        assert_eq!(d.field("online").unwrap().value, online.to_checksum(None));
        assert_eq!(d.field("role").unwrap().value, "3");
        assert_eq!(d.field("role").unwrap().address(), None, "not an address");
        // The same topic under another contract's name is not that contract's event.
        assert_eq!(decode("NameRegistry", &topics, &data), None);
        // Data cut short does not decode.
        assert_eq!(decode("IdentityRegistry", &topics, &data[..10]), None);
    }

    #[test]
    fn indexed_words_numbers_and_strings_are_typed() {
        let name = "svc.iot";
        let event = NameRegistry::DomainNameSubmitted {
            nameHash: keccak256(name),
            name: name.into(),
            owner: Address::repeat_byte(1),
            submitter: Address::repeat_byte(2),
            ip: Bytes::from(vec![127, 0, 0, 1]),
        };
        let (topics, data) = parts(&event);
        let d = decode("NameRegistry", &topics, &data).unwrap();
        assert_eq!(d.field("nameHash").unwrap().word(), Some(keccak256(name)));
        assert_eq!(d.field("name").unwrap().value, "\"svc.iot\"");
        assert_eq!(d.field("ip").unwrap().value, "0x7f000001");
        let anchored = ReceiptAnchor::RootHashStored {
            tableId: B256::repeat_byte(7),
            owner: Address::repeat_byte(3),
            anchoredRoot: B256::repeat_byte(8),
            root: B256::repeat_byte(9),
            firstKey: -5,
            lastKey: 40,
            m: 20,
            n: 4,
        };
        let (topics, data) = parts(&anchored);
        let d = decode("ReceiptAnchor", &topics, &data).unwrap();
        assert_eq!(d.field("firstKey").unwrap().value, "-5");
        assert_eq!(d.field("m").unwrap().uint(), Some(U256::from(20)));
        assert_eq!(d.field("anchoredRoot").unwrap().word(), Some(B256::repeat_byte(8)));
        // Every event of every contract is in the catalogue.
        assert!(catalogue().len() >= 40, "{}", catalogue().len());
    }
}
