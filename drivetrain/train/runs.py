"""What the local loop (:mod:`drivetrain.train.loop`) and the distributed learner
(:mod:`drivetrain.distributed.learner`) share around their iterations.

:func:`open_session` starts a call of :func:`~drivetrain.train.train`: its progress bar, its
logs and its :class:`~drivetrain.train.session.Session`. In each iteration
:func:`train_batch` is one ``agent.train`` call with the checks that stop a diverged run
(:func:`diverged` turns its :class:`NonFiniteTrainLossError` into a
:class:`TrainingDivergedError` naming the last good checkpoint), and :func:`stop` ends the run
at a safe point when SIGINT or SIGTERM arrived (:func:`refuse_early_stop` when it arrived while
the parts were built). :func:`finished_check` says when the run is done, :func:`train_result`
is what it reports (a :class:`TrainResult`), and :func:`torch_threads` sets torch's threads
for the call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import torch

from drivetrain.agents import Agent
from drivetrain.agents.loss_info import LossInfo, NonFiniteLossError
from drivetrain.observers import ProgressBar
from drivetrain.train.checkpoint import CheckpointDir
from drivetrain.train.eval_videos import EvalVideos
from drivetrain.train.evaluation import EvalResult
from drivetrain.train.logger import RunLogger
from drivetrain.train.loop_state import LoopState, RunParts, TrainStats
from drivetrain.train.rundir import RunDir
from drivetrain.train.session import Session, curve_title
from drivetrain.train.signals import RunInterruptedError, StopSignals
from drivetrain.train.tracking import open_tracker

if TYPE_CHECKING:
    from drivetrain.train.resume import StartPoint

__all__ = [
    "NonFiniteTrainLossError",
    "RunSetupError",
    "TrainResult",
    "TrainingDivergedError",
    "diverged",
    "finished_check",
    "open_session",
    "refuse_early_stop",
    "stop",
    "torch_threads",
    "train_batch",
    "train_result",
]


class RunSetupError(RuntimeError):
    """A part of the run cannot be built (unknown environment, missing dependency, no memory)."""


class TrainingDivergedError(RuntimeError):
    """A loss was NaN or infinite; the message names the train step and the last good checkpoint."""


class NonFiniteTrainLossError(Exception):
    """Raised by :func:`train_batch`; :func:`diverged` turns it into a TrainingDivergedError."""

    def __init__(self, train_step: int, loss: float):
        self.train_step, self.loss = train_step, loss


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
    """Time getting batches from the source and in agent.train."""
    eval_seconds: float


def train_batch(agent: Agent, experience: Any, weights: np.ndarray | None, stats: TrainStats) -> LossInfo:
    """One ``agent.train`` call, its loss and scalars added to ``stats``; :class:`NonFiniteTrainLossError`
    when the loss is NaN or infinite (before the agent's optimizer step where the agent refuses it)."""
    try:
        loss_info = agent.train(experience, weights=weights)
    except NonFiniteLossError as e:  # refused before its optimizer step (every agent of the library)
        raise NonFiniteTrainLossError(e.train_step, e.loss) from e
    loss = float(loss_info.loss)
    if not math.isfinite(loss):
        raise NonFiniteTrainLossError(agent.train_step, loss)
    stats.add(loss, loss_info.extra)
    return loss_info


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch uses ``n`` threads inside (None: as many as before); the number before is put back."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def open_session(
    parts: RunParts,
    run: RunDir,
    checkpoints: CheckpointDir,
    start: StartPoint,
    state: LoopState,
    verbose: bool,
    rows_dropped: bool,
    resumed_note: str = "",
) -> tuple[ProgressBar, RunLogger, Session]:
    """The progress bar, the logs (trimmed to the start's step, mirrored to ``loop.track``'s
    tracker) and the session of a run that starts at ``start``; says where it resumed from
    (``resumed_note`` appended) or that it starts over."""
    loop, steps = parts.config.loop, parts.metrics.env_steps.result()
    bar = ProgressBar(
        loop.total_env_steps,
        initial=steps,
        average_return=parts.metrics.average_return,
        desc=parts.config.preset or parts.config.env.name,
        disable=None if loop.progress_bar else True,  # a live bar on a terminal, else plain lines
    )
    logger = RunLogger(
        run.path,
        keep_until=steps,
        tensorboard=loop.tensorboard,
        learning_curve=run.learning_curve,
        title=curve_title(parts.config),
        tracker=open_tracker(parts.config, run.path, resumed=start.checkpoint is not None),
    )
    say = bar.write if verbose else _quiet
    videos = EvalVideos(on_video=logger.log_video)
    session = Session(parts, run, logger, checkpoints, say, state.wall_seconds, videos=videos)
    session.mark = (steps, session.start, state.eval_seconds)
    if start.checkpoint is not None:
        session.say(f"resumed from {start.checkpoint} at env step {steps}{resumed_note}")
        if not finished_check(parts, state)():  # eval.json was the end of an earlier budget: not the run's
            run.eval_json.unlink(missing_ok=True)
    elif start.resume:
        session.say(
            f"no checkpoint in {run.checkpoints}: the run starts over from env step 0"
            + ("; the rows it had logged are dropped" if rows_dropped else "")
        )
    note = compile_note(parts.agent)
    if note is not None:
        session.say(note)
    return bar, logger, session


