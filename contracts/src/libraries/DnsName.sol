// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title DnsName
/// @notice Validation of lowercase DNS names (RFC 1035 §2.3.1 with the RFC 1123 relaxation that
/// labels may start with a digit): dot-separated labels of 1–63 bytes from [a-z0-9-], no label
/// starting or ending with '-', at most 253 bytes in all, no trailing dot.
library DnsName {
    /// @notice Longest name in presentation form.
    uint256 internal constant MAX_NAME = 253;
    /// @notice Longest label.
    uint256 internal constant MAX_LABEL = 63;

    /// @notice True iff `name` is a valid lowercase DNS name. Loops at most MAX_NAME times.
    function isValid(string calldata name) internal pure returns (bool) {
        bytes calldata b = bytes(name);
        uint256 len = b.length;
        if (len == 0 || len > MAX_NAME) return false;
        uint256 labelLen = 0;
        bytes1 prev = ".";
        for (uint256 i; i < len; ++i) {
            bytes1 c = b[i];
            if (c == ".") {
                if (labelLen == 0 || prev == "-") return false;
                labelLen = 0;
            } else {
                bool alnum = (c >= "a" && c <= "z") || (c >= "0" && c <= "9");
                if (!alnum && (c != "-" || labelLen == 0)) return false;
                if (++labelLen > MAX_LABEL) return false;
            }
            prev = c;
        }
        return labelLen != 0 && prev != "-";
    }
}
