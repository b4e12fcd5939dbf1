// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {Credits} from "./base/Credits.sol";

/// @title IdentityRegistry
/// @notice Two-key identities with a staked web of trust. See {IIdentityRegistry}.
contract IdentityRegistry is IIdentityRegistry, Credits, EIP712 {
    // ---------------------------------------------------------------- types

    /// @dev Stake bookkeeping per online key. The incentive accumulator follows the usual
    /// reward-per-share pattern so that no call loops over vouchers.
    struct KeyStakes {
        uint128 totalStake; // sum of vouchers' stakes
        uint128 unallocated; // incentive added while totalStake was zero
        uint256 incentiveHeld; // incentive allocated to vouchers and not yet paid out
        uint256 accPerStake; // incentive per wei of stake, scaled by ACC_SCALE
    }

    /// @dev One voucher's stake on one key. Incentive amounts are kept scaled by ACC_SCALE so
    /// that rounding never pays out more than was allocated.
    struct Stake {
        uint128 amount;
        uint64 lockedUntil;
        uint256 debtScaled; // amount * accPerStake at the last settlement
        uint256 earnedScaled; // settled, unclaimed incentive, scaled
    }

    // ---------------------------------------------------------------- constants

    /// @notice EIP-712 type of the proof of possession signed by the online key.
    bytes32 public constant KEY_BINDING_TYPEHASH = keccak256("KeyBinding(address offline,address online)");
    /// @notice A stake can be withdrawn this long after the voucher's last vouch on an active key.
    uint256 public constant STAKE_LOCK = 30 days;
    /// @notice Smallest vouch; keeps the incentive accumulator far from overflow.
    uint256 public constant MIN_STAKE = 1e12;
    /// @dev Fixed-point scale of `accPerStake`.
    uint256 private constant ACC_SCALE = 1e18;

    // ---------------------------------------------------------------- storage

    mapping(address offline => Identity) private _identities;
    mapping(address online => address offline) private _offlineOf;
    mapping(address online => KeyStakes) private _keyStakes;
    mapping(address online => mapping(address voucher => Stake)) private _stakes;
    mapping(address offline => Role) private _appointed;

    /// @inheritdoc IIdentityRegistry
    address public immutable GOVERNANCE;
    /// @inheritdoc IIdentityRegistry
    address public immutable PENALTY_SINK;

    // ---------------------------------------------------------------- constructor

    /// @param governance appoints and dismisses Notaries and CAs (a multisig contract in production)
    /// @param penaltySink receives slashed stakes (0x…dEaD burns them: nobody can withdraw)
    constructor(address governance, address penaltySink) EIP712("iotegrity", "1") {
        if (governance == address(0) || penaltySink == address(0)) revert Identity_ZeroAddress();
        GOVERNANCE = governance;
        PENALTY_SINK = penaltySink;
    }

    // ---------------------------------------------------------------- identity lifecycle

    /// @inheritdoc IIdentityRegistry
    function submitPublicKey(address online, bytes calldata pub, bytes calldata popSig, Role role) external {
        if (role == Role.None) revert Identity_InvalidRole();
        if (_isAppointedRole(role) && _appointed[msg.sender] != role) {
            revert Identity_NotAppointed(msg.sender, role);
        }
        if (_identities[msg.sender].status != Status.None || _offlineOf[msg.sender] != address(0)) {
            revert Identity_AlreadyRegistered(msg.sender);
        }
        _checkNewKey(msg.sender, online, pub, popSig);

        _identities[msg.sender] =
            Identity({online: online, role: role, status: Status.Active, updatedAt: uint64(block.timestamp)});
        _offlineOf[online] = msg.sender;
        emit PublicKeySubmitted(msg.sender, online, role, pub);
    }

    /// @inheritdoc IIdentityRegistry
    function updatePublicKey(address online, bytes calldata pub, bytes calldata popSig) external {
        Identity storage id = _activeIdentity(msg.sender);
        _checkNewKey(msg.sender, online, pub, popSig);

        address old = id.online;
        id.online = online;
        id.updatedAt = uint64(block.timestamp);
        _offlineOf[online] = msg.sender;
        emit PublicKeyUpdated(msg.sender, old, online, pub);
    }

    /// @inheritdoc IIdentityRegistry
    function closePublicKey() external {
        Identity storage id = _activeIdentity(msg.sender);
        id.status = Status.Closed;
        id.updatedAt = uint64(block.timestamp);
        emit PublicKeyClosed(msg.sender, id.online);
    }

    // ---------------------------------------------------------------- web of trust

    /// @inheritdoc IIdentityRegistry
    function addIncentive() external payable {
        if (msg.value == 0) revert Identity_ZeroValue();
        address online = _activeIdentity(msg.sender).online;
        KeyStakes storage ks = _keyStakes[online];
        _receive(msg.value);
        if (ks.totalStake == 0) {
            ks.unallocated += uint128(msg.value);
        } else {
            _allocate(ks, msg.value);
        }
        emit IncentiveAdded(online, msg.value);
    }

    /// @inheritdoc IIdentityRegistry
    function vouchKey(address online) external payable {
        if (msg.value < MIN_STAKE) revert Identity_ZeroValue();
        _activeIdentity(msg.sender);
        if (!isActive(online)) revert Identity_KeyNotActive(online);
        if (_offlineOf[online] == msg.sender) revert Identity_SelfVouch();

        KeyStakes storage ks = _keyStakes[online];
        Stake storage st = _stakes[online][msg.sender];
        _settle(ks, st);
        st.amount += uint128(msg.value);
        // forge-lint: disable-next-line(unsafe-typecast) -- timestamps fit uint64 for 584 billion years
        st.lockedUntil = uint64(block.timestamp + STAKE_LOCK);
        st.debtScaled = uint256(st.amount) * ks.accPerStake;
        ks.totalStake += uint128(msg.value);
        _receive(msg.value);
        uint256 waiting = ks.unallocated;
        if (waiting != 0) {
            ks.unallocated = 0;
            _allocate(ks, waiting);
        }
        emit KeyVouched(online, msg.sender, msg.value, st.amount);
    }

    /// @inheritdoc IIdentityRegistry
    function withdrawStake(address online) external {
        KeyStakes storage ks = _keyStakes[online];
        Stake storage st = _stakes[online][msg.sender];
        uint256 amount = st.amount;
        if (amount == 0) revert Identity_NothingToWithdraw();
        if (isActive(online) && block.timestamp < st.lockedUntil) {
            revert Identity_StakeLocked(st.lockedUntil);
        }

        _settle(ks, st);
        uint256 incentive = _takeEarned(ks, st);
        st.amount = 0;
        st.debtScaled = 0;
        // forge-lint: disable-next-line(unsafe-typecast) -- amount was read from a uint128 field
        ks.totalStake -= uint128(amount);
        emit StakeWithdrawn(online, msg.sender, amount);
        if (incentive != 0) emit IncentiveClaimed(online, msg.sender, incentive);
        _pay(msg.sender, amount + incentive);
    }

    /// @inheritdoc IIdentityRegistry
    function claimIncentive(address online) external {
        KeyStakes storage ks = _keyStakes[online];
        Stake storage st = _stakes[online][msg.sender];
        _settle(ks, st);
        uint256 incentive = _takeEarned(ks, st);
        if (incentive == 0) revert Identity_NothingToWithdraw();
        emit IncentiveClaimed(online, msg.sender, incentive);
        _pay(msg.sender, incentive);
    }

    /// @inheritdoc IIdentityRegistry
    function reclaimIncentive(address online) external {
        if (_offlineOf[online] != msg.sender) revert Identity_NotKeyOwner(online);
        if (isActive(online)) revert Identity_KeyStillActive(online);
        KeyStakes storage ks = _keyStakes[online];
        uint256 amount = ks.unallocated;
        if (amount == 0) revert Identity_NothingToWithdraw();
        ks.unallocated = 0;
        emit IncentiveReclaimed(online, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    /// @inheritdoc IIdentityRegistry
    function slashStake(address online, address voucher, bytes32 reason) external {
        if (activeRole(msg.sender) != Role.Notary) revert Identity_NotNotary(msg.sender);
        if (voucher == msg.sender) revert Identity_SelfSlash();
        if (reason == bytes32(0)) revert Identity_NoReason();
        KeyStakes storage ks = _keyStakes[online];
        Stake storage st = _stakes[online][voucher];
        uint256 amount = st.amount;
        if (amount == 0) revert Identity_NothingToWithdraw();

        _settle(ks, st); // incentives already earned stay the voucher's
        st.amount = 0;
        st.debtScaled = 0;
        // forge-lint: disable-next-line(unsafe-typecast) -- amount was read from a uint128 field
        ks.totalStake -= uint128(amount);
        _credit(PENALTY_SINK, amount);
        emit StakeSlashed(online, voucher, msg.sender, amount, reason);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IIdentityRegistry
    function appoint(address offline, Role role) external {
        if (msg.sender != GOVERNANCE) revert Identity_NotGovernance(msg.sender);
        if (!_isAppointedRole(role)) revert Identity_NotAnAppointedRole(role);
        _appointed[offline] = role;
        emit RoleAppointed(offline, role);
    }

    /// @inheritdoc IIdentityRegistry
    function dismiss(address offline) external {
        if (msg.sender != GOVERNANCE) revert Identity_NotGovernance(msg.sender);
        Role role = _appointed[offline];
        if (role == Role.None) revert Identity_NotAppointed(offline, role);
        _appointed[offline] = Role.None;
        emit RoleDismissed(offline, role);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IIdentityRegistry
    function identityOf(address offline) external view returns (Identity memory) {
        return _identities[offline];
    }

    /// @inheritdoc IIdentityRegistry
    function offlineOf(address online) external view returns (address) {
        return _offlineOf[online];
    }

    /// @inheritdoc IIdentityRegistry
    function isActive(address online) public view returns (bool) {
        Identity storage id = _identities[_offlineOf[online]];
        return id.status == Status.Active && id.online == online && online != address(0);
    }

    /// @inheritdoc IIdentityRegistry
    function isOpen(address offline) external view returns (bool) {
        // slither-disable-next-line incorrect-equality -- an enum comparison, not a balance
        return _identities[offline].status == Status.Active;
    }

    /// @inheritdoc IIdentityRegistry
    function activeRole(address offline) public view returns (Role) {
        Identity storage id = _identities[offline];
        if (id.status != Status.Active) return Role.None;
        Role role = id.role;
        return _isAppointedRole(role) && _appointed[offline] != role ? Role.None : role;
    }

    /// @inheritdoc IIdentityRegistry
    function appointedRole(address offline) external view returns (Role) {
        return _appointed[offline];
    }

    /// @inheritdoc IIdentityRegistry
    function activeIdentityOf(address online) external view returns (address offline, Role role) {
        offline = _offlineOf[online];
        if (_identities[offline].online != online || online == address(0)) return (address(0), Role.None);
        role = activeRole(offline); // None for a closed identity, or a Notary/CA no longer appointed
        if (role == Role.None) offline = address(0);
    }

    /// @inheritdoc IIdentityRegistry
    function trustLevel(address online) external view returns (uint256) {
        return isActive(online) ? _keyStakes[online].totalStake : 0;
    }

    /// @inheritdoc IIdentityRegistry
    function stakeOf(address online, address voucher) external view returns (uint256) {
        return _stakes[online][voucher].amount;
    }

    /// @inheritdoc IIdentityRegistry
    function pendingIncentive(address online, address voucher) external view returns (uint256) {
        Stake storage st = _stakes[online][voucher];
        uint256 earned = st.earnedScaled + uint256(st.amount) * _keyStakes[online].accPerStake - st.debtScaled;
        return earned / ACC_SCALE;
    }

    /// @inheritdoc IIdentityRegistry
    function keyStakesOf(address online)
        external
        view
        returns (uint256 totalStake, uint256 unallocated, uint256 incentiveHeld)
    {
        KeyStakes storage ks = _keyStakes[online];
        return (ks.totalStake, ks.unallocated, ks.incentiveHeld);
    }

    /// @inheritdoc IIdentityRegistry
    function keyBindingDigest(address offline, address online) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(KEY_BINDING_TYPEHASH, offline, online)));
    }

    /// @inheritdoc IIdentityRegistry
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ---------------------------------------------------------------- internal

    /// @dev Roles that act on others, granted by the governance: Notary and CA.
    function _isAppointedRole(Role role) private pure returns (bool) {
        return role == Role.Notary || role == Role.CA;
    }

    /// @dev The active identity of `offline`, or revert.
    function _activeIdentity(address offline) private view returns (Identity storage id) {
        id = _identities[offline];
        if (id.status != Status.Active) revert Identity_NotActive(offline);
    }

    /// @dev A new online key must be unused, match `pub`, and have signed the binding.
    function _checkNewKey(address offline, address online, bytes calldata pub, bytes calldata popSig)
        private
        view
    {
        if (
            online == address(0) || online == offline || _offlineOf[online] != address(0)
                || _identities[online].status != Status.None
        ) revert Identity_KeyAlreadyUsed(online);
        if (pub.length != 64 || address(uint160(uint256(keccak256(pub)))) != online) {
            revert Identity_PublicKeyMismatch(online);
        }
        // The third value (the error's argument) is not needed: any error fails the check.
        // slither-disable-next-line unused-return
        (address signer, ECDSA.RecoverError err,) =
            ECDSA.tryRecover(keyBindingDigest(offline, online), popSig);
        if (err != ECDSA.RecoverError.NoError || signer != online) {
            revert Identity_BadProofOfPossession(online);
        }
    }

    /// @dev Shares `amount` among the current stakes of a key (totalStake > 0).
    function _allocate(KeyStakes storage ks, uint256 amount) private {
        ks.accPerStake += (amount * ACC_SCALE) / ks.totalStake;
        ks.incentiveHeld += amount;
    }

    /// @dev Moves what `st` earned since its last settlement into `earnedScaled`.
    function _settle(KeyStakes storage ks, Stake storage st) private {
        uint256 current = uint256(st.amount) * ks.accPerStake;
        st.earnedScaled += current - st.debtScaled;
        st.debtScaled = current;
    }

    /// @dev Takes the whole-wei part of `st`'s earned incentive out of the key's pool.
    function _takeEarned(KeyStakes storage ks, Stake storage st) private returns (uint256 amount) {
        // Whole wei out, the scaled remainder stays: the division before the multiplication is the point.
        // slither-disable-next-line divide-before-multiply
        amount = st.earnedScaled / ACC_SCALE;
        st.earnedScaled -= amount * ACC_SCALE;
        ks.incentiveHeld -= amount;
    }
}
