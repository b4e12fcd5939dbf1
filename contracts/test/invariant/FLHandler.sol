// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Registrant} from "./Registrant.sol";
import {IdentityRegistry} from "../../src/IdentityRegistry.sol";
import {FederatedLearning} from "../../src/FederatedLearning.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";
import {IFederatedLearning} from "../../src/interfaces/IFederatedLearning.sol";

/// @notice Drives FederatedLearning with random steps from two services, three participants (two
/// devices, a gateway), a worker (never allowed in) and a stranger: offers with random rewards,
/// round counts and lengths, registrations, local models, scores, closes with random splits (some
/// not summing to one), claims by anyone, and time. Its books are its own — ether in, ether paid
/// per training and per party, the models it saw stored, the furthest round and state it saw.
contract FLHandler is Registrant {
    uint256 public constant MAX_TRAININGS = 12;

    FederatedLearning public immutable fl;

    address[2] public serviceKey;
    address[2] public serviceOffline;
    address[4] public memberKey; // dev, dev, gateway, worker
    address[4] public memberOffline;
    address public constant STRANGER = address(0x5742);

    uint256 public ghostIn;
    uint256 public ghostOut;
    mapping(uint256 id => uint256) public ghostReward;
    mapping(uint256 id => uint256) public ghostPaid;
    mapping(uint256 id => mapping(address party => uint256)) public ghostClaimsBy;
    mapping(uint256 id => mapping(uint256 round => mapping(address p => uint256))) public ghostStored;
    uint256 public ghostStoredTwice; // a second model of one participant in one round (must stay 0)
    uint256 public ghostPaidTwice; // a party paid twice by one training (must stay 0)
    uint256 public ghostWorkerIn; // a worker registered or stored (must stay 0)
    uint256 public ghostBackwards; // a round or state seen to move back (must stay 0)
    mapping(uint256 id => uint256) public ghostRound;
    mapping(uint256 id => IFederatedLearning.Status) public ghostStatus;
    mapping(bytes4 action => uint256) public ghostSucceeded;

    constructor(IdentityRegistry identity_, FederatedLearning fl_) Registrant(identity_) {
        fl = fl_;
        for (uint256 i; i < 2; ++i) {
            (serviceOffline[i], serviceKey[i],) =
                _register(keccak256(abi.encode("svc", i)), IIdentityRegistry.Role.Service);
            vm.deal(serviceKey[i], 1000 ether);
        }
        IIdentityRegistry.Role[4] memory roles = [
            IIdentityRegistry.Role.Device,
            IIdentityRegistry.Role.Device,
            IIdentityRegistry.Role.Gateway,
            IIdentityRegistry.Role.Worker
        ];
        for (uint256 i; i < 4; ++i) {
            (memberOffline[i], memberKey[i],) = _register(keccak256(abi.encode("member", i)), roles[i]);
        }
    }

    // ---------------------------------------------------------------- actions

    function create(uint256 s, uint256 reward, uint256 rounds, uint256 duration) external {
        if (fl.trainingCount() >= MAX_TRAININGS) return;
        reward = 1 + (reward % 10 ether);
        vm.prank(serviceKey[s % 2]);
        // forge-lint: disable-next-line(unsafe-typecast) -- bounded to 1..4 and 2..7201
        try fl.createTrainingRequest{value: reward}(
            keccak256(abi.encode(s)), uint16(1 + rounds % 4), uint32(2 + duration % 2 hours)
        ) returns (
            uint256 id
        ) {
            ghostIn += reward;
            ghostReward[id] = reward;
            _ok(this.create.selector);
        } catch {}
        _observe();
    }

    function register(uint256 t, uint256 m) external {
        uint256 id = _training(t);
        vm.prank(memberKey[m % 4]);
        try fl.registerTraining(id) {
            if (m % 4 == 3) ghostWorkerIn += 1;
            _ok(this.register.selector);
        } catch {}
        _observe();
    }

    function store(uint256 t, uint256 m) external {
        uint256 id = _training(t);
        uint256 round = fl.trainingCount() == 0 ? 0 : fl.roundOf(id);
        vm.prank(memberKey[m % 4]);
        try fl.storeLocalModel(id, keccak256(abi.encode(id, round, m))) {
            address p = memberOffline[m % 4];
            if (++ghostStored[id][round][p] > 1) ghostStoredTwice += 1;
            if (m % 4 == 3) ghostWorkerIn += 1;
            _ok(this.store.selector);
        } catch {}
        _observe();
    }

    function score(uint256 t, uint256 voter, uint256 author, int8 s) external {
        uint256 id = _training(t);
        address by = voter % 5 < 3 ? memberKey[voter % 5] : serviceKey[voter % 2];
        vm.prank(by);
        try fl.scoreLocalModel(id, memberOffline[author % 3], s) {
            _ok(this.score.selector);
        } catch {}
        _observe();
    }

    /// @dev Service `s` closes with weights from `seed` (a quarter of the time not summing to 1e18).
    function close(uint256 t, uint256 s, uint256 seed) external {
        uint256 id = _training(t);
        uint256 n = fl.trainingCount() == 0 ? 0 : fl.participantsOf(id).length;
        uint256[] memory w = new uint256[](n);
        uint256 left = 1e18;
        for (uint256 i; i < n; ++i) {
            w[i] = i + 1 == n ? left : uint256(keccak256(abi.encode(seed, i))) % (left + 1);
            left -= w[i];
        }
        if (n > 0 && seed % 4 == 0) w[0] += 1;
        vm.prank(serviceKey[s % 2]);
        try fl.closeTraining(id, w) {
            _ok(this.close.selector);
        } catch {}
        _observe();
    }

    function claim(uint256 t, uint256 who) external {
        uint256 id = _training(t);
        address by = _anyone(who);
        uint256 before = by.balance;
        vm.prank(by);
        try fl.claimReward(id) {
            _paid(id, by, by.balance - before);
            _ok(this.claim.selector);
        } catch {}
        _observe();
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + (secs % 3 hours));
        _observe();
    }

    // ---------------------------------------------------------------- end of run

    /// @dev Time past every window; every party takes what it is owed.
    function drain() external {
        vm.warp(block.timestamp + 30 days);
        for (uint256 id = 1; id <= fl.trainingCount(); ++id) {
            require(fl.statusOf(id) == IFederatedLearning.Status.Finished, "a training with no exit");
            for (uint256 k; k < 11; ++k) {
                address by = _anyone(k);
                address party = _party(by);
                if (fl.claimableOf(id, party) == 0) continue;
                uint256 before = by.balance;
                vm.prank(by);
                fl.claimReward(id);
                _paid(id, by, by.balance - before);
            }
        }
        _observe();
    }

    // ---------------------------------------------------------------- internal

    function _paid(uint256 id, address by, uint256 amount) private {
        ghostOut += amount;
        ghostPaid[id] += amount;
        if (++ghostClaimsBy[id][_party(by)] > 1) ghostPaidTwice += 1;
    }

    function _party(address by) private view returns (address) {
        address offline = identity.offlineOf(by);
        return offline == address(0) ? by : offline;
    }

    /// @dev Records the furthest round and state of every training, counting any move back.
    function _observe() private {
        for (uint256 id = 1; id <= fl.trainingCount(); ++id) {
            uint256 r = fl.roundOf(id);
            IFederatedLearning.Status s = fl.statusOf(id);
            if (r < ghostRound[id] || uint8(s) < uint8(ghostStatus[id])) ghostBackwards += 1;
            ghostRound[id] = r;
            ghostStatus[id] = s;
        }
    }

    function _ok(bytes4 action) private {
        ghostSucceeded[action] += 1;
    }

    function _training(uint256 t) private view returns (uint256) {
        uint256 n = fl.trainingCount();
        return n == 0 ? 1 : 1 + (t % n);
    }

    function _anyone(uint256 who) private view returns (address) {
        uint256 k = who % 11;
        if (k < 2) return serviceKey[k];
        if (k < 4) return serviceOffline[k - 2];
        if (k < 7) return memberKey[k - 4];
        if (k < 10) return memberOffline[k - 7];
        return STRANGER;
    }
}
