"""DQN and R2D2 refuse a NaN or infinite loss before their optimizer step, eager and compiled:
a NonFiniteLossError naming the train step, and the agent exactly as it was (weights, target,
optimizer, train step), so that training on goes on as if the batch had never come."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents import DQNConfig, make_dqn
from drivetrain.agents.loss_info import NonFiniteLossError
from drivetrain.agents.r2d2 import R2D2Config, make_r2d2

# Polyak averaging after every step: inside the compiled graph, so its refusal is tested too.
TARGET = dict(learning_rate=1e-2, target_update_period=1, target_update_tau=0.3)
BUILDERS = {
    "dqn": lambda spec, actions, compile: make_dqn(
        DQNConfig(fc_layers=(8,), n_step=2, compile=compile, **TARGET), spec, actions, seed=1
    ),
    "r2d2": lambda spec, actions, compile: make_r2d2(
        R2D2Config(hidden_size=8, fc_layers=(8,), sequence_length=3, burn_in=1, compile=compile, **TARGET),
        spec,
        actions,
        seed=1,
    ),
}


def make(kind: str, compile: bool):
    env = dt.envs.CountingEnv(episode_lengths=(5, 3), truncate=(True, False))
    return BUILDERS[kind](env.time_step_spec(), env.action_spec(), compile)


def batches(kind: str, n: int) -> list:
    env = dt.envs.CountingEnv(episode_lengths=(5, 3), truncate=(True, False))
    agent = make(kind, False)
    replay = dt.replay.UniformReplay(agent.collect_data_spec, 200, env.batch_size, seed=0)
    dt.StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=60).run()
    return [replay.sample(8, agent.train_sequence_length)[0] for _ in range(n)]


def tensors(agent) -> list[torch.Tensor]:
    """Everything a step could change: both networks' weights and the optimizer's state."""
    out = [t.detach().clone() for t in agent.q_network.state_dict().values()]
    out += [t.detach().clone() for t in agent.target_network.state_dict().values()]
    for state in agent.optimizer.state_dict()["state"].values():
        out += [v.clone() for v in state.values()]
    return out


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf * 0 in the n-step sums
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_a_non_finite_loss_is_refused_and_changes_nothing(kind, compile):
    good = batches(kind, 4)
    bad = good[3]._replace(reward=np.full_like(good[3].reward, np.inf))
    agent, reference = make(kind, compile), make(kind, compile)
    for batch in good[:3]:
        agent.train(batch)
        reference.train(batch)
    before = tensors(agent)

    with pytest.raises(NonFiniteLossError, match=r"\.train: the loss of train step 4 is (nan|inf)") as error:
        agent.train(bad)
    assert error.value.train_step == 4 and not math.isfinite(error.value.loss)
    assert agent.train_step == 3
    after = tensors(agent)
    assert len(after) == len(before) and all(torch.equal(a, b) for a, b in zip(after, before, strict=True))

    # On as if the batch had never come: the same loss and the same weights, bit for bit.
    info, expected = agent.train(good[3]), reference.train(good[3])
    assert info.loss == expected.loss and math.isfinite(info.loss)
    assert agent.train_step == reference.train_step == 4
    assert all(torch.equal(a, b) for a, b in zip(tensors(agent), tensors(reference), strict=True))


def test_a_finite_float64_loss_above_float32s_range_reaches_the_host_finite():
    from drivetrain.agents.loss_info import host_values

    big = torch.tensor([1e39, 2.0, -1e40], dtype=torch.float64)
    values = host_values(big)
    assert values.dtype == np.float64 and np.isfinite(values).all() and values[0] == 1e39
    assert host_values(torch.tensor([1.5, 2.5], dtype=torch.float16)).dtype == np.float32
