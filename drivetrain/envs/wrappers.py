"""Gymnasium wrappers that drivetrain's ``make`` can apply to each environment.

:class:`MaskVelocity` turns a classic-control task into a partially observable one by
dropping the velocity entries of its observation, so that a memoryless agent cannot
solve it and a recurrent one must infer the velocities from consecutive observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np

__all__ = ["VELOCITY_FREE_INDICES", "MaskVelocity"]

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
