"""Time steps, policy steps and trajectories: what the driver moves.

Everything is **batched**: each field has a leading axis of size ``B`` (the number of
environments), even when ``B == 1``.

Protocol of a time step sequence for one environment::

    FIRST (reward 0, discount 1) -> MID ... MID -> LAST -> FIRST -> ...

- Termination (the MDP ended): ``LAST`` with discount 0.
- Truncation (a time limit cut the episode): ``LAST`` with discount 1, so targets
  still bootstrap from the last observation.
- After ``LAST``, the next ``step(action)`` returns ``FIRST`` of a new episode and
  ignores the action.

A :class:`Trajectory` is one transition: the time step's type and observation, the
action taken, the policy's info, and the *next* time step's type, reward and discount.
A trajectory whose ``step_type`` is ``LAST`` (so ``next_step_type`` is ``FIRST``) is a
**boundary**: it is stored so that windows stay contiguous, and never trained on.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import numpy as np

from drivetrain.core import specs as specs_lib

__all__ = [
    "PolicyStep",
    "StepType",
    "TimeStep",
    "Trajectory",
    "from_transition",
    "restart",
    "termination",
    "time_step_spec",
    "trajectory_spec",
    "transition",
    "truncation",
]

STEP_TYPE_DTYPE = np.int32
REWARD_DTYPE = np.float32


class StepType(enum.IntEnum):
    """Position of a time step in its episode."""

    FIRST = 0
    MID = 1
    LAST = 2


class TimeStep(NamedTuple):
    """What an environment emits: batched ``step_type``, ``reward``, ``discount``, ``observation``."""

    step_type: Any  # np.ndarray [B] int32 (or a spec, in a time step spec)
    reward: Any  # np.ndarray [B] float32
    discount: Any  # np.ndarray [B] float32
    observation: Any

    def is_first(self) -> np.ndarray:
        return np.asarray(self.step_type == StepType.FIRST)

    def is_mid(self) -> np.ndarray:
        return np.asarray(self.step_type == StepType.MID)

    def is_last(self) -> np.ndarray:
        return np.asarray(self.step_type == StepType.LAST)

    def is_terminated(self) -> np.ndarray:
        """LAST with discount 0: the MDP ended."""
        return np.asarray((self.step_type == StepType.LAST) & (self.discount == 0))

    def is_truncated(self) -> np.ndarray:
        """LAST with a non-zero discount: a time limit cut the episode."""
        return np.asarray((self.step_type == StepType.LAST) & (self.discount != 0))

    @property
    def batch_size(self) -> int:
        return int(np.shape(self.step_type)[0])


class PolicyStep(NamedTuple):
    """What a policy returns: the ``action``, its ``state`` for the next step, and ``info``."""

    action: Any
    state: Any = ()
    info: Any = {}  # noqa: RUF012 - an immutable default is never mutated


class Trajectory(NamedTuple):
    """One batched transition; ``reward`` and ``discount`` come from the next time step."""

    step_type: Any  # np.ndarray [B] int32 (or a spec, in a trajectory spec)
    observation: Any
    action: Any
    policy_info: Any
    next_step_type: Any
    reward: Any
    discount: Any

    def is_first(self) -> np.ndarray:
        return np.asarray(self.step_type == StepType.FIRST)

    def is_mid(self) -> np.ndarray:
        return np.asarray((self.step_type == StepType.MID) & (self.next_step_type == StepType.MID))

    def is_last(self) -> np.ndarray:
        """The transition that ends an episode (``next_step_type == LAST``)."""
        return np.asarray(self.next_step_type == StepType.LAST)

    def is_boundary(self) -> np.ndarray:
        """LAST -> FIRST transitions: stored, never trained on."""
        return np.asarray(self.step_type == StepType.LAST)


# ---------------------------------------------------------------------- constructors
def _batch(x: Any, batch_size: int | None, dtype: Any) -> np.ndarray:
    arr = np.asarray(x, dtype)
    if arr.ndim == 0:
        if batch_size is None:
            raise ValueError("a scalar needs batch_size")
        arr = np.full((batch_size,), arr, dtype)
    return arr


def _batch_size_of(observation: Any) -> int:
    from drivetrain.core import nest

    leaves = nest.flatten(observation)
    if not leaves:
        raise ValueError("cannot infer the batch size from an empty observation; pass batch_size")
    return int(np.shape(leaves[0])[0])


def restart(observation: Any, batch_size: int | None = None) -> TimeStep:
    """FIRST time steps: reward 0, discount 1."""
    b = _batch_size_of(observation) if batch_size is None else batch_size
    return TimeStep(
        np.full((b,), StepType.FIRST, STEP_TYPE_DTYPE),
        np.zeros((b,), REWARD_DTYPE),
        np.ones((b,), REWARD_DTYPE),
        observation,
    )


def transition(observation: Any, reward: Any, discount: Any = 1.0, batch_size: int | None = None) -> TimeStep:
    """MID time steps."""
    b = _batch_size_of(observation) if batch_size is None else batch_size
    return TimeStep(
        np.full((b,), StepType.MID, STEP_TYPE_DTYPE),
        _batch(reward, b, REWARD_DTYPE),
        _batch(discount, b, REWARD_DTYPE),
        observation,
    )


def termination(observation: Any, reward: Any, batch_size: int | None = None) -> TimeStep:
    """LAST time steps with discount 0: the episode ended inside the MDP."""
    b = _batch_size_of(observation) if batch_size is None else batch_size
    return TimeStep(
        np.full((b,), StepType.LAST, STEP_TYPE_DTYPE),
        _batch(reward, b, REWARD_DTYPE),
        np.zeros((b,), REWARD_DTYPE),
        observation,
    )


def truncation(observation: Any, reward: Any, discount: Any = 1.0, batch_size: int | None = None) -> TimeStep:
    """LAST time steps with discount 1: a time limit cut the episode; targets bootstrap."""
    b = _batch_size_of(observation) if batch_size is None else batch_size
    return TimeStep(
        np.full((b,), StepType.LAST, STEP_TYPE_DTYPE),
        _batch(reward, b, REWARD_DTYPE),
        _batch(discount, b, REWARD_DTYPE),
        observation,
    )


def from_transition(time_step: TimeStep, action_step: PolicyStep, next_time_step: TimeStep) -> Trajectory:
    """The trajectory of ``time_step --action--> next_time_step``."""
    return Trajectory(
        step_type=time_step.step_type,
        observation=time_step.observation,
        action=action_step.action,
        policy_info=action_step.info,
        next_step_type=next_time_step.step_type,
        reward=next_time_step.reward,
        discount=next_time_step.discount,
    )


# ---------------------------------------------------------------------- specs
def time_step_spec(observation_spec: Any) -> TimeStep:
    """The spec of time steps with the given observation spec."""
    return TimeStep(
        step_type=specs_lib.BoundedArraySpec((), STEP_TYPE_DTYPE, 0, 2, "step_type"),
        reward=specs_lib.ArraySpec((), REWARD_DTYPE, "reward"),
        discount=specs_lib.BoundedArraySpec((), REWARD_DTYPE, 0.0, 1.0, "discount"),
        observation=observation_spec,
    )


def trajectory_spec(ts_spec: TimeStep, action_spec: Any, policy_info_spec: Any) -> Trajectory:
    """The spec of trajectories made of these time steps, actions and policy info."""
    return Trajectory(
        step_type=ts_spec.step_type,
        observation=ts_spec.observation,
        action=action_spec,
        policy_info=policy_info_spec,
        next_step_type=ts_spec.step_type,
        reward=ts_spec.reward,
        discount=ts_spec.discount,
    )
