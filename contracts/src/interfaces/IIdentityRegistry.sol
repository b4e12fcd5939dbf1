// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICredits} from "./ICredits.sol";

/// @title Two-key identities for IoT entities (Oktian et al. 2020, §3.2.1; CertCoin-style)
/// @notice Every entity has an OFFLINE key, which only ever sends on-chain transactions (register,
/// update, close), and an ONLINE key, which signs data off chain (readings, certificates, models).
/// The offline address is the identity's id. If the online key leaks, the offline key replaces it
/// (`updatePublicKey`); if the offline key leaks, its owner closes the identity for good
/// (`closePublicKey`).
///
/// Web of trust (Wilson & Ateniese): other identities stake ether on an online key (`vouchKey`);
/// the key's trust level is the stake on it while it is active. The key's owner may post an
/// incentive (`addIncentive`) that is shared among the key's vouchers in proportion to their stake
/// at the moment the incentive is added.
///
/// Roles. Device, Gateway, Service and Worker are self-declared at registration: each acts only on
/// its own data, names, stakes and anchors, so claiming one gives no power over anyone else.
/// Notary (slashes stakes, strikes votes) and CA (submits names for others and pins their
/// certificates in quasi-centralised mode) act on others: they are *appointed* by `GOVERNANCE`, an
/// address fixed at deployment (an EOA for local work; a multisig contract in production). An
/// offline address must be appointed before it registers with such a role, and keeps the role's
/// power only while appointed (`dismiss` ends it; the identity itself stays open).
///
/// Rules for the money held, on the shared escrow base ({ICredits}: the balance always equals
/// `totalOwed()` = stakes + incentives not paid out + credits; credits are the penalty sink's):
/// - a voucher withdraws its stake (`withdrawStake`) once the key is no longer active (updated
///   or closed), or `STAKE_LOCK` after its last vouch on that key;
/// - a voucher claims its share of incentives at any time (`claimIncentive`);
/// - an incentive added while a key has no stake waits and is shared at the next vouch; if the key
///   stops being active before anyone vouched, its owner takes it back (`reclaimIncentive`);
/// - an appointed Notary may slash another identity's stake on a key it found fraudulent
///   (`slashStake`, with a reason recorded in the event); the stake is credited to `PENALTY_SINK`,
///   an address fixed at deployment (a burn address by default), never to the notary, so slashing
///   pays nobody who decides it. Incentives the voucher had already earned stay the voucher's.
interface IIdentityRegistry is ICredits {
    /// @notice The kinds of entity in the paper (X ∈ {D, GW, S, W}) plus notaries and CAs.
    enum Role {
        None,
        Device,
        Gateway,
        Service,
        Worker,
        Notary,
        CA
    }

    /// @notice Lifecycle of an identity: unused → Active → Closed (irrevocable).
    enum Status {
        None,
        Active,
        Closed
    }

    /// @notice One identity, keyed by its offline address. Fits one storage slot.
    struct Identity {
        address online; // current online address (keccak256 of `pub`, last 20 bytes)
        Role role;
        Status status;
        uint64 updatedAt; // timestamp of the last register/update/close
    }

    // ---------------------------------------------------------------- errors

