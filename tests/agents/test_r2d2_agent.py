"""R2D2 agent: sequence targets by hand (termination vs truncation, boundaries), stored vs zero state,
updates, checkpoints, config and builder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents.r2d2 import R2D2, R2D2Config, make_r2d2
from drivetrain.core import types
from drivetrain.envs.testing import CountingEnv
from drivetrain.networks.recurrent import RecurrentQNetwork

F, M, L = int(types.StepType.FIRST), int(types.StepType.MID), int(types.StepType.LAST)
HIDDEN = 5


def _agent(initial_state: str = "stored", **kwargs: object) -> R2D2:
    env = CountingEnv(num_actions=2)
    net = RecurrentQNetwork(env.observation_spec(), env.action_spec(), "lstm", HIDDEN, (4,), seed=0)
    params = dict(
        gamma=0.5, sequence_length=3, burn_in=1, n_step=2, loss="mse", target_update_period=1000, seed=0
    )
    params.update(kwargs)
    return R2D2(
        env.time_step_spec(),
        env.action_spec(),
        net,
        torch.optim.SGD(net.parameters(), lr=0.1),
        initial_state=initial_state,  # type: ignore[arg-type]
        **params,  # type: ignore[arg-type]
    )


def _window(discount_at_end: float) -> types.Trajectory:
    """One window of 6 steps: burn-in (index 0), training steps 1..3, bootstrap steps 4..5.

    The episode ends at index 2 (next step LAST at index 3, a boundary), a new one starts at 4.
    """
    rng = np.random.default_rng(0)
    state = tuple(rng.normal(size=(1, 6, HIDDEN)).astype(np.float32) for _ in range(2))
    return types.Trajectory(
        step_type=np.array([[M, M, M, L, F, M]], np.int32),
        observation=rng.normal(size=(1, 6, 3)).astype(np.float32),
        action=np.array([[0, 1, 0, 1, 1, 0]]),
        policy_info={"q_values": np.zeros((1, 6, 2), np.float32), "state": state},
        next_step_type=np.array([[M, M, L, F, M, M]], np.int32),
        reward=np.array([[9.0, 1.0, 2.0, 7.0, 3.0, 4.0]], np.float32),
        discount=np.array([[1.0, 1.0, discount_at_end, 1.0, 1.0, 1.0]], np.float32),
    )


def _q(agent: R2D2, window: types.Trajectory, start: tuple[torch.Tensor, ...]) -> np.ndarray:
    """q-values of the whole window, unrolled by the network from ``start``: [6, A]."""
    with torch.no_grad():
        q, _ = agent.q_network(
            torch.from_numpy(window.observation), torch.from_numpy(window.step_type == F), start
        )
    return q[0].numpy()


@pytest.mark.parametrize("terminated", [True, False])
def test_sequence_loss_by_hand(terminated: bool) -> None:
    agent = _agent()
    window = _window(0.0 if terminated else 1.0)
    stored = tuple(torch.from_numpy(s[:, 0]) for s in window.policy_info["state"])
    q = _q(agent, window, stored)  # target network == online network before the first update
    v = q.max(axis=1)
    # Training steps are window indices 1, 2, 3 (actions 1, 0, 1); gamma 0.5, n 2.
    # index 1: r = 1 + 0.5 * 2 = 2; the episode ends at index 2 -> bootstrap from index 3 (the LAST
    #          observation), discount 0.5 * 0.5 * d (d = 0 termination, 1 truncation)
    # index 2: r = 2, bootstrap from index 3, discount 0.5 * d
    # index 3: a boundary: masked (its reward 7 and the next episode never leak in)
    d = 0.0 if terminated else 1.0
    targets = np.array([2.0 + 0.25 * d * v[3], 2.0 + 0.5 * d * v[3]])
    taken = np.array([q[1, 1], q[2, 0]])
    expected = np.mean((taken - targets) ** 2)
    info = agent.train(window)
    assert info.loss == pytest.approx(expected, rel=1e-5)
    assert info.extra["num_valid"] == 2
    assert info.extra["target"] == pytest.approx(targets.mean(), rel=1e-5)
    td = np.abs(taken - targets)
    assert info.extra["td_error"] == pytest.approx([0.9 * td.max() + 0.1 * td.mean()], rel=1e-5)
    assert agent.train_step == 1


def test_zero_initial_state_option_starts_from_zeros() -> None:
    window = _window(0.0)  # terminated: both targets are 2, whatever the state
    stored_agent, zeros_agent = _agent("stored"), _agent("zeros")
    q_zero = _q(zeros_agent, window, zeros_agent.q_network.initial_state(1))
    stored = tuple(torch.from_numpy(s[:, 0]) for s in window.policy_info["state"])
    q_stored = _q(stored_agent, window, stored)
    taken_zero = np.array([q_zero[1, 1], q_zero[2, 0]])
    taken_stored = np.array([q_stored[1, 1], q_stored[2, 0]])
    assert np.abs(taken_zero - taken_stored).max() > 1e-3  # the two starts really differ here
    info_zero, info_stored = zeros_agent.train(window), stored_agent.train(window)
    assert info_zero.loss == pytest.approx(np.mean((taken_zero - 2.0) ** 2), rel=1e-5)
    assert info_zero.extra["q_values"] == pytest.approx(taken_zero.mean(), rel=1e-5, abs=1e-7)
    assert info_stored.extra["q_values"] == pytest.approx(taken_stored.mean(), rel=1e-5, abs=1e-7)
    # zeros needs no stored state at all
    no_state = window._replace(policy_info={"q_values": window.policy_info["q_values"]})
    _agent("zeros").train(no_state)
    with pytest.raises(KeyError, match="policy_info\\['state'\\]"):
        _agent("stored").train(no_state)


def test_update_changes_the_online_network_and_target_follows_its_period() -> None:
    agent = _agent(target_update_period=2)
    before = [p.detach().clone() for p in agent.q_network.parameters()]
    agent.train(_window(1.0))
    changed = [not torch.equal(a, p) for a, p in zip(before, agent.q_network.parameters(), strict=True)]
    assert any(changed)
    target = agent.target_network.state_dict()
    assert all(torch.equal(target[k], v) for k, v in zip(target, before, strict=True))
    agent.train(_window(1.0))
    online = agent.q_network.state_dict()
    assert all(torch.equal(agent.target_network.state_dict()[k], v) for k, v in online.items())


def test_a_batch_without_valid_steps_does_not_move_the_network() -> None:
    agent = _agent()
    window = _window(0.0)
    boundary = window._replace(step_type=np.array([[M, L, L, L, F, M]], np.int32))
    before = [p.detach().clone() for p in agent.q_network.parameters()]
    info = agent.train(boundary)
    assert info.extra["num_valid"] == 0 and info.loss == 0.0
    assert all(torch.equal(a, p) for a, p in zip(before, agent.q_network.parameters(), strict=True))


def test_wrong_window_length_names_the_expected_layout() -> None:
    agent = _agent()
    window = types.Trajectory(*(v[:, :5] if isinstance(v, np.ndarray) else v for v in _window(0.0)))
    with pytest.raises(ValueError, match=r"burn_in 1 \+ sequence_length 3 \+ n_step 2"):
        agent.train(window)


def test_state_dict_round_trip_continues_identically() -> None:
    a, b = _agent(), _agent()
    a.train(_window(1.0))
    b.load_state_dict(a.state_dict())
    assert a.train(_window(0.0)).loss == pytest.approx(b.train(_window(0.0)).loss, rel=1e-6)
    with pytest.raises(KeyError, match="missing keys"):
        b.load_state_dict({})


def test_builder_and_replay_windows_train_end_to_end() -> None:
    env = CountingEnv(episode_lengths=(5, 3), truncate=(True, False))
    config = R2D2Config(core="gru", hidden_size=8, fc_layers=(8,), sequence_length=4, burn_in=2, n_step=3)
    agent = make_r2d2(config, env.time_step_spec(), env.action_spec(), seed=1)
    assert agent.train_sequence_length == 9
    assert agent.collect_policy.stateful and agent.policy.stateful
    replay = dt.replay.UniformReplay(agent.collect_data_spec, 400, env.batch_size, seed=0)
    dt.StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=60).run()
    batch, _ = replay.sample(8, agent.train_sequence_length)
    info = agent.train(batch)
    assert np.isfinite(info.loss) and info.extra["td_error"].shape == (8,)
    same = make_r2d2(config, env.time_step_spec(), env.action_spec(), seed=1)
    for p, q in zip(
        same.q_network.parameters(),
        make_r2d2(config, env.time_step_spec(), env.action_spec(), seed=1).q_network.parameters(),
        strict=True,
    ):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("core", "rnn", "R2D2Config.core: expected 'lstm' or 'gru'"),
        ("burn_in", -1, "R2D2Config.burn_in: expected an integer >= 0"),
        ("sequence_length", 0, "R2D2Config.sequence_length: expected an integer >= 1"),
        ("initial_state", "random", "R2D2Config.initial_state: expected 'stored' or 'zeros'"),
        ("gamma", 2.0, "R2D2Config.gamma"),
    ],
)
def test_config_errors_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        R2D2Config(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones((1, 1), np.float32), r"weights must have shape \(1,\), got \(1, 1\)"),
        (np.ones(2, np.float32), r"weights must have shape \(1,\), got \(2,\)"),
        (np.array([-0.5], np.float32), "weights must be finite and non-negative"),
        (np.array([np.nan], np.float32), "weights must be finite and non-negative"),
    ],
)
def test_importance_weights_that_would_broadcast_or_ascend_are_refused(weights, message):
    agent = _agent()
    before = [p.detach().clone() for p in agent.q_network.parameters()]
    with pytest.raises(ValueError, match=f"R2D2.train: {message}"):
        agent.train(_window(0.0), weights=weights)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.q_network.parameters(), strict=True))
