"""Small deterministic batched environments for tests and examples (NumPy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from drivetrain.core import specs, types
from drivetrain.core.environment import Environment

__all__ = ["CountingEnv"]


class CountingEnv(Environment):
    """``B`` environments whose episodes last ``episode_lengths[i]`` steps.

    Observation: ``[env_index, t, episode_index]`` as float32, where ``t`` counts the
    steps of the current episode (0 at FIRST). Reward: ``action + 1`` (so a test can
    tell which action was applied). An episode of environment ``i`` ends after
    ``episode_lengths[i]`` steps, by termination (discount 0) unless ``truncate[i]``
    (discount 1). The step after LAST returns FIRST and ignores the action.
    """

    def __init__(
        self,
        episode_lengths: Sequence[int] = (3,),
        truncate: Sequence[bool] | bool = False,
        num_actions: int = 2,
    ):
        self._lengths = np.asarray(episode_lengths, np.int64)
        if np.any(self._lengths < 1):
            raise ValueError(f"CountingEnv: episode lengths must be >= 1, got {list(episode_lengths)}")
        b = len(self._lengths)
        self._truncate = np.broadcast_to(np.asarray(truncate, bool), (b,)).copy()
        self._obs_spec = specs.ArraySpec((3,), np.float32, "observation")
        self._act_spec = specs.BoundedArraySpec((), np.int64, 0, num_actions - 1, "action")
        self._t = np.zeros(b, np.int64)
        self._episode = np.zeros(b, np.int64)
        self._last = np.ones(b, bool)
        self.actions_applied: list[np.ndarray] = []

    @property
    def batch_size(self) -> int:
        return len(self._lengths)

    def observation_spec(self) -> specs.ArraySpec:
        return self._obs_spec

    def action_spec(self) -> specs.BoundedArraySpec:
        return self._act_spec

    def _obs(self) -> np.ndarray:
        return np.stack([np.arange(self.batch_size), self._t, self._episode], axis=1).astype(np.float32)

    def reset(self) -> types.TimeStep:
        self._t[:] = 0
        self._episode[:] = 0
        self._last[:] = False
        return types.restart(self._obs())

    def step(self, action: Any) -> types.TimeStep:
        action = np.asarray(action)
        specs.validate(self._act_spec, action, outer_ndim=1, name="action")
        restarting = self._last.copy()
        self._episode[restarting] += 1
        self._t[restarting] = 0
        self._t[~restarting] += 1
        self.actions_applied.append(np.where(restarting, -1, action))
        ended = ~restarting & (self._t >= self._lengths)
        self._last = ended
        step_type = np.where(
            restarting, types.StepType.FIRST, np.where(ended, types.StepType.LAST, types.StepType.MID)
        )
        reward = np.where(restarting, 0.0, action + 1.0).astype(np.float32)
        discount = np.where(ended & ~self._truncate, 0.0, 1.0).astype(np.float32)
        return types.TimeStep(step_type.astype(np.int32), reward, discount, self._obs())
