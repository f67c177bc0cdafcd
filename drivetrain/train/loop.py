"""The training loop of the book (Hands-On Machine Learning, ch. 18), built from the parts.

::

    warm-up:   StepDriver(env, RandomPolicy, observers, num_steps=learning_starts).run()
    repeat until total_env_steps:
        collect:   StepDriver(env, agent.collect_policy, observers, num_steps=update_period).run(...)
        train:     gradient_steps x agent.train(batch) on batches sampled from the replay
        then, when due: a row in progress.csv, a greedy evaluation, a checkpoint
    at the end (the budget, or an evaluation reaching loop.stop_at_return):
        the final evaluation -> eval.json, a checkpoint, the learning-curve PNG

``observers`` are the replay buffer, the training metrics and the progress bar: the
environment loop exists once, in the drivers, so a distributed version can run the
same driver in remote actors. With prioritized replay, each batch's importance weights
go to ``agent.train`` and its new priorities (``|TD error| + ε``) back to the replay.

A checkpoint holds every stateful part (agent with optimizer and RNGs, replay buffer,
metrics, the loop's counters, the driver's current time step and policy state, the
environments' state when they expose ``state_dict``, torch's RNG). ``train(...,
resume=True)`` continues from the latest checkpoint as if the run had never stopped:
the same number of steps, logs that continue where the checkpoint left them, and —
when the environments' state is restored and batches are not prefetched — the same
final weights, bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drivetrain.core.drivers import StepDriver
from drivetrain.observers import ProgressBar
from drivetrain.train.artifacts import save_agent
from drivetrain.train.checkpoint import CheckpointDir, atomic_write_text, load_checkpoint
from drivetrain.train.config import ExperimentConfig, check_config, config_to_dict, save_config
from drivetrain.train.evaluation import EvalResult, evaluate
from drivetrain.train.experiment import Experiment, build_experiment, replay_writer
from drivetrain.train.logger import RunLogger
from drivetrain.train.plotting import plot_learning_curve
from drivetrain.train.rundir import RunDir

__all__ = ["LoopState", "TrainResult", "TrainStats", "train"]

CHECKPOINT_FORMAT = 1


@dataclasses.dataclass
class TrainStats:
    """Sums of the loss info since the last row of progress.csv (checkpointed with the loop)."""

    loss: float = 0.0
    q_values: float = 0.0
    td_error: float = 0.0
    grad_norm: float = 0.0
    count: int = 0

    def add(self, loss: float, extra: dict[str, Any]) -> None:
        self.loss += loss
        self.q_values += float(extra["q_values"])
        self.td_error += float(np.mean(extra["td_error"]))
        self.grad_norm += float(extra["grad_norm"])
        self.count += 1

    def means(self) -> dict[str, float]:
        """The means since the last reset; empty if no train step happened."""
        if not self.count:
            return {}
        return {
            f.name: getattr(self, f.name) / self.count for f in dataclasses.fields(self) if f.name != "count"
        }


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
    stats: TrainStats = dataclasses.field(default_factory=TrainStats)
    """Loss info since the last row of progress.csv."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a finished run reports."""

    run_dir: Path
    env_steps: int
    train_steps: int
    evaluation: EvalResult
    wall_seconds: float
    """Wall time of the whole run, over all its sessions (resumes)."""
    warmup_seconds: float
    """Time of the random warm-up."""
    collect_seconds: float
    """Time in the collect driver (warm-up not included)."""
    train_seconds: float
    """Time sampling batches and in agent.train."""
    eval_seconds: float


def _next_multiple(step: int, interval: int) -> int:
    return (step // interval + 1) * interval


def _batches(exp: Experiment) -> Any:
    """An iterator of (batch, info) windows for agent.train (``prefetch=0``: sampled in ``next``)."""
    return exp.replay.as_dataset(
        exp.config.loop.batch_size, exp.agent.train_sequence_length, prefetch=exp.config.replay.prefetch
    )


def _train_phase(exp: Experiment, batches: Iterator[tuple[Any, Any]], steps: int, stats: TrainStats) -> None:
    """``steps`` gradient steps; with prioritized replay, weights in and new priorities out."""
    prioritized = exp.config.replay.prioritized
    for _ in range(steps):
        batch, info = next(batches)
        loss_info = exp.agent.train(batch, weights=info.weights if prioritized else None)
        if prioritized:  # the replay adds its epsilon
            exp.replay.update_priorities(info.ids, loss_info.extra["td_error"])
        stats.add(float(loss_info.loss), loss_info.extra)


def _evaluate(exp: Experiment, episodes: int, state: LoopState, final: bool = False) -> EvalResult:
    start = time.perf_counter()
    with exp.make_eval_env(final=final) as env:
        result = evaluate(env, exp.eval_policy, episodes)
    state.eval_seconds += time.perf_counter() - start
    return result


def _snapshot(exp: Experiment, state: LoopState, time_step: Any, policy_state: Any) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "env_steps": exp.metrics.env_steps.result(),
        "config": config_to_dict(exp.config),
        "loop": dataclasses.asdict(state),
        "experiment": exp.state_dict(include_replay=exp.config.loop.checkpoint_replay),
        "time_step": time_step,
        "policy_state": policy_state,
    }


