"""Synchronous on-policy training on collectors (PPO, REINFORCE): the learner trains on the union of their rollouts.

:meth:`OnPolicyLearner.run` is the distributed loop of :mod:`drivetrain.distributed.runner` for
agents whose experience source is a :class:`~drivetrain.replay.sources.RolloutSource`::

    repeat until loop.total_env_steps (the sum of the fragments' env_steps):
        the weights (their version counts the learner's updates) go to every collector
        every collector takes agent.rollout_steps steps of its batch of E environments (boundaries
            included, so that the fragments line up item by item), and then, while the round's env
            steps (boundaries not counted) are short of rollout_steps x C x E, the same number of
            steps more each, as the local loop's driver does: a round of the last env steps of the
            budget is as long as what is left
        the fragments are joined along the environment axis, collector 0's environments first,
            into one rollout of C x E environments, which the agent trains on as in the local loop:
            prepare (advantages and returns), num_epochs x num_minibatches minibatches, then
            release (the open tail of each environment stays for the next round)
        then, when due: a row, an evaluation, a checkpoint (Session.end_iteration)

Each round is one update of the local loop with ``C x E`` environments: every item is collected
with the weights of the latest update, so the data is as on-policy as a local run's. There is
no replay server and no rate limiter; ``execution.fragment_steps``, ``samples_per_insert`` and
``rate_error_buffer`` do not apply (refused by :func:`check_on_policy`).

**Episodes stay whole.** An item continues the one kept before it (from the last round, or from
this round's previous segment) when its step type is the kept item's next step type. A collector that Ray restarted, or one resumed without its
environments' state (EnvPool), starts new episodes instead: the kept items of those environments
are then released as if trained on (never trained on, never joined to the new episodes), so
the unfinished episode's last item is dropped and nothing bootstraps across the cut.

**Checkpoints** hold the learner's parts (the agent, the metrics, the rollout's kept items) and
the collectors' states (see :mod:`~drivetrain.distributed.topology`); nothing is in flight
between rounds, so the cut is consistent and the in-process transport resumes bit for bit.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from drivetrain.agents import Agent
from drivetrain.core import nest, types
from drivetrain.distributed.learner import IterationTimes, SessionContext, count_fragment, run_session
from drivetrain.distributed.topology import Collected, Transport
from drivetrain.distributed.weights import get_policy_weights
from drivetrain.observers import ProgressBar
from drivetrain.replay.sources import RolloutSource
from drivetrain.train.config import ExperimentConfig
from drivetrain.train.experiment import TrainMetrics
from drivetrain.train.fields import ConfigError
from drivetrain.train.loop_state import LoopState, TrainStats
from drivetrain.train.runs import TrainResult, train_batch

if TYPE_CHECKING:
    from drivetrain.distributed.runner import LearnerParts

__all__ = ["OnPolicyLearner", "check_on_policy", "join_fragments"]


def check_on_policy(config: ExperimentConfig) -> None:
    """ConfigError naming the execution field that an on-policy run does not use."""
    execution = config.execution
    unused = {
        "fragment_steps": execution.fragment_steps,
        "samples_per_insert": execution.samples_per_insert,
        "rate_error_buffer": execution.rate_error_buffer,
    }
    for name, value in unused.items():
        if value is not None:
            raise ConfigError(
                f"execution.{name} ({value}) does not apply to {type(config.agent).__name__}: an on-policy "
                "agent's collectors each take agent.rollout_steps steps of their environments per update, "
                "and the learner trains on their union once; leave it None"
            )


def join_fragments(items: list[list[types.Trajectory]]) -> list[types.Trajectory]:
    """The collectors' trajectories ``[E_c, ...]`` joined item by item along the environment axis."""
    lengths = {len(x) for x in items}
    if len(lengths) != 1:
        raise RuntimeError(f"on-policy fragments of different lengths {sorted(lengths)}: they must line up")
    return [
        nest.map_structure(lambda *xs: np.concatenate(xs), *column) for column in zip(*items, strict=True)
    ]


