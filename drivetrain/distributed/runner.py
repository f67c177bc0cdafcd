"""The distributed training run: collectors, one replay and a learner (``execution.backend`` "ray" or "threads").

:func:`train_distributed` is :func:`drivetrain.train.train` for the distributed topology, with
the same run directory (``config.json``, progress.csv/jsonl, TensorBoard, ``checkpoints/``, the
learning curve, ``agent.pkl``, ``eval.json``), progress bar, messages, evaluations,
``loop.stop_at_return``, lock, refusals and ``--resume``: it uses the local loop's parts
(:class:`~drivetrain.train.rundir.RunDir`, :func:`~drivetrain.train.resume.find_start`,
:class:`~drivetrain.train.session.Session` and its :meth:`~drivetrain.train.session.Session.end_iteration`).

::

    warm-up:  collectors play their warm-up policy until loop.learning_starts env steps are inserted
    repeat until loop.total_env_steps (the sum of the inserted fragments' env_steps):
        each idle collector collects a fragment of execution.fragment_steps env steps (default
        loop.update_period) from its batch of execution.envs_per_collector environments, with
        the collect policy at the weights it holds
        the learner inserts the next finished fragment into the ReplayServer (one shard per collector)
        and trains: gradient_steps * fragment / update_period updates (without samples_per_insert),
        or as many as the rate limiter allows (with it); batches_per_sample batches per sample call,
        priorities back as ReplaySource sends them; get_policy_weights(agent) to every collector
        every execution.weight_publish_period updates
        then, when due: a row, an evaluation, a checkpoint (Session.end_iteration)

Replay-based agents (DQN, R2D2, SAC, TD3: their builder's source is a
:class:`~drivetrain.replay.sources.ReplaySource`) run this loop
(:class:`~drivetrain.distributed.learner.Learner`); on-policy agents (PPO, REINFORCE: a
:class:`~drivetrain.replay.sources.RolloutSource`) run synchronous rounds on the union of the
collectors' rollouts, without a replay (:mod:`drivetrain.distributed.on_policy`). The learner
builds its agent on ``agent.device``; the replay holds ``replay.capacity`` items split evenly
over the shards and starts sampling at ``loop.learning_starts`` items.

A checkpoint holds the learner (agent, metrics, torch's RNG, the schedule), the replay server's
state (unless ``loop.checkpoint_replay`` is false), every collector's state and the fragments
finished but not inserted yet (see :mod:`drivetrain.distributed.topology`). With the in-process
transport a resumed run continues bit for bit; on Ray the counters and replay contents at the
checkpoint are identical (the collectors' timing is not reproducible).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
import torch

from drivetrain.agents import Agent, builder_for
from drivetrain.core import types
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy
from drivetrain.distributed.collector import Fragment
from drivetrain.distributed.learner import Learner, SessionContext
from drivetrain.distributed.on_policy import OnPolicyLearner, check_on_policy
from drivetrain.distributed.topology import Transport
from drivetrain.observers import ProgressBar
from drivetrain.replay import PrioritizedReplay
from drivetrain.replay.sources import ExperienceSource, ReplaySource, RolloutSource
from drivetrain.train.checkpoint import CheckpointDir, CheckpointError
from drivetrain.train.config import ExperimentConfig, check_config, run_plan, save_config
from drivetrain.train.experiment import TrainMetrics, eval_policy, make_env, run_seeds
from drivetrain.train.fields import ConfigError
from drivetrain.train.loop_state import LoopState, fresh_state, reschedule
from drivetrain.train.resume import find_start
from drivetrain.train.rundir import RunDir
from drivetrain.train.runs import RunSetupError, TrainResult, torch_threads
from drivetrain.train.signals import StopSignals

__all__ = ["DistributedRunError", "LearnerParts", "train_distributed"]


class DistributedRunError(RunSetupError):
    """A part of a distributed run was lost (the replay actor); the message says how to resume."""


class _PriorityForwarder:
    """Stands in for the replay of the agent's ReplaySource, so that ``source.trained`` sends the
    new priorities of a batch exactly as it does in the local loop, to the replay server."""

    def __init__(self, transport: Transport):
        self._transport = transport

    def update_priorities(self, ids: Any, priorities: Any) -> None:
        self._transport.update_priorities(ids, priorities)


@dataclasses.dataclass
class LearnerParts:
    """The learner's parts (a :class:`~drivetrain.train.loop_state.RunParts`): what a Session reads and saves."""

    config: ExperimentConfig
    agent: Agent
    metrics: TrainMetrics
    source: ExperienceSource
    """A replay-based agent's own source, used only for ``trained`` (priorities back, through the
    transport); an on-policy agent's rollout (its kept items are checkpointed)."""
    transport: Transport
    learner: Learner | OnPolicyLearner

    @property
    def eval_policy(self) -> Policy:
        return eval_policy(self.agent, self.config)

    def make_eval_env(self, final: bool = False) -> Environment:
        seeds = run_seeds(self.config.seed)
        seed = seeds.final_eval if final else seeds.eval_env
        return make_env(self.config.env, self.config.loop.eval_num_envs, seed, evaluation=True)

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "transport": self.transport.state_dict(include_replay),
            "metrics": self.metrics.state_dict(),
            "learner": self.learner.state_dict(),
            "source": None if self.source.large_state else self.source.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.metrics.load_state_dict(state["metrics"])
        self.learner.load_state_dict(state["learner"])
        dropped = self.transport.load_state_dict(state["transport"])
        self.learner.forget(dropped)
        if state["transport"].get("server", True) is None and isinstance(self.learner, Learner):
            self.learner.refill()  # the checkpoint held no replay (loop.checkpoint_replay false)
        if state["source"] is not None:
            self.source.load_state_dict(state["source"])
        torch.set_rng_state(state["torch_rng"])

    def close(self) -> None:
        try:
            self.source.close()
        finally:
            self.transport.close()


