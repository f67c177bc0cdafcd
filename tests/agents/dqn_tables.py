"""Helpers for the DQN tests: a tabular Q-network with known q-values and hand-made windows."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from drivetrain.agents import DQN
from drivetrain.core import specs, types

FIRST, MID, LAST = (int(t) for t in types.StepType)

OBS = specs.ArraySpec((1,), np.float32, "observation")
TS_SPEC = types.time_step_spec(OBS)
ACTIONS = specs.BoundedArraySpec((), np.int64, 0, 1, "action")

# q(s, a) of the tests: one row per state.
TABLE = [
    [1.0, 2.0],  # s0
    [3.0, 0.5],  # s1
    [-1.0, 4.0],  # s2
    [5.0, -2.0],  # s3
]


class TableQ(nn.Module):
    """``q(s) = table[s]``; the observation ``[B, 1]`` holds the state index."""

    def __init__(self, table=TABLE):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, observation):
        return self.table[observation[:, 0].long()]


def make_agent(table=TABLE, lr=0.0, action_spec=ACTIONS, optimizer=torch.optim.SGD, **kwargs) -> DQN:
    """A DQN on ``TableQ`` whose target network is never updated unless asked (period 10**9)."""
    net = TableQ(table)
    kwargs.setdefault("target_update_period", 10**9)
    return DQN(TS_SPEC, action_spec, net, optimizer(net.parameters(), lr=lr), seed=0, **kwargs)


def windows(*rows, info_actions=2):
    """A window batch ``[B, L]`` from rows of steps ``(step_type, state, action, next_step_type, reward, discount)``."""
    steps = np.array(rows, dtype=np.float64)  # [B, L, 6]
    b, length = steps.shape[:2]
    return types.Trajectory(
        step_type=steps[..., 0].astype(np.int32),
        observation=steps[..., 1:2].astype(np.float32),
        action=steps[..., 2].astype(np.int64),
        policy_info={"q_values": np.zeros((b, length, info_actions), np.float32)},
        next_step_type=steps[..., 3].astype(np.int32),
        reward=steps[..., 4].astype(np.float32),
        discount=steps[..., 5].astype(np.float32),
    )


def table(agent: DQN) -> np.ndarray:
    return agent.q_network.table.detach().numpy().copy()
