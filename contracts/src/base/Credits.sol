// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICredits} from "../interfaces/ICredits.sol";

/// @title Credits
/// @notice The shared escrow base (see {ICredits}): the owed total, credits, pull payments. A
/// contract on it calls `_receive` for ether that comes in owed to someone, `_credit` to make part
/// of what it owes withdrawable by an account, and `_pay` as the last step of a call that pays what
/// it owes to the caller. Invariant: `address(this).balance == totalOwed()`.
abstract contract Credits is ICredits {
    mapping(address account => uint256) private _credits;
    uint256 private _totalOwed;

    /// @inheritdoc ICredits
    function withdrawCredit() external {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert Credits_NothingToWithdraw();
        _credits[msg.sender] = 0;
        emit CreditWithdrawn(msg.sender, amount);
        _pay(msg.sender, amount);
    }

    /// @inheritdoc ICredits
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc ICredits
    function totalOwed() external view returns (uint256) {
        return _totalOwed;
    }

    /// @dev `amount` of ether came in and is now owed to someone.
    function _receive(uint256 amount) internal {
        _totalOwed += amount;
    }

    /// @dev `amount` of what is owed (already counted) becomes withdrawable by `account`.
    function _credit(address account, uint256 amount) internal {
        _credits[account] += amount;
    }

    /// @dev Pays `amount` of what is owed to `to`: call it after every state change.
    function _pay(address to, uint256 amount) internal {
        _totalOwed -= amount;
        // `to` is always the caller taking what it is owed (pull payment); a low-level call forwards
        // all gas so contract wallets can receive.
        // slither-disable-next-line arbitrary-send-eth,low-level-calls
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert Credits_TransferFailed(to);
    }
}
