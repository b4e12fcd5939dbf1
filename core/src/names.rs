//! Domain names and IP addresses as the NameRegistry stores them. The name rules mirror
//! `contracts/src/libraries/DnsName.sol` so the CLI refuses bad input before sending anything.

use crate::{Error, Result};
use std::net::IpAddr;

/// Checks that `name` is a lowercase DNS host name as the contract accepts it: 1–63 bytes of
/// `[a-z0-9-]` per label, not starting or ending with `-`, dot-separated, at most 253 bytes, no
/// trailing dot; no label with `-` as its 3rd and 4th characters (reserved by RFC 5891: `xn--`
/// IDN labels are refused); a top label neither all-numeric nor a `0x` hex number (RFC 1123 §2.1:
/// no name may read as an IPv4 address).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidName { name: name.to_owned(), reason });
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 253 {
        return bad("it is longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("it has an empty label (leading, trailing or double dot)");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 bytes");
        }
        if !label.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
            return bad("labels may hold only a-z, 0-9 and '-' (lowercase)");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label starts or ends with '-'");
        }
        if label.get(2..4) == Some("--") {
            return bad(
                "labels with '-' as 3rd and 4th characters are reserved (RFC 5891): xn-- IDN labels are not accepted",
            );
        }
    }
    let top = name.rsplit('.').next().unwrap_or(name);
    if top.bytes().all(|c| c.is_ascii_digit()) {
        return bad("the top label is all-numeric: the name would read as an IP address (RFC 1123)");
    }
    if top.strip_prefix("0x").is_some_and(|hex| hex.bytes().all(|c| c.is_ascii_hexdigit())) {
        return bad("the top label is a hex number: the name would read as an IP address");
    }
    Ok(())
}

/// The bytes the NameRegistry stores for an IP: 4 for IPv4, 16 for IPv6, network order.
pub fn encode_ip(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The IP in stored bytes; `None` for anything but 4 or 16 bytes (an empty result means the name
/// does not resolve).
pub fn decode_ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for n in [
            "gateway.bit",
            "a",
            "0x.bit",
            "1.2.3.bit",
            "ab-c--d.bit",
            "io.0xg",
            "my-gw.iot.bit",
            &format!("{}.bit", "a".repeat(63)),
        ] {
            validate_name(n).unwrap_or_else(|e| panic!("{n}: {e}"));
        }
    }

    #[test]
    fn rejects_invalid_names() {
        let long_label = format!("{}.bit", "a".repeat(64));
        let long_name = ["abcdefghij"; 26].join(".");
        for n in [
            "",
            "Gateway.bit",
            "-gw.bit",
            "gw-.bit",
            "gw..bit",
            "gw.bit.",
            ".gw",
            "gw_1.bit",
            "gw bit",
            &long_label,
            &long_name,
            "192.168.0.1",
            "127.1",
            "0x7f.0x1",
            "gw.123",
            "xn--bcher-kva.bit",
            "ab--cd.bit",
            "0x",
        ] {
            assert!(validate_name(n).is_err(), "{n:?} should be rejected");
        }
    }

    #[test]
    fn ip_round_trip() {
        for ip in ["192.168.0.1", "2001:db8::1", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(decode_ip(&encode_ip(ip)), Some(ip));
        }
        assert_eq!(encode_ip("10.0.0.1".parse().unwrap()), vec![10, 0, 0, 1]);
        assert_eq!(decode_ip(&[]), None);
        assert_eq!(decode_ip(&[1, 2, 3]), None);
    }
}
