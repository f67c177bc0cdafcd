"""The learner of a distributed run: the loop over fragments, its schedule, and training from the replay.

:meth:`Learner.run` is the distributed loop of :mod:`drivetrain.distributed.runner`. Its schedule
(checkpointed by :meth:`Learner.state_dict`):

- **Collects.** Before each fragment the learner starts a collect on every idle collector
  (up to the transport's ``max_in_flight``, in round-robin order from ``cursor``; on a
  ``concurrent`` transport also as soon as a fragment arrives, so that its collector steps
  the next one while the learner inserts and trains on it) of
  ``min(fragment, target - inserted - requested)`` env steps (``fragment``:
  ``execution.fragment_steps``, else ``loop.update_period``), ``target`` being
  ``loop.learning_starts`` during the warm-up (the warm-up policy plays) and
  ``loop.total_env_steps`` after it. ``requested`` counts what collects in flight were asked.
- **Fragments.** The next finished fragment is inserted (a RATE_LIMITED insert is sent again
  after training made room); its counts go to the metrics and the progress bar, so the run's
  env steps are the sum of the inserted fragments' env steps.
- **Updates.** Without ``execution.samples_per_insert`` a collect-phase fragment of ``n``
  requested steps owes ``ceil(gradient_steps * n / update_period)`` updates (the local loop's
  pro rata), trained at once while the replay has windows (``owed`` carries the rest); with it,
  the learner trains as long as the rate limiter allows. Each sample call takes up to
  ``execution.batches_per_sample`` batches; while they train, the next call is on its way.
- **Weights.** ``get_policy_weights(agent)`` goes to every collector at the start, and when a
  collect starts if ``execution.weight_publish_period`` updates passed since the last broadcast:
  a collector applies weights only when a collect starts, so a broadcast between two collect
  starts would never be acted with (it only cost a copy of the weights, or on Ray an object
  store put and a call to every collector).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from drivetrain.agents import Agent
from drivetrain.distributed.collector import Fragment
from drivetrain.distributed.replay_server import InsertStatus
from drivetrain.distributed.topology import Collected, TakeBatches, Transport
from drivetrain.distributed.weights import get_policy_weights
from drivetrain.observers import ProgressBar
from drivetrain.replay.sources import Batch, ReplaySource
from drivetrain.train.checkpoint import CheckpointDir
from drivetrain.train.config import ExperimentConfig
from drivetrain.train.evaluation import EvalResult
from drivetrain.train.experiment import TrainMetrics
from drivetrain.train.loop_state import LoopState, TrainStats
from drivetrain.train.resume import StartPoint
from drivetrain.train.rundir import RunDir
from drivetrain.train.runs import (
    NonFiniteTrainLossError,
    TrainResult,
    diverged,
    finished_check,
    open_session,
    refuse_early_stop,
    stop,
    train_batch,
    train_result,
)
from drivetrain.train.signals import RunInterruptedError, StopSignals
from drivetrain.train.tracking import RunOutcome

if TYPE_CHECKING:
    from drivetrain.distributed.runner import LearnerParts

__all__ = ["IterationTimes", "Learner", "SessionContext", "count_fragment", "run_session"]


def count_fragment(m: TrainMetrics, f: Fragment) -> None:
    """Adds a fragment's counts to the run's metrics: env steps, episodes, their returns and lengths."""
    m.env_steps.load_state_dict({"n": m.env_steps.result() + f.env_steps})
    m.episodes.load_state_dict({"n": m.episodes.result() + f.episodes})
    for metric, values in ((m.average_return, f.episode_returns), (m.average_length, f.episode_lengths)):
        if values:
            s = metric.state_dict()
            metric.load_state_dict({**s, "buffer": [*s["buffer"], *values]})


class IterationTimes(NamedTuple):
    """Seconds one iteration of a distributed loop spent in the warm-up, collecting and training."""

    warmup: float = 0.0
    collect: float = 0.0
    train: float = 0.0


def run_session(
    parts: LearnerParts,
    state: LoopState,
    ctx: SessionContext,
    iteration: Callable[[ProgressBar, TrainStats], IterationTimes],
) -> TrainResult:
    """The session around a distributed loop's iterations: the run directory's logger and progress
    bar, stop signals (a checkpoint, then RunInterruptedError), a non-finite loss (TrainingDivergedError),
    then after each ``iteration(bar, stats)`` the rows, evaluations and checkpoints that are due
    (``Session.end_iteration``) until the budget or ``loop.stop_at_return``; the run's result."""
    bar, logger, session = open_session(
        parts, ctx.run, ctx.checkpoints, ctx.start, state, ctx.verbose, ctx.rows_dropped
    )
    evaluation: EvalResult | None = None
    finished = finished_check(parts, state)
    outcome: RunOutcome = "failed"
    try:
        refuse_early_stop(ctx.signals, ctx.start)
        while not finished():
            if ctx.signals.received is not None:
                stop(session, state, ctx.signals.received)
            try:
                times = iteration(bar, state.stats)
            except NonFiniteTrainLossError as e:
                raise diverged(session, e) from None
            state.warmup_seconds += times.warmup
            state.collect_seconds += times.collect
            state.train_seconds += times.train
            state.iteration += 1
            latest, _ = session.end_iteration(state, finished)
            evaluation = latest or evaluation
        if evaluation is None:
            evaluation = session.already_finished(state)
        outcome = "finished"
    except RunInterruptedError:
        outcome = "killed"
        raise
    finally:
        bar.close()
        logger.close(outcome)  # the tracker's status of the run
    return train_result(session, state, evaluation)


