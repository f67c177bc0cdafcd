"""RecurrentQPolicy with the drivers: stored state = state acted from, resets at FIRST, replayed q-values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents.r2d2 import R2D2Config, RecurrentQPolicy, make_r2d2
from drivetrain.core import types
from drivetrain.envs.testing import CountingEnv
from drivetrain.networks.recurrent import RecurrentQNetwork
from drivetrain.replay.sequences import initial_state

FIRST = int(types.StepType.FIRST)


def _policy(env: CountingEnv, core: str = "lstm") -> RecurrentQPolicy:
    net = RecurrentQNetwork(
        env.observation_spec(),
        env.action_spec(),
        core=core,  # type: ignore[arg-type]
        hidden_size=6,
        fc_layers=(5,),
        seed=0,
    )
    return RecurrentQPolicy(env.time_step_spec(), env.action_spec(), net)


def _collect(env: CountingEnv, policy: dt.core.Policy, steps: int) -> list[types.Trajectory]:
    trajectories: list[types.Trajectory] = []
    dt.StepDriver(env, policy, [trajectories.append], num_steps=steps).run()
    return trajectories


@pytest.mark.parametrize("core", ["lstm", "gru"])
def test_stored_state_is_the_state_the_policy_acted_from(core: str) -> None:
    env = CountingEnv(episode_lengths=(3, 5))
    policy = _policy(env, core)
    assert policy.stateful and policy.trajectory_spec.policy_info["state"] == policy.policy_state_spec
    trajectories = _collect(env, policy, 16)

    # Replay by hand, one step at a time: zeros at FIRST, else the state the last call returned.
    state = policy.get_initial_state(2)
    resets = 0
    for traj in trajectories:
        first = traj.step_type == FIRST
        resets += int(first.sum())
        state = tuple(np.where(first[:, None], 0.0, s).astype(np.float32) for s in state)
        for stored, held in zip(traj.policy_info["state"], state, strict=True):
            np.testing.assert_array_equal(stored, held)
        time_step = types.TimeStep(
            traj.step_type, np.zeros(2, np.float32), np.ones(2, np.float32), traj.observation
        )
        step = policy.action(time_step, state)
        np.testing.assert_array_equal(step.action, traj.action)
        np.testing.assert_allclose(step.info["q_values"], traj.policy_info["q_values"], rtol=1e-6)
        state = step.state
    assert resets >= 5  # several episodes began, mid-run included
    # The state really evolves within an episode and is zero exactly at FIRST steps.
    h = np.stack([t.policy_info["state"][0] for t in trajectories])  # [steps, B, H]
    first = np.stack([t.step_type == FIRST for t in trajectories])
    # (environment 1 only: environment 0's first observation is all zeros, and zero biases map it to 0)
    assert not np.any(h[first]) and np.all(np.any(h[:, 1][~first[:, 1]], axis=-1))


def test_collect_policy_with_episode_driver_and_replay_keeps_the_state() -> None:
    env = CountingEnv(episode_lengths=(4, 2))
    agent = make_r2d2(
        R2D2Config(hidden_size=6, fc_layers=(5,), sequence_length=3, burn_in=2, n_step=1),
        env.time_step_spec(),
        env.action_spec(),
        seed=0,
    )
    replay = dt.replay.UniformReplay(agent.collect_data_spec, 200, env.batch_size, seed=0)
    seen: list[types.Trajectory] = []
    dt.EpisodeDriver(env, agent.collect_policy, [replay.add_batch, seen.append], num_episodes=6).run()
    assert len(replay) == len(seen) * 2
    stored = np.stack([t.policy_info["state"][1] for t in seen])  # c of the LSTM
    assert stored.dtype == np.float32 and np.any(stored)


@pytest.mark.parametrize("core", ["lstm", "gru"])
def test_replaying_stored_state_sequences_reproduces_the_collected_q_values(core: str) -> None:
    env = CountingEnv(episode_lengths=(4, 7), truncate=(False, True))
    policy = dt.policies.EpsilonGreedyPolicy(_policy(env, core), 0.5, seed=0)
    replay = dt.replay.UniformReplay(policy.trajectory_spec, 500, env.batch_size, seed=1)
    dt.StepDriver(env, policy, [replay.add_batch], num_steps=120).run()
    window, _ = replay.sample(32, 9)
    assert np.any(window.step_type[:, 1:] == FIRST)  # some sequences cross into a new episode
    net = policy.wrapped.q_network
    state = tuple(torch.from_numpy(s) for s in initial_state(window))
    with torch.no_grad():
        q, _ = net(torch.from_numpy(window.observation), torch.from_numpy(window.step_type == FIRST), state)
    np.testing.assert_allclose(q.numpy(), window.policy_info["q_values"], rtol=1e-5, atol=1e-6)
    # From zeros instead, mid-episode sequences do not reproduce them.
    with torch.no_grad():
        q0, _ = net(
            torch.from_numpy(window.observation),
            torch.from_numpy(window.step_type == FIRST),
            net.initial_state(32),
        )
    mid = window.step_type[:, 0] != FIRST
    assert not np.allclose(q0.numpy()[mid, 0], window.policy_info["q_values"][mid, 0], atol=1e-4)


def test_policy_rejects_a_feed_forward_network() -> None:
    env = CountingEnv()
    net = dt.networks.QNetwork(env.observation_spec(), env.action_spec(), fc_layers=(4,))
    with pytest.raises(TypeError, match="RecurrentQNetwork"):
        RecurrentQPolicy(env.time_step_spec(), env.action_spec(), net)  # type: ignore[arg-type]