def _restore(exp: Experiment, snapshot: dict[str, Any]) -> tuple[LoopState, Any, Any]:
    if snapshot.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {snapshot.get('format')!r} is not {CHECKPOINT_FORMAT}")
    envs_restored = exp.load_state_dict(snapshot["experiment"])
    loop_state = dict(snapshot["loop"])
    state = LoopState(**{**loop_state, "stats": TrainStats(**loop_state["stats"])})
    if not envs_restored:  # the environments start new episodes
        return state, None, None
    return state, snapshot["time_step"], snapshot["policy_state"]


def _row(exp: Experiment, stats: TrainStats, rate: float, wall: float) -> dict[str, Any]:
    m = exp.metrics
    return {
        "env_steps": m.env_steps.result(),
        "train_steps": exp.agent.train_step,
        "episodes": m.episodes.result(),
        "average_return": m.average_return.result(),
        "average_episode_length": m.average_length.result(),
        **stats.means(),
        "epsilon": exp.agent.collect_policy.epsilon,
        "steps_per_second": rate,
        "wall_seconds": wall,
    }


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    force: bool = False,
    verbose: bool = True,
) -> TrainResult:
    """Trains an agent as ``config`` says, writing everything into ``run_dir``.

    Args:
      config: the resolved config (a preset with overrides); saved as ``config.json``.
      run_dir: the run directory (see :mod:`drivetrain.train.rundir`).
      resume: continue from the latest checkpoint in ``run_dir`` (from scratch if none).
      force: delete a run already in ``run_dir`` and start over.
      verbose: print what happens (checkpoints, evaluations) above the progress bar.

    Returns:
      The :class:`TrainResult` with the final evaluation (also in ``eval.json``).
    """
    check_config(config)
    run = RunDir(run_dir)
    run.prepare(resume=resume, force=force)
    save_config(config, run.config)
    with _torch_threads(config.loop.torch_threads):
        exp = build_experiment(config)
        try:
            return _run(exp, run, resume, verbose)
        finally:
            exp.close()


@dataclasses.dataclass
class _Session:
    """One call of :func:`train`: where it writes (logs, checkpoints, messages) and its clock."""

    exp: Experiment
    run: RunDir
    logger: RunLogger
    checkpoints: CheckpointDir
    say: Callable[[str], None]
    wall_before: float
    start: float = dataclasses.field(default_factory=time.perf_counter)
    mark: tuple[int, float, float] = (0, 0.0, 0.0)
    """(env steps, wall clock, evaluation seconds) at the last row: steps/s leave evaluations out."""

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
        state.next_log = _next_multiple(steps, self.exp.config.loop.log_interval)

    def save(self, state: LoopState, time_step: Any, policy_state: Any) -> None:
        steps = self.exp.metrics.env_steps.result()
        if self.exp.config.loop.checkpoint_interval > 0:
            state.next_checkpoint = _next_multiple(steps, self.exp.config.loop.checkpoint_interval)
        state.wall_seconds = self.wall()
        self.logger.flush()
        self.checkpoints.save(_snapshot(self.exp, state, time_step, policy_state), steps)
        save_agent(self.exp.agent, steps, self.run.path)
        plot_learning_curve(self.run.progress_csv, self.run.learning_curve, title=_title(self.exp.config))