@dataclasses.dataclass(frozen=True)
class SessionContext:
    """Where a run writes and how it started (what :func:`drivetrain.train.train` found)."""

    run: RunDir
    checkpoints: CheckpointDir
    start: StartPoint
    signals: StopSignals
    verbose: bool
    rows_dropped: bool


@dataclasses.dataclass
class _Schedule:
    cursor: int = 0
    requested: int = 0
    owed: int = 0
    published: int = -1
    refill_until: int = 0
    """Env steps up to which fragments owe no updates: a resume without its replay refills it first."""


class Learner:
    """Trains the agent from the replay server and drives the collectors; see the module docstring."""

    def __init__(
        self,
        config: ExperimentConfig,
        agent: Agent,
        metrics: TrainMetrics,
        source: ReplaySource,
        transport: Transport,
        num_steps: int,
    ):
        self.config, self.agent, self.metrics = config, agent, metrics
        self.source, self.transport, self.num_steps = source, transport, int(num_steps)
        self.schedule = _Schedule()
        self._stats: Any = None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.schedule)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.schedule = _Schedule(**state)

    def forget(self, dropped: list[Collected]) -> None:
        """Collects whose fragments were dropped (a checkpoint without the replay) are no longer requested."""
        self.schedule.requested -= sum(c.requested for c in dropped)

    def refill(self) -> None:
        """After a resume without the replay: the next ``loop.learning_starts`` env steps fill it
        and owe no updates, as the local loop's refill before it trains again."""
        self.schedule.refill_until = self.metrics.env_steps.result() + self.config.loop.learning_starts

    # ------------------------------------------------------------------ the loop
    def run(self, parts: LearnerParts, state: LoopState, ctx: SessionContext) -> TrainResult:
        """The distributed loop (see the module docstring), in :func:`run_session`."""
        return run_session(parts, state, ctx, self._iteration)

    def _iteration(self, bar: ProgressBar, stats: TrainStats) -> IterationTimes:
        """One fragment: start collects, insert the next finished one, train what it owes."""
        from drivetrain.distributed.runner import advance_bar

        loop, execution = self.config.loop, self.config.execution
        self._stats = stats
        if self.schedule.published < 0:
            self._publish()
        self._start_collects()
        t0 = time.perf_counter()
        got = self.transport.next_fragment()
        t1 = time.perf_counter()
        if self.transport.concurrent:  # its collector steps the next fragment while this one trains
            self._start_collects()
        self._insert(got)
        advance_bar(bar, got.fragment)
        if not got.warmup and execution.samples_per_insert is None:
            beyond = min(got.requested, self.metrics.env_steps.result() - self.schedule.refill_until)
            if beyond > 0:  # the steps past a refill owe updates, pro rata
                self.schedule.owed += math.ceil(loop.gradient_steps * beyond / loop.update_period)
        # with a rate limit the replay says when; not before learning_starts env steps either (its
        # minimum size counts items, boundaries included)
        warmed_up = self.metrics.env_steps.result() >= loop.learning_starts
        if not got.warmup or (execution.samples_per_insert is not None and warmed_up):
            self._train(None if execution.samples_per_insert else self.schedule.owed)
        if got.warmup:
            return IterationTimes(warmup=time.perf_counter() - t0)
        return IterationTimes(collect=t1 - t0, train=time.perf_counter() - t1)

    # ------------------------------------------------------------------ parts of an iteration
    def _start_collects(self) -> None:
        loop, schedule, transport = self.config.loop, self.schedule, self.transport
        count = self.config.execution.collectors
        busy = transport.in_flight()
        for _ in range(count):
            if len(busy) >= transport.max_in_flight:
                return
            index = schedule.cursor
            if index in busy:
                schedule.cursor = (index + 1) % count
                continue
            done = self.metrics.env_steps.result() + schedule.requested
            warmup = done < loop.learning_starts
            target = loop.learning_starts if warmup else loop.total_env_steps
            num_steps = min(self.config.execution.fragment(loop.update_period), target - done)
            if num_steps <= 0:
                return
            if self.agent.train_step - schedule.published >= self.config.execution.weight_publish_period:
                self._publish()  # a collector takes weights when a collect starts, so they go now
            transport.collect(index, num_steps, warmup)
            busy.add(index)
            schedule.requested += num_steps
            schedule.cursor = (index + 1) % count

    def _insert(self, got: Collected) -> None:
        while True:
            status = self.transport.insert(got)
            if status is InsertStatus.STORED:
                break
            if status is InsertStatus.DUPLICATE:
                raise RuntimeError(
                    f"collector {got.index}'s fragment {got.fragment.sequence_number} was stored before"
                )
            if not self._train(1, refused=True):  # the limiter wants samples before more inserts
                raise RuntimeError(
                    "the replay refuses both inserts and samples (rate limiter): check "
                    "execution.samples_per_insert and execution.rate_error_buffer"
                )
        self.schedule.requested -= got.requested
        count_fragment(self.metrics, got.fragment)

    def _train(self, limit: int | None, refused: bool = False) -> int:
        """Trains up to ``limit`` updates (None: while the replay gives batches); returns how many.

        While one sample call's batches train, the next call is already on its way (when more
        updates are due), so the replay samples and sends while the learner computes."""
        loop = self.config.loop
        done = 0
        take = self._sample(self._want(limit, done))
        while take is not None:
            batches = take()
            want = self._want(limit, done)
            if batches is None and want > 1:
                batches = self.transport.sample_async(1, loop.batch_size, self.num_steps)()
            if batches is None:
                break
            done += len(batches)
            take = self._sample(self._want(limit, done))
            for windows, info in batches:
                weights = info.weights if self.config.replay.prioritized else None
                loss_info = train_batch(self.agent, windows, weights, self._stats)
                self.source.trained(Batch(windows, weights, info), loss_info)
            if not refused:
                self.schedule.owed = max(self.schedule.owed - len(batches), 0)
        return done

    def _want(self, limit: int | None, done: int) -> int:
        per_call = self.config.execution.batches_per_sample
        return per_call if limit is None else min(per_call, limit - done)

    def _sample(self, want: int) -> TakeBatches | None:
        """Sends the next sample call (None when no more updates are due)."""
        if want <= 0:
            return None
        return self.transport.sample_async(want, self.config.loop.batch_size, self.num_steps)

    def _publish(self) -> None:
        version, weights = get_policy_weights(self.agent)
        self.transport.set_weights(version, weights)
        self.schedule.published = version
