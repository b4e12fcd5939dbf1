//! Command results: one value that prints as text for people or as JSON for scripts.

use alloy::primitives::{U256, utils::format_ether};
use serde_json::Value;

/// What a command produced.
#[derive(Debug)]
pub struct Report {
    /// Lines for people.
    pub text: String,
    /// The same facts for scripts.
    pub json: Value,
    /// False when the command ran but the answer is "no" (e.g. a certificate that does not
    /// verify): the process then exits 1 so shell scripts can branch on it.
    pub ok: bool,
}

impl Report {
    /// A successful report.
    pub fn new(text: impl Into<String>, json: Value) -> Self {
        Self { text: text.into(), json, ok: true }
    }

    /// The report of a transaction sent and mined, one shape for every sending command: `what`
    /// happened, then `tx <hash> (block N, gas G)`; in JSON, `extra`'s fields plus `tx`, `block`,
    /// `gasUsed`.
    pub fn tx(what: impl Into<String>, receipt: &alloy::rpc::types::TransactionReceipt, extra: Value) -> Self {
        let mut json = serde_json::json!({
            "tx": receipt.transaction_hash, "block": receipt.block_number, "gasUsed": receipt.gas_used,
        });
        if let (Some(obj), Value::Object(more)) = (json.as_object_mut(), extra) {
            obj.extend(more);
        }
        let text = format!(
            "{}\n  tx {} (block {}, gas {})",
            what.into(),
            receipt.transaction_hash,
            receipt.block_number.unwrap_or_default(),
            receipt.gas_used
        );
        Self::new(text, json)
    }

    /// A report whose answer is negative (exit code 1).
    pub fn negative(mut self) -> Self {
        self.ok = false;
        self
    }

    /// Prints to stdout.
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", self.json);
        } else {
            println!("{}", self.text);
        }
    }
}

/// Formats wei as ether without trailing zeros: `0.1`, `2`, `0.000000000000000001`.
pub fn ether(wei: U256) -> String {
    let s = format_ether(wei);
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ether_trims() {
        assert_eq!(ether(U256::from(10u128.pow(17))), "0.1");
        assert_eq!(ether(U256::from(2 * 10u128.pow(18))), "2");
        assert_eq!(ether(U256::from(1)), "0.000000000000000001");
        assert_eq!(ether(U256::ZERO), "0");
    }
}
