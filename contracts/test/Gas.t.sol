// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Base} from "./Base.t.sol";
import {IIdentityRegistry} from "../src/interfaces/IIdentityRegistry.sol";
import {IJobMarket} from "../src/interfaces/IJobMarket.sol";
import {IReputation} from "../src/interfaces/IReputation.sol";
import {MarketBase} from "./JobMarket.t.sol";
import {FLBase} from "./FederatedLearning.t.sol";

/// @notice Gas budgets from the foundation issue, measured on the call itself (snapshots in
/// `snapshots/`; `forge snapshot` keeps `.gas-snapshot` for whole tests).
contract GasTest is Base {
    function test_gas_submitPublicKey() public {
        Keys memory k = keysOf(1);
        bytes memory sig = pop(k.offline, k.online, k.onlinePk);
        vm.prank(k.offline);
        identity.submitPublicKey(k.online, k.pub, sig, IIdentityRegistry.Role.Device);
        vm.assertLe(vm.snapshotGasLastCall("submitPublicKey"), 100_000, "submitPublicKey <= 100k");
    }

    function test_gas_updatePublicKey() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Device);
        (address online2, uint256 pk2, bytes memory pub2) = onlineKeyOf(1);
        bytes memory sig = pop(k.offline, online2, pk2);
        vm.prank(k.offline);
        identity.updatePublicKey(online2, pub2, sig);
        vm.assertLe(vm.snapshotGasLastCall("updatePublicKey"), 40_000, "updatePublicKey <= 40k");
    }

    function test_gas_submitDomainName() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        vm.assertLe(vm.snapshotGasLastCall("submitDomainName"), 90_000, "submitDomainName <= 90k");
    }

    function test_gas_resolveAddress() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        names.resolveAddress("gateway.bit");
        // Cold: two slots of the name, one of the identity, one external call: no loop, no scan.
        vm.assertLe(vm.snapshotGasLastCall("resolveAddress"), 12_000, "resolveAddress is a direct lookup");
    }

    function test_gas_verifyCertificate() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        bytes32 cert = pinCert(names, k.offline, 1, "gateway.bit", 1, 2 ** 40);
        names.verifyCertificate("gateway.bit", cert);
        vm.snapshotGasLastCall("verifyCertificate");
    }

    /// Pinning checks the key's P-256 proof of possession: with OpenZeppelin's Solidity verifier on
    /// chains without the P256VERIFY precompile (RIP-7212 / EIP-7951), which makes it cheap.
    function test_gas_addCertificate() public {
        Keys memory k = register(1, IIdentityRegistry.Role.Gateway);
        vm.prank(k.offline);
        names.submitDomainName(k.offline, "gateway.bit", IP4);
        (bytes32[2] memory key, uint256 pk) = certKeyOf(1);
        bytes32[2] memory proof = certPop(names, pk, key, "gateway.bit", k.offline, 1, 2 ** 40);
        vm.prank(k.offline);
        names.addCertificate("gateway.bit", key, 1, 2 ** 40, proof);
        vm.snapshotGasLastCall("addCertificate");
    }

    function test_gas_voteDomain() public {
        Keys memory gw = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory voter = register(2, IIdentityRegistry.Role.Service);
        vm.prank(gw.offline);
        names.submitDomainName(gw.offline, "gateway.bit", IP4);
        bytes32 cert = pinCert(names, gw.offline, 1, "gateway.bit", 1, 2 ** 40);
        IReputation.HandshakeProof memory proof = handshakeProof("gateway.bit", cert, gw, voter);
        (bytes memory serverSig, bytes memory clientSig) = signProof(proof, gw.onlinePk, voter.onlinePk);
        vm.prank(voter.offline);
        reputation.voteDomain{value: DEPOSIT}("gateway.bit", 50, proof, serverSig, clientSig);
        // Issue 17's budget: at most 1.3 × voteDomain without a proof (150 346 gas).
        vm.assertLe(vm.snapshotGasLastCall("voteDomain"), 195_449, "voteDomain with its proof <= 1.3x");
    }

    function test_gas_voteReputation() public {
        Keys memory target = register(1, IIdentityRegistry.Role.Gateway);
        Keys memory voter = register(2, IIdentityRegistry.Role.Service);
        vm.prank(voter.offline);
        reputation.voteReputation{value: DEPOSIT}(target.online, 50);
        vm.snapshotGasLastCall("voteReputation");
    }
}

