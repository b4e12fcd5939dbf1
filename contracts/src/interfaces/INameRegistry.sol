// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Domain names and certificates on chain (Oktian et al. 2020, §3.2.1–3.2.2)
/// @notice A name (lowercase DNS labels, e.g. `gateway.bit`) maps to its owner's offline address
/// and an IPv4 or IPv6 address. The registry runs in one of two modes fixed at deployment:
/// - QuasiCentralized: only an active CA identity submits names, for owners it checked off chain
///   (certificate transparency on chain);
/// - Decentralized: owners submit their own names; trust comes from vouching (web of trust).
///
/// A name resolves, and its certificates verify, only while its owner's identity is open: closing
/// the offline key (IdentityRegistry.closePublicKey) disables them without touching this contract.
/// The owner may name a backup offline account; if the owner's identity is closed, the backup
/// takes the name over with `recoverName` (the paper's remedy for a stolen offline key).
/// A backup change takes effect `BACKUP_DELAY` after it is made, and what counts is the backup in
/// effect *when the owner closed*: a thief of the offline key who names its own backup and closes
/// the identity gains nothing unless the real owner lets the whole delay pass without closing
/// first (the `BackupSet` event tells it); the backup in effect before stays the one who recovers.
///
/// A certificate is identified by `certKeyHash` = keccak256 of the DER SubjectPublicKeyInfo of
/// the certificate's public key, a P-256 key (the one kind of TLS key whose signature the chain
/// can check at a reasonable price); pinning it needs that key's signature of
/// `CertificateBinding(name, owner, certKeyHash, notBefore, notAfter)` (EIP-712, the
/// IdentityRegistry's domain), so nobody can pin a key they do not hold. A certificate is bound to
/// one name and its owner at registration, and a certificate a CA issued verifies only while that
/// CA is an open, appointed CA: it vouched for the owner, and its word ends with its role.
interface INameRegistry {
    /// @notice Who may submit names.
    enum Mode {
        QuasiCentralized,
        Decentralized
    }

    /// @notice A registered name. `ip` holds 4 (IPv4) or 16 (IPv6) bytes, left-aligned.
    struct Name {
        address owner; // offline address of the owner's identity
        uint8 ipVersion; // 4 or 6
        uint64 registeredAt;
        address backup; // offline address allowed to take over if the owner closes (or zero) ...
        uint64 backupSince; // ... from this time on; before it, `previousBackup` is
        address previousBackup;
        bytes16 ip;
    }

    /// @notice A certificate key registered for a name.
    struct Certificate {
        bytes32 nameHash; // keccak256(bytes(name))
        address owner; // name owner when registered: a name taken over drops old certificates
        uint64 notBefore;
        uint64 notAfter;
        bool revoked;
        address issuer; // who registered it (the owner, or a CA in QuasiCentralized mode)
    }

    // ---------------------------------------------------------------- errors

    /// @notice `name` is not lowercase DNS labels (1–63 of [a-z0-9-], no leading/trailing '-',
    /// dot-separated, at most 253 bytes).
    error Names_InvalidName(string name);
    /// @notice `ip` is neither 4 nor 16 bytes.
    error Names_InvalidIp();
    /// @notice The name is already registered.
    error Names_NameTaken(string name);
    /// @notice The name is not registered.
    error Names_UnknownName(string name);
    /// @notice The caller may not submit this name in this mode.
    error Names_NotAuthorized(address caller);
    /// @notice The identity of `offline` is not open.
    error Names_OwnerNotOpen(address offline);
    /// @notice The caller is not the name's owner.
    error Names_NotOwner(address caller);
    /// @notice The caller is not the name's backup, or the owner is still open.
    error Names_CannotRecover(address caller);
    /// @notice The certificate key hash is already registered (for any name).
    error Names_CertificateExists(bytes32 certKeyHash);
    /// @notice The certificate is not registered for this name.
    error Names_UnknownCertificate(bytes32 certKeyHash);
    /// @notice `notBefore` is not before `notAfter`.
    error Names_InvalidValidity(uint64 notBefore, uint64 notAfter);
    /// @notice The certificate was already revoked.
    error Names_AlreadyRevoked(bytes32 certKeyHash);
    /// @notice The proof of possession was not signed by the certificate key (P-256).
    error Names_BadProofOfPossession(bytes32 certKeyHash);

    // ---------------------------------------------------------------- events