def compile_note(agent: Any) -> str | None:
    """What a run says when its agent's updates are compiled (the first one waits for it), else None."""
    if not getattr(agent, "compiled", False):  # an optional capability (DQN, PPO, SAC, TD3)
        return None
    return (
        f"{type(agent).__name__}'s updates are compiled (agent.compile): the first waits for the "
        "compilation, ~10-40 s the first time on this machine and a few seconds after"
    )


def _quiet(message: str) -> None:
    del message


def finished_check(parts: RunParts, state: LoopState) -> Callable[[], bool]:
    """Whether the run is done: at ``loop.total_env_steps``, once an evaluation reached
    ``loop.stop_at_return``, or once the evaluation hook asked to stop (``state.stopped_by_hook``)."""
    loop, env_steps = parts.config.loop, parts.metrics.env_steps.result

    def finished() -> bool:
        return (
            env_steps() >= loop.total_env_steps
            or (
                state.stopped
                and loop.stop_at_return is not None
                and _still_reached(state, loop.stop_at_return)
            )
            or state.stopped_by_hook
        )

    return finished


def _still_reached(state: LoopState, stop_at_return: float) -> bool:
    """The evaluation that stopped the run reaches ``stop_at_return`` (a resume may have raised it)."""
    return state.stop_return is None or state.stop_return >= stop_at_return


def refuse_early_stop(signals: StopSignals, start: StartPoint) -> None:
    """RunInterruptedError if a stop signal arrived while a new run's parts were built (nothing to save)."""
    if signals.received is not None and start.checkpoint is None:
        raise RunInterruptedError(
            signals.received,
            f"stopped by {signals.received.name} before training started; nothing to save",
        )


def stop(
    session: Session, state: LoopState, signum: int, time_step: Any = None, policy_state: Any = None
) -> NoReturn:
    """Writes a checkpoint at this safe point (unless the newest is of this step) and raises
    RunInterruptedError."""
    steps = session.exp.metrics.env_steps.result()
    latest = session.latest_checkpoint()
    path = (
        latest[1]
        if latest is not None and latest[0] == steps
        else session.save(state, time_step, policy_state)
    )
    name = signal.Signals(signum).name
    session.say(f"{name}: stopped at env step {steps}")
    raise RunInterruptedError(
        signum,
        f"stopped by {name} at env step {steps}; checkpoint {path} (resume continues from it)",
        path,
    )


def diverged(session: Session, error: NonFiniteTrainLossError) -> TrainingDivergedError:
    """The error that stops a run whose loss was not finite (nothing is saved after the last good checkpoint)."""
    return session.diverged(f"the loss of train step {error.train_step} is {error.loss}")


def train_result(session: Session, state: LoopState, evaluation: EvalResult) -> TrainResult:
    """What the run of ``session`` reports, ``evaluation`` being its final one."""
    exp = session.exp
    return TrainResult(
        run_dir=session.run.path,
        env_steps=exp.metrics.env_steps.result(),
        train_steps=exp.agent.train_step,
        evaluation=evaluation,
        wall_seconds=session.wall(),
        warmup_seconds=state.warmup_seconds,
        collect_seconds=state.collect_seconds,
        train_seconds=state.train_seconds,
        eval_seconds=state.eval_seconds,
    )
