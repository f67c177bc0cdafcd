"""Every agent family on a CUDA device against the same agent on the CPU.

Each test builds two agents with the same seed, one eager on the CPU and one on ``device``
(eager or compiled), trains both on the same batches, and compares what they report, their
weights afterwards and their greedy actions, within float32 tolerance. The ``"cuda"``
parameters are skipped without a CUDA device (``python -m pytest -m cuda`` runs them where
there is one); the ``"cpu"`` ones run the same checks CPU against CPU, eagerly, where equal
seeds must give equal bits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents import DQNConfig, make_dqn
from drivetrain.agents.ppo import PPOConfig, make_ppo
from drivetrain.agents.r2d2 import R2D2Config, make_r2d2
from drivetrain.agents.reinforce import ReinforceConfig, make_reinforce
from drivetrain.core import types
from drivetrain.replay.rollout import RolloutBuffer, minibatches

ON_CUDA = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
DEVICES = ["cpu", pytest.param("cuda", marks=ON_CUDA)]
# Compiled updates against the eager CPU ones on the CPU: tests/agents/test_*_compiled.py.
VARIANTS = [
    pytest.param("cpu", False, id="cpu-eager"),
    pytest.param("cuda", False, id="cuda-eager", marks=ON_CUDA),
    pytest.param("cuda", True, id="cuda-compiled", marks=ON_CUDA),
]
ROLLOUT_ENVS, ROLLOUT_STEPS = 4, 32
pytestmark = pytest.mark.usefixtures("full_float32_on_cuda")


def tolerance(device: str, compiled: bool) -> dict[str, float]:
    """Exact on the CPU without compiling; float32 reassociation anywhere else."""
    if device == "cpu" and not compiled:
        return {"rtol": 0.0, "atol": 0.0}
    return {"rtol": 1e-3, "atol": 1e-4}


def assert_same_info(a: Any, b: Any, tol: dict[str, float]) -> None:
    np.testing.assert_allclose(float(b.loss), float(a.loss), **tol)
    assert sorted(a.extra) == sorted(b.extra)
    for key, value in a.extra.items():
        np.testing.assert_allclose(
            np.asarray(b.extra[key], np.float64), np.asarray(value, np.float64), err_msg=key, **tol
        )


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, device: str, tol: dict[str, float]) -> None:
    assert all(t.device.type == device for t in b.state_dict().values())
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        np.testing.assert_allclose(y.detach().cpu().numpy(), x.detach().numpy(), err_msg=name, **tol)


# ------------------------------------------------------------------------- Q-learning
def dqn_windows(seed: int, batch: int = 16, length: int = 3) -> types.Trajectory:
    """Random windows of a 3-feature, 2-action task with episode ends and zero discounts."""
    rng = np.random.default_rng(seed)
    mid, last = int(types.StepType.MID), int(types.StepType.LAST)
    ends = rng.random((batch, length)) < 0.3
    return types.Trajectory(
        step_type=np.where(np.roll(ends, 1, axis=1), last, mid).astype(np.int32),
        observation=rng.standard_normal((batch, length, 3)).astype(np.float32),
        action=rng.integers(0, 2, (batch, length)),
        policy_info={},
        next_step_type=np.where(ends, last, mid).astype(np.int32),
        reward=rng.standard_normal((batch, length)).astype(np.float32),
        discount=np.where(ends & (rng.random((batch, length)) < 0.5), 0.0, 1.0).astype(np.float32),
    )


@pytest.mark.parametrize(("device", "compiled"), VARIANTS)
def test_dqn_on_the_device_matches_the_cpu(device: str, compiled: bool) -> None:
    env = dt.envs.CountingEnv((3, 5))
    config = DQNConfig(
        fc_layers=(32, 32), learning_rate=1e-2, n_step=2, double=True, target_update_period=1,
        target_update_tau=0.5, gradient_clipping=1.0,
    )  # fmt: skip
    cpu = make_dqn(config, env.time_step_spec(), env.action_spec(), seed=1)
    other = make_dqn(
        dataclasses.replace(config, device=device, compile=compiled),
        env.time_step_spec(),
        env.action_spec(),
        seed=1,
    )
    assert other.compiled is compiled
    tol = tolerance(device, compiled)
    for i in range(6):
        weights = np.random.default_rng(i).uniform(0.5, 1.0, 16).astype(np.float32)
        assert_same_info(cpu.train(dqn_windows(i), weights), other.train(dqn_windows(i), weights), tol)
    assert_same_weights(cpu.q_network, other.q_network, device, tol)
    assert_same_weights(cpu.target_network, other.target_network, device, tol)
    observation = dqn_windows(9).observation[:, 0]
    np.testing.assert_allclose(other.policy.q_values(observation), cpu.policy.q_values(observation), **tol)


@pytest.mark.parametrize(("device", "compiled"), VARIANTS)
def test_r2d2_on_the_device_matches_the_cpu(device: str, compiled: bool) -> None:
    env = dt.envs.CountingEnv(episode_lengths=(5, 3), truncate=(True, False))
    config = R2D2Config(
        core="lstm", hidden_size=8, fc_layers=(8,), sequence_length=4, burn_in=2, n_step=3,
        learning_rate=1e-2, target_update_period=2,
    )  # fmt: skip
    cpu = make_r2d2(config, env.time_step_spec(), env.action_spec(), seed=1)
    other = make_r2d2(
        dataclasses.replace(config, device=device, compile=compiled),
        env.time_step_spec(),
        env.action_spec(),
        seed=1,
    )
    assert other.compiled is compiled
    replay = dt.replay.UniformReplay(cpu.collect_data_spec, 400, env.batch_size, seed=0)
    dt.StepDriver(env, cpu.collect_policy, [replay.add_batch], num_steps=80).run()
    tol = tolerance(device, compiled)
    for _ in range(4):
        batch, _ = replay.sample(8, cpu.train_sequence_length)
        assert_same_info(cpu.train(batch), other.train(batch), tol)
    assert_same_weights(cpu.q_network, other.q_network, device, tol)
    time_step = env.reset()
    a = cpu.policy.action(time_step, cpu.policy.get_initial_state(env.batch_size))
    b = other.policy.action(time_step, other.policy.get_initial_state(env.batch_size))
    np.testing.assert_array_equal(b.action, a.action)


# -------------------------------------------------------------------- policy gradient
def rollouts(agent: Any, env_id: str, count: int) -> list[tuple[types.Trajectory, np.ndarray]]:
    """``count`` rollouts of ``agent``'s collect policy (an agent of its own: ``prepare`` counts rollouts)."""
    env = dt.envs.make(env_id, num_envs=ROLLOUT_ENVS, seed=0)
    buffer = RolloutBuffer(agent.collect_data_spec, ROLLOUT_ENVS)
    driver = dt.StepDriver(
        env, agent.collect_policy, [buffer.add_batch], num_steps=ROLLOUT_STEPS * ROLLOUT_ENVS
    )
    out = []
    for _ in range(count):
        driver.run()
        trajectory, trained = buffer.gather()
        out.append((trajectory, trained))
        buffer.release(agent.prepare(trajectory, trained).mask)
    env.close()
    return out