def check_distributed(config: ExperimentConfig) -> None:
    """ConfigError naming the field when a replay-based distributed run cannot work with these settings."""
    execution = config.execution
    envs = execution.num_envs(config.env.num_envs)
    per_shard = config.replay.capacity // execution.collectors
    if per_shard < envs:
        raise ConfigError(
            f"replay.capacity ({config.replay.capacity}) split over execution.collectors "
            f"({execution.collectors}) leaves {per_shard} items per shard, fewer than the "
            f"{envs} environments of a collector: raise replay.capacity"
        )
    if config.loop.learning_starts > per_shard * execution.collectors:
        raise ConfigError(
            f"loop.learning_starts ({config.loop.learning_starts}) exceeds what the replay holds "
            f"(replay.capacity {config.replay.capacity}): sampling would never start"
        )


def _build_learner(config: ExperimentConfig) -> tuple[Agent, ExperienceSource, dict[str, Any] | None]:
    """The learner's agent, its source, and the replay server's settings (None: on-policy, no replay)."""
    builder = builder_for(config.agent)
    seeds = run_seeds(config.seed)
    torch.manual_seed(seeds.torch_global)  # as a local run does; checkpoints hold its state
    execution = config.execution
    envs = execution.num_envs(config.env.num_envs)
    plan = dataclasses.replace(run_plan(config), num_envs=envs)
    probe = make_env(config.env, 1, seeds.env)
    try:
        specs = probe.time_step_spec(), probe.action_spec()
    finally:
        probe.close()
    agent = builder.make_agent(config.agent, specs[0], specs[1], seeds.agent, plan)
    small = dataclasses.replace(config.replay, capacity=envs, prefetch=0)  # the replay server holds the data
    source = builder.make_source(agent, small, plan, seeds.replay)
    if isinstance(source, RolloutSource):  # on-policy: one update on the union of C x E environments
        source.close()
        check_on_policy(config)
        union = dataclasses.replace(plan, num_envs=envs * execution.collectors)
        agent = builder.make_agent(config.agent, specs[0], specs[1], seeds.agent, union)
        return agent, builder.make_source(agent, small, union, seeds.replay), None
    if not isinstance(source, ReplaySource):
        source.close()
        raise ConfigError(
            f"a distributed execution.backend runs replay-based agents and on-policy agents with rollouts; "
            f"{type(config.agent).__name__}'s experience source is a {type(source).__name__}: "
            "set execution.backend = 'local'"
        )
    check_distributed(config)
    window = source.window_steps
    per_env = config.replay.capacity // execution.collectors // envs
    if window > per_env:
        raise ConfigError(
            f"replay.capacity ({config.replay.capacity}) keeps {per_env} items per environment over "
            f"{execution.collectors} shards of {envs} environments, fewer than one window of {window} steps "
            f"(agent.train_sequence_length): raise replay.capacity to at least {window * envs * execution.collectors}"
        )
    if (
        execution.samples_per_insert is not None
        and config.loop.learning_starts < window * envs * execution.collectors
    ):
        need = window * envs * execution.collectors
        raise ConfigError(
            f"loop.learning_starts ({config.loop.learning_starts}) must be at least {need} with "
            f"execution.samples_per_insert: windows of {window} steps in each of the {envs * execution.collectors} "
            "environments before the rate limit asks for samples (else it could refuse inserts before any "
            "window can be sampled)"
        )
    replay = config.replay
    prioritized: dict[str, Any] = {}
    if replay.prioritized:
        beta = source.replay.beta if isinstance(source.replay, PrioritizedReplay) else replay.beta
        prioritized = {"alpha": replay.alpha, "beta": beta, "epsilon": replay.priority_epsilon}
    fragment_steps = execution.fragment(config.loop.update_period)
    settings = {
        "data_spec": agent.collect_data_spec,
        "capacity": replay.capacity // execution.collectors,
        "num_shards": execution.collectors,
        "envs_per_shard": envs,
        "prioritized": replay.prioritized,
        **prioritized,
        "samples_per_insert": execution.samples_per_insert,
        "min_size_to_sample": max(1, config.loop.learning_starts),
        "error_buffer": execution.rate_error_buffer,
        # a fragment of n env steps has at most n / E time steps plus a boundary after each
        "max_insert_steps": 2 * math.ceil(fragment_steps / envs) + 2,
        "max_sample_windows": execution.batches_per_sample * config.loop.batch_size,
        "seed": seeds.replay,
    }
    return agent, source, settings


