// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ICredits} from "./ICredits.sol";

/// @title Federated-learning rounds on chain (Oktian et al. 2020, §5.2.2, Figure 8)
/// @notice A Service offers a training: the reference of its initial global model on IPFS
/// (`modelRef`, docs/learning.md), a number of rounds (`targetRound`), the length of a round
/// (`roundDuration`), and the reward, escrowed. Devices and gateways register while registration
/// is open; each round every participant trains on its own data from the round's global model and
/// stores the reference of its local model (`storeLocalModel`); in the next round's scoring window
/// the participants (and the service) score those models (`scoreLocalModel`), and every
/// participant aggregates the same set of them into the next global model. At the end the service
/// splits the reward (`closeTraining`); each party pulls its part (`claimReward`).
///
/// The paper names a training by h_IPFS; a model may be offered twice, so a training's id is a
/// counter and the training records `modelRef`.
///
/// Time. A training created at `c` with round length `D` and `T` rounds runs on block time alone
/// (no keeper transaction moves it). With `s(r) = c + r·D` and `V = D / 2`:
/// - registration (round 0, Unprocessed): `[c, s(1))`;
/// - round `r` in `1..T` (InProgress): scoring window `[s(r), s(r) + V)` — scores on round
///   `r − 1`'s models (none in round 1) — then submission window `[s(r) + V, s(r + 1))`;
/// - final scoring (round `T + 1`): `[s(T + 1), s(T + 1) + V)`, scores on round `T`'s models;
/// - closing: the service may close in `[s(T + 1) + V, s(T + 1) + V + CLOSE_GRACE)`.
/// Exits: nobody registered by `s(1)` → Finished, the service takes the reward back; not closed
/// by the end of the closing window → Finished, the reward split equally among the participants
/// that stored at least one local model (the service takes the rest, and all of it if none did).
///
/// Scores. A participant other than the author, or the service, scores a model once, −100..100
/// except 0, in its scoring window. A local model is **excluded** from aggregation iff the sum of
/// its scores is negative; the window closes before anyone aggregates, so every participant
/// excludes the same models.
///
/// Rewards. `closeTraining(id, rewardParam)`: one weight per participant in registration order,
/// fixed point with 18 decimals, summing to exactly 1e18 — the softmax of the service's scores of
/// the participants, `w_i = e^{x_i} / Σ_j e^{x_j}`, computed off chain and rounded so the sum is
/// exact. Participant `i` is owed `floor(reward · w_i / 1e18)`; the rounding dust (less than one
/// wei per participant) goes back to the service. The parts sum exactly to the escrow.
/// Funds: `totalOwed()` = the unclaimed parts of all trainings = the contract's balance.
interface IFederatedLearning is ICredits {
    /// @notice A training's state (None: no such training).
    enum Status {
        None,
        Unprocessed,
        InProgress,
        Finished
    }

    /// @notice One training, in four slots. Times are unix seconds.
    struct Training {
        address service; // offline address of the service identity
        uint64 createdAt;
        uint16 targetRound; // T
        uint16 participants; // registered
        bytes32 modelRef; // the initial global model's IPFS reference (h_IPFS)
        uint96 reward; // wei escrowed
        uint32 roundDuration; // D, seconds
        uint16 contributors; // participants that stored at least one local model
        bool closed; // the service closed it with a split
        bool serviceClaimed; // the service took its part (dust or refund)
        Status status; // as last recorded; `statusOf` applies the time rules
        uint96 dust; // the service's part of a closed training
    }

    /// @notice A participant of a training.
    struct Participant {
        uint16 index; // 1-based registration order (0: not a participant)
        uint16 models; // local models stored
        uint96 share; // its part of a closed training
        bool claimed; // it took its part
    }

    // ---------------------------------------------------------------- errors

    /// @notice The sender is not the current online key of an active identity with a role this
    /// step takes (`role`: 3 = Service; 1 = Device or Gateway).
    error FederatedLearning_WrongRole(address sender, uint8 role);
    /// @notice No training has this id.
    error FederatedLearning_UnknownTraining(uint256 id);
    /// @notice The training is not in the state this step needs (its state under the time rules).
    error FederatedLearning_WrongStatus(uint256 id, Status status);
    /// @notice The step is for the training's service only.
    error FederatedLearning_NotService(uint256 id, address sender);
    /// @notice The sender's identity is not a participant of the training.
    error FederatedLearning_NotParticipant(uint256 id, address sender);
    /// @notice The identity is registered already.
    error FederatedLearning_AlreadyRegistered(uint256 id, address participant);
    /// @notice The training has `MAX_PARTICIPANTS` participants.
    error FederatedLearning_Full(uint256 id);
    /// @notice Zero reward, or more than 2^96 − 1 wei.
    error FederatedLearning_BadReward(uint256 value);
    /// @notice A round count outside 1..MAX_ROUNDS or a round length outside 2..2^32 − 1 seconds.
    error FederatedLearning_BadSchedule(uint256 targetRound, uint256 roundDuration);
    /// @notice A zero model reference.
    error FederatedLearning_ZeroRef();
    /// @notice Not inside the window this step belongs to; `round` is the current round.
    error FederatedLearning_OutsideWindow(uint256 id, uint256 round);
    /// @notice The participant stored its model of this round already.
    error FederatedLearning_AlreadyStored(uint256 id, uint256 round, address participant);
    /// @notice The author stored no model in the round being scored.
    error FederatedLearning_NoModel(uint256 id, uint256 round, address author);
    /// @notice A score of 0 or outside −100..100.
    error FederatedLearning_BadScore(int256 score);
    /// @notice A participant cannot score its own model.
    error FederatedLearning_OwnModel(address author);
    /// @notice The voter scored this model already.
    error FederatedLearning_AlreadyScored(uint256 id, uint256 round, address voter, address author);
    /// @notice `rewardParam` does not have one weight per participant summing to 1e18.
    error FederatedLearning_BadRewardParam(uint256 length, uint256 sum);
    /// @notice Nothing is owed to the sender by this training (never owed, or claimed).
    error FederatedLearning_NothingToClaim(uint256 id, address sender);
    /// @notice A constructor parameter is out of range.
    error FederatedLearning_InvalidParameter();