def train_both(
    cpu: Any, other: Any, data: list[tuple[types.Trajectory, np.ndarray]], tol: dict[str, float]
) -> None:
    """Both agents' epochs of minibatches on each rollout, as the training loop runs them."""
    config = cpu.config
    epochs, count = getattr(config, "num_epochs", 1), getattr(config, "num_minibatches", 1)
    for trajectory, trained in data:
        prepared = cpu.prepare(trajectory, trained), other.prepare(trajectory, trained)
        np.testing.assert_array_equal(prepared[1].mask, prepared[0].mask)
        batches = (
            minibatches(p, epochs, count, agent.minibatch_rng, sequences=False)
            for p, agent in zip(prepared, (cpu, other), strict=True)
        )
        for a, b in zip(*batches, strict=True):
            assert_same_info(cpu.train(a), other.train(b), tol)
        for agent, p in zip((cpu, other), prepared, strict=True):
            getattr(agent, "finish_rollout", lambda _: None)(p)  # PPO's observation statistics


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
@pytest.mark.parametrize(("device", "compiled"), VARIANTS)
def test_ppo_on_the_device_matches_the_cpu(device: str, env_id: str, compiled: bool) -> None:
    env = dt.envs.make(env_id, num_envs=ROLLOUT_ENVS, seed=0)
    config = PPOConfig(
        rollout_steps=ROLLOUT_STEPS, learning_rate=3e-3, num_epochs=2, num_minibatches=2, ent_coef=0.01,
        normalize_observations=env_id == "Pendulum-v1",
    )  # fmt: skip
    specs = env.time_step_spec(), env.action_spec()
    env.close()
    cpu = make_ppo(config, *specs, seed=3, planned_rollouts=3)
    other = make_ppo(
        dataclasses.replace(config, device=device, compile=compiled), *specs, seed=3, planned_rollouts=3
    )
    tol = tolerance(device, compiled)
    collector = make_ppo(config, *specs, seed=7, planned_rollouts=3)
    train_both(cpu, other, rollouts(collector, env_id, 3), tol)
    assert_same_weights(cpu.network, other.network, device, tol)


@pytest.mark.parametrize("device", DEVICES)
def test_reinforce_on_the_device_matches_the_cpu(device: str) -> None:
    env = dt.envs.make("CartPole-v1", num_envs=ROLLOUT_ENVS, seed=0)
    specs = env.time_step_spec(), env.action_spec()
    env.close()
    config = ReinforceConfig(baseline=True, learning_rate=1e-2)
    cpu = make_reinforce(config, *specs, seed=3)
    other = make_reinforce(dataclasses.replace(config, device=device), *specs, seed=3)
    tol = tolerance(device, False)
    train_both(cpu, other, rollouts(make_reinforce(config, *specs, seed=7), "CartPole-v1", 3), tol)
    assert_same_weights(cpu.network, other.network, device, tol)
