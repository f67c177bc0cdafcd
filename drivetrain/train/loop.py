"""The training loop of the book (Hands-On Machine Learning, ch. 18), built from the parts.

::

    warm-up:   StepDriver(env, warmup_policy, observers, num_steps=learning_starts).run()   (if any)
    repeat until total_env_steps:
        collect:   StepDriver(env, agent.collect_policy, observers, num_steps=update_period).run(...)
        train:     for batch in source.batches(collected):
                       agent.train(batch.experience, weights=batch.weights); source.trained(batch, info)
        then, when due: a row in progress.csv, a greedy evaluation, a checkpoint
    at the end (the budget, or an evaluation reaching loop.stop_at_return):
        the final evaluation and its row, the last checkpoint, then eval.json

``observers`` are the agent's experience source, the training metrics and the progress
bar: the environment loop exists once, in the drivers, so a distributed version can run
the same driver in remote actors. The loop is the same for every agent: the source
(:mod:`drivetrain.replay.sources`) decides what each train phase gets (windows of a
replay with importance weights and priorities back, or a rollout's minibatches for
some epochs), and every scalar the agent and its collect policy report is logged.

The run directory is never corrupted: :func:`train` takes its lock, finds the checkpoint
to resume from and checks the config against it (:mod:`drivetrain.train.resume`), and
builds every part before it writes anything; so a refused or failed start leaves the
folder as it was. ``train(..., resume=True)`` continues from the latest checkpoint as if
the run had never stopped: the same number of steps, logs trimmed to the checkpoint's
step, and — when the environments' state is restored and batches are not prefetched —
the same final weights, bit for bit. SIGINT and SIGTERM stop the run between iterations
with a checkpoint (:mod:`drivetrain.train.signals`); a non-finite loss stops it before a
checkpoint of the diverged weights is written (:class:`TrainingDivergedError`). ``eval.json``
is written after the final checkpoint, and always evaluates the agent it holds.
"""

from __future__ import annotations

import os
import time
from typing import Any

import gymnasium

from drivetrain.core.drivers import Observer, StepDriver
from drivetrain.train.checkpoint import CheckpointDir
from drivetrain.train.config import ExperimentConfig, check_config, save_config
from drivetrain.train.evaluation import EvalResult
from drivetrain.train.experiment import Experiment, build_experiment
from drivetrain.train.fields import ConfigError
from drivetrain.train.loop_state import LoopState, TrainStats, fresh_state, restore
from drivetrain.train.resume import StartPoint, find_start
from drivetrain.train.rundir import RunDir
from drivetrain.train.runs import (
    NonFiniteTrainLossError,
    RunSetupError,
    TrainingDivergedError,
    TrainResult,
    diverged,
    finished_check,
    open_session,
    refuse_early_stop,
    stop,
    torch_threads,
    train_batch,
    train_result,
)
from drivetrain.train.session import EvalHook
from drivetrain.train.signals import RunInterruptedError, StopSignals
from drivetrain.train.tracking import RunOutcome

__all__ = ["LoopState", "RunSetupError", "TrainResult", "TrainingDivergedError", "train"]


def _train_phase(exp: Experiment, collected: int, stats: TrainStats) -> None:
    """Trains on what the source gives after ``collected`` env steps; a non-finite loss stops it."""
    source, agent = exp.source, exp.agent
    for batch in source.batches(collected):
        source.trained(batch, train_batch(agent, batch.experience, batch.weights, stats))


def _build(config: ExperimentConfig) -> Experiment:
    try:
        return build_experiment(config)
    except (gymnasium.error.Error, ImportError, MemoryError, ValueError) as e:
        raise RunSetupError(f"cannot build the run ({type(e).__name__}): {e}") from e


