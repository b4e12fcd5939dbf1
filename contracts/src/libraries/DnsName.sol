// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title DnsName
/// @notice Validation of lowercase DNS host names (RFC 1035 §2.3.1 with the RFC 1123 §2.1
/// relaxation that labels may start with a digit): dot-separated labels of 1–63 bytes from
/// [a-z0-9-], no label starting or ending with '-', at most 253 bytes in all, no trailing dot; and
/// so that no name can be mistaken for an address or an internationalised name:
/// - the top label is not all-numeric, nor a hex number `0x…` (RFC 1123 §2.1: "the highest-level
///   component label will be alphabetic"), so no name parses as an IPv4 address, in any of the
///   forms `inet_aton` accepts (`127.1`, `0x7f.0x1`); IPv6 literals hold ':' and are refused anyway;
/// - no label has '-' as its 3rd and 4th characters (RFC 5891 §4.2.3.1 reserves them): `xn--`
///   A-labels are refused, since checking their punycode on chain is not worth its gas.
library DnsName {
    /// @notice Longest name in presentation form.
    uint256 internal constant MAX_NAME = 253;
    /// @notice Longest label.
    uint256 internal constant MAX_LABEL = 63;

    /// @notice True iff `name` is a valid lowercase DNS host name. Loops at most MAX_NAME times.
    function isValid(string calldata name) internal pure returns (bool) {
        bytes calldata b = bytes(name);
        uint256 len = b.length;
        if (len == 0 || len > MAX_NAME) return false;
        uint256 labelLen = 0;
        bool digitsOnly = true; // the current label is all digits so far
        bool hexTail = true; // the current label is 0x followed by hex digits so far
        bytes1 prev = ".";
        for (uint256 i; i < len; ++i) {
            bytes1 c = b[i];
            if (c == ".") {
                if (labelLen == 0 || prev == "-") return false;
                (labelLen, digitsOnly, hexTail) = (0, true, true);
            } else {
                bool digit = c >= "0" && c <= "9";
                bool alnum = (c >= "a" && c <= "z") || digit;
                if (!alnum && (c != "-" || labelLen == 0)) return false;
                if (labelLen == 3 && c == "-" && prev == "-") return false; // "??--": reserved
                digitsOnly = digitsOnly && digit;
                hexTail = hexTail
                    && (labelLen == 0 ? c == "0" : labelLen == 1 ? c == "x" : digit || (c >= "a" && c <= "f"));
                if (++labelLen > MAX_LABEL) return false;
            }
            prev = c;
        }
        return labelLen != 0 && prev != "-" && !digitsOnly && !(hexTail && labelLen >= 2);
    }
}
