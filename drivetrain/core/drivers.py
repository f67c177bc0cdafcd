"""Drivers: the one environment loop.

A driver plays a policy in a batched environment and hands every transition, as a
batched :class:`~drivetrain.core.types.Trajectory`, to each of its observers (plain
callables: a replay buffer's ``add_batch``, metrics, a progress bar)::

    driver = StepDriver(env, policy, observers=[replay.add_batch, AverageReturn()], num_steps=4)
    time_step, policy_state = driver.run()                   # resets the environment
    time_step, policy_state = driver.run(time_step, policy_state)  # continues seamlessly
    time_step, policy_state = driver.run()                   # continues too (TF-Agents' semantics)

Without a time step, ``run`` continues from ``env.current_time_step()``, the time step
the environment returned last (whichever driver or code stepped it); only an
environment that never started is reset. Without a policy state, the policy starts from
its initial state.

``num_steps`` and ``num_episodes`` are totals over the batch. Boundary transitions
(LAST -> FIRST) reach the observers but do not count as steps.

Policy state: the driver passes the state returned by the policy back at the next
call, resets it to ``policy.get_initial_state`` where a time step is FIRST, and stores
the state the policy acted from in ``policy_info["state"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from drivetrain.core import nest, types
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy

__all__ = ["DynamicEpisodeDriver", "DynamicStepDriver", "EpisodeDriver", "Observer", "StepDriver"]

Observer = Callable[[types.Trajectory], Any]

_LAST = int(types.StepType.LAST)
_FIRST = int(types.StepType.FIRST)


class _Driver:
    """Shared loop; subclasses say when a run is done."""

    def __init__(self, env: Environment, policy: Policy, observers: Sequence[Observer] = ()):
        name = type(self).__name__
        for attr in ("reset", "step", "batch_size"):
            if not hasattr(env, attr):
                raise TypeError(f"{name}: env must be a batched Environment (with {attr}), got {env!r}")
        if not callable(getattr(policy, "action", None)) or not all(
            hasattr(policy, attr) for attr in ("get_initial_state", "stateful")
        ):
            raise TypeError(
                f"{name}: policy must be a Policy (with action, get_initial_state and stateful), "
                f"got {policy!r}; "
                "pass e.g. agent.collect_policy"
            )
        if callable(observers) or isinstance(observers, (str, bytes)):
            raise TypeError(
                f"{name}: observers must be a list of callables, got {observers!r}; wrap it: [...]"
            )
        self.env = env
        self.policy = policy
        self.observers = list(observers)
        for obs in self.observers:
            if not callable(obs):
                raise TypeError(f"observer {obs!r} is not callable; pass e.g. replay.add_batch or a metric")
        self._stateful = policy.stateful
        self._initial_state: Any = None

    def _start(self, time_step: types.TimeStep | None, policy_state: Any) -> tuple[types.TimeStep, Any]:
        if time_step is None:
            current = getattr(self.env, "current_time_step", None)
            time_step = current() if current is not None else None
            if time_step is None:  # the environments never started
                time_step = self.env.reset()
        if policy_state is None:
            policy_state = self.policy.get_initial_state(self.env.batch_size)
        return time_step, policy_state

    def _reset_where_first(self, first: np.ndarray, policy_state: Any) -> Any:
        if self._initial_state is None:
            self._initial_state = self.policy.get_initial_state(self.env.batch_size)
        mask = first

        def pick(init: np.ndarray, cur: np.ndarray) -> np.ndarray:
            m = mask.reshape(mask.shape + (1,) * (np.ndim(cur) - 1))
            return np.where(m, init, cur)

        return nest.map_structure(pick, self._initial_state, policy_state)

    def _loop(
        self,
        time_step: types.TimeStep | None,
        policy_state: Any,
        count: Callable[[types.Trajectory], int],
        target: int,
    ) -> tuple[types.TimeStep, Any]:
        time_step, policy_state = self._start(time_step, policy_state)
        env_step, act, observers, stateful = self.env.step, self.policy.action, self.observers, self._stateful
        done = 0
        while done < target:
            if stateful:
                first = time_step.step_type == _FIRST
                if first.any():
                    policy_state = self._reset_where_first(first, policy_state)
            action_step = act(time_step, policy_state)
            next_time_step = env_step(action_step.action)
            info = action_step.info
            if stateful:
                info = {**info, "state": policy_state}
            traj = types.Trajectory(
                time_step.step_type,
                time_step.observation,
                action_step.action,
                info,
                next_time_step.step_type,
                next_time_step.reward,
                next_time_step.discount,
            )
            for observer in observers:
                observer(traj)
            done += count(traj)
            time_step, policy_state = next_time_step, action_step.state
        return time_step, policy_state


def _positive_int(driver: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{driver}: {name} must be an int >= 1, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{driver}: {name} must be >= 1, got {value}")
    return int(value)


# Counting on Python lists: cheaper than NumPy calls for the small batches of Python-stepped envs.
def _count_steps(traj: types.Trajectory) -> int:
    step_types: list[int] = traj.step_type.tolist()
    return len(step_types) - step_types.count(_LAST)


def _count_episodes(traj: types.Trajectory) -> int:
    next_step_types: list[int] = traj.next_step_type.tolist()
    return next_step_types.count(_LAST)


def _count_transitions(traj: types.Trajectory) -> int:
    return len(traj.step_type)


class StepDriver(_Driver):
    """Runs the policy until at least ``num_steps`` non-boundary steps (over the batch) were taken.

    With ``count_boundaries=True`` boundary transitions count too, so ``num_steps = k * batch_size``
    takes exactly ``k`` steps of the batch (one item per environment each, as a synchronous
    on-policy collector needs to line its rollout up with others').
    """

    def __init__(
        self,
        env: Environment,
        policy: Policy,
        observers: Sequence[Observer] = (),
        num_steps: int = 1,
        *,
        count_boundaries: bool = False,
    ):
        super().__init__(env, policy, observers)
        self.num_steps = num_steps
        self._count = _count_transitions if count_boundaries else _count_steps

    @property
    def num_steps(self) -> int:
        """Steps (over the batch; boundaries counted only with ``count_boundaries``) that one
        :meth:`run` takes at least."""
        return self._num_steps

    @num_steps.setter
    def num_steps(self, value: int) -> None:
        self._num_steps = _positive_int("StepDriver", "num_steps", value)

    def run(
        self, time_step: types.TimeStep | None = None, policy_state: Any = None
    ) -> tuple[types.TimeStep, Any]:
        """Steps the environment; returns the last time step and policy state to continue from."""
        return self._loop(time_step, policy_state, self._count, self.num_steps)


class EpisodeDriver(_Driver):
    """Runs the policy until at least ``num_episodes`` episodes (over the batch) ended."""

    def __init__(
        self,
        env: Environment,
        policy: Policy,
        observers: Sequence[Observer] = (),
        num_episodes: int = 1,
    ):
        super().__init__(env, policy, observers)
        self.num_episodes = num_episodes

    @property
    def num_episodes(self) -> int:
        """Episodes (over the batch) that one :meth:`run` ends at least."""
        return self._num_episodes

    @num_episodes.setter
    def num_episodes(self, value: int) -> None:
        self._num_episodes = _positive_int("EpisodeDriver", "num_episodes", value)

    def run(
        self, time_step: types.TimeStep | None = None, policy_state: Any = None
    ) -> tuple[types.TimeStep, Any]:
        """Steps the environment; returns the last time step and policy state to continue from."""
        return self._loop(time_step, policy_state, _count_episodes, self.num_episodes)


DynamicStepDriver = StepDriver
DynamicEpisodeDriver = EpisodeDriver
