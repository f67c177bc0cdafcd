"""One call of :func:`~drivetrain.train.train`: the loop's checkpointed state and where it writes.

What the local loop and the distributed runner (:mod:`drivetrain.distributed.runner`) share:
:class:`LoopState` holds the loop's own counters (the env and train steps live in the
metrics and the agent). :func:`snapshot` gathers a checkpoint: every stateful part
(agent with optimizer and RNGs, replay buffer, metrics, the loop's counters, the driver's
current time step and policy state, the environments' state when they expose
``state_dict``, torch's RNG); :func:`restore` puts one back. :class:`Session` writes the
rows of ``progress.csv``, the checkpoints with ``agent.pkl`` and the messages above the
progress bar (its logger draws the learning curve once, as the run ends:
:class:`~drivetrain.train.logger.RunLogger`); :meth:`Session.end_iteration` is the end of every
iteration of both (an evaluation when due, ``loop.stop_at_return``, the final evaluation, a row,
a checkpoint, ``eval.json``). A session reads the run's parts through :class:`RunParts`
(an :class:`~drivetrain.train.experiment.Experiment`, or the distributed learner's parts).
:mod:`drivetrain.train.runs` opens a session and holds the rest the two loops share (a train
batch with its divergence check, the stop at a signal, the result).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from drivetrain.agents import Agent
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy
from drivetrain.train.artifacts import final_eval_steps, save_agent
from drivetrain.train.checkpoint import CheckpointDir, CheckpointError, atomic_write_text
from drivetrain.train.config import ExperimentConfig, LoopConfig, config_to_dict
from drivetrain.train.eval_videos import EvalVideos, video_due
from drivetrain.train.evaluation import EvalResult, eval_step_limit, evaluate
from drivetrain.train.experiment import Experiment, TrainMetrics
from drivetrain.train.logger import RunLogger
from drivetrain.train.rundir import RunDir

__all__ = [
    "CHECKPOINT_FORMAT",
    "EvalHook",
    "LoopState",
    "RunParts",
    "Session",
    "TrainStats",
    "curve_title",
    "describe",
    "next_multiple",
    "restore",
    "snapshot",
]

CHECKPOINT_FORMAT = 1

EvalHook = Callable[[EvalResult, int], bool]
"""``hook(evaluation, env_steps) -> stop``: called with each periodic evaluation of a run and the
env steps it was run at; True ends the run there, as ``loop.stop_at_return`` does (the final
evaluation, its row, a checkpoint, ``eval.json``). Passed as ``train(..., on_evaluation=hook)``."""


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


def _row(exp: RunParts, stats: TrainStats, rate: float, wall: float) -> dict[str, Any]:
    m = exp.metrics
    diagnostics = exp.agent.collect_policy.diagnostics()
    execution = exp.config.execution
    if execution.distributed and execution.apex_epsilons:
        diagnostics.pop("epsilon", None)  # the collectors act with Ape-X's fixed epsilons, not this schedule
    return {
        "env_steps": m.env_steps.result(),
        "train_steps": exp.agent.train_step,
        "episodes": m.episodes.result(),
        "average_return": m.average_return.result(),
        "average_episode_length": m.average_length.result(),
        **stats.means(),
        **diagnostics,
        "steps_per_second": rate,
        "wall_seconds": wall,
    }


@dataclasses.dataclass
class Session:
    """One call of :func:`train`: where it writes (logs, checkpoints, messages) and its clock."""

    exp: RunParts
    run: RunDir
    logger: RunLogger
    checkpoints: CheckpointDir
    say: Callable[[str], None]
    wall_before: float
    start: float = dataclasses.field(default_factory=time.perf_counter)
    mark: tuple[int, float, float] = (0, 0.0, 0.0)
    """(env steps, wall clock, evaluation seconds) at the last row: steps/s leave evaluations out."""
    videos: EvalVideos = dataclasses.field(default_factory=EvalVideos)
    """The videos of ``loop.video_every`` (filming time counts as evaluation time)."""
    on_evaluation: EvalHook | None = None
    """Called with each periodic evaluation; True stops the run (:data:`EvalHook`)."""

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.start

    def log_row(self, state: LoopState, evaluation: EvalResult | None) -> None:
        steps, now = self.exp.metrics.env_steps.result(), time.perf_counter()
        busy = (now - self.mark[1]) - (state.eval_seconds - self.mark[2])
        row = _row(self.exp, state.stats, (steps - self.mark[0]) / max(busy, 1e-9), self.wall())
        if evaluation is not None:
            row |= {"eval_mean_return": evaluation.mean_return, "eval_std_return": evaluation.std_return}
        self.logger.log(row)
        self.mark = (steps, now, state.eval_seconds)
        state.stats = TrainStats()
        state.next_log = next_multiple(steps, self.exp.config.loop.log_interval)

    def save(self, state: LoopState, time_step: Any, policy_state: Any) -> Path:
        """Flushes the logs, then writes the checkpoint and ``agent.pkl``."""
        steps = self.exp.metrics.env_steps.result()
        if self.exp.config.loop.checkpoint_interval > 0:
            state.next_checkpoint = next_multiple(steps, self.exp.config.loop.checkpoint_interval)
        state.wall_seconds = self.wall()
        self.logger.flush()
        self._refuse_non_finite_weights()
        path = self.checkpoints.save(snapshot(self.exp, state, time_step, policy_state), steps)
        save_agent(self.exp.agent, steps, self.run.path)
        return path

    def _refuse_non_finite_weights(self) -> None:
        """TrainingDivergedError when the agent's state holds NaN or infinity (a finite loss whose
        step overflowed the weights): such an agent is never saved, nor called good."""
        bad = _first_non_finite(self.exp.agent.state_dict())
        if bad is not None:
            what = f"the agent's {bad} holds NaN or infinite values at train step {self.exp.agent.train_step}"
            raise self.diverged(what)

    def diverged(self, what: str) -> Exception:
        """The TrainingDivergedError of a run that stops on ``what`` went non-finite: it names the
        last good checkpoint (nothing is saved after it)."""
        from drivetrain.train.runs import TrainingDivergedError

        latest = self.latest_checkpoint()
        good = (
            f"the last good checkpoint is {latest[1]}"
            if latest is not None
            else "no checkpoint was written yet"
        )
        return TrainingDivergedError(
            f"training diverged: {what} (env step {self.exp.metrics.env_steps.result()}); {good}, and nothing "
            "was saved after it (lower the agent's learning rate, or clip its gradients or rewards, then resume)"
        )

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        """(env step, path) of the newest checkpoint on disk."""
        steps = self.checkpoints.steps()
        return (steps[-1], self.checkpoints.path(steps[-1])) if steps else None

    def write_eval(self, result: EvalResult, env_steps: int) -> None:
        atomic_write_text(
            json.dumps(result.to_dict(env_steps=env_steps), indent=2) + "\n", self.run.eval_json
        )

    def read_eval(self, env_steps: int) -> EvalResult | None:
        """``eval.json`` if it is the evaluation of the agent at ``env_steps``, else None."""
        try:
            data = json.loads(self.run.eval_json.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("env_steps") != env_steps:
            return None
        try:
            return EvalResult(tuple(data["returns"]), tuple(data["lengths"]))
        except (KeyError, TypeError):
            return None  # not an eval.json this version wrote: evaluated again

    def evaluate(self, state: LoopState, episodes: int, final: bool = False) -> EvalResult:
        """Plays ``episodes`` greedy episodes on a fresh evaluation environment (time counted in ``state``);
        the final one plays fewer once it took the run's budget of env steps
        (:func:`~drivetrain.train.artifacts.final_eval_steps`)."""
        start = time.perf_counter()
        max_steps = final_eval_steps(self.exp.config) if final else None
        with self.exp.make_eval_env(final=final) as env:
            limit = eval_step_limit(self.exp.config.loop.total_env_steps, episodes, env.batch_size)
            result = evaluate(env, self.exp.eval_policy, episodes, max_steps, step_limit=limit)
        state.eval_seconds += time.perf_counter() - start
        return result

    def end_iteration(
        self, state: LoopState, finished: Callable[[], bool], time_step: Any = None, policy_state: Any = None
    ) -> tuple[EvalResult | None, bool]:
        """The end of an iteration: ``(the evaluation it ran or None, whether the run is finished)``.

        1. a periodic evaluation when due (``loop.eval_interval``; filmed as ``loop.video_every``
           says, :mod:`~drivetrain.train.eval_videos`), which may stop the run at
           ``loop.stop_at_return`` or by ``on_evaluation``; the run ends at the budget or there
           (``finished()``), with the final evaluation, on episodes of its own;
        2. a row of progress.csv (with the final evaluation when the run ends, else the periodic one) and a
           checkpoint, when due; ``eval.json`` once the checkpoint of the agent it evaluated is on disk.
        """
        loop = self.exp.config.loop
        steps = self.exp.metrics.env_steps.result()
        eval_due = loop.eval_interval > 0 and steps >= state.next_eval
        evaluation = periodic = None
        if eval_due and not finished():
            evaluation = periodic = self.evaluate(state, loop.eval_episodes)
            self.say(f"env step {steps}: {describe(evaluation, loop.eval_epsilon)}")
            if video_due(loop, state.next_eval, steps):
                start = time.perf_counter()
                self.videos.record(self.exp, self.run.path, steps)
                state.eval_seconds += time.perf_counter() - start
            state.next_eval = next_multiple(steps, loop.eval_interval)
            if loop.stop_at_return is not None and evaluation.mean_return >= loop.stop_at_return:
                self.say(
                    f"stopping: the {return_name(loop.eval_epsilon)} reached loop.stop_at_return = {loop.stop_at_return}"
                )
                state.stopped, state.stop_return = True, evaluation.mean_return
            if self.on_evaluation is not None and self.on_evaluation(evaluation, steps):
                self.say(f"stopping: the evaluation hook asked to stop at env step {steps}")
                state.stopped_by_hook = True
        done = finished()
        if done:
            evaluation = self.evaluate(state, loop.final_eval_episodes, final=True)
            self.say(
                f"final evaluation at env step {steps}: {describe(evaluation, loop.eval_epsilon)}{_fewer(evaluation, loop)}"
            )
        if done or eval_due or steps >= state.next_log:
            # the final evaluation (eval.json's) when the run ends, also when a periodic one stopped it
            self.log_row(state, evaluation if done else periodic)
        if done or (loop.checkpoint_interval > 0 and steps >= state.next_checkpoint):
            self.save(state, time_step, policy_state)
        if done and evaluation is not None:
            self.write_eval(evaluation, steps)
        return evaluation, done

    def already_finished(self, state: LoopState) -> EvalResult:
        """A resumed run that had already finished: its ``eval.json``, written now if it was not."""
        steps = self.exp.metrics.env_steps.result()
        evaluation = self.read_eval(steps)
        if evaluation is None:  # stopped before its eval.json was written
            evaluation = self.evaluate(state, self.exp.config.loop.final_eval_episodes, final=True)
            self.write_eval(evaluation, steps)
        loop, why = self.exp.config.loop, ""
        if state.stopped and steps < loop.total_env_steps:
            reached = (
                ""
                if state.stop_return is None
                else f" ({return_name(loop.eval_epsilon)} {state.stop_return:.1f})"
            )
            why = (
                f": an evaluation reached loop.stop_at_return = {loop.stop_at_return}{reached}; resume with "
                "a higher --loop.stop_at_return, or none, to train on"
            )
        self.say(f"{self.run.path} had already finished at env step {steps}{why}")
        return evaluation


def _fewer(result: EvalResult, loop: Any) -> str:
    if result.episodes >= loop.final_eval_episodes:
        return ""
    return (
        f" (not loop.final_eval_episodes = {loop.final_eval_episodes}: the final evaluation counts no "
        f"new episodes after loop.total_env_steps = {loop.total_env_steps} env steps)"
    )


def return_name(eval_epsilon: float) -> str:
    """What an evaluation's return is called: greedy, or ε-greedy with ``loop.eval_epsilon``."""
    return "greedy return" if eval_epsilon == 0 else f"return (ε = {eval_epsilon:g})"


def describe(result: EvalResult, eval_epsilon: float = 0.0) -> str:
    return (
        f"{return_name(eval_epsilon)} {result.mean_return:.1f} ± {result.std_return:.1f} "
        f"over {result.episodes} episodes"
    )


def curve_title(config: ExperimentConfig) -> str:
    """The learning curve's title: the preset (or environment) and the seed."""
    return f"{config.preset or config.env.name} (seed {config.seed})"


def _first_non_finite(state: Any, path: str = "") -> str | None:
    """The dotted path of the first float array or tensor in ``state`` (a nest) with NaN or inf."""
    if isinstance(state, dict):
        for key, value in state.items():
            found = _first_non_finite(value, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(state, (list, tuple)):
        for i, value in enumerate(state):
            found = _first_non_finite(value, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(state, np.ndarray) and state.dtype.kind in "fc":
        return None if bool(np.isfinite(state).all()) else path
    if type(state).__name__ == "Tensor" and state.is_floating_point():
        return None if bool(state.isfinite().all()) else path
    return None