    // ---------------------------------------------------------------- events

    /// @notice A training was offered by `service` (offline address) through its online key `key`
    /// — the key whose signature the initial model's file must carry (docs/learning.md).
    event TrainingCreated(
        uint256 indexed id,
        address indexed service,
        bytes32 modelRef,
        uint256 reward,
        uint256 targetRound,
        uint256 roundDuration,
        address key
    );
    /// @notice `participant` (offline address; `key` its online key) registered.
    event Registered(uint256 indexed id, address indexed participant, address key);
    /// @notice `participant` stored its local model of `round` through its online key `key` — the
    /// key whose signature the model's file must carry (docs/learning.md).
    event LocalModelStored(
        uint256 indexed id, uint256 indexed round, address indexed participant, bytes32 localRef, address key
    );
    /// @notice `voter` scored `author`'s model of `round`.
    event ModelScored(
        uint256 indexed id, uint256 indexed round, address indexed author, address voter, int256 score
    );
    /// @notice The service closed the training; `dust` went back to it.
    event TrainingClosed(uint256 indexed id, uint256 dust);
    /// @notice `to` took `amount` of training `id`'s reward.
    event RewardClaimed(uint256 indexed id, address indexed to, uint256 amount);

    // ---------------------------------------------------------------- the training's life

    /// @notice Offers a training, escrowing `msg.value` (sender: an active Service's online key).
    /// @return id the new training's id
    function createTrainingRequest(bytes32 modelRef, uint16 targetRound, uint32 roundDuration)
        external
        payable
        returns (uint256 id);

    /// @notice Registers the sender's identity (an active Device or Gateway) during registration.
    function registerTraining(uint256 id) external;

    /// @notice Stores the sender's local model of the current round, in its submission window, once.
    function storeLocalModel(uint256 id, bytes32 localRef) external;

    /// @notice Scores `author`'s model of the previous round, in the current scoring window, once.
    function scoreLocalModel(uint256 id, address author, int8 score) external;

    /// @notice The service splits the reward by `rewardParam` (see the contract's notes), in the
    /// closing window.
    function closeTraining(uint256 id, uint256[] calldata rewardParam) external;

    /// @notice Pays the sender's part of a Finished training (a participant's share, or the
    /// service's dust or refund), once. The sender is the party's current online key or its
    /// offline address.
    function claimReward(uint256 id) external;

    // ---------------------------------------------------------------- views

    /// @notice The training as recorded.
    function trainingOf(uint256 id) external view returns (Training memory);

    /// @notice The training's state under the time rules.
    function statusOf(uint256 id) external view returns (Status);

    /// @notice The current round: 0 registration, 1..T rounds, T + 1 final scoring and after.
    function roundOf(uint256 id) external view returns (uint256);

    /// @notice Times of round `round` (0..T + 1): its start, the end of its scoring window, its end.
    function scheduleOf(uint256 id, uint256 round)
        external
        view
        returns (uint256 start, uint256 scoringEnds, uint256 end);

    /// @notice The participants (offline addresses), in registration order.
    function participantsOf(uint256 id) external view returns (address[] memory);

    /// @notice A participant's record.
    function participantOf(uint256 id, address participant) external view returns (Participant memory);

    /// @notice The reference of `participant`'s local model of `round` (zero if none).
    function localModelOf(uint256 id, uint256 round, address participant) external view returns (bytes32);

    /// @notice The sum of the scores of `author`'s model of `round`, and how many there were.
    function scoreOf(uint256 id, uint256 round, address author)
        external
        view
        returns (int256 sum, uint256 votes);

    /// @notice Whether `author`'s model of `round` is left out of aggregation (its score sum < 0).
    function isExcluded(uint256 id, uint256 round, address author) external view returns (bool);

    /// @notice What `account` (an offline address) may claim now.
    function claimableOf(uint256 id, address account) external view returns (uint256);

    /// @notice How many trainings were ever created (ids are 1..trainingCount).
    function trainingCount() external view returns (uint256);

    /// @notice A page of trainings open for registration among ids `cursor..cursor+limit-1`
    /// (`limit` at most MAX_PAGE); `next` is the cursor of the next page, 0 at the end.
    function getAvailableTraining(uint256 cursor, uint256 limit)
        external
        view
        returns (uint256[] memory ids, Training[] memory trainings, uint256 next);
}