/// @notice The job market's Success lifecycle, step by step (issue 15): no step above 120k, all of
/// it within 300k, measured on the calls themselves, each as a transaction of its own (cold
/// accounts and slots), on a market already in use (its job counter and owed total non-zero). The
/// very first job of a market pays ~34k more once for those two slots (`market_firstJob`).
contract MarketGasTest is MarketBase {
    function test_gas_marketSuccessLifecycle() public {
        coldStart();
        create(); // the market's first job
        vm.snapshotGasLastCall("market_firstJob");

        coldStart();
        vm.prank(svc.online);
        uint256 id = market.createJobRequest{value: REWARD}(ROOT, SPEC, deadline());
        uint256 total = step("market_createJobRequest");
        (uint64 exp, bytes memory sig) = proposal(id, wrk);
        coldStart();
        vm.prank(svc.online);
        market.acceptTrainingOffer(id, wrk.online, TERMS, exp, sig);
        total += step("market_acceptTrainingOffer");
        coldStart();
        vm.prank(wrk.online);
        market.reportTrainingResult(id, RESULT);
        total += step("market_reportTrainingResult");
        coldStart();
        vm.prank(svc.online);
        market.endJob(id, IJobMarket.Status.Success);
        total += step("market_endJob");
        coldStart();
        vm.prank(wrk.online);
        market.claimReward(id);
        total += step("market_claimReward");
        vm.snapshotValue("market_successLifecycle", total);
        vm.assertLe(total, 300_000, "Success lifecycle <= 300k");
    }

    /// @dev Snapshots the last call's gas under `name` and checks it against the per-step budget.
    function step(string memory name) internal returns (uint256 gas) {
        gas = vm.snapshotGasLastCall(name);
        vm.assertLe(gas, 120_000, string.concat(name, " <= 120k"));
    }

    /// @dev The next call pays for cold accounts and slots, as a transaction of its own does.
    function coldStart() internal {
        vm.cool(address(market));
        vm.cool(address(identity));
    }
}

/// @notice Gas of each federated-learning step as a transaction of its own (cold slots), on a
/// contract already in use, with three participants; snapshots in contracts/snapshots/FLGasTest.json.
contract FLGasTest is FLBase {
    function test_gas_federatedLearningRound() public {
        create(); // the contract's first training
        coldStart();
        vm.prank(svc.online);
        uint256 id = fl.createTrainingRequest{value: REWARD}(MODEL, T, D);
        vm.snapshotGasLastCall("fl_createTrainingRequest");
        coldStart();
        join(id, dev1);
        vm.snapshotGasLastCall("fl_registerTraining");
        join(id, dev2);
        join(id, gw);

        toSubmission(id, 1);
        store(id, dev2, 1);
        store(id, gw, 1);
        coldStart();
        store(id, dev1, 1); // a participant's first model
        uint256 first = vm.snapshotGasLastCall("fl_storeLocalModel_first");
        vm.assertLe(first, 60_000, "storeLocalModel <= 60k");
        toScoring(id, 2);
        coldStart();
        score(id, dev1, dev2, 50);
        uint256 round = vm.snapshotGasLastCall("fl_scoreLocalModel");
        coldStart();
        score(id, dev1, gw, 40);
        round += vm.snapshotGasLastCall("fl_scoreLocalModel_second");
        toSubmission(id, 2);
        coldStart();
        store(id, dev1, 2); // a later round
        uint256 later = vm.snapshotGasLastCall("fl_storeLocalModel");
        vm.assertLe(later, 60_000, "storeLocalModel <= 60k");
        round += later;
        // A round per participant: its model and its scores of the two others.
        vm.snapshotValue("fl_roundPerParticipant", round);

        toClosing(id);
        coldStart();
        vm.prank(svc.online);
        fl.closeTraining(id, weights(0.5e18, 0.3e18, 0.2e18));
        vm.snapshotGasLastCall("fl_closeTraining_3");
        coldStart();
        vm.prank(dev1.online);
        fl.claimReward(id);
        vm.snapshotGasLastCall("fl_claimReward");
    }

    function coldStart() internal {
        vm.cool(address(fl));
        vm.cool(address(identity));
    }
}