def train(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    force: bool = False,
    verbose: bool = True,
    on_evaluation: EvalHook | None = None,
) -> TrainResult:
    """Trains an agent as ``config`` says, writing everything into ``run_dir``.

    Args:
      config: the resolved config (a preset with overrides); saved as ``config.json``.
      run_dir: the run directory (see :mod:`drivetrain.train.rundir`); locked while training.
      resume: continue from the latest checkpoint in ``run_dir`` (from env step 0 if none);
        fields fixed on resume (:data:`~drivetrain.train.config_resume.CHANGEABLE_ON_RESUME`) must
        equal the run's, the others take their new values.
      force: delete a run already in ``run_dir`` and start over.
      verbose: print what happens (checkpoints, evaluations) above the progress bar.
      on_evaluation: called with each periodic evaluation and its env steps; returning True
        ends the run there with a complete run directory (:data:`~drivetrain.train.session.EvalHook`;
        local execution only).

    Returns:
      The :class:`TrainResult` with the final evaluation (also in ``eval.json``).

    Raises:
      RunDirError: the folder holds a run (without ``resume``/``force``), has none to
        resume, or another process trains in it (:class:`~drivetrain.train.rundir.RunDirLockedError`).
      ConfigError: the config is invalid, or changes a field that is fixed on resume.
      CheckpointError: every checkpoint is damaged, or one does not fit this run.
      RunSetupError: a part of the run cannot be built.
      RunInterruptedError: SIGINT or SIGTERM stopped the run (with a checkpoint).
      TrainingDivergedError: a loss was NaN or infinite.

    ``execution.backend = "ray"`` runs collectors, a replay and a learner on Ray instead, and
    ``"threads"`` the same parts in this process with the collectors in threads
    (:func:`drivetrain.distributed.runner.train_distributed`: the same run directory and errors).
    """
    check_config(config, resuming=resume)
    if config.execution.distributed:
        from drivetrain.distributed.runner import train_distributed

        if on_evaluation is not None:
            raise ConfigError("train(on_evaluation=...) needs execution.backend 'local'")

        return train_distributed(config, run_dir, resume=resume, force=force, verbose=verbose)
    run = RunDir(run_dir)
    with run.lock(), StopSignals() as signals, torch_threads(config.loop.torch_threads):
        run.check(resume=resume, force=force)
        start = find_start(run, config, resume)
        exp = _build(config)
        try:
            if start.snapshot is not None:
                assert start.checkpoint is not None
                begun = restore(exp, start.snapshot, start.checkpoint)
            else:
                begun = (fresh_state(exp), None, None)
            rows_dropped = run.has_progress() and start.snapshot is None
            run.prepare(resume=resume)
            checkpoints = CheckpointDir(run.checkpoints, keep=config.loop.keep_checkpoints)
            checkpoints.set_aside(start.damaged)
            save_config(config, run.config)
            return _run(exp, run, checkpoints, start, begun, signals, verbose, rows_dropped, on_evaluation)
        finally:
            exp.close()


def _run(
    exp: Experiment,
    run: RunDir,
    checkpoints: CheckpointDir,
    start: StartPoint,
    begun: tuple[LoopState, Any, Any],
    signals: StopSignals,
    verbose: bool,
    rows_dropped: bool,
    on_evaluation: EvalHook | None = None,
) -> TrainResult:
    loop = exp.config.loop
    env_steps = exp.metrics.env_steps.result
    state, time_step, policy_state = begun
    note = "" if time_step is not None else " (environments reset: their state was not in the checkpoint)"
    bar, logger, session = open_session(exp, run, checkpoints, start, state, verbose, rows_dropped, note)
    session.on_evaluation = on_evaluation
    observers: list[Observer] = [exp.source.observe, *exp.metrics.observers, bar]
    evaluation: EvalResult | None = None
    finished = finished_check(exp, state)
    outcome: RunOutcome = "failed"
    try:
        refuse_early_stop(signals, start)  # a signal while the parts were built
        if start.checkpoint is None and loop.learning_starts > 0 and exp.warmup_policy is not None:
            warmup = StepDriver(exp.env, exp.warmup_policy, observers, num_steps=loop.learning_starts)
            time_step, policy_state = warmup.run()
            if not exp.warmup_policy.stateful:  # the collect policy starts from its own initial state
                policy_state = None
            state.warmup_seconds = time.perf_counter() - session.start
        refill_steps = min(loop.learning_starts, loop.total_env_steps - env_steps())
        refilled = start.checkpoint is not None and exp.replay_emptied and refill_steps > 0 and not finished()
        if refilled:  # the checkpoint held no replay: fill it again (within the budget) before training
            refill = StepDriver(exp.env, exp.agent.collect_policy, observers, num_steps=refill_steps)
            time_step, policy_state = refill.run(time_step, policy_state)
            session.say(f"collected {refill_steps} env steps into the empty replay before training")
        period = exp.update_period
        collect = StepDriver(exp.env, exp.agent.collect_policy, observers, num_steps=period)
        while not finished():
            if signals.received is not None:
                stop(session, state, signals.received, time_step, policy_state)
            # 1. collect; the last iteration only collects what is left of the budget
            collect.num_steps = min(period, loop.total_env_steps - env_steps())
            t0 = time.perf_counter()
            time_step, policy_state = collect.run(time_step, policy_state)
            t1 = time.perf_counter()
            # 2. train
            try:
                _train_phase(exp, collect.num_steps, state.stats)
            except NonFiniteTrainLossError as e:
                raise diverged(session, e) from None
            state.collect_seconds += t1 - t0
            state.train_seconds += time.perf_counter() - t1
            state.iteration += 1
            # 3. evaluate, log, checkpoint when due (see Session.end_iteration)
            latest, _ = session.end_iteration(state, finished, time_step, policy_state)
            evaluation = latest or evaluation

        if evaluation is None and (start.checkpoint is None or refilled):  # the warm-up took the rest
            evaluation, _ = session.end_iteration(state, finished, time_step, policy_state)
        if evaluation is None:  # resumed a run that had already finished
            evaluation = session.already_finished(state)
        outcome = "finished"
    except RunInterruptedError:
        outcome = "killed"
        raise
    finally:
        bar.close()
        logger.close(outcome)  # the tracker's status of the run

    return train_result(session, state, evaluation)
