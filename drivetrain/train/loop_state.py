"""The loop's checkpointed state, shared by the local loop and the distributed runner.

:class:`LoopState` holds the loop's own counters (the env and train steps live in the metrics
and the agent); :class:`TrainStats` the means since the last row. :func:`snapshot` gathers a
checkpoint: every stateful part (agent with optimizer and RNGs, replay buffer, metrics, the
loop's counters, the driver's current time step and policy state, the environments' state when
they expose ``state_dict``, torch's RNG); :func:`restore` puts one back, and
:func:`first_non_finite` names a tensor that must not be saved.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from drivetrain.agents import Agent
from drivetrain.core import nest
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy
from drivetrain.train.checkpoint import CheckpointError
from drivetrain.train.config import ExperimentConfig, LoopConfig, config_to_dict
from drivetrain.train.experiment import Experiment, TrainMetrics

__all__ = [
    "CHECKPOINT_FORMAT",
    "LoopState",
    "RunParts",
    "TrainStats",
    "check_format",
    "first_non_finite",
    "fresh_state",
    "next_multiple",
    "reschedule",
    "restore",
    "snapshot",
]

CHECKPOINT_FORMAT = 1


class RunParts(Protocol):
    """What a :class:`Session` reads of a run's parts."""

    config: ExperimentConfig
    agent: Agent
    metrics: TrainMetrics

    @property
    def eval_policy(self) -> Policy: ...

    def make_eval_env(self, final: bool = False) -> Environment: ...

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]: ...


@dataclasses.dataclass
class TrainStats:
    """Sums of the loss and of every scalar of ``LossInfo.extra`` since the last row of
    progress.csv (checkpointed with the loop). An array in ``extra`` (e.g. DQN's per-window
    ``td_error``) counts as its mean; anything else that is not a number is left out."""

    sums: dict[str, float] = dataclasses.field(default_factory=dict)
    count: int = 0

    def add(self, loss: float, extra: dict[str, Any]) -> None:
        sums = self.sums
        sums["loss"] = sums.get("loss", 0.0) + loss
        for key, value in extra.items():
            number = _scalar(value)
            if number is not None:
                sums[key] = sums.get(key, 0.0) + number
        self.count += 1

    def means(self) -> dict[str, float]:
        """The means since the last reset; empty if no train step happened."""
        if not self.count:
            return {}
        return {key: total / self.count for key, total in self.sums.items()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrainStats:
        """From :func:`dataclasses.asdict` of a TrainStats (or the fixed fields of older checkpoints)."""
        if "sums" in state:
            return cls(dict(state["sums"]), int(state["count"]))
        count = int(state.get("count", 0))
        return cls({k: float(v) for k, v in state.items() if k != "count"} if count else {}, count)


def _scalar(value: Any) -> float | None:
    if isinstance(value, (int, float, np.integer, np.floating)):  # bool is an int
        return float(value)
    if isinstance(value, np.ndarray) and value.size and value.dtype.kind in "iuf":
        return float(np.add.reduce(value, axis=None)) / value.size  # the mean, without np.mean's overhead
    if type(value).__name__ == "Tensor" and getattr(value, "numel", lambda: 0)():  # an agent's torch value
        return float(value.detach().float().mean().item())
    return None


@dataclasses.dataclass
class LoopState:
    """The loop's own counters (checkpointed); env and train steps live in the metrics and agent."""

    iteration: int = 0
    next_log: int = 0
    next_eval: int = 0
    next_checkpoint: int = 0
    wall_seconds: float = 0.0
    warmup_seconds: float = 0.0
    collect_seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    stopped: bool = False
    """An evaluation reached ``loop.stop_at_return``."""
    stop_return: float | None = None
    """The mean return of that evaluation (a resume with a higher ``stop_at_return`` goes on)."""
    stopped_by_hook: bool = False
    """The evaluation hook (:data:`EvalHook`) asked to stop after an evaluation: the run is over."""
    stats: TrainStats = dataclasses.field(default_factory=TrainStats)
    """Loss info since the last row of progress.csv."""

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> LoopState:
        """From :func:`dataclasses.asdict` of a LoopState (a checkpoint's ``loop``)."""
        loop_state = dict(state)
        return cls(**{**loop_state, "stats": TrainStats.from_dict(loop_state["stats"])})


def next_multiple(step: int, interval: int) -> int:
    return (step // interval + 1) * interval


def snapshot(exp: RunParts, state: LoopState, time_step: Any, policy_state: Any) -> dict[str, Any]:
    """The checkpoint of a run: see the module docstring."""
    return {
        "format": CHECKPOINT_FORMAT,
        "env_steps": exp.metrics.env_steps.result(),
        "config": config_to_dict(exp.config),
        "loop": dataclasses.asdict(state),
        "experiment": exp.state_dict(include_replay=exp.config.loop.checkpoint_replay),
        "time_step": time_step,
        "policy_state": policy_state,
    }


def check_format(snap: Any, path: Path) -> None:
    """CheckpointError if ``snap`` (loaded from ``path``) is not a training checkpoint of this format."""
    if not isinstance(snap, dict) or snap.get("format") != CHECKPOINT_FORMAT:
        found = snap.get("format") if isinstance(snap, dict) else type(snap).__name__
        raise CheckpointError(f"{path}: checkpoint format {found!r} is not {CHECKPOINT_FORMAT}")


def restore(exp: Experiment, snap: dict[str, Any], path: Path) -> tuple[LoopState, Any, Any]:
    """Puts a :func:`snapshot` back; the time step and policy state are None when the
    environments' state was not in it (they start new episodes)."""
    try:
        envs_restored = exp.load_state_dict(snap["experiment"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"cannot restore {path} into this run's parts: {type(e).__name__}: {e}") from e
    try:
        state = LoopState.from_dict(snap["loop"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{path}: the loop's state does not fit this version: {type(e).__name__}: {e}"
        ) from e
    reschedule(state, snap["config"].get("loop", {}), exp.config.loop, exp.metrics.env_steps.result())
    if not envs_restored:
        return state, None, None
    return state, snap["time_step"], snap["policy_state"]


def reschedule(state: LoopState, saved: dict[str, Any], loop: LoopConfig, steps: int) -> None:
    """Intervals changed by a resume take effect from the resumed step: the next evaluation, row or
    checkpoint of a changed interval is its next multiple after ``steps`` (``saved``: the
    checkpoint's loop config). Unchanged intervals keep their schedule, so that the run goes on
    bit for bit."""
    for key, due in (
        ("eval_interval", "next_eval"),
        ("log_interval", "next_log"),
        ("checkpoint_interval", "next_checkpoint"),
    ):
        interval = getattr(loop, key)
        if saved.get(key, interval) != interval and interval > 0:
            setattr(state, due, next_multiple(steps, interval))


def fresh_state(exp: RunParts) -> LoopState:
    loop = exp.config.loop
    return LoopState(
        next_log=loop.log_interval, next_eval=loop.eval_interval, next_checkpoint=loop.checkpoint_interval
    )


def first_non_finite(state: Any) -> str | None:
    """The path of the first float array or tensor in ``state`` (a nest) with NaN or inf."""
    for path, leaf in nest.flatten_with_paths(state):
        if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "fc" and not np.isfinite(leaf).all():
            return path
        if type(leaf).__name__ == "Tensor" and leaf.is_floating_point() and not bool(leaf.isfinite().all()):
            return path
    return None
