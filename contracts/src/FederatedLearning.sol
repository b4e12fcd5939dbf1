// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IIdentityRegistry} from "./interfaces/IIdentityRegistry.sol";
import {IFederatedLearning} from "./interfaces/IFederatedLearning.sol";
import {Credits} from "./base/Credits.sol";

/// @title FederatedLearning
/// @notice Escrowed federated-learning trainings whose rounds run on block time, with per-round
/// model scores that decide, for everyone alike, which local models are aggregated. See
/// {IFederatedLearning}.
contract FederatedLearning is IFederatedLearning, Credits {
    // ---------------------------------------------------------------- constants

    /// @notice The largest page of `getAvailableTraining`.
    uint256 public constant MAX_PAGE = 1000;
    /// @notice Most participants of one training (bounds the loop of `closeTraining`).
    uint256 public constant MAX_PARTICIPANTS = 64;
    /// @notice Most rounds of one training.
    uint256 public constant MAX_ROUNDS = 1000;
    /// @notice The sum of a `rewardParam`: 1 in 18-decimal fixed point.
    uint256 public constant ONE = 1e18;

    // ---------------------------------------------------------------- immutables

    /// @notice The identity registry (roles and keys).
    IIdentityRegistry public immutable IDENTITY;
    /// @notice How long the service may close a training once its final scoring is over, seconds.
    uint256 public immutable CLOSE_GRACE;

    // ---------------------------------------------------------------- storage

    mapping(uint256 id => Training) private _trainings;
    mapping(uint256 id => address[]) private _participantList;
    mapping(uint256 id => mapping(address participant => Participant)) private _participants;
    mapping(uint256 id => mapping(uint256 round => mapping(address participant => bytes32))) private _models;

    /// @dev A model's scores, in one slot: their sum and their count (at most 65 votes of ±100).
    struct Score {
        int128 sum;
        uint128 votes;
    }

    mapping(uint256 id => mapping(uint256 round => mapping(address author => Score))) private _scores;
    mapping(
        uint256 id => mapping(uint256 round => mapping(address voter => mapping(address author => bool)))
    ) private _scored;
    uint256 private _trainingCount;

    // ---------------------------------------------------------------- constructor

    /// @param identity the IdentityRegistry
    /// @param closeGrace seconds the service has to close a training after its final scoring (0 < g < 2^32)
    constructor(IIdentityRegistry identity, uint256 closeGrace) {
        if (closeGrace == 0 || closeGrace >= 2 ** 32) revert FederatedLearning_InvalidParameter();
        IDENTITY = identity;
        CLOSE_GRACE = closeGrace;
    }

    // ---------------------------------------------------------------- the training's life

    /// @inheritdoc IFederatedLearning
    function createTrainingRequest(bytes32 modelRef, uint16 targetRound, uint32 roundDuration)
        external
        payable
        returns (uint256 id)
    {
        (address service, IIdentityRegistry.Role role) = IDENTITY.activeIdentityOf(msg.sender);
        if (role != IIdentityRegistry.Role.Service) {
            revert FederatedLearning_WrongRole(msg.sender, uint8(IIdentityRegistry.Role.Service));
        }
        if (msg.value == 0 || msg.value > type(uint96).max) revert FederatedLearning_BadReward(msg.value);
        if (targetRound == 0 || targetRound > MAX_ROUNDS || roundDuration < 2) {
            revert FederatedLearning_BadSchedule(targetRound, roundDuration);
        }
        if (modelRef == bytes32(0)) revert FederatedLearning_ZeroRef();

        id = ++_trainingCount;
        Training storage t = _trainings[id];
        t.service = service;
        t.createdAt = uint64(block.timestamp);
        t.targetRound = targetRound;
        t.modelRef = modelRef;
        // forge-lint: disable-next-line(unsafe-typecast) -- checked above: msg.value <= type(uint96).max
        t.reward = uint96(msg.value);
        t.roundDuration = roundDuration;
        t.status = Status.Unprocessed;
        _receive(msg.value);
        emit TrainingCreated(id, service, modelRef, msg.value, targetRound, roundDuration, msg.sender);
    }

    /// @inheritdoc IFederatedLearning
    function registerTraining(uint256 id) external {
        Training storage t = _existing(id);
        (address who, IIdentityRegistry.Role role) = IDENTITY.activeIdentityOf(msg.sender);
        if (role != IIdentityRegistry.Role.Device && role != IIdentityRegistry.Role.Gateway) {
            revert FederatedLearning_WrongRole(msg.sender, uint8(IIdentityRegistry.Role.Device));
        }
        _requireStatus(t, id, Status.Unprocessed);
        Participant storage p = _participants[id][who];
        if (p.index != 0) revert FederatedLearning_AlreadyRegistered(id, who);
        uint256 count = t.participants;
        if (count >= MAX_PARTICIPANTS) revert FederatedLearning_Full(id);

        // forge-lint: disable-next-line(unsafe-typecast) -- count < MAX_PARTICIPANTS (64)
        p.index = uint16(count + 1);
        // forge-lint: disable-next-line(unsafe-typecast) -- count < MAX_PARTICIPANTS (64)
        t.participants = uint16(count + 1);
        _participantList[id].push(who);
        emit Registered(id, who, msg.sender);
    }

    /// @inheritdoc IFederatedLearning
    function storeLocalModel(uint256 id, bytes32 localRef) external {
        Training storage t = _existing(id);
        if (localRef == bytes32(0)) revert FederatedLearning_ZeroRef();
        _requireStatus(t, id, Status.InProgress);
        uint256 round = _round(t);
        (uint256 start,, uint256 end) = _schedule(t, round);
        uint256 opens = start + t.roundDuration / 2;
        if (round > t.targetRound || block.timestamp < opens || block.timestamp >= end) {
            revert FederatedLearning_OutsideWindow(id, round);
        }
        address who = _participantOfSender(id);
        if (_models[id][round][who] != bytes32(0)) revert FederatedLearning_AlreadyStored(id, round, who);

        _models[id][round][who] = localRef;
        Participant storage p = _participants[id][who];
        if (p.models == 0) ++t.contributors;
        ++p.models;
        emit LocalModelStored(id, round, who, localRef, msg.sender);
    }

    /// @inheritdoc IFederatedLearning
    function scoreLocalModel(uint256 id, address author, int8 score) external {
        Training storage t = _existing(id);
        if (score == 0 || score > 100 || score < -100) revert FederatedLearning_BadScore(score);
        _requireStatus(t, id, Status.InProgress);
        uint256 round = _round(t);
        (, uint256 scoringEnds,) = _schedule(t, round);
        if (round < 2 || block.timestamp >= scoringEnds) revert FederatedLearning_OutsideWindow(id, round);
        uint256 scored = round - 1;
        // slither-disable-next-line unused-return -- the role is checked through the training's records
        (address voter,) = IDENTITY.activeIdentityOf(msg.sender);
        if (voter == address(0) || (voter != t.service && _participants[id][voter].index == 0)) {
            revert FederatedLearning_NotParticipant(id, msg.sender);
        }
        if (voter == author) revert FederatedLearning_OwnModel(author);
        if (_models[id][scored][author] == bytes32(0)) revert FederatedLearning_NoModel(id, scored, author);
        if (_scored[id][scored][voter][author]) {
            revert FederatedLearning_AlreadyScored(id, scored, voter, author);
        }

        _scored[id][scored][voter][author] = true;
        Score storage sc = _scores[id][scored][author];
        sc.sum += score;
        ++sc.votes;
        emit ModelScored(id, scored, author, voter, score);
    }

    /// @inheritdoc IFederatedLearning
    function closeTraining(uint256 id, uint256[] calldata rewardParam) external {
        Training storage t = _existing(id);
        _onlyService(t, id);
        _requireStatus(t, id, Status.InProgress);
        uint256 finalRound = uint256(t.targetRound) + 1;
        (, uint256 opens,) = _schedule(t, finalRound);
        if (block.timestamp < opens) revert FederatedLearning_OutsideWindow(id, _round(t));
        address[] storage list = _participantList[id];
        uint256 n = list.length; // <= MAX_PARTICIPANTS
        if (rewardParam.length != n) revert FederatedLearning_BadRewardParam(rewardParam.length, 0);
        uint256 sum = 0;
        for (uint256 i; i < n; ++i) {
            uint256 w = rewardParam[i];
            if (w > ONE) revert FederatedLearning_BadRewardParam(n, w);
            sum += w; // <= 64 · 1e18: no overflow
        }
        if (sum != ONE) revert FederatedLearning_BadRewardParam(n, sum);

        uint256 reward = t.reward;
        uint256 paid = 0;
        for (uint256 i; i < n; ++i) {
            uint256 share = reward * rewardParam[i] / ONE;
            // forge-lint: disable-next-line(unsafe-typecast) -- share <= reward < 2^96
            _participants[id][list[i]].share = uint96(share);
            paid += share;
        }
        // forge-lint: disable-next-line(unsafe-typecast) -- paid <= reward < 2^96
        t.dust = uint96(reward - paid);
        t.closed = true;
        t.status = Status.Finished;
        emit TrainingClosed(id, reward - paid);
    }

    /// @inheritdoc IFederatedLearning
    function claimReward(uint256 id) external {
        Training storage t = _existing(id);
        _requireStatus(t, id, Status.Finished);
        address who = _party(msg.sender);
        uint256 amount = _claimable(t, id, who);
        if (amount == 0) revert FederatedLearning_NothingToClaim(id, msg.sender);

        if (t.status != Status.Finished) t.status = Status.Finished;
        if (who == t.service) {
            t.serviceClaimed = true;
        } else {
            _participants[id][who].claimed = true;
        }
        emit RewardClaimed(id, msg.sender, amount);
        _pay(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IFederatedLearning
    function trainingOf(uint256 id) external view returns (Training memory) {
        return _trainings[id];
    }

    /// @inheritdoc IFederatedLearning
    function statusOf(uint256 id) external view returns (Status) {
        return _statusNow(_trainings[id]);
    }

    /// @inheritdoc IFederatedLearning
    function roundOf(uint256 id) external view returns (uint256) {
        return _round(_existing(id));
    }

    /// @inheritdoc IFederatedLearning
    function scheduleOf(uint256 id, uint256 round)
        external
        view
        returns (uint256 start, uint256 scoringEnds, uint256 end)
    {
        return _schedule(_existing(id), round);
    }

    /// @inheritdoc IFederatedLearning
    function participantsOf(uint256 id) external view returns (address[] memory) {
        return _participantList[id];
    }

    /// @inheritdoc IFederatedLearning
    function participantOf(uint256 id, address participant) external view returns (Participant memory) {
        return _participants[id][participant];
    }

    /// @inheritdoc IFederatedLearning
    function localModelOf(uint256 id, uint256 round, address participant) external view returns (bytes32) {
        return _models[id][round][participant];
    }

    /// @inheritdoc IFederatedLearning
    function scoreOf(uint256 id, uint256 round, address author)
        external
        view
        returns (int256 sum, uint256 votes)
    {
        Score storage sc = _scores[id][round][author];
        return (sc.sum, sc.votes);
    }

    /// @inheritdoc IFederatedLearning
    function isExcluded(uint256 id, uint256 round, address author) external view returns (bool) {
        return _scores[id][round][author].sum < 0;
    }

    /// @inheritdoc IFederatedLearning
    function claimableOf(uint256 id, address account) external view returns (uint256) {
        Training storage t = _trainings[id];
        if (_statusNow(t) != Status.Finished) return 0;
        return _claimable(t, id, account);
    }

    /// @inheritdoc IFederatedLearning
    function trainingCount() external view returns (uint256) {
        return _trainingCount;
    }

    /// @inheritdoc IFederatedLearning
    function getAvailableTraining(uint256 cursor, uint256 limit)
        external
        view
        returns (uint256[] memory ids, Training[] memory trainings, uint256 next)
    {
        if (limit > MAX_PAGE) limit = MAX_PAGE;
        if (cursor == 0) cursor = 1;
        if (cursor > _trainingCount) return (ids, trainings, 0);
        uint256 end = cursor + limit; // exclusive
        if (end > _trainingCount + 1) end = _trainingCount + 1;
        ids = new uint256[](end > cursor ? end - cursor : 0);
        trainings = new Training[](ids.length);
        uint256 found;
        for (uint256 id = cursor; id < end; ++id) {
            Training storage t = _trainings[id];
            if (_statusNow(t) == Status.Unprocessed) {
                ids[found] = id;
                trainings[found] = t;
                ++found;
            }
        }
        // Shrinks both arrays to what was found, in place.
        // slither-disable-next-line assembly
        assembly ("memory-safe") {
            mstore(ids, found)
            mstore(trainings, found)
        }
        next = end <= _trainingCount ? end : 0;
    }

    // ---------------------------------------------------------------- internal

    /// @dev The training's state with the time rules of {IFederatedLearning} applied.
    function _statusNow(Training storage t) private view returns (Status) {
        Status recorded = t.status;
        if (recorded != Status.Unprocessed && recorded != Status.InProgress) return recorded;
        uint256 registrationEnds = uint256(t.createdAt) + t.roundDuration;
        if (block.timestamp < registrationEnds) return Status.Unprocessed;
        if (t.participants == 0) return Status.Finished; // nobody came: the service takes it back
        (, uint256 closeOpens,) = _schedule(t, uint256(t.targetRound) + 1);
        return block.timestamp >= closeOpens + CLOSE_GRACE ? Status.Finished : Status.InProgress;
    }

    /// @dev The current round: 0 during registration, then 1.., at most T + 1.
    function _round(Training storage t) private view returns (uint256) {
        uint256 elapsed = block.timestamp - t.createdAt;
        uint256 round = elapsed / t.roundDuration;
        uint256 last = uint256(t.targetRound) + 1;
        return round > last ? last : round;
    }

    function _schedule(Training storage t, uint256 round)
        private
        view
        returns (uint256 start, uint256 scoringEnds, uint256 end)
    {
        uint256 d = t.roundDuration;
        start = uint256(t.createdAt) + round * d;
        scoringEnds = start + d / 2;
        end = start + d;
    }

    /// @dev What `who` (an offline address) is owed by Finished training `t`, unclaimed.
    function _claimable(Training storage t, uint256 id, address who) private view returns (uint256) {
        uint256 reward = t.reward;
        if (who == t.service) {
            if (t.serviceClaimed) return 0;
            if (t.closed) return t.dust;
            uint256 c = t.contributors;
            return c == 0 ? reward : reward % c;
        }
        Participant storage p = _participants[id][who];
        if (p.index == 0 || p.claimed) return 0;
        if (t.closed) return p.share;
        return p.models == 0 ? 0 : reward / t.contributors; // not closed: equal parts
    }

    /// @dev The offline address of the party behind `sender`: its identity if `sender` is an active
    /// identity's current key, else `sender` itself (an offline address claiming directly).
    function _party(address sender) private view returns (address) {
        // slither-disable-next-line unused-return -- the party is named by its offline address
        (address offline,) = IDENTITY.activeIdentityOf(sender);
        return offline == address(0) ? sender : offline;
    }

    function _participantOfSender(uint256 id) private view returns (address who) {
        // slither-disable-next-line unused-return -- registration checked the role
        (who,) = IDENTITY.activeIdentityOf(msg.sender);
        if (who == address(0) || _participants[id][who].index == 0) {
            revert FederatedLearning_NotParticipant(id, msg.sender);
        }
    }

    function _existing(uint256 id) private view returns (Training storage t) {
        t = _trainings[id];
        if (t.status == Status.None) revert FederatedLearning_UnknownTraining(id);
    }

    function _requireStatus(Training storage t, uint256 id, Status wanted) private view {
        Status now_ = _statusNow(t);
        if (now_ != wanted) revert FederatedLearning_WrongStatus(id, now_);
    }

    function _onlyService(Training storage t, uint256 id) private view {
        // slither-disable-next-line unused-return -- an active identity's offline address names the party
        (address offline,) = IDENTITY.activeIdentityOf(msg.sender);
        if (offline == address(0) || offline != t.service) {
            revert FederatedLearning_NotService(id, msg.sender);
        }
    }
}