    /// @notice A name was registered for `owner` by `submitter`.
    event DomainNameSubmitted(
        bytes32 indexed nameHash, string name, address indexed owner, address indexed submitter, bytes ip
    );
    /// @notice The IP address of a name changed.
    event AddressUpdated(bytes32 indexed nameHash, bytes ip);
    /// @notice The backup account of a name changes to `backup` at `effectiveAt`.
    event BackupSet(bytes32 indexed nameHash, address indexed backup, uint64 effectiveAt);
    /// @notice The backup took the name over from a closed owner.
    event NameRecovered(bytes32 indexed nameHash, address indexed oldOwner, address indexed newOwner);
    /// @notice A certificate key was registered for a name.
    event CertificateAdded(
        bytes32 indexed nameHash,
        bytes32 indexed certKeyHash,
        uint64 notBefore,
        uint64 notAfter,
        address issuer
    );
    /// @notice A certificate was revoked.
    event CertificateRevoked(bytes32 indexed nameHash, bytes32 indexed certKeyHash, address by);

    // ---------------------------------------------------------------- names

    /// @notice Registers `name` → (`offline`, `ip`). Decentralized mode: the sender must be `offline`.
    /// QuasiCentralized mode: the sender must be an active CA. `offline` must be an open identity.
    /// @param ip 4 bytes (IPv4) or 16 bytes (IPv6), network order
    function submitDomainName(address offline, string calldata name, bytes calldata ip) external;

    /// @notice The owner changes the name's IP address.
    function updateAddress(string calldata name, bytes calldata ip) external;

    /// @notice The owner sets (or clears, with zero) the backup offline account of a name; the
    /// change takes effect `BACKUP_DELAY` from now.
    function setBackup(string calldata name, address backup) external;

    /// @notice The backup in effect when the owner closed, itself an open identity, takes over the
    /// name.
    function recoverName(string calldata name) external;

    /// @notice The backup of `name` in effect at `timestamp`.
    function backupAt(string calldata name, uint256 timestamp) external view returns (address);

    /// @notice How long a backup change waits before it takes effect, in seconds.
    function BACKUP_DELAY() external view returns (uint256);

    /// @notice The IP address of `name` (4 or 16 bytes), or empty if unknown or its owner is closed.
    function resolveAddress(string calldata name) external view returns (bytes memory);

    /// @notice The record of `name` (zero owner if unknown).
    function nameRecord(string calldata name) external view returns (Name memory);

    // ---------------------------------------------------------------- certificates

    /// @notice Registers the P-256 certificate key `key` = (x, y) for `name`, valid in [notBefore,
    /// notAfter]. Sent by the name's owner, or in QuasiCentralized mode by an appointed CA. `pop` =
    /// (r, s), s in the lower half, is the key's signature of `certificateBindingDigest(...)`.
    function addCertificate(
        string calldata name,
        bytes32[2] calldata key,
        uint64 notBefore,
        uint64 notAfter,
        bytes32[2] calldata pop
    ) external;

    /// @notice Revokes a certificate of `name`. Sent by the name's owner or the certificate's issuer.
    function revokeCertificate(string calldata name, bytes32 certKeyHash) external;

    /// @notice True only if the certificate exists, is bound to `name` and its current owner, is not
    /// revoked, `block.timestamp` is inside its window, the owner's identity is open, and — if a CA
    /// issued it — that CA is still open and appointed.
    function verifyCertificate(string calldata name, bytes32 certKeyHash) external view returns (bool);

    /// @notice keccak256 of the DER SubjectPublicKeyInfo of the P-256 key (x, y), uncompressed.
    function p256KeyHash(bytes32 x, bytes32 y) external pure returns (bytes32);

    /// @notice The EIP-712 digest (IdentityRegistry's domain) of
    /// `CertificateBinding(string name,address owner,bytes32 certKeyHash,uint64 notBefore,uint64 notAfter)`
    /// that the certificate key signs to be pinned.
    function certificateBindingDigest(
        string calldata name,
        address owner,
        bytes32 certKeyHash,
        uint64 notBefore,
        uint64 notAfter
    ) external view returns (bytes32);

    /// @notice The stored certificate record (zero nameHash if unknown).
    function certificate(bytes32 certKeyHash) external view returns (Certificate memory);

    /// @notice The mode fixed at deployment.
    function mode() external view returns (Mode);
}
