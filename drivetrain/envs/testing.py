"""Small deterministic environments for tests and examples.

- :class:`CountingEnv`: a batched drivetrain :class:`Environment` (NumPy only).
- :class:`ScriptedGymEnv`: a single Gymnasium environment whose episodes end by
  termination and/or truncation at chosen steps, to test adapters such as
  :func:`drivetrain.envs.make`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

from drivetrain.core import specs, types
from drivetrain.core.environment import Environment

__all__ = ["CountingEnv", "ScriptedGymEnv"]


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

    def _reset(self) -> types.TimeStep:
        self._t[:] = 0
        self._episode[:] = 0
        self._last[:] = False
        return types.restart(self._obs())

    def _step(self, action: Any) -> types.TimeStep:
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


class ScriptedGymEnv(gymnasium.Env):
    """A Gymnasium environment whose episode ``k`` lasts ``lengths[k % len(lengths)]`` steps.

    Episode ``k`` ends with ``terminated = terminate[k % ...]`` and ``truncated =
    truncate[k % ...]`` (both may be set; at least one must be). Observation (float32):
    ``[t, episode, last_action, noise]`` where ``t`` counts the steps of the episode (0
    after reset), ``last_action`` is the last action applied (-1 after reset) and
    ``noise`` is drawn from ``self.np_random`` at each reset, so seeding matters.
    Reward: ``action + 1``. Every action applied is appended to ``actions``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        lengths: Sequence[int] = (3,),
        terminate: Sequence[bool] = (True,),
        truncate: Sequence[bool] = (False,),
        num_actions: int = 3,
    ):
        self._lengths = [int(n) for n in lengths]
        self._terminate = [bool(x) for x in terminate]
        self._truncate = [bool(x) for x in truncate]
        if min(self._lengths) < 1:
            raise ValueError(f"ScriptedGymEnv: episode lengths must be >= 1, got {list(lengths)}")
        n = max(len(self._lengths), len(self._terminate), len(self._truncate))
        for k in range(n):
            if not (self._terminate[k % len(self._terminate)] or self._truncate[k % len(self._truncate)]):
                raise ValueError(f"ScriptedGymEnv: episode {k} must end by termination or truncation")
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(num_actions)
        self.actions: list[int] = []
        self._episode = -1
        self._t = 0
        self._noise = 0.0

    def _obs(self, last_action: int) -> np.ndarray:
        return np.array([self._t, self._episode, last_action, self._noise], np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._episode += 1
        self._t = 0
        self._noise = float(self.np_random.uniform())
        return self._obs(-1), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        self.actions.append(a)
        self._t += 1
        k = self._episode
        ended = self._t >= self._lengths[k % len(self._lengths)]
        terminated = ended and self._terminate[k % len(self._terminate)]
        truncated = ended and self._truncate[k % len(self._truncate)]
        return self._obs(a), float(a + 1), terminated, truncated, {}
