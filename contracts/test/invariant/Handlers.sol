// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Test.sol";
import {IdentityRegistry} from "../../src/IdentityRegistry.sol";
import {NameRegistry} from "../../src/NameRegistry.sol";
import {Reputation} from "../../src/Reputation.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";

/// @notice Drives IdentityRegistry, NameRegistry and Reputation with bounded random actions over a
/// fixed pool of actors, and keeps ghost totals for the invariants.
contract Handler {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 public constant ACTORS = 6;

    IdentityRegistry public immutable identity;
    NameRegistry public immutable names;
    Reputation public immutable reputation;

    address[ACTORS] public offline;
    address[] public onlineKeys; // every online key ever registered
    string[] public registeredNames;
    mapping(address => bool) public everClosed;
    uint256 private _keySeed;

    // ghost totals
    uint256 public ghostIdentityIn;
    uint256 public ghostIdentityOut;
    uint256 public ghostReputationIn;
    uint256 public ghostReputationOut;
    uint256 public ghostCountedVotes;

    constructor(IdentityRegistry identity_, NameRegistry names_, Reputation reputation_) {
        identity = identity_;
        names = names_;
        reputation = reputation_;
        for (uint256 i; i < ACTORS; ++i) {
            offline[i] = vm.addr(uint256(keccak256(abi.encode("actor", i))));
            vm.deal(offline[i], 1_000 ether);
        }
    }

    // ------------------------------------------------------------ identity

    function register(uint256 who, uint8 role) external {
        address o = offline[who % ACTORS];
        (address online, bytes memory pub, bytes memory sig) = _newKey(o);
        vm.prank(o);
        try identity.submitPublicKey(online, pub, sig, IIdentityRegistry.Role(1 + (role % 6))) {
            onlineKeys.push(online);
        } catch {}
    }

    function update(uint256 who) external {
        address o = offline[who % ACTORS];
        (address online, bytes memory pub, bytes memory sig) = _newKey(o);
        vm.prank(o);
        try identity.updatePublicKey(online, pub, sig) {
            onlineKeys.push(online);
        } catch {}
    }

    function close(uint256 who) external {
        address o = offline[who % ACTORS];
        vm.prank(o);
        try identity.closePublicKey() {
            everClosed[o] = true;
        } catch {}
    }

    function vouch(uint256 who, uint256 key, uint256 amount) external {
        if (onlineKeys.length == 0) return;
        address o = offline[who % ACTORS];
        amount = 1e12 + (amount % 10 ether);
        vm.prank(o);
        try identity.vouchKey{value: amount}(onlineKeys[key % onlineKeys.length]) {
            ghostIdentityIn += amount;
        } catch {}
    }

    function addIncentive(uint256 who, uint256 amount) external {
        address o = offline[who % ACTORS];
        amount = 1 + (amount % 10 ether);
        vm.prank(o);
        try identity.addIncentive{value: amount}() {
            ghostIdentityIn += amount;
        } catch {}
    }

    function withdrawStake(uint256 who, uint256 key) external {
        if (onlineKeys.length == 0) return;
        _identityPayout(
            offline[who % ACTORS],
            abi.encodeCall(identity.withdrawStake, (onlineKeys[key % onlineKeys.length]))
        );
    }

    function claimIncentive(uint256 who, uint256 key) external {
        if (onlineKeys.length == 0) return;
        _identityPayout(
            offline[who % ACTORS],
            abi.encodeCall(identity.claimIncentive, (onlineKeys[key % onlineKeys.length]))
        );
    }

    function reclaimIncentive(uint256 who, uint256 key) external {
        if (onlineKeys.length == 0) return;
        _identityPayout(
            offline[who % ACTORS],
            abi.encodeCall(identity.reclaimIncentive, (onlineKeys[key % onlineKeys.length]))
        );
    }

    function slash(uint256 who, uint256 key, uint256 voucher) external {
        if (onlineKeys.length == 0) return;
        vm.prank(offline[who % ACTORS]);
        try identity.slashStake(onlineKeys[key % onlineKeys.length], offline[voucher % ACTORS]) {} catch {}
    }

    function withdrawCredit(uint256 who) external {
        _identityPayout(offline[who % ACTORS], abi.encodeCall(identity.withdrawCredit, ()));
    }

    // ------------------------------------------------------------ names

    function submitName(uint256 who, uint256 label) external {
        address o = offline[who % ACTORS];
        string memory name = string.concat("n", vm.toString(label % 20), ".bit");
        vm.prank(o);
        try names.submitDomainName(o, name, hex"0a000001") {
            registeredNames.push(name);
        } catch {}
    }

    // ------------------------------------------------------------ reputation

    function vote(uint256 who, uint256 key, int8 score) external {
        if (onlineKeys.length == 0) return;
        uint256 deposit = reputation.VOTE_DEPOSIT();
        vm.prank(offline[who % ACTORS]);
        try reputation.voteReputation{value: deposit}(onlineKeys[key % onlineKeys.length], score) {
            ghostReputationIn += deposit;
            ghostCountedVotes += 1;
        } catch {}
    }

    function strike(uint256 who, uint256 key, uint256 voter) external {
        if (onlineKeys.length == 0) return;
        bytes32 subject = reputation.accountSubject(onlineKeys[key % onlineKeys.length]);
        uint64 period = reputation.periodOf(block.timestamp); // before the prank: it is a call too
        vm.prank(offline[who % ACTORS]);
        try reputation.strikeVote(subject, offline[voter % ACTORS], period) {
            ghostCountedVotes -= 1;
        } catch {}
    }

    function reclaimDeposit(uint256 who, uint256 key, uint256 periodsAgo) external {
        if (onlineKeys.length == 0) return;
        address o = offline[who % ACTORS];
        bytes32 subject = reputation.accountSubject(onlineKeys[key % onlineKeys.length]);
        uint64 p = reputation.periodOf(block.timestamp);
        p -= uint64(periodsAgo % (p + 1) % 40);
        uint256 before = o.balance;
        vm.prank(o);
        try reputation.reclaimDeposit(subject, p) {
            ghostReputationOut += o.balance - before;
        } catch {}
    }

    function withdrawReputationCredit(uint256 who) external {
        address o = offline[who % ACTORS];
        uint256 before = o.balance;
        vm.prank(o);
        try reputation.withdrawCredit() {
            ghostReputationOut += o.balance - before;
        } catch {}
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + (secs % 20 days));
    }

    // ------------------------------------------------------------ helpers

    function onlineKeyCount() external view returns (uint256) {
        return onlineKeys.length;
    }

    function nameCount() external view returns (uint256) {
        return registeredNames.length;
    }

    function _identityPayout(address o, bytes memory data) private {
        uint256 before = o.balance;
        vm.prank(o);
        (bool ok,) = address(identity).call(data);
        if (ok) ghostIdentityOut += o.balance - before;
    }

    function _newKey(address o) private returns (address online, bytes memory pub, bytes memory sig) {
        uint256 pk = uint256(keccak256(abi.encode("handler-key", ++_keySeed)));
        Vm.Wallet memory w = vm.createWallet(pk);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, identity.keyBindingDigest(o, w.addr));
        return (w.addr, abi.encodePacked(w.publicKeyX, w.publicKeyY), abi.encodePacked(r, s, v));
    }
}
