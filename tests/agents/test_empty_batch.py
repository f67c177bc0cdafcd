"""agent.train refuses an empty batch by name; a batch of boundary windows only trains on nothing.

An empty batch (no windows) is a caller's mistake: training on it gave a NaN loss. A
batch whose every window starts at a boundary (LAST -> FIRST) is what a replay can
legitimately sample: it has nothing to train on, so the loss is 0, ``num_valid`` 0, the
weights stay as they were, and ``train_step`` still counts the call.
"""

import numpy as np
import pytest
import torch

from drivetrain.agents import DQNConfig, R2D2Config
from drivetrain.agents.dqn.builder import make_dqn
from drivetrain.agents.r2d2.builder import make_r2d2
from drivetrain.core import specs, types

OBS = specs.ArraySpec((3,), np.float32, "observation")
ACTION = specs.BoundedArraySpec((), np.int64, 0, 1, "action")
FIRST, LAST = int(types.StepType.FIRST), int(types.StepType.LAST)


def dqn():
    return make_dqn(DQNConfig(fc_layers=(8,), n_step=2), types.time_step_spec(OBS), ACTION, seed=0)


def r2d2():
    config = R2D2Config(fc_layers=(8,), hidden_size=8, sequence_length=3, burn_in=1, n_step=1)
    return make_r2d2(config, types.time_step_spec(OBS), ACTION, seed=0)


def windows(agent, batch_size, boundary=False):
    batch = specs.sample(
        agent.collect_data_spec, np.random.default_rng(0), (batch_size, agent.train_sequence_length)
    )
    steps = (batch_size, agent.train_sequence_length)
    if boundary:  # every step of every window is a LAST -> FIRST boundary
        return batch._replace(
            step_type=np.full(steps, LAST, np.int32), next_step_type=np.full(steps, FIRST, np.int32)
        )
    return batch


@pytest.mark.parametrize("make", [dqn, r2d2], ids=["DQN", "R2D2"])
def test_an_empty_batch_is_refused_by_name(make):
    agent = make()
    with pytest.raises(
        ValueError, match=r"\.train: the batch is empty \(step_type shape \(0, \d+\)\); sample at least one"
    ):
        agent.train(windows(agent, 0))
    assert agent.train_step == 0


@pytest.mark.parametrize("make", [dqn, r2d2], ids=["DQN", "R2D2"])
def test_a_batch_of_boundaries_only_trains_on_nothing(make):
    agent = make()
    before = [p.detach().clone() for p in agent.q_network.parameters()]
    info = agent.train(windows(agent, 4, boundary=True))
    assert info.loss == 0.0 and info.extra["num_valid"] == 0
    assert all(np.isfinite(v) for k, v in info.extra.items() if np.isscalar(v))
    assert all(torch.equal(a, b) for a, b in zip(before, agent.q_network.parameters(), strict=True))
    assert agent.train_step == 1