    /// @notice The offline address already has (or had) an identity.
    error Identity_AlreadyRegistered(address offline);
    /// @notice The sender has no active identity.
    error Identity_NotActive(address offline);
    /// @notice The online key belongs, or belonged, to an identity, or is an offline address.
    error Identity_KeyAlreadyUsed(address online);
    /// @notice `pub` is not 64 bytes or does not hash to `online`.
    error Identity_PublicKeyMismatch(address online);
    /// @notice The proof of possession was not signed by the online key.
    error Identity_BadProofOfPossession(address online);
    /// @notice Role `None` cannot be registered.
    error Identity_InvalidRole();
    /// @notice The online key is not the current key of an active identity.
    error Identity_KeyNotActive(address online);
    /// @notice An identity cannot vouch for itself.
    error Identity_SelfVouch();
    /// @notice Zero ether sent where a payment was required.
    error Identity_ZeroValue();
    /// @notice Nothing to withdraw or claim.
    error Identity_NothingToWithdraw();
    /// @notice The stake is still locked (key active and `STAKE_LOCK` not over) until `unlockAt`.
    error Identity_StakeLocked(uint256 unlockAt);
    /// @notice The caller is not an active Notary.
    error Identity_NotNotary(address caller);
    /// @notice Only the owner of the key may do this.
    error Identity_NotKeyOwner(address online);
    /// @notice The key is still active.
    error Identity_KeyStillActive(address online);
    /// @notice Only the governance fixed at deployment may do this.
    error Identity_NotGovernance(address caller);
    /// @notice `role` is not one that is appointed (Notary, CA).
    error Identity_NotAnAppointedRole(Role role);
    /// @notice `offline` was not appointed to `role` by the governance (appoint it first).
    error Identity_NotAppointed(address offline, Role role);
    /// @notice A notary may not slash its own stake (it would skip the stake lock).
    error Identity_SelfSlash();
    /// @notice A slash needs a reason (a non-zero hash of the evidence).
    error Identity_NoReason();
    /// @notice The governance or penalty sink given to the constructor is the zero address.
    error Identity_ZeroAddress();

    // ---------------------------------------------------------------- events

    /// @notice An identity was registered. `pub` is the 64-byte uncompressed online public key.
    event PublicKeySubmitted(address indexed offline, address indexed online, Role role, bytes pub);
    /// @notice The online key of an identity was replaced; `oldOnline` is invalid from now on.
    event PublicKeyUpdated(
        address indexed offline, address indexed oldOnline, address indexed online, bytes pub
    );
    /// @notice An identity was closed for good.
    event PublicKeyClosed(address indexed offline, address indexed online);
    /// @notice An incentive was added for the vouchers of `online`.
    event IncentiveAdded(address indexed online, uint256 amount);
    /// @notice `voucher` staked `amount` on `online` (its stake is now `stake`).
    event KeyVouched(address indexed online, address indexed voucher, uint256 amount, uint256 stake);
    /// @notice `voucher` withdrew its whole stake on `online`.
    event StakeWithdrawn(address indexed online, address indexed voucher, uint256 amount);
    /// @notice `voucher` claimed incentives earned on `online`.
    event IncentiveClaimed(address indexed online, address indexed voucher, uint256 amount);
    /// @notice The owner of an inactive key took back an incentive nobody could earn.
    event IncentiveReclaimed(address indexed online, address indexed owner, uint256 amount);
    /// @notice A notary slashed `voucher`'s stake on `online`, for `reason`; `amount` went to the
    /// penalty sink.
    event StakeSlashed(
        address indexed online,
        address indexed voucher,
        address indexed notary,
        uint256 amount,
        bytes32 reason
    );
    /// @notice The governance appointed `offline` to `role` (Notary or CA).
    event RoleAppointed(address indexed offline, Role role);
    /// @notice The governance dismissed `offline` from `role`.
    event RoleDismissed(address indexed offline, Role role);

    // ---------------------------------------------------------------- identity lifecycle

    /// @notice Registers the sender (the offline address) with an online key and a role (Notary and
    /// CA only if the governance appointed the sender to it).
    /// @param online the online address; must never have been used by any identity
    /// @param pub the 64-byte uncompressed public key (no 0x04 prefix) hashing to `online`
    /// @param popSig the online key's EIP-712 signature of `KeyBinding(offline, online)` under the
    /// domain {name: "iotegrity", version: "1", chainId, verifyingContract: this}: proof that the
    /// holder of the online key agrees to be bound to this offline address on this chain.
    /// @param role the entity's role (not None)
    function submitPublicKey(address online, bytes calldata pub, bytes calldata popSig, Role role) external;

