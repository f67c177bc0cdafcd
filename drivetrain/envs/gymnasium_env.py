"""A batch of Gymnasium environments stepped in one lean loop (``make(..., backend="sync")``).

:class:`GymnasiumEnv` has the semantics of ``gymnasium.vector.SyncVectorEnv`` with
``AutoresetMode.NEXT_STEP`` (a test checks that both give identical time steps), without
its per-step overhead: it steps each environment, writes the observations into a fresh
batch array, and builds the :class:`~drivetrain.core.types.TimeStep` with three small
``np.array`` calls.

Per environment ``i``::

    reset()       -> env_i.reset(seed=seed + i) (and env_i.action_space.seed(seed + i)) the
                     first time, env_i.reset() later:
                     FIRST, reward 0, discount 1
    step(action)  -> after LAST: env_i.reset(), FIRST, reward 0, discount 1, action ignored
                     else env_i.step(action[i]):
                       terminated            -> LAST, discount 0 (termination wins)
                       truncated             -> LAST, discount 1
                       neither               -> MID,  discount 1

Rewards are float32 ``[B]``, step types int32 ``[B]``, discounts float32 ``[B]``;
observations follow :func:`~drivetrain.envs.spaces.spec_from_space` of the first
environment's observation space. Gymnasium's ``info`` dicts are dropped.

What the environments return is checked by :mod:`drivetrain.envs.checks` before it is
batched: the Gymnasium API (``reset`` -> ``(observation, info)``, ``step`` -> five
values), each observation's exact shape, dtype and integer range, finite observations
and rewards; a violation raises :class:`~drivetrain.envs.checks.EnvOutputError` naming
the field and the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from drivetrain.core import types
from drivetrain.core.environment import Environment
from drivetrain.envs import snapshots
from drivetrain.envs.actions import ActionChecker
from drivetrain.envs.checks import ObservationChecker, RewardChecker, reset_observation, step_api_error
from drivetrain.envs.spaces import spec_from_space

__all__ = ["GymnasiumEnv"]

_FIRST = int(types.StepType.FIRST)
_MID = int(types.StepType.MID)
_LAST = int(types.StepType.LAST)
_STEP_TYPE = types.STEP_TYPE_DTYPE
_REWARD = types.REWARD_DTYPE


class GymnasiumEnv(Environment):
    """``len(env_fns)`` Gymnasium environments as one batched :class:`Environment`.

    Args:
      env_fns: zero-argument callables, each returning a ``gymnasium.Env``; all must
        have the same observation and action spaces.
      seed: environment ``i`` is reset with ``seed + i`` at the first :meth:`reset`
        (Gymnasium's vector convention); ``None`` seeds from the OS.
    """

    def __init__(self, env_fns: Sequence[Callable[[], Any]], seed: int | None = None):
        if len(env_fns) < 1:
            raise ValueError("GymnasiumEnv: needs at least one environment factory")
        self._envs = [fn() for fn in env_fns]
        self._seed = seed
        first = self._envs[0]
        for i, env in enumerate(self._envs):
            if env.observation_space != first.observation_space or env.action_space != first.action_space:
                raise ValueError(
                    f"GymnasiumEnv: environment {i} has spaces ({env.observation_space}, "
                    f"{env.action_space}) but environment 0 has ({first.observation_space}, "
                    f"{first.action_space}); all environments of a batch must match"
                )
        self._observation_spec = spec_from_space(first.observation_space, "observation")
        self._action_spec = spec_from_space(first.action_space, "action")
        self._actions = ActionChecker(self._action_spec, len(self._envs))
        self._observations = ObservationChecker(self._observation_spec, len(self._envs))
        self._rewards = RewardChecker(len(self._envs))
        self._all_mid = np.full(len(self._envs), _MID, _STEP_TYPE)
        self._all_ones = np.ones(len(self._envs), _REWARD)
        self._restart = [True] * len(self._envs)  # environment i starts an episode at its next step
        self._seeded = False
        self._closed = False

    # ------------------------------------------------------------------ protocol
    @property
    def batch_size(self) -> int:
        return len(self._envs)

    @property
    def envs(self) -> list[Any]:
        """The Gymnasium environments (for their attributes; do not step them directly)."""
        return self._envs

    def observation_spec(self) -> Any:
        return self._observation_spec

    def action_spec(self) -> Any:
        return self._action_spec

    def _reset(self) -> types.TimeStep:
        """Resets every environment; the first call seeds environment ``i`` with ``seed + i``."""
        seeds: list[int | None]
        if not self._seeded and self._seed is not None:
            seeds = [self._seed + i for i in range(self.batch_size)]
            for env, s in zip(self._envs, seeds, strict=True):
                env.action_space.seed(s)  # for code that samples env.action_space
        else:
            seeds = [None] * self.batch_size
        self._seeded = True
        observations = [
            reset_observation(env.reset(seed=s), i)
            for i, (env, s) in enumerate(zip(self._envs, seeds, strict=True))
        ]
        self._restart = [False] * self.batch_size
        return types.restart(self._observations.batch(observations), self.batch_size)

    def _step(self, action: Any) -> types.TimeStep:
        """Steps every environment (or restarts those whose last step was LAST)."""
        if not self._seeded:
            raise RuntimeError("GymnasiumEnv: call reset() before step()")
        per_env = self._actions.check_and_split(action)
        restart = self._restart
        rewards = [0.0] * len(restart)
        observations: list[Any] = [None] * len(restart)
        firsts: list[int] = []
        lasts: list[tuple[int, bool]] = []  # (index, terminated)
        for i, env in enumerate(self._envs):
            if restart[i]:
                observations[i] = reset_observation(env.reset(), i)
                restart[i] = False
                firsts.append(i)
            else:
                result = env.step(per_env[i])
                try:
                    observations[i], rewards[i], terminated, truncated, _ = result
                except (TypeError, ValueError):
                    raise step_api_error(result, i) from None
                if terminated or truncated:
                    restart[i] = True
                    lasts.append((i, bool(terminated)))
        # Copies of constant arrays are cheaper than arrays built from lists; most steps are all MID.
        step_type = self._all_mid.copy()
        discount = self._all_ones.copy()
        for i in firsts:
            step_type[i] = _FIRST
        for i, terminated in lasts:
            step_type[i] = _LAST
            if terminated:  # termination wins over truncation
                discount[i] = 0.0
        return types.TimeStep(
            step_type, self._rewards.from_list(rewards), discount, self._observations.batch(observations)
        )

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The environments' full state, to resume a run exactly where it stopped.

        Each environment is saved by :func:`drivetrain.envs.snapshots.dump`: pickled, or for
        ALE games the wrappers pickled and the emulator's state cloned. Raises
        :class:`TypeError` for environments whose state cannot be captured (other
        ``EzPickle`` environments, e.g. MuJoCo, which would silently restart).
        """
        return {
            "envs": [snapshots.dump(env) for env in self._envs],
            "restart": list(self._restart),
            "seeded": self._seeded,
            "current_time_step": self._current_time_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` into the existing environment objects (their identity is kept)."""
        if len(state["envs"]) != self.batch_size:
            raise ValueError(
                f"GymnasiumEnv.load_state_dict: state of {len(state['envs'])} environments, "
                f"this batch has {self.batch_size}"
            )
        for env, blob in zip(self._envs, state["envs"], strict=True):
            snapshots.load_into(env, blob)
        self._restart = [bool(r) for r in state["restart"]]
        self._seeded = bool(state["seeded"])
        self._current_time_step = state.get("current_time_step")

    def render(self, index: int = 0) -> Any:
        """``envs[index].render()`` (pass ``render_mode=...`` to :func:`~drivetrain.envs.make`)."""
        return self._envs[index].render()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for env in self._envs:
                env.close()
