// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../test/utils/Test.sol";
import {IdentityRegistry} from "../src/IdentityRegistry.sol";
import {NameRegistry} from "../src/NameRegistry.sol";
import {Reputation} from "../src/Reputation.sol";
import {ReceiptAnchor} from "../src/ReceiptAnchor.sol";
import {JobMarket} from "../src/JobMarket.sol";
import {FederatedLearning} from "../src/FederatedLearning.sol";
import {INameRegistry} from "../src/interfaces/INameRegistry.sol";

/// @notice Deploys IdentityRegistry, NameRegistry, Reputation, ReceiptAnchor, JobMarket and FederatedLearning, and writes the address book
/// `anvil/deployments/<chainId>.json` that the CLI and the daemon read (docs/address-book.md).
///
/// Environment (all optional): PRIVATE_KEY (deployer; default Anvil account 0),
/// GOVERNANCE (appoints notaries and CAs; default the deployer — use a multisig in production),
/// PENALTY_SINK (receives slashed stakes and struck deposits; default 0x…dEaD, which burns them),
/// NAME_MODE ("decentralized" | "quasi-centralized"), VOTE_DEPOSIT (wei, default 0.01 ether),
/// VOTE_PERIOD (s, 1 day), DISPUTE_WINDOW (s, 7 days), HALF_LIFE (s, 30 days), the job market's
/// REVIEW_WINDOW (s, 3 days), MARKET_DISPUTE_WINDOW (s, 3 days) and RULING_WINDOW (s, 7 days),
/// ADDRESS_BOOK (where to write it, under anvil/deployments/; default anvil/deployments/<chainId>.json).
///
///   forge script contracts/script/Deploy.s.sol --rpc-url $ETH_RPC_URL --broadcast
contract Deploy {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    /// @dev Anvil's first account from the standard test mnemonic: local chains only.
    uint256 private constant ANVIL_KEY_0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    /// @dev The conventional burn address: penalties credited to it can never be withdrawn.
    address private constant BURN = 0x000000000000000000000000000000000000dEaD;

    function run()
        external
        returns (
            IdentityRegistry identity,
            NameRegistry names,
            Reputation reputation,
            ReceiptAnchor anchor,
            JobMarket market,
            FederatedLearning learning
        )
    {
        uint256 key = vm.envOr("PRIVATE_KEY", ANVIL_KEY_0);
        string memory modeName = vm.envOr("NAME_MODE", string("decentralized"));
        bool quasi = keccak256(bytes(modeName)) == keccak256("quasi-centralized");
        require(quasi || keccak256(bytes(modeName)) == keccak256("decentralized"), "NAME_MODE");

        address governance = vm.envOr("GOVERNANCE", vm.addr(key));
        address sink = vm.envOr("PENALTY_SINK", BURN);
        vm.startBroadcast(key);
        identity = new IdentityRegistry(governance, sink);
        names = new NameRegistry(
            identity, quasi ? INameRegistry.Mode.QuasiCentralized : INameRegistry.Mode.Decentralized
        );
        reputation = new Reputation(
            identity,
            names,
            vm.envOr("VOTE_DEPOSIT", uint256(0.01 ether)),
            vm.envOr("VOTE_PERIOD", uint256(1 days)),
            vm.envOr("DISPUTE_WINDOW", uint256(7 days)),
            vm.envOr("HALF_LIFE", uint256(30 days))
        );
        anchor = new ReceiptAnchor(identity);
        market = new JobMarket(
            identity,
            vm.envOr("REVIEW_WINDOW", uint256(3 days)),
            vm.envOr("MARKET_DISPUTE_WINDOW", uint256(3 days)),
            vm.envOr("RULING_WINDOW", uint256(7 days))
        );
        learning = new FederatedLearning(identity, vm.envOr("FL_CLOSE_GRACE", uint256(7 days)));
        vm.stopBroadcast();

        string memory book = "book";
        vm.serializeUint(book, "chainId", block.chainid);
        vm.serializeString(book, "nameMode", modeName);
        vm.serializeUint(book, "deployedBlock", block.number);
        vm.serializeAddress(book, "identityRegistry", address(identity));
        vm.serializeAddress(book, "nameRegistry", address(names));
        vm.serializeAddress(book, "reputation", address(reputation));
        vm.serializeAddress(book, "governance", governance);
        vm.serializeAddress(book, "penaltySink", sink);
        vm.serializeAddress(book, "receiptAnchor", address(anchor));
        vm.serializeAddress(book, "jobMarket", address(market));
        string memory json = vm.serializeAddress(book, "federatedLearning", address(learning));
        string memory defaultBook = string.concat("anvil/deployments/", vm.toString(block.chainid), ".json");
        vm.writeJson(json, vm.envOr("ADDRESS_BOOK", defaultBook));
    }
}