def _build_parts(
    config: ExperimentConfig,
    learner: tuple[Agent, ExperienceSource, dict[str, Any] | None],
    transport: Transport,
) -> LearnerParts:
    """Starts the replay server (if any) and the collectors through ``transport``; the learner's parts."""
    agent, source, settings = learner
    if isinstance(source, ReplaySource):
        source.replay = _PriorityForwarder(transport)  # type: ignore[assignment]
    try:
        transport.start(config, settings)
    except BaseException:
        source.close()
        transport.close()
        raise
    metrics = TrainMetrics.create(config.loop.average_window)
    loop: Learner | OnPolicyLearner
    if isinstance(source, RolloutSource):
        one_env = dataclasses.replace(run_plan(config), num_envs=1)
        rollout_steps = builder_for(config.agent).update_period(config.agent, one_env)  # per environment
        loop = OnPolicyLearner(config, agent, metrics, source, transport, rollout_steps)
    else:
        assert isinstance(source, ReplaySource)
        loop = Learner(config, agent, metrics, source, transport, source.window_steps)
    return LearnerParts(config, agent, metrics, source, transport, loop)


def _default_transport(config: ExperimentConfig) -> Transport:
    """The transport of ``execution.backend``: Ray's, or collectors in threads of this process."""
    if config.execution.backend == "threads":
        from drivetrain.distributed.thread_topology import ThreadTransport

        return ThreadTransport()
    from drivetrain.distributed.ray_topology import RayTransport

    return RayTransport()


def train_distributed(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    force: bool = False,
    verbose: bool = True,
    transport: Transport | None = None,
) -> TrainResult:
    """Trains as ``config`` says with collectors, a replay and a learner; see the module docstring.

    Args and errors are those of :func:`drivetrain.train.train`, and:
      transport: how the learner reaches the collectors and the replay; None: that of
        ``execution.backend``: Ray (:class:`~drivetrain.distributed.ray_topology.RayTransport`:
        ``ray.init(address=execution.ray_address)`` unless Ray is initialised) or threads
        (:class:`~drivetrain.distributed.thread_topology.ThreadTransport`). ``InProcessTransport()``
        runs the same topology in this process, one collect at a time, deterministically.

    Raises:
      ConfigError: an on-policy agent (it names ``execution.backend``), or settings that cannot work.
      DistributedRunError: the replay actor was lost (``--resume`` continues from the last checkpoint).
    """
    check_config(config, resuming=resume)
    run = RunDir(run_dir)
    with run.lock(), StopSignals() as signals, torch_threads(config.loop.torch_threads):
        run.check(resume=resume, force=force)
        start = find_start(run, config, resume)
        try:
            learner = _build_learner(config)
            chosen = transport if transport is not None else _default_transport(config)
            parts = _build_parts(config, learner, chosen)
        except ConfigError:
            raise
        except (ImportError, MemoryError, ValueError, OSError) as e:
            raise RunSetupError(f"cannot build the distributed run ({type(e).__name__}): {e}") from e
        try:
            state = fresh_state_for(parts, start.snapshot, start.checkpoint)
            rows_dropped = run.has_progress() and start.snapshot is None
            run.prepare(resume=resume)
            checkpoints = CheckpointDir(run.checkpoints, keep=config.loop.keep_checkpoints)
            checkpoints.set_aside(start.damaged)
            save_config(config, run.config)
            context = SessionContext(run, checkpoints, start, signals, verbose, rows_dropped)
            return parts.learner.run(parts, state, context)
        finally:
            parts.close()


def fresh_state_for(parts: LearnerParts, snap: dict[str, Any] | None, path: Any) -> LoopState:
    """The loop state of a new run, or the checkpoint's put back into ``parts``."""
    if snap is None:
        return fresh_state(parts)
    try:
        parts.load_state_dict(snap["experiment"])
        state = LoopState.from_dict(snap["loop"])
        reschedule(state, snap["config"].get("loop", {}), parts.config.loop, parts.metrics.env_steps.result())
        return state
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"cannot restore {path} into this run's parts: {type(e).__name__}: {e}") from e


def advance_bar(bar: ProgressBar, fragment: Fragment) -> None:
    """Moves the progress bar by a fragment's env steps (it reads only the step types when it shows a metric)."""
    mid, last = int(types.StepType.MID), int(types.StepType.LAST)
    n = fragment.env_steps
    bar(
        types.Trajectory(
            step_type=np.full(n, mid, np.int32),
            observation=(),
            action=(),
            policy_info={},
            next_step_type=np.full(min(n, fragment.episodes), last, np.int32),
            reward=np.zeros(n, np.float32),
            discount=np.ones(n, np.float32),
        )
    )
