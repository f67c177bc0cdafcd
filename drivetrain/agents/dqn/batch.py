"""From a sampled window batch to the NumPy inputs of the DQN loss.

``batch`` is a :class:`~drivetrain.core.Trajectory` of arrays ``[B, n + 1, ...]`` as
``replay.sample(B, num_steps=n + 1)`` returns it. Rewards are clipped to
``[-reward_clip, reward_clip]`` (if set) and then multiplied by ``reward_scale``, per
step, before the n-step sums of :func:`drivetrain.replay.nstep.n_step_transitions`.
Windows that start at a boundary (``step_type[:, 0] == LAST``) are invalid: weight 0.

For ``n_step == 1`` the transition is written out directly (reward ``r_0``, discount
``γ d_0``, next observation ``o_1``): the same values as ``n_step_transitions``, with
less per-call overhead (about a tenth of the time; it is on every update).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from drivetrain.core import nest, types
from drivetrain.replay.nstep import n_step_transitions

__all__ = ["DQNInputs", "checked_weights", "make_inputs"]

_LAST = int(types.StepType.LAST)


class DQNInputs(NamedTuple):
    """NumPy inputs of one DQN update."""

    observation: Any
    """Observations ``o_0`` ``[B, ...]``."""
    action: np.ndarray
    """Action indices ``a_0 - action_spec.minimum``, int64 ``[B]``."""
    next_observation: Any
    """Observations ``o_m`` to bootstrap from ``[B, ...]``."""
    scalars: np.ndarray
    """float32 ``[3, B]``: n-step reward, n-step discount, weight (importance weight × valid)."""
    valid: np.ndarray
    """bool ``[B]``: False for windows that start at a boundary."""
    num_valid: int


def make_inputs(
    batch: types.Trajectory,
    gamma: float,
    n_step: int,
    action_minimum: int,
    reward_scale: float = 1.0,
    reward_clip: float | None = None,
    weights: np.ndarray | None = None,
) -> DQNInputs:
    """The inputs of the loss for windows ``[B, n_step + 1]`` (see the module docstring)."""
    reward = np.asarray(batch.reward, np.float32)
    if reward_clip is not None:
        reward = np.clip(reward, -reward_clip, reward_clip)
    if reward_scale != 1.0:
        reward = reward * np.float32(reward_scale)
    if n_step == 1:
        observation, action, next_observation, valid = _one_step(batch)
        batch_size = valid.shape[0]
        scalars = np.empty((3, batch_size), np.float32)
        scalars[0] = reward[:, 0]
        np.multiply(np.asarray(batch.discount)[:, 0], gamma, out=scalars[1])
    else:
        nstep = n_step_transitions(batch._replace(reward=reward), gamma, n_step)
        observation, action, next_observation, valid = (
            nstep.observation,
            nstep.action,
            nstep.next_observation,
            nstep.valid,
        )
        batch_size = valid.shape[0]
        scalars = np.empty((3, batch_size), np.float32)
        scalars[0] = nstep.reward
        scalars[1] = nstep.discount
    scalars[2] = valid
    if weights is not None:
        scalars[2] *= checked_weights("DQN.train", weights, batch_size)
    action = np.asarray(action, np.int64)
    if action_minimum:
        action = action - action_minimum
    return DQNInputs(observation, action, next_observation, scalars, valid, int(np.count_nonzero(valid)))


def _one_step(batch: types.Trajectory) -> tuple[Any, Any, Any, np.ndarray]:
    """Observation, action, next observation and valid mask of ``[B, 2]`` windows."""
    if isinstance(batch.observation, np.ndarray):
        observation, next_observation = batch.observation[:, 0], batch.observation[:, 1]
    else:
        observation = nest.map_structure(lambda x: x[:, 0], batch.observation)
        next_observation = nest.map_structure(lambda x: x[:, 1], batch.observation)
    action = np.asarray(batch.action)[:, 0]
    valid = np.asarray(batch.step_type)[:, 0] != _LAST
    return observation, action, next_observation, valid


def checked_weights(owner: str, weights: Any, batch_size: int) -> np.ndarray:
    """Importance weights ``[batch_size]``, finite and non-negative, as float32; a ValueError
    naming ``owner`` otherwise (a ``[B, 1]`` or ``[1]`` array would broadcast into a wrong loss)."""
    w = np.asarray(weights, np.float32)
    if w.shape != (batch_size,):
        raise ValueError(f"{owner}: weights must have shape ({batch_size},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{owner}: weights must be finite and non-negative")
    return w