    /// @notice Replaces the sender's online key; the old one stops being valid at once.
    /// @dev Same proof of possession as `submitPublicKey`, by the new key.
    function updatePublicKey(address online, bytes calldata pub, bytes calldata popSig) external;

    /// @notice Closes the sender's identity irrevocably; its names and certificates stop verifying
    /// and the offline address can never register again.
    function closePublicKey() external;

    // ---------------------------------------------------------------- web of trust

    /// @notice Adds `msg.value` to the incentive shared by the vouchers of the sender's online key.
    function addIncentive() external payable;

    /// @notice Stakes `msg.value` on `online`. The sender must be another active identity.
    function vouchKey(address online) external payable;

    /// @notice Withdraws the sender's whole stake on `online`, plus its unclaimed incentives.
    function withdrawStake(address online) external;

    /// @notice Claims the sender's incentives earned on `online`.
    function claimIncentive(address online) external;

    /// @notice The owner of an inactive key takes back the incentive that nobody staked for.
    function reclaimIncentive(address online) external;

    /// @notice An appointed Notary slashes another identity's stake on `online`; the stake is
    /// credited to `PENALTY_SINK`. `reason` (non-zero) is a hash of the evidence.
    function slashStake(address online, address voucher, bytes32 reason) external;

    // ---------------------------------------------------------------- governance

    /// @notice The governance appoints `offline` to `role` (Notary or CA), before it registers.
    function appoint(address offline, Role role) external;

    /// @notice The governance ends `offline`'s appointment; its role confers no power from now on.
    function dismiss(address offline) external;

    // ---------------------------------------------------------------- views

    /// @notice The identity whose offline address is `offline`.
    function identityOf(address offline) external view returns (Identity memory);

    /// @notice The offline address that registered `online` (zero if never used).
    function offlineOf(address online) external view returns (address);

    /// @notice True iff `online` is the current key of an active identity.
    function isActive(address online) external view returns (bool);

    /// @notice True iff the identity of `offline` is active (registered and not closed).
    function isOpen(address offline) external view returns (bool);

    /// @notice The role of an active identity, None otherwise (None too for a Notary or CA that is
    /// no longer appointed).
    function activeRole(address offline) external view returns (Role);

    /// @notice The role `offline` is appointed to (None if none).
    function appointedRole(address offline) external view returns (Role);

    /// @notice The governance fixed at deployment, which appoints and dismisses Notaries and CAs.
    function GOVERNANCE() external view returns (address);

    /// @notice Where slashed stakes and struck deposits go (fixed at deployment).
    function PENALTY_SINK() external view returns (address);

    /// @notice The identity whose current key `online` is: its offline address and role (as
    /// `activeRole`), or (address(0), None) unless `online` is the current key of an active identity. One call for
    /// contracts that act on behalf of identities (ReceiptAnchor attributes anchors to `offline`).
    function activeIdentityOf(address online) external view returns (address offline, Role role);

    /// @notice The trust level of `online`: total stake on it while it is active, zero otherwise.
    function trustLevel(address online) external view returns (uint256);

    /// @notice `voucher`'s stake on `online`.
    function stakeOf(address online, address voucher) external view returns (uint256);

    /// @notice Incentives `voucher` can claim on `online` now.
    function pendingIncentive(address online, address voucher) external view returns (uint256);

    /// @notice The stake bookkeeping of `online`: total stake, incentive waiting for a first stake,
    /// incentive allocated to vouchers and not yet paid out.
    function keyStakesOf(address online)
        external
        view
        returns (uint256 totalStake, uint256 unallocated, uint256 incentiveHeld);

    /// @notice EIP-712 digest of `KeyBinding(offline, online)` that the online key signs.
    function keyBindingDigest(address offline, address online) external view returns (bytes32);

    /// @notice The EIP-712 domain separator (name "iotegrity", version "1", this chain, this
    /// contract) that every iotegrity signature uses.
    function domainSeparator() external view returns (bytes32);
}