def cut_episodes(source: RolloutSource, first: types.Trajectory) -> int:
    """Releases the kept items of the environments whose new item does not continue them; returns how many."""
    rollout = source.rollout
    if len(rollout) == 0:
        return 0
    kept, trained = rollout.gather()
    cut = np.asarray(first.step_type) != np.asarray(kept.next_step_type)[:, -1]
    if cut.any():
        rollout.release(np.broadcast_to(cut[:, None], trained.shape))
    return int(cut.sum())


class OnPolicyLearner:
    """Trains an on-policy agent on rounds of all collectors' rollouts; see the module docstring."""

    def __init__(
        self,
        config: ExperimentConfig,
        agent: Agent,
        metrics: TrainMetrics,
        source: RolloutSource,
        transport: Transport,
        rollout_steps: int,
    ):
        self.config, self.agent, self.metrics = config, agent, metrics
        self.source, self.transport = source, transport
        self.rollout_steps = int(rollout_steps)
        self.envs = config.execution.num_envs(config.env.num_envs)
        self.cuts = 0
        """Environments whose episode a restart (or a resume without their state) cut, this session."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def forget(self, dropped: list[Collected]) -> None:
        del dropped  # no replay: nothing is dropped

    def run(self, parts: LearnerParts, state: LoopState, ctx: SessionContext) -> TrainResult:
        """Synchronous rounds (see the module docstring), in :func:`~drivetrain.distributed.learner.run_session`."""
        return run_session(parts, state, ctx, self._iteration)

    def _iteration(self, bar: ProgressBar, stats: TrainStats) -> IterationTimes:
        """One round: every collector's fragments, joined, then one update on the union."""
        from drivetrain.distributed.runner import advance_bar

        t0 = time.perf_counter()
        segments = self._collect_round()
        t1 = time.perf_counter()
        collected = 0
        for got in (got for segment in segments for got in segment):
            count_fragment(self.metrics, got.fragment)
            advance_bar(bar, got.fragment)
            collected += got.fragment.env_steps
        self._observe(segments)
        for batch in self.source.batches(collected):
            self.source.trained(batch, train_batch(self.agent, batch.experience, None, stats))
        return IterationTimes(collect=t1 - t0, train=time.perf_counter() - t1)

    def _collect_round(self) -> list[list[Collected]]:
        """One round's segments, each every collector's fragment (collector 0's first), all with
        the latest weights.

        As the local loop's collect phase, a round takes whole steps of every environment until its
        env steps (boundaries not counted) reach ``rollout_steps x C x E``, or what is left of the
        budget: a first segment of that many items of each environment, then, while boundaries left
        it short, segments of the items still missing; every collector takes the same number, so
        that they line up.
        """
        transport, count = self.transport, self.config.execution.collectors
        transport.set_weights(*get_policy_weights(self.agent))
        envs = count * self.envs
        left = self.config.loop.total_env_steps - self.metrics.env_steps.result()
        target = max(1, min(self.rollout_steps * envs, left))
        segments: list[list[Collected]] = []
        taken = 0
        while taken < target:
            items = -(-(target - taken) // envs)  # per environment
            for index in range(count):
                transport.collect(index, items * self.envs, False, count_boundaries=True)
            segment = sorted((transport.next_fragment() for _ in range(count)), key=lambda c: c.index)
            taken += sum(got.fragment.env_steps for got in segment)
            segments.append(segment)
        return segments

    def _observe(self, segments: list[list[Collected]]) -> None:
        for segment in segments:  # a restarted collector's new episodes cut the kept ones, in any segment
            joined = join_fragments([self.transport.fetch_items(got) for got in segment])
            if joined:
                self.cuts += cut_episodes(self.source, joined[0])
            for trajectory in joined:
                self.source.observe(trajectory)
