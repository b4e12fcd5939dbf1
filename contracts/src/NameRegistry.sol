// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {INameRegistry} from "./interfaces/INameRegistry.sol";
import {DnsName} from "./libraries/DnsName.sol";
import {P256} from "@openzeppelin/contracts/utils/cryptography/P256.sol";

/// @title NameRegistry
/// @notice Domain names, IP addresses and certificate keys bound to identities. See {INameRegistry}.
contract NameRegistry is INameRegistry {
    using DnsName for string;

    // ---------------------------------------------------------------- constants

    /// @inheritdoc INameRegistry
    uint256 public constant BACKUP_DELAY = 7 days;
    /// @notice EIP-712 type of the certificate key's proof of possession.
    bytes32 public constant CERTIFICATE_BINDING_TYPEHASH = keccak256(
        "CertificateBinding(string name,address owner,bytes32 certKeyHash,uint64 notBefore,uint64 notAfter)"
    );
    /// @dev DER of SubjectPublicKeyInfo{id-ecPublicKey, prime256v1} up to the uncompressed point.
    bytes private constant P256_SPKI_PREFIX = hex"3059301306072a8648ce3d020106082a8648ce3d03010703420004";

    // ---------------------------------------------------------------- storage

    /// @notice The identity registry that says who is open and who is a CA.
    IIdentityRegistry public immutable IDENTITY;
    Mode private immutable _MODE;

    mapping(bytes32 nameHash => Name) private _names;
    mapping(bytes32 certKeyHash => Certificate) private _certs;

    // ---------------------------------------------------------------- constructor

    /// @param identity the IdentityRegistry
    /// @param mode_ QuasiCentralized (CAs submit names) or Decentralized (owners submit their own)
    constructor(IIdentityRegistry identity, Mode mode_) {
        IDENTITY = identity;
        _MODE = mode_;
    }

    // ---------------------------------------------------------------- names

    /// @inheritdoc INameRegistry
    function submitDomainName(address offline, string calldata name, bytes calldata ip) external {
        if (_MODE == Mode.Decentralized ? msg.sender != offline : !_isCa(msg.sender)) {
            revert Names_NotAuthorized(msg.sender);
        }
        if (!name.isValid()) revert Names_InvalidName(name);
        (bytes16 packed, uint8 version) = _packIp(ip);
        if (!IDENTITY.isOpen(offline)) revert Names_OwnerNotOpen(offline);
        bytes32 nameHash = keccak256(bytes(name));
        Name storage n = _names[nameHash];
        if (n.owner != address(0)) revert Names_NameTaken(name);

        n.owner = offline;
        n.ipVersion = version;
        n.registeredAt = uint64(block.timestamp);
        n.ip = packed;
        emit DomainNameSubmitted(nameHash, name, offline, msg.sender, ip);
    }

    /// @inheritdoc INameRegistry
    function updateAddress(string calldata name, bytes calldata ip) external {
        (bytes32 nameHash, Name storage n) = _ownedName(name);
        (n.ip, n.ipVersion) = _packIp(ip);
        emit AddressUpdated(nameHash, ip);
    }

    /// @inheritdoc INameRegistry
    function setBackup(string calldata name, address backup) external {
        (bytes32 nameHash, Name storage n) = _ownedName(name);
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit uint64 for 584 billion years
        uint64 effectiveAt = uint64(block.timestamp + BACKUP_DELAY);
        n.previousBackup = _backupAt(n, block.timestamp);
        n.backup = backup;
        n.backupSince = effectiveAt;
        emit BackupSet(nameHash, backup, effectiveAt);
    }

    /// @inheritdoc INameRegistry
    function recoverName(string calldata name) external {
        (bytes32 nameHash, Name storage n) = _knownName(name);
        address old = n.owner;
        IIdentityRegistry.Identity memory owner = IDENTITY.identityOf(old);
        // The owner's closing time is its identity's last update (closing is irrevocable).
        if (
            owner.status != IIdentityRegistry.Status.Closed || _backupAt(n, owner.updatedAt) != msg.sender
                || msg.sender == address(0) || !IDENTITY.isOpen(msg.sender)
        ) {
            revert Names_CannotRecover(msg.sender);
        }
        n.owner = msg.sender;
        (n.backup, n.previousBackup, n.backupSince) = (address(0), address(0), 0);
        emit NameRecovered(nameHash, old, msg.sender);
    }

    /// @inheritdoc INameRegistry
    function backupAt(string calldata name, uint256 timestamp) external view returns (address) {
        return _backupAt(_names[keccak256(bytes(name))], timestamp);
    }

    /// @inheritdoc INameRegistry
    function resolveAddress(string calldata name) external view returns (bytes memory) {
        Name storage n = _names[keccak256(bytes(name))];
        address owner = n.owner;
        if (owner == address(0) || !IDENTITY.isOpen(owner)) return "";
        return _unpackIp(n.ip, n.ipVersion);
    }

    /// @inheritdoc INameRegistry
    function nameRecord(string calldata name) external view returns (Name memory) {
        return _names[keccak256(bytes(name))];
    }

    // ---------------------------------------------------------------- certificates

    /// @inheritdoc INameRegistry
    function addCertificate(
        string calldata name,
        bytes32[2] calldata key,
        uint64 notBefore,
        uint64 notAfter,
        bytes32[2] calldata pop
    ) external {
        (bytes32 nameHash, Name storage n) = _knownName(name);
        address owner = n.owner;
        if (msg.sender != owner && !(_MODE == Mode.QuasiCentralized && _isCa(msg.sender))) {
            revert Names_NotAuthorized(msg.sender);
        }
        if (!IDENTITY.isOpen(owner)) revert Names_OwnerNotOpen(owner);
        if (notBefore >= notAfter) revert Names_InvalidValidity(notBefore, notAfter);
        bytes32 certKeyHash = p256KeyHash(key[0], key[1]);
        Certificate storage c = _certs[certKeyHash];
        if (c.nameHash != bytes32(0)) revert Names_CertificateExists(certKeyHash);
        bytes32 digest = certificateBindingDigest(name, owner, certKeyHash, notBefore, notAfter);
        if (!P256.verify(digest, pop[0], pop[1], key[0], key[1])) {
            revert Names_BadProofOfPossession(certKeyHash);
        }

        _certs[certKeyHash] = Certificate({
            nameHash: nameHash,
            owner: owner,
            notBefore: notBefore,
            notAfter: notAfter,
            revoked: false,
            issuer: msg.sender
        });
        emit CertificateAdded(nameHash, certKeyHash, notBefore, notAfter, msg.sender);
    }

    /// @inheritdoc INameRegistry
    function revokeCertificate(string calldata name, bytes32 certKeyHash) external {
        (bytes32 nameHash, Name storage n) = _knownName(name);
        Certificate storage c = _certs[certKeyHash];
        if (c.nameHash != nameHash) revert Names_UnknownCertificate(certKeyHash);
        if (msg.sender != n.owner && msg.sender != c.issuer) revert Names_NotAuthorized(msg.sender);
        if (c.revoked) revert Names_AlreadyRevoked(certKeyHash);
        c.revoked = true;
        emit CertificateRevoked(nameHash, certKeyHash, msg.sender);
    }

    /// @inheritdoc INameRegistry
    function verifyCertificate(string calldata name, bytes32 certKeyHash) external view returns (bool) {
        bytes32 nameHash = keccak256(bytes(name));
        Certificate storage c = _certs[certKeyHash];
        address owner = _names[nameHash].owner;
        return c.nameHash == nameHash && nameHash != bytes32(0) && owner != address(0) && c.owner == owner
            && !c.revoked && block.timestamp >= c.notBefore && block.timestamp <= c.notAfter
            && IDENTITY.isOpen(owner) && (c.issuer == owner || _isCa(c.issuer));
    }

    /// @inheritdoc INameRegistry
    function p256KeyHash(bytes32 x, bytes32 y) public pure returns (bytes32) {
        return keccak256(abi.encodePacked(P256_SPKI_PREFIX, x, y));
    }

    /// @inheritdoc INameRegistry
    function certificateBindingDigest(
        string calldata name,
        address owner,
        bytes32 certKeyHash,
        uint64 notBefore,
        uint64 notAfter
    ) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                CERTIFICATE_BINDING_TYPEHASH, keccak256(bytes(name)), owner, certKeyHash, notBefore, notAfter
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", IDENTITY.domainSeparator(), structHash));
    }

    /// @inheritdoc INameRegistry
    function certificate(bytes32 certKeyHash) external view returns (Certificate memory) {
        return _certs[certKeyHash];
    }

    /// @inheritdoc INameRegistry
    function mode() external view returns (Mode) {
        return _MODE;
    }

    // ---------------------------------------------------------------- internal

    /// @dev The backup of `n` in effect at `timestamp`.
    function _backupAt(Name storage n, uint256 timestamp) private view returns (address) {
        return timestamp >= n.backupSince ? n.backup : n.previousBackup;
    }

    function _isCa(address account) private view returns (bool) {
        return IDENTITY.activeRole(account) == IIdentityRegistry.Role.CA;
    }

    function _knownName(string calldata name) private view returns (bytes32 nameHash, Name storage n) {
        nameHash = keccak256(bytes(name));
        n = _names[nameHash];
        if (n.owner == address(0)) revert Names_UnknownName(name);
    }

    /// @dev A registered name whose owner is the sender and is open.
    function _ownedName(string calldata name) private view returns (bytes32 nameHash, Name storage n) {
        (nameHash, n) = _knownName(name);
        if (n.owner != msg.sender) revert Names_NotOwner(msg.sender);
        if (!IDENTITY.isOpen(msg.sender)) revert Names_OwnerNotOpen(msg.sender);
    }

    function _packIp(bytes calldata ip) private pure returns (bytes16 packed, uint8 version) {
        // forge-lint: disable-next-line(unsafe-typecast) -- length checked: exactly 4 bytes, left-aligned in 16
        if (ip.length == 4) return (bytes16(bytes4(ip)), 4);
        // forge-lint: disable-next-line(unsafe-typecast) -- length checked: exactly 16 bytes
        if (ip.length == 16) return (bytes16(ip), 6);
        revert Names_InvalidIp();
    }

    function _unpackIp(bytes16 ip, uint8 version) private pure returns (bytes memory) {
        // forge-lint: disable-next-line(unsafe-typecast) -- version 4 keeps its address in the first 4 bytes
        return version == 4 ? abi.encodePacked(bytes4(ip)) : abi.encodePacked(ip);
    }
}
