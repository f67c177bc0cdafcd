"""Any Gymnasium ``VectorEnv`` in next-step auto-reset mode as a batched :class:`Environment`.

``from_vector_env(vector_env, seed)`` adapts ``gymnasium.vector.SyncVectorEnv``,
``AsyncVectorEnv`` or a vectorised implementation (``vectorization_mode=
"vector_entry_point"``), provided it auto-resets on the *next* step
(``AutoresetMode.NEXT_STEP``, Gymnasium's default), which is drivetrain's protocol:

- the step after a ``terminated`` or ``truncated`` one resets that environment, ignores
  its action and returns FIRST with reward 0 and discount 1;
- ``terminated`` -> LAST with discount 0 (it wins when both are set), ``truncated`` ->
  LAST with discount 1, otherwise MID with discount 1.

Observations and rewards pass :mod:`drivetrain.envs.checks` (exact shapes, dtypes that
convert exactly, integer ranges, finite values; ``reset`` -> ``(observation, info)``,
``step`` -> five values) before they are copied into the time step.

The first :meth:`~VectorEnvAdapter.reset` calls ``vector_env.reset(seed=seed)`` (so
environment ``i`` gets ``seed + i``) and seeds ``vector_env.action_space``; later resets
do not re-seed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from drivetrain.core import types
from drivetrain.core.environment import Environment
from drivetrain.envs.actions import ActionChecker
from drivetrain.envs.checks import ObservationChecker, RewardChecker, reset_observation, step_api_error
from drivetrain.envs.spaces import spec_from_space

__all__ = ["VectorEnvAdapter", "from_vector_env"]


class VectorEnvAdapter(Environment):
    """A Gymnasium ``VectorEnv`` (next-step auto-reset) as a drivetrain :class:`Environment`."""

    def __init__(self, vector_env: Any, seed: int | None = None):
        from gymnasium.vector import AutoresetMode

        mode = vector_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP and mode != AutoresetMode.NEXT_STEP.value:
            raise ValueError(
                f"from_vector_env: {type(vector_env).__name__} uses autoreset_mode={mode}; drivetrain needs "
                "AutoresetMode.NEXT_STEP (create it with "
                "autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP)"
            )
        self._vec = vector_env
        self._seed = seed
        self._n = int(vector_env.num_envs)
        self._observation_spec = spec_from_space(vector_env.single_observation_space, "observation")
        self._action_spec = spec_from_space(vector_env.single_action_space, "action")
        self._actions = ActionChecker(self._action_spec, self._n)
        self._observations = ObservationChecker(self._observation_spec, self._n)
        self._rewards = RewardChecker(self._n)
        self._restart = np.ones(self._n, bool)
        self._seeded = False
        self._closed = False

    @property
    def batch_size(self) -> int:
        return self._n

    @property
    def vector_env(self) -> Any:
        """The wrapped Gymnasium vector environment."""
        return self._vec

    def observation_spec(self) -> Any:
        return self._observation_spec

    def action_spec(self) -> Any:
        return self._action_spec

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``vector_env.<method>(...)``; a worker process that died is a RuntimeError naming it."""
        try:
            return getattr(self._vec, method)(*args, **kwargs)
        except (EOFError, BrokenPipeError, ConnectionResetError) as e:
            processes = getattr(self._vec, "processes", [])
            deadline = time.monotonic() + 2.0  # the pipe can close before the process is reaped
            while not any(not p.is_alive() for p in processes) and time.monotonic() < deadline:
                time.sleep(0.01)
            dead = [f"{i} (exit code {p.exitcode})" for i, p in enumerate(processes) if not p.is_alive()]
            raise RuntimeError(
                f"{type(self._vec).__name__}.{method}: the subprocess of environment "
                f"{', '.join(dead) or '?'} is gone ({type(e).__name__}); the environment crashed or was killed"
            ) from e

    def _reset(self) -> types.TimeStep:
        seed = self._seed if not self._seeded else None
        if seed is not None:
            self._vec.action_space.seed(seed)  # for code that samples vector_env.action_space
        self._seeded = True
        obs = reset_observation(self._call("reset", seed=seed))
        self._restart = np.zeros(self._n, bool)
        # A copy in the spec's dtype: vector envs may reuse their buffers (copy=False).
        return types.restart(self._observations.batched(obs), self._n)

    def _step(self, action: Any) -> types.TimeStep:
        if not self._seeded:
            raise RuntimeError("from_vector_env: call reset() before step()")
        action = self._actions(action)
        result = self._call("step", action)
        try:
            obs, reward, terminated, truncated, _ = result
        except (TypeError, ValueError):
            raise step_api_error(result) from None
        terminated = np.asarray(terminated, bool)
        ended = terminated | np.asarray(truncated, bool)
        first = self._restart
        # FIRST = 0, MID = 1, LAST = 2; Gymnasium reports neither flag on a reset step.
        step_type = (1 + ended.astype(np.int32) - first).astype(types.STEP_TYPE_DTYPE)
        reward = self._rewards.from_array(reward, first)
        discount = np.where(terminated & ~first, 0.0, 1.0).astype(types.REWARD_DTYPE)
        self._restart = ended & ~first
        return types.TimeStep(step_type, reward, discount, self._observations.batched(obs))

    def render(self, index: int = 0) -> Any:
        """Environment ``index``'s frame (of ``vector_env.render()``, which renders them all), as
        :meth:`GymnasiumEnv.render <drivetrain.envs.gymnasium_env.GymnasiumEnv.render>` gives it."""
        frames = self._vec.render()
        return frames[index] if isinstance(frames, (tuple, list)) else frames

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._vec.close()
            except (EOFError, BrokenPipeError, ConnectionResetError):
                # A worker died: the call it was in cannot complete (Gymnasium waits for it again
                # in close), so the others are terminated instead.
                from gymnasium.vector.async_vector_env import AsyncState

                self._vec._state = AsyncState.DEFAULT
                self._vec.close(terminate=True)


def from_vector_env(vector_env: Any, seed: int | None = None) -> VectorEnvAdapter:
    """Adapts a Gymnasium ``VectorEnv`` in ``AutoresetMode.NEXT_STEP`` into a batched Environment.

    Args:
      vector_env: e.g. ``gymnasium.make_vec("CartPole-v1", 8)`` or an ``AsyncVectorEnv``.
      seed: the first reset calls ``vector_env.reset(seed=seed)``; environment ``i`` gets
        ``seed + i``. ``None`` leaves seeding to the vector environment.

    Raises:
      ValueError: if the vector environment does not auto-reset on the next step.
    """
    return VectorEnvAdapter(vector_env, seed)
