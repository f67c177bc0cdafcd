"""The batched environment protocol.

An :class:`Environment` holds ``batch_size`` independent copies of a task and moves
them in lock step::

    time_step = env.reset()              # FIRST for every environment
    while ...:
        time_step = env.step(action)     # action: a nest of arrays [batch_size, ...]
    env.current_time_step()              # the time step last returned (None before reset)

Each environment follows FIRST -> MID* -> LAST -> FIRST ...; the step after a LAST
starts a new episode, returns FIRST and ignores that environment's action
("next-step" auto-reset). Termination is LAST with discount 0, truncation LAST with
discount 1. Environments are seeded at construction; the same seed reproduces the
same time steps for the same actions.

Implementations define ``_reset`` and ``_step``; the public :meth:`~Environment.reset`
and :meth:`~Environment.step` call them and remember the time step they return, so a
driver started without a time step continues the episodes in progress
(:meth:`~Environment.current_time_step`) instead of restarting them, as TF-Agents'
``PyEnvironment`` does.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Any

from drivetrain.core import types

__all__ = ["Environment"]


class Environment(abc.ABC):
    """Base class of batched environments. Subclasses implement the abstract methods."""

    _current_time_step: types.TimeStep | None = None

    @property
    @abc.abstractmethod
    def batch_size(self) -> int:
        """Number of environments stepped together."""

    @abc.abstractmethod
    def observation_spec(self) -> Any:
        """Nest of specs of one observation (no batch axis)."""

    @abc.abstractmethod
    def action_spec(self) -> Any:
        """Nest of specs of one action (no batch axis)."""

    def time_step_spec(self) -> types.TimeStep:
        """Spec of one time step (no batch axis)."""
        return types.time_step_spec(self.observation_spec())

    def reset(self) -> types.TimeStep:
        """Starts a new episode in every environment and returns FIRST time steps."""
        time_step = self._current_time_step = self._reset()
        return time_step

    def step(self, action: Any) -> types.TimeStep:
        """Applies a batched action and returns the next batched time step."""
        time_step = self._current_time_step = self._step(action)
        return time_step

    def current_time_step(self) -> types.TimeStep | None:
        """The time step that :meth:`reset` or :meth:`step` returned last; None before the first reset."""
        return self._current_time_step

    @abc.abstractmethod
    def _reset(self) -> types.TimeStep:
        """Implements :meth:`reset`."""

    @abc.abstractmethod
    def _step(self, action: Any) -> types.TimeStep:
        """Implements :meth:`step`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases resources (processes, windows). Idempotent."""

    def __enter__(self) -> Environment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
