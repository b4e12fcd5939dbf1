// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title The escrow base of every iotegrity contract that holds ether
/// @notice A contract on this base counts everything it owes (`totalOwed`, always equal to its
/// balance), pays out only to whoever is owed, after every state change (checks-effects-
/// interactions), and otherwise credits accounts that then pull their money (`withdrawCredit`).
interface ICredits {
    /// @notice Nothing is credited to the sender.
    error Credits_NothingToWithdraw();
    /// @notice An ether transfer failed (the receiver refused it); nothing changed.
    error Credits_TransferFailed(address to);

    /// @notice `account` withdrew credited ether.
    event CreditWithdrawn(address indexed account, uint256 amount);

    /// @notice Withdraws all ether credited to the sender.
    function withdrawCredit() external;

    /// @notice Ether credited to `account`, withdrawable with `withdrawCredit`.
    function creditOf(address account) external view returns (uint256);

    /// @notice All ether the contract owes; equals its balance.
    function totalOwed() external view returns (uint256);
}
