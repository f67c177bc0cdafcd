"""One call of :func:`~drivetrain.train.train`: where it writes.

What the local loop and the distributed runner (:mod:`drivetrain.distributed.runner`) share,
with the checkpointed state of :mod:`drivetrain.train.loop_state`. :class:`Session` writes the
rows of ``progress.csv``, the checkpoints with ``agent.pkl`` and the messages above the
progress bar (its logger draws the learning curve once, as the run ends:
:class:`~drivetrain.train.logger.RunLogger`); :meth:`Session.end_iteration` is the end of every
iteration of both (an evaluation when due, ``loop.stop_at_return``, the final evaluation, a row,
a checkpoint, ``eval.json``). A session reads the run's parts through
:class:`~drivetrain.train.loop_state.RunParts` (an
:class:`~drivetrain.train.experiment.Experiment`, or the distributed learner's parts).
:mod:`drivetrain.train.runs` opens a session and holds the rest the two loops share (a train
batch with its divergence check, the stop at a signal, the result).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivetrain.train.artifacts import final_eval_steps, save_agent
from drivetrain.train.checkpoint import CheckpointDir, atomic_write_text
from drivetrain.train.config import ExperimentConfig
from drivetrain.train.eval_videos import EvalVideos, video_due
from drivetrain.train.evaluation import EvalResult, eval_step_limit, evaluate
from drivetrain.train.logger import RunLogger
from drivetrain.train.loop_state import (
    LoopState,
    RunParts,
    TrainStats,
    first_non_finite,
    next_multiple,
    snapshot,
)
from drivetrain.train.rundir import RunDir

if TYPE_CHECKING:
    from drivetrain.train.runs import TrainingDivergedError

__all__ = ["EvalHook", "Session", "curve_title", "describe", "return_name"]

EvalHook = Callable[[EvalResult, int], bool]
"""``hook(evaluation, env_steps) -> stop``: called with each periodic evaluation of a run and the
env steps it was run at; True ends the run there, as ``loop.stop_at_return`` does (the final
evaluation, its row, a checkpoint, ``eval.json``). Passed as ``train(..., on_evaluation=hook)``."""


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
        bad = first_non_finite(self.exp.agent.state_dict())
        if bad is not None:
            what = f"the agent's {bad} holds NaN or infinite values at train step {self.exp.agent.train_step}"
            raise self.diverged(what)

    def diverged(self, what: str) -> TrainingDivergedError:
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
