// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "../utils/Test.sol";
import {IdentityRegistry} from "../../src/IdentityRegistry.sol";
import {NameRegistry} from "../../src/NameRegistry.sol";
import {Reputation} from "../../src/Reputation.sol";
import {IIdentityRegistry} from "../../src/interfaces/IIdentityRegistry.sol";
import {IReputation} from "../../src/interfaces/IReputation.sol";

/// @notice Drives IdentityRegistry, both NameRegistry modes and Reputation with bounded random
/// actions over a fixed pool of actors — every state-changing function, governance included — and
/// keeps its own records (ghosts) of what succeeded, for invariants that compare two independent
/// accounts of the same facts instead of restating the contracts' code.
contract Handler {
    Vm private constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 public constant ACTORS = 6;
    uint256 private constant P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551;
    bytes32 private constant REASON = keccak256("evidence");

    IdentityRegistry public immutable identity;
    NameRegistry public immutable names; // Decentralized
    NameRegistry public immutable caNames; // QuasiCentralized
    Reputation public immutable reputation;
    address public immutable governance;
    address public immutable sink;

    address[ACTORS] public offline;
    address[] public onlineKeys; // every online key ever registered
    mapping(address online => address) public ownerOfKey;
    mapping(address => bool) public everClosed;
    uint256 private _keySeed;
    /// @dev Each online key's private key, to sign handshake proofs.
    mapping(address online => uint256) private _pkOf;

    /// @dev A name in one of the two registries, and who the handler saw own it.
    struct NameGhost {
        NameRegistry registry;
        string name;
        address owner;
    }

    NameGhost[] private _names;

    /// @dev A vote the handler cast, for the end-of-run drain.
    struct VoteRef {
        bytes32 subject;
        address voter;
        uint64 period;
    }

    VoteRef[] private _votes;
    /// @dev Every (key, voucher) that ever staked, so slashes aim at real stakes.
    address[2][] private _stakes;

    // ghosts
    mapping(address => IIdentityRegistry.Role) public ghostAppointed;
    mapping(address => IIdentityRegistry.Role) public ghostRole; // as registered
    uint256 public ghostIdentityIn;
    uint256 public ghostIdentityOut;
    uint256 public ghostAllocations; // incentive allocations (each may leave rounding dust)
    uint256 public ghostReputationIn;
    uint256 public ghostReputationOut;
    uint256 public ghostCountedVotes;
    uint256 public ghostOpenDeposits; // votes neither struck nor reclaimed
    uint256 public ghostUnappointedActs; // slashes, strikes, CA submissions by someone not appointed
    uint256 public ghostCertificates; // certificates pinned

    constructor(
        IdentityRegistry identity_,
        NameRegistry names_,
        NameRegistry caNames_,
        Reputation reputation_,
        address governance_,
        address sink_
    ) {
        (identity, names, caNames, reputation, governance, sink) =
        (identity_, names_, caNames_, reputation_, governance_, sink_);
        for (uint256 i; i < ACTORS; ++i) {
            offline[i] = vm.addr(uint256(keccak256(abi.encode("actor", i))));
            vm.deal(offline[i], 1_000 ether);
        }
    }

    // ------------------------------------------------------------ governance and identity

    function appoint(uint256 who, bool ca) external {
        address o = offline[who % ACTORS];
        IIdentityRegistry.Role role = ca ? IIdentityRegistry.Role.CA : IIdentityRegistry.Role.Notary;
        vm.prank(governance);
        identity.appoint(o, role);
        ghostAppointed[o] = role;
    }

    function dismiss(uint256 who) external {
        address o = offline[who % ACTORS];
        vm.prank(governance);
        try identity.dismiss(o) {
            ghostAppointed[o] = IIdentityRegistry.Role.None;
        } catch {}
    }

    /// The usual way to a Notary or CA: appointed first, then registered with that role.
    function appointAndRegister(uint256 who, bool ca) external {
        this.appoint(who, ca);
        this.register(who, ca ? 5 : 4); // Role(1 + 5) = CA, Role(1 + 4) = Notary
    }

    function register(uint256 who, uint8 role) external {
        address o = offline[who % ACTORS];
        (address online, bytes memory pub, bytes memory sig) = _newKey(o);
        vm.prank(o);
        IIdentityRegistry.Role r = IIdentityRegistry.Role(1 + (role % 6));
        try identity.submitPublicKey(online, pub, sig, r) {
            onlineKeys.push(online);
            ownerOfKey[online] = o;
            ghostRole[o] = r;
        } catch {}
    }

    function update(uint256 who) external {
        address o = offline[who % ACTORS];
        (address online, bytes memory pub, bytes memory sig) = _newKey(o);
        vm.prank(o);
        try identity.updatePublicKey(online, pub, sig) {
            onlineKeys.push(online);
            ownerOfKey[online] = o;
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
        address k = onlineKeys[key % onlineKeys.length];
        amount = 1e12 + (amount % 10 ether);
        (,, uint256 heldBefore) = identity.keyStakesOf(k);
        vm.prank(o);
        try identity.vouchKey{value: amount}(k) {
            ghostIdentityIn += amount;
            _stakes.push([k, o]);
            (,, uint256 heldAfter) = identity.keyStakesOf(k);
            if (heldAfter != heldBefore) ++ghostAllocations; // a waiting incentive was shared
        } catch {}
    }

    function addIncentive(uint256 who, uint256 amount) external {
        address o = offline[who % ACTORS];
        amount = 1 + (amount % 10 ether);
        vm.prank(o);
        try identity.addIncentive{value: amount}() {
            ghostIdentityIn += amount;
            ++ghostAllocations;
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

    /// A slash of a real stake, by anyone — half the time by an actor that acts as a notary.
    function slash(uint256 who, uint256 pair, bool byNotary) external {
        if (_stakes.length == 0) return;
        address[2] memory p = _stakes[pair % _stakes.length];
        address o = byNotary ? _someoneActingAs(IIdentityRegistry.Role.Notary, who) : offline[who % ACTORS];
        vm.prank(o);
        try identity.slashStake(p[0], p[1], REASON) {
            if (!_actsAs(o, IIdentityRegistry.Role.Notary)) ++ghostUnappointedActs;
        } catch {}
    }

    function withdrawCredit(uint256 who) external {
        _identityPayout(_accountOf(who), abi.encodeCall(identity.withdrawCredit, ()));
    }

    // ------------------------------------------------------------ names, both modes

    function submitName(uint256 who, uint256 label, bool quasi, uint256 forWhom) external {
        address o =
            quasi && who % 2 == 0 ? _someoneActingAs(IIdentityRegistry.Role.CA, who) : offline[who % ACTORS];
        address owner = quasi ? offline[forWhom % ACTORS] : o;
        NameRegistry r = quasi ? caNames : names;
        string memory name = string.concat("n", vm.toString(label % 12), ".bit");
        vm.prank(o);
        try r.submitDomainName(owner, name, hex"0a000001") {
            _names.push(NameGhost(r, name, owner));
            if (quasi && !_actsAs(o, IIdentityRegistry.Role.CA)) ++ghostUnappointedActs;
        } catch {}
    }

    function updateAddress(uint256 n, bool v6) external {
        if (_names.length == 0) return;
        NameGhost storage g = _names[n % _names.length];
        vm.prank(g.owner);
        try g.registry
            .updateAddress(
                g.name, v6 ? bytes(hex"20010db8000000000000000000000001") : bytes(hex"0a000002")
            ) {}
            catch {}
    }

    function setBackup(uint256 n, uint256 backup) external {
        if (_names.length == 0) return;
        NameGhost storage g = _names[n % _names.length];
        vm.prank(g.owner);
        try g.registry.setBackup(g.name, offline[backup % ACTORS]) {} catch {}
    }

    function recoverName(uint256 n, uint256 who) external {
        if (_names.length == 0) return;
        NameGhost storage g = _names[n % _names.length];
        address o = offline[who % ACTORS];
        vm.prank(o);
        try g.registry.recoverName(g.name) {
            g.owner = o;
        } catch {}
    }

    function addCertificate(uint256 n, uint256 seed, bool byCa, uint256 caWho) external {
        if (byCa && _names.length != 0) {
            caWho = uint256(uint160(_someoneActingAs(IIdentityRegistry.Role.CA, caWho)));
        }
        if (_names.length == 0) return;
        NameGhost storage g = _names[n % _names.length];
        uint256 pk = uint256(keccak256(abi.encode("cert", seed % 16))) % (P256_N - 1) + 1;
        (uint256 x, uint256 y) = vm.publicKeyP256(pk);
        bytes32[2] memory key = [bytes32(x), bytes32(y)];
        uint64 nb = uint64(block.timestamp);
        uint64 na = nb + 365 days;
        bytes32 digest = g.registry
            .certificateBindingDigest(g.name, g.owner, g.registry.p256KeyHash(key[0], key[1]), nb, na);
        (bytes32 r, bytes32 s) = vm.signP256(pk, digest);
        if (uint256(s) > P256_N / 2) s = bytes32(P256_N - uint256(s));
        address sender = byCa ? address(uint160(caWho)) : g.owner;
        vm.prank(sender);
        try g.registry.addCertificate(g.name, key, nb, na, [r, s]) {
            ++ghostCertificates;
            if (sender != g.owner && !_actsAs(sender, IIdentityRegistry.Role.CA)) ++ghostUnappointedActs;
        } catch {}
    }

    function revokeCertificate(uint256 n, uint256 seed) external {
        if (_names.length == 0) return;
        NameGhost storage g = _names[n % _names.length];
        uint256 pk = uint256(keccak256(abi.encode("cert", seed % 16))) % (P256_N - 1) + 1;
        (uint256 x, uint256 y) = vm.publicKeyP256(pk);
        bytes32 hash = g.registry.p256KeyHash(bytes32(x), bytes32(y));
        vm.prank(g.owner);
        try g.registry.revokeCertificate(g.name, hash) {} catch {}
    }

    // ------------------------------------------------------------ reputation

    function vote(uint256 who, uint256 key, int8 score) external {
        if (onlineKeys.length == 0) return;
        address o = offline[who % ACTORS];
        address target = onlineKeys[key % onlineKeys.length];
        uint256 deposit = reputation.VOTE_DEPOSIT();
        bytes32 subject = reputation.accountSubject(reputation.identityOf(target));
        uint64 period = reputation.periodOf(block.timestamp);
        vm.prank(o);
        try reputation.voteReputation{value: deposit}(target, score) {
            _cast(subject, o, period, deposit);
        } catch {}
    }

    function voteDomain(uint256 who, uint256 n, uint256 certSeed, int8 score) external {
        if (_names.length == 0) return;
        NameGhost storage g = _names[n % _names.length];
        if (g.registry != names) return; // Reputation reads the decentralized registry
        address o = offline[who % ACTORS];
        (IReputation.HandshakeProof memory proof, bytes memory serverSig, bytes memory clientSig) =
            _handshakeProof(g, o, certSeed);
        if (serverSig.length == 0) return;
        uint256 deposit = reputation.VOTE_DEPOSIT();
        bytes32 subject = reputation.domainSubject(g.name);
        uint64 period = reputation.periodOf(block.timestamp);
        vm.prank(o);
        try reputation.voteDomain{value: deposit}(g.name, score, proof, serverSig, clientSig) {
            _cast(subject, o, period, deposit);
        } catch {}
    }

    /// @dev A proof of a channel from `o` to the name now, signed by the owner's and the voter's
    /// current online keys, over a key the handler may have pinned for the name (else the vote is
    /// refused); empty signatures if either key is not the handler's.
    function _handshakeProof(NameGhost storage g, address o, uint256 certSeed)
        private
        returns (IReputation.HandshakeProof memory proof, bytes memory serverSig, bytes memory clientSig)
    {
        (address server, address client) =
            (identity.identityOf(g.owner).online, identity.identityOf(o).online);
        if (_pkOf[server] == 0 || _pkOf[client] == 0) return (proof, serverSig, clientSig);
        uint256 certPk = uint256(keccak256(abi.encode("cert", certSeed % 16))) % (P256_N - 1) + 1;
        (uint256 x, uint256 y) = vm.publicKeyP256(certPk);
        proof = IReputation.HandshakeProof({
            name: g.name,
            certKeyHash: g.registry.p256KeyHash(bytes32(x), bytes32(y)),
            exporterHash: keccak256(abi.encode(o, block.timestamp, ++_keySeed)),
            server: server,
            client: client,
            serverTime: uint64(block.timestamp),
            clientTime: uint64(block.timestamp)
        });
        bytes32 digest = reputation.handshakeProofDigest(proof);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(_pkOf[server], digest);
        serverSig = abi.encodePacked(r, s, v);
        (v, r, s) = vm.sign(_pkOf[client], digest);
        clientSig = abi.encodePacked(r, s, v);
    }

    function strike(uint256 who, uint256 voteIndex, bool byNotary) external {
        if (_votes.length == 0) return;
        VoteRef memory v = _votes[voteIndex % _votes.length];
        address o = byNotary ? _someoneActingAs(IIdentityRegistry.Role.Notary, who) : offline[who % ACTORS];
        vm.prank(o);
        try reputation.strikeVote(v.subject, v.voter, v.period, REASON) {
            ghostCountedVotes -= 1;
            ghostOpenDeposits -= 1;
            if (!_actsAs(o, IIdentityRegistry.Role.Notary)) ++ghostUnappointedActs;
        } catch {}
    }

    function reclaimDeposit(uint256 voteIndex) external {
        if (_votes.length == 0) return;
        _reclaim(_votes[voteIndex % _votes.length]);
    }

    function withdrawReputationCredit(uint256 who) external {
        _reputationPayout(_accountOf(who), abi.encodeCall(reputation.withdrawCredit, ()));
    }

    function warp(uint256 secs) external {
        vm.warp(block.timestamp + (secs % 20 days));
    }

    // ------------------------------------------------------------ the end of a run

    /// @notice Everyone takes back everything it can: time moves past every lock and dispute
    /// window, every identity closes (freeing stakes and waiting incentives), every voucher
    /// withdraws, every owner reclaims, every deposit is reclaimed, every credit withdrawn.
    function drainAll() external {
        vm.warp(block.timestamp + 31 days);
        for (uint256 i; i < ACTORS; ++i) {
            vm.prank(offline[i]);
            try identity.closePublicKey() {
                everClosed[offline[i]] = true;
            } catch {}
        }
        for (uint256 k; k < onlineKeys.length; ++k) {
            for (uint256 i; i < ACTORS; ++i) {
                _identityPayout(offline[i], abi.encodeCall(identity.withdrawStake, (onlineKeys[k])));
                _identityPayout(offline[i], abi.encodeCall(identity.claimIncentive, (onlineKeys[k])));
            }
            _identityPayout(
                ownerOfKey[onlineKeys[k]], abi.encodeCall(identity.reclaimIncentive, (onlineKeys[k]))
            );
        }
        for (uint256 v; v < _votes.length; ++v) {
            _reclaim(_votes[v]);
        }
        for (uint256 i; i <= ACTORS; ++i) {
            _identityPayout(_accountOf(i), abi.encodeCall(identity.withdrawCredit, ()));
            _reputationPayout(_accountOf(i), abi.encodeCall(reputation.withdrawCredit, ()));
        }
    }

    // ------------------------------------------------------------ views for the invariants

    function onlineKeyCount() external view returns (uint256) {
        return onlineKeys.length;
    }

    function nameCount() external view returns (uint256) {
        return _names.length;
    }

    function nameAt(uint256 i)
        external
        view
        returns (NameRegistry registry, string memory name, address owner)
    {
        NameGhost storage g = _names[i];
        return (g.registry, g.name, g.owner);
    }

    function voteCount() external view returns (uint256) {
        return _votes.length;
    }

    /// @notice Every account that can be credited: the actors and the sink.
    function accounts() external view returns (address[] memory all) {
        all = new address[](ACTORS + 1);
        for (uint256 i; i < ACTORS; ++i) {
            all[i] = offline[i];
        }
        all[ACTORS] = sink;
    }

    // ------------------------------------------------------------ internal

    /// @dev Actor `i`, or the sink for i == ACTORS.
    function _accountOf(uint256 who) private view returns (address) {
        uint256 i = who % (ACTORS + 1);
        return i == ACTORS ? sink : offline[i];
    }

    /// @dev An actor that acts as `role` by the handler's records (the `pick`-th such), or actor
    /// `pick` if there is none.
    function _someoneActingAs(IIdentityRegistry.Role role, uint256 pick) private view returns (address) {
        for (uint256 i; i < ACTORS; ++i) {
            address o = offline[(pick + i) % ACTORS];
            if (_actsAs(o, role)) return o;
        }
        return offline[pick % ACTORS];
    }

    /// @dev Whether the handler's own records say `o` acts as `role` now: appointed (by the
    /// handler's ghost), registered with that role by a key the handler saw, and not closed.
    function _actsAs(address o, IIdentityRegistry.Role role) private view returns (bool) {
        return ghostAppointed[o] == role && ghostRole[o] == role && !everClosed[o];
    }

    function _cast(bytes32 subject, address voter, uint64 period, uint256 deposit) private {
        ghostReputationIn += deposit;
        ghostCountedVotes += 1;
        ghostOpenDeposits += 1;
        _votes.push(VoteRef(subject, voter, period));
    }

    function _reclaim(VoteRef memory v) private {
        uint256 before = v.voter.balance;
        vm.prank(v.voter);
        try reputation.reclaimDeposit(v.subject, v.period) {
            ghostReputationOut += v.voter.balance - before;
            ghostOpenDeposits -= 1;
        } catch {}
    }

    function _identityPayout(address o, bytes memory data) private {
        uint256 before = o.balance;
        vm.prank(o);
        (bool ok,) = address(identity).call(data);
        if (ok) ghostIdentityOut += o.balance - before;
    }

    function _reputationPayout(address o, bytes memory data) private {
        uint256 before = o.balance;
        vm.prank(o);
        (bool ok,) = address(reputation).call(data);
        if (ok) ghostReputationOut += o.balance - before;
    }

    function _newKey(address o) private returns (address online, bytes memory pub, bytes memory sig) {
        uint256 pk = uint256(keccak256(abi.encode("handler-key", ++_keySeed)));
        Vm.Wallet memory w = vm.createWallet(pk);
        _pkOf[w.addr] = pk;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, identity.keyBindingDigest(o, w.addr));
        return (w.addr, abi.encodePacked(w.publicKeyX, w.publicKeyY), abi.encodePacked(r, s, v));
    }
}