def _run(exp: Experiment, run: RunDir, resume: bool, verbose: bool) -> TrainResult:
    config, loop = exp.config, exp.config.loop
    env_steps = exp.metrics.env_steps.result
    checkpoints = CheckpointDir(run.checkpoints, keep=loop.keep_checkpoints)
    latest = checkpoints.latest() if resume else None
    if latest is not None:
        state, time_step, policy_state = _restore(exp, load_checkpoint(latest))
    else:
        state, time_step, policy_state = LoopState(), None, None
        state.next_log, state.next_eval = loop.log_interval, loop.eval_interval
        state.next_checkpoint = loop.checkpoint_interval
    bar = ProgressBar(
        loop.total_env_steps,
        initial=env_steps(),
        average_return=exp.metrics.average_return,
        desc=config.preset or config.env.name,
        disable=not loop.progress_bar,
    )
    logger = RunLogger(run.path, keep_until=env_steps(), tensorboard=loop.tensorboard)
    session = _Session(exp, run, logger, checkpoints, bar.write if verbose else _quiet, state.wall_seconds)
    session.mark = (env_steps(), session.start, state.eval_seconds)
    if latest is not None:
        reset = (
            "" if time_step is not None else " (environments reset: their state was not in the checkpoint)"
        )
        session.say(f"resumed from {latest} at env step {env_steps()}{reset}")
    observers = [replay_writer(exp.replay), *exp.metrics.observers, bar]
    batches = _batches(exp)
    evaluation: EvalResult | None = None
    try:
        if latest is None and loop.learning_starts > 0:
            warmup = StepDriver(exp.env, exp.warmup_policy, observers, num_steps=loop.learning_starts)
            time_step, policy_state = warmup.run()
            if not exp.warmup_policy.stateful:  # the collect policy starts from its own initial state
                policy_state = None
            state.warmup_seconds = time.perf_counter() - session.start
        collect = StepDriver(exp.env, exp.agent.collect_policy, observers, num_steps=loop.update_period)
        while env_steps() < loop.total_env_steps and not (state.stopped and loop.stop_at_return is not None):
            # 1. collect; the last iteration only collects what is left of the budget
            collect.num_steps = min(loop.update_period, loop.total_env_steps - env_steps())
            t0 = time.perf_counter()
            time_step, policy_state = collect.run(time_step, policy_state)
            t1 = time.perf_counter()
            # 2. train
            gradient_steps = math.ceil(loop.gradient_steps * collect.num_steps / loop.update_period)
            _train_phase(exp, batches, gradient_steps, state.stats)
            state.collect_seconds += t1 - t0
            state.train_seconds += time.perf_counter() - t1
            state.iteration += 1
            steps = env_steps()
            done = steps >= loop.total_env_steps

            # 3. evaluate when due; the run ends at the budget or at loop.stop_at_return
            eval_due = loop.eval_interval > 0 and steps >= state.next_eval
            periodic: EvalResult | None = None
            if eval_due and not done:
                evaluation = periodic = _evaluate(exp, loop.eval_episodes, state)
                session.say(f"env step {steps}: {_describe(evaluation)}")
                state.next_eval = _next_multiple(steps, loop.eval_interval)
                if loop.stop_at_return is not None and evaluation.mean_return >= loop.stop_at_return:
                    session.say(
                        f"stopping: the greedy return reached loop.stop_at_return = {loop.stop_at_return}"
                    )
                    state.stopped = done = True
            if done:  # the final evaluation, on episodes of its own
                evaluation = _evaluate(exp, loop.final_eval_episodes, state, final=True)
                session.say(f"final evaluation at env step {steps}: {_describe(evaluation)}")
                atomic_write_text(_eval_json(evaluation, steps), run.eval_json)

            # 4. a row of progress.csv (with the periodic evaluation, which may have stopped the
            # run, else the final one at the budget's end) and a checkpoint, when due
            if done or eval_due or steps >= state.next_log:
                session.log_row(state, periodic or (evaluation if done else None))
            if done or (loop.checkpoint_interval > 0 and steps >= state.next_checkpoint):
                session.save(state, time_step, policy_state)
    finally:
        bar.close()
        logger.close()
        batches.close()

    if evaluation is None:  # resumed a run that had already finished
        evaluation = _read_eval(run)
        session.say(f"{run.path} had already finished at env step {env_steps()}")
    return TrainResult(
        run_dir=run.path,
        env_steps=env_steps(),
        train_steps=exp.agent.train_step,
        evaluation=evaluation,
        wall_seconds=session.wall(),
        warmup_seconds=state.warmup_seconds,
        collect_seconds=state.collect_seconds,
        train_seconds=state.train_seconds,
        eval_seconds=state.eval_seconds,
    )


def _quiet(message: str) -> None:
    del message


def _describe(result: EvalResult) -> str:
    return f"greedy return {result.mean_return:.1f} ± {result.std_return:.1f} over {result.episodes} episodes"


def _title(config: ExperimentConfig) -> str:
    return f"{config.preset or config.env.name} (seed {config.seed})"


def _eval_json(result: EvalResult, env_steps: int) -> str:
    return json.dumps(result.to_dict(env_steps=env_steps), indent=2) + "\n"


def _read_eval(run: RunDir) -> EvalResult:
    data = json.loads(run.eval_json.read_text())
    return EvalResult(tuple(data["returns"]), tuple(data["lengths"]))
