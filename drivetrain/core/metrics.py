"""Training metrics: observers that also report a result.

Every metric is a callable taking a batched :class:`~drivetrain.core.types.Trajectory`
plus ``result()``, ``reset()``, ``state_dict()`` and ``load_state_dict()``. Episode
returns and lengths are tracked per environment of the batch; an episode starts at
every FIRST step (whatever came before it: an episode interrupted by a reset is
dropped, never joined to the next) and counts when its final transition
(``next_step_type == LAST``) is observed. Boundary transitions (LAST -> FIRST) add
nothing.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from drivetrain.core import types
from drivetrain.core.metric_utils import log_metrics

__all__ = [
    "AverageEpisodeLength",
    "AverageReturn",
    "ChosenActionHistogram",
    "EnvironmentSteps",
    "MaxReturn",
    "Metric",
    "MinReturn",
    "NumberOfEpisodes",
    "log_metrics",
]

_FIRST = int(types.StepType.FIRST)
_LAST = int(types.StepType.LAST)


class Metric:
    """Base class: a named observer with a result."""

    name: str = "Metric"

    def __call__(self, trajectory: types.Trajectory) -> None:
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.name}({self.result()!r})"


class NumberOfEpisodes(Metric):
    """Episodes completed."""

    name = "NumberOfEpisodes"

    def __init__(self) -> None:
        self._n = 0

    def __call__(self, trajectory: types.Trajectory) -> None:
        self._n += trajectory.next_step_type.tolist().count(_LAST)

    def result(self) -> int:
        return self._n

    def reset(self) -> None:
        self._n = 0

    def state_dict(self) -> dict[str, Any]:
        return {"n": self._n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])


class EnvironmentSteps(Metric):
    """Environment steps taken, not counting boundary transitions."""

    name = "EnvironmentSteps"

    def __init__(self) -> None:
        self._n = 0

    def __call__(self, trajectory: types.Trajectory) -> None:
        step_types = trajectory.step_type.tolist()
        self._n += len(step_types) - step_types.count(_LAST)

    def result(self) -> int:
        return self._n

    def reset(self) -> None:
        self._n = 0

    def state_dict(self) -> dict[str, Any]:
        return {"n": self._n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])


class _EpisodeMetric(Metric):
    """Accumulates per-environment returns and lengths; subclasses read finished episodes.

    An episode counts from its FIRST step: one already under way when the metric first sees its
    environment (a driver that goes on from ``env.current_time_step()``) or when it was reset is
    left out, as only its end would be seen.

    The accumulators are Python lists: metrics run once per step each, and for the few
    environments of a batch stepped in Python, ``tolist`` and list arithmetic cost several
    times less than NumPy calls on tiny arrays (see ``bench/collect.py``).
    """

    def __init__(self) -> None:
        self._returns: list[float] | None = None
        self._lengths: list[int] | None = None
        self._started: list[bool] | None = None  # saw the FIRST step of the current episode

    def __call__(self, trajectory: types.Trajectory) -> None:
        step_types = trajectory.step_type.tolist()
        rewards = trajectory.reward.tolist()
        returns, lengths, started = self._returns, self._lengths, self._started
        if returns is None or lengths is None or started is None or len(returns) != len(step_types):
            returns = self._returns = [0.0] * len(step_types)
            lengths = self._lengths = [0] * len(step_types)
            started = self._started = [False] * len(step_types)
        for i, st in enumerate(step_types):
            if st == _FIRST:  # a new episode, even if the previous one never reached LAST
                returns[i] = rewards[i]
                lengths[i] = 1
                started[i] = True
            else:  # a boundary's reward is that of a FIRST step (0), so adding it is harmless
                returns[i] += rewards[i]
                if st != _LAST:
                    lengths[i] += 1
        next_step_types = trajectory.next_step_type.tolist()
        if _LAST in next_step_types:
            ends = [i for i, nst in enumerate(next_step_types) if nst == _LAST]
            whole = [i for i in ends if started[i]]  # an episode joined after its start is not one
            if whole:
                self._episodes_ended([returns[i] for i in whole], [lengths[i] for i in whole])
            for i in ends:
                returns[i] = 0.0
                lengths[i] = 0
                started[i] = False

    def _episodes_ended(self, returns: list[float], lengths: list[int]) -> None:
        """The returns and lengths of the episodes that ended at this step (Python lists)."""
        raise NotImplementedError

    def _accumulators(self) -> dict[str, Any]:
        return {
            "returns": None if self._returns is None else np.array(self._returns, np.float64),
            "lengths": None if self._lengths is None else np.array(self._lengths, np.int64),
            "started": None if self._started is None else np.array(self._started, bool),
        }

    def _load_accumulators(self, state: dict[str, Any]) -> None:
        self._returns = None if state["returns"] is None else [float(x) for x in state["returns"]]
        self._lengths = None if state["lengths"] is None else [int(x) for x in state["lengths"]]
        started = state.get("started")  # absent from states saved before it was kept: all started
        if self._returns is None:
            self._started = None
        elif started is None:
            self._started = [True] * len(self._returns)
        else:
            self._started = [bool(x) for x in started]

    def _clear_accumulators(self) -> None:
        self._returns = self._lengths = self._started = None


class _WindowedEpisodeMetric(_EpisodeMetric):
    def __init__(self, window: int = 10) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"{self.name}: window must be >= 1, got {window}")
        self.window = int(window)
        self._buffer: collections.deque[float] = collections.deque(maxlen=self.window)

    def result(self) -> float:
        """Mean over the last ``window`` episodes; NaN before the first episode ends."""
        return float(np.mean(self._buffer)) if self._buffer else float("nan")

    def reset(self) -> None:
        self._buffer.clear()
        self._clear_accumulators()

    def state_dict(self) -> dict[str, Any]:
        return {"buffer": list(self._buffer), **self._accumulators()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buffer = collections.deque((float(x) for x in state["buffer"]), maxlen=self.window)
        self._load_accumulators(state)


class AverageReturn(_WindowedEpisodeMetric):
    """Mean undiscounted return of the last ``window`` episodes."""

    name = "AverageReturn"

    def _episodes_ended(self, returns: list[float], lengths: list[int]) -> None:
        self._buffer.extend(returns)


class AverageEpisodeLength(_WindowedEpisodeMetric):
    """Mean length (in steps) of the last ``window`` episodes."""

    name = "AverageEpisodeLength"

    def _episodes_ended(self, returns: list[float], lengths: list[int]) -> None:
        self._buffer.extend(map(float, lengths))


class _ExtremeReturn(_EpisodeMetric):
    _highest = True

    def __init__(self) -> None:
        super().__init__()
        self._value = float("nan")

    def _episodes_ended(self, returns: list[float], lengths: list[int]) -> None:
        best = float(np.max(returns) if self._highest else np.min(returns))  # NaN if any is
        if np.isnan(self._value):
            self._value = best
        else:
            self._value = max(self._value, best) if self._highest else min(self._value, best)

    def result(self) -> float:
        """The extreme return so far; NaN before the first episode ends."""
        return self._value

    def reset(self) -> None:
        self._value = float("nan")
        self._clear_accumulators()

    def state_dict(self) -> dict[str, Any]:
        return {"value": self._value, **self._accumulators()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._value = float(state["value"])
        self._load_accumulators(state)


class MaxReturn(_ExtremeReturn):
    """Highest episode return seen."""

    name = "MaxReturn"
    _highest = True


class MinReturn(_ExtremeReturn):
    """Lowest episode return seen."""

    name = "MinReturn"
    _highest = False


class ChosenActionHistogram(Metric):
    """Counts of the (scalar, discrete) actions chosen in non-boundary steps."""

    name = "ChosenActionHistogram"

    def __init__(self) -> None:
        self._counts: collections.Counter[int] = collections.Counter()

    def __call__(self, trajectory: types.Trajectory) -> None:
        actions = np.asarray(trajectory.action)[trajectory.step_type != _LAST]
        values, counts = np.unique(actions, return_counts=True)
        self._counts.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))

    def result(self) -> dict[int, int]:
        """``{action: count}``, sorted by action."""
        return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        self._counts.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"counts": dict(self._counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._counts = collections.Counter({int(k): int(v) for k, v in state["counts"].items()})
