"""Gymnasium wrappers that drivetrain's ``make`` can apply to each environment.

:class:`MaskVelocity` turns a classic-control task into a partially observable one by
dropping the velocity entries of its observation, so that a memoryless agent cannot
solve it and a recurrent one must infer the velocities from consecutive observations.

:class:`ActionRepeat` and :class:`ActionOffset` are TF-Agents' wrappers of the same names
that Gymnasium lacks (before 1.3 for the first); the others of TF-Agents have Gymnasium
counterparts (``ClipAction``, ``DiscretizeAction``, ``FrameStackObservation``,
``RecordEpisodeStatistics``, ``TimeLimit``: see ``docs/from_tf_agents.md``). Pass any of
them to ``dt.envs.make(..., wrappers=[partial(ActionRepeat, times=4)])``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

__all__ = ["VELOCITY_FREE_INDICES", "ActionOffset", "ActionRepeat", "CheckedOutputs", "MaskVelocity"]

#: Observation indices that :class:`MaskVelocity` keeps, per environment id.
VELOCITY_FREE_INDICES: dict[str, tuple[int, ...]] = {
    # [cart position, cart velocity, pole angle, pole angular velocity]
    "CartPole-v0": (0, 2),
    "CartPole-v1": (0, 2),
    # [position, velocity]
    "MountainCar-v0": (0,),
    "MountainCarContinuous-v0": (0,),
    # [cos θ, sin θ, angular velocity]
    "Pendulum-v1": (0, 1),
    # [cos θ1, sin θ1, cos θ2, sin θ2, θ1 velocity, θ2 velocity]
    "Acrobot-v1": (0, 1, 2, 3),
}


class MaskVelocity(gymnasium.ObservationWrapper):
    """Keeps only the position-like entries of a 1-D Box observation.

    Args:
      env: the environment; its id (``env.spec.id``) must be a key of
        :data:`VELOCITY_FREE_INDICES` unless ``keep`` is given.
      keep: the observation indices to keep, for environments not in the table.

    For CartPole-v1 the observation becomes ``[cart position, pole angle]``.
    """

    def __init__(self, env: gymnasium.Env, keep: Sequence[int] | None = None):
        super().__init__(env)
        space = env.observation_space
        if keep is None:
            env_id = env.spec.id if env.spec is not None else None
            if env_id not in VELOCITY_FREE_INDICES:
                raise ValueError(
                    "MaskVelocity: does not know which observation entries of "
                    f"{env_id or type(env.unwrapped).__name__} "
                    f"are velocities; known environments: {sorted(VELOCITY_FREE_INDICES)} "
                    "(pass keep=[indices] to choose the entries to keep)"
                )
            keep = VELOCITY_FREE_INDICES[env_id]
        if not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"MaskVelocity: needs a 1-D Box observation space, got {space}")
        self._keep = np.asarray(keep, np.intp)
        if self._keep.size == 0 or self._keep.min() < 0 or self._keep.max() >= space.shape[0]:
            raise ValueError(f"MaskVelocity: keep={list(keep)} is not a non-empty set of indices of {space}")
        self.observation_space = gymnasium.spaces.Box(
            space.low[self._keep], space.high[self._keep], dtype=space.dtype
        )

    def observation(self, observation: Any) -> Any:
        return observation[self._keep]


class ActionRepeat(gymnasium.Wrapper):
    """Plays each action ``times`` times; the rewards add up (TF-Agents' ``ActionRepeat``).

    The repetition stops early when the episode terminates or is truncated; the last
    observation, terminated/truncated flags and info are returned. Gymnasium 1.3 added the
    same wrapper as ``gymnasium.wrappers.RepeatAction(env, num_repeats)``.
    """

    def __init__(self, env: gymnasium.Env, times: int):
        if isinstance(times, bool) or not isinstance(times, (int, np.integer)) or times < 1:
            raise ValueError(f"ActionRepeat: times must be an int >= 1, got {times!r}")
        super().__init__(env)
        self.times = int(times)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.times):
            observation, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return observation, total, terminated, truncated, info


class ActionOffset(gymnasium.ActionWrapper):
    """Discrete actions from 0 (TF-Agents' ``ActionOffsetWrapper``).

    A ``Discrete(n, start=s)`` (or ``MultiDiscrete`` with ``start``) action space becomes
    one that starts at 0; the wrapper adds ``s`` back before stepping the environment.
    (drivetrain's specs keep a non-zero minimum and its policies and Q-networks honour it,
    so this is needed only by code that assumes actions from 0.)
    """

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        space = env.action_space
        if isinstance(space, gymnasium.spaces.Discrete):
            self._start: Any = int(space.start)
            self.action_space = gymnasium.spaces.Discrete(int(space.n))
        elif isinstance(space, gymnasium.spaces.MultiDiscrete):
            self._start = np.asarray(space.start)
            self.action_space = gymnasium.spaces.MultiDiscrete(space.nvec, dtype=space.dtype)
        else:
            raise ValueError(f"ActionOffset: needs a Discrete or MultiDiscrete action space, got {space}")

    def action(self, action: Any) -> Any:
        return action + self._start


class CheckedOutputs(gymnasium.Wrapper):
    """Environment ``index``'s observations and rewards checked where it runs, by
    :mod:`drivetrain.envs.checks` (exact shapes, dtypes that convert exactly, integer ranges,
    finite values), passed on unchanged.

    ``make`` puts it outermost on the environments of its Gymnasium vector backends: their
    batching writes each observation into a buffer of the space's dtype and shape, which would
    cast ``-1`` to 255 for a ``uint8`` space or broadcast a scalar before the adapter's own
    checks saw it.
    """

    def __init__(self, env: Any, index: int = 0):
        from drivetrain.envs.checks import ObservationChecker, RewardChecker
        from drivetrain.envs.spaces import spec_from_space

        super().__init__(env)
        self.index = int(index)
        spec = spec_from_space(env.observation_space, "observation")
        self._observations = ObservationChecker(spec, 1, first_index=self.index)
        self._rewards = RewardChecker(1, first_index=self.index)

    def reset(self, **kwargs: Any) -> Any:
        from drivetrain.envs.checks import reset_observation

        result = self.env.reset(**kwargs)
        self._observations.batch([reset_observation(result, self.index)])
        return result

    def step(self, action: Any) -> Any:
        from drivetrain.envs.checks import step_api_error

        result = self.env.step(action)
        if not (isinstance(result, tuple) and len(result) == 5):
            raise step_api_error(result, self.index)
        self._observations.batch([result[0]])
        self._rewards.from_list([result[1]])
        return result
