"""A collector: its own batch of environments, the agent's collect policy, the library's StepDriver.

One collector of a distributed run (a Ray actor there; a plain object here: this module
imports no ray)::

    collector = Collector(config, index)            # its own environments, agent and seeds
    collector.set_weights(version, weights)         # from the learner: only newer versions apply
    fragment = collector.collect(1_000, warmup=True)
    replay.insert(fragment.writer_id, fragment.sequence_number, fragment.items)
    fragment = collector.collect(256)               # the episodes continue across calls

**Parts.** ``execution.envs_per_collector`` environments (``env.num_envs`` when None), an
agent made on the CPU by the registry's builder (``builder_for(config.agent)``), whose
collect policy and warm-up policy are what the collector plays
(:mod:`drivetrain.distributed.collector_parts` builds them); it never trains, and only
weights arrive from the learner. One :class:`~drivetrain.core.drivers.StepDriver` per
policy, continuing from the time step and policy state the last call left (a policy that
follows a stateless one starts from its initial state, as in the local loop).

**Fragments.** Each :meth:`collect` returns a :class:`Fragment`: the batched trajectories
``[E, ...]`` the driver emitted, in order, with only the ``policy_info`` keys of the agent's
``collect_data_spec`` (as the local loop's experience source keeps them), numbered
``0, 1, 2, ...`` per collector (the replay's idempotent inserts key on ``(writer_id,
sequence_number)``), and the counts of the local loop: environment steps without the
boundaries, episodes ended, their returns and lengths.

**Weights and exploration.** :meth:`set_weights` applies ``(version, weights)`` only when the
version is newer than the one held; until the first, the collector acts with its own initial
weights (version -1). Versions count the learner's train steps, and an epsilon-greedy
collect policy (DQN, R2D2) evaluates the agent's epsilon schedule at the version it holds,
or uses Ape-X's fixed epsilons with ``execution.apex_epsilons`` (see
:mod:`~drivetrain.distributed.collector_parts`).

**Seeds.** Collector ``i`` of a run seeded ``s`` draws everything from its seed stream
:func:`collector_seed` ``(s, i)``; generation ``g`` of its parts (0 when built, ``n + 1`` after
``restart(n)``) takes child ``g`` of the stream (see
:mod:`~drivetrain.distributed.collector_parts`). The same config and index give the same
fragments; a restarted collector does not replay the episodes of its first life.

**State.** :meth:`state_dict` holds the weights it acts with and their version, the policies'
RNGs, the counters, the next sequence number, the current time step and policy state, and
the environments' state where they can give it (as the local loop's checkpoints do). A
collector that loads it continues identically; without the environments' state it starts
fresh environments instead (the unfinished episodes are dropped, never joined). :meth:`restart`
replaces a dead collector: fresh environments (a FIRST step begins its first item) and
sequence numbers continuing from the replay's ``next_sequence_number(writer_id)``.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np

from drivetrain.agents import Agent
from drivetrain.core import metrics, types
from drivetrain.core.drivers import StepDriver
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy
from drivetrain.distributed.collector_parts import (
    CollectorParts,
    build_parts,
    collector_seed,
    generation_seeds,
)
from drivetrain.distributed.weights import get_policy_weights, set_policy_weights
from drivetrain.replay.sources import _info_filter
from drivetrain.train.config import ExperimentConfig
from drivetrain.train.experiment import env_state, load_env_state, make_env
from drivetrain.train.imports import import_modules

__all__ = ["Collector", "Fragment", "collector_seed"]

_LAST = int(types.StepType.LAST)
Acting = Literal["warmup", "collect"]


class Fragment(NamedTuple):
    """What one :meth:`Collector.collect` call gathered."""

    writer_id: int
    """The collector's index."""
    sequence_number: int
    """0, 1, 2, ... per collector (continuing after a restart)."""
    items: list[types.Trajectory]
    """The driver's batched trajectories ``[E, ...]`` in order, policy_info filtered to the data spec."""
    env_steps: int
    """Environment steps over the batch, boundaries (LAST -> FIRST) not counted."""
    episodes: int
    """Episodes that ended in this fragment."""
    episode_returns: list[float]
    """Undiscounted returns of those episodes (an episode begun in an earlier fragment counts whole)."""
    episode_lengths: list[int]
    """Their lengths in steps."""
    weights_version: int
    """Version of the weights held while collecting (-1: the collector's own initial weights)."""


class _EpisodeLog(metrics._EpisodeMetric):
    """The returns and lengths of the episodes that ended since :meth:`clear` (the metrics' accumulation:
    every FIRST starts an episode, whatever came before it)."""

    name = "EpisodeLog"

    def __init__(self) -> None:
        super().__init__()
        self.returns: list[float] = []
        self.lengths: list[int] = []

    def _episodes_ended(self, returns: list[float], lengths: list[int]) -> None:
        self.returns.extend(returns)
        self.lengths.extend(lengths)

    def clear(self) -> None:
        self.returns, self.lengths = [], []

    def result(self) -> tuple[list[float], list[int]]:
        return self.returns, self.lengths

    def reset(self) -> None:
        self.clear()
        self._clear_accumulators()

    def state_dict(self) -> dict[str, Any]:
        return self._accumulators()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_accumulators(state)


class Collector:
    """Collects fragments for the replay with the agent's collect policy; see the module docstring.

    Args:
      config: the run's config (``execution`` says how many environments; the agent is made on the CPU).
      index: this collector's index in ``[0, execution.collectors)``: its writer id and seed stream.
      seed_stream: the seed everything is drawn from; None: :func:`collector_seed` ``(config.seed, index)``.
    """

    def __init__(self, config: ExperimentConfig, index: int, *, seed_stream: int | None = None):
        count = config.execution.collectors
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError(
                f"Collector: index must be an int in [0, execution.collectors={count}), got {index!r}"
            )
        import_modules(config.imports)  # in a Ray worker: what registers the run's environments or agent
        self._config = config
        self._index = index
        self._seed_stream = collector_seed(config.seed, index) if seed_stream is None else int(seed_stream)
        self._num_envs = config.execution.num_envs(config.env.num_envs)
        self._weights_version = -1
        self._sequence_number = 0
        self._env_steps = 0
        self._episodes = 0
        self._parts = self._build(0)
        self._keep = _info_filter(self._parts.agent.collect_data_spec)
        self._items: list[types.Trajectory] = []
        self._steps_now = 0
        self._episodes_now = 0
        self._log = _EpisodeLog()
        self._time_step: types.TimeStep | None = None
        self._policy_state: Any = None
        self._acting: Acting | None = None
        self._broken = False

    # ------------------------------------------------------------------ building
    def _seeds(self, generation: int) -> list[int]:
        """The seeds of the environments, the agent, the collect and the warm-up policy of a generation."""
        return generation_seeds(self._seed_stream, generation)

    def _build(self, generation: int) -> CollectorParts:
        return build_parts(self._config, self._index, self._num_envs, self._seeds(generation), self._version)

    def _version(self) -> int:
        """The version the collect policy's epsilon schedule follows (0 until weights arrive)."""
        return max(self._weights_version, 0)

    # ------------------------------------------------------------------ properties
    @property
    def index(self) -> int:
        return self._index

    @property
    def agent(self) -> Agent:
        """The collector's agent (its networks hold the weights it acts with)."""
        return self._parts.agent

    @property
    def env(self) -> Environment:
        return self._parts.env

    @property
    def collect_policy(self) -> Policy:
        """What :meth:`collect` plays (the agent's, its epsilon re-pointed as the module docstring says)."""
        return self._parts.collect_policy

    @property
    def weights_version(self) -> int:
        return self._weights_version

    @property
    def sequence_number(self) -> int:
        """The sequence number of the next fragment."""
        return self._sequence_number

    @property
    def env_steps(self) -> int:
        """Environment steps collected (boundaries not counted) since construction or the loaded state."""
        return self._env_steps

    @property
    def episodes(self) -> int:
        """Episodes ended since construction or the loaded state."""
        return self._episodes

    # ------------------------------------------------------------------ collecting
    def _observe(self, trajectory: types.Trajectory) -> None:
        self._items.append(self._keep(trajectory))
        step_types: list[int] = trajectory.step_type.tolist()
        self._steps_now += len(step_types) - step_types.count(_LAST)
        self._episodes_now += trajectory.next_step_type.tolist().count(_LAST)

    def collect(self, num_steps: int, warmup: bool = False, *, count_boundaries: bool = False) -> Fragment:
        """Runs the collect policy (the warm-up policy while ``warmup``) for at least ``num_steps``
        environment steps over the batch, continuing the episodes; returns the next :class:`Fragment`.
        ``count_boundaries``: boundaries count as steps, so ``k * batch_size`` gives exactly ``k``
        items (a synchronous on-policy round); the fragment's ``env_steps`` never counts them.

        An error from the environments or the policy leaves the collector unusable until :meth:`restart`.
        """
        if self._broken:
            raise RuntimeError(
                f"Collector {self._index}: a collect call failed; restart(next_sequence_number) it first"
            )
        parts = self._parts
        policy = parts.warmup_policy if warmup else parts.collect_policy
        if policy is None:
            raise ValueError(
                f"Collector.collect(warmup=True): {type(self._config.agent).__name__} has no warm-up policy"
            )
        acting: Acting = "warmup" if warmup else "collect"
        last = parts.warmup_policy if self._acting == "warmup" else parts.collect_policy
        if self._acting is not None and self._acting != acting and last is not None and not last.stateful:
            self._policy_state = None  # a policy that follows a stateless one starts from its initial state
        driver = StepDriver(
            parts.env,
            policy,
            [self._observe, self._log],
            num_steps=num_steps,
            count_boundaries=count_boundaries,
        )
        self._items, self._steps_now, self._episodes_now = [], 0, 0
        self._log.clear()
        self._broken = True
        self._time_step, self._policy_state = driver.run(self._time_step, self._policy_state)
        self._broken = False
        self._acting = acting
        fragment = Fragment(
            writer_id=self._index,
            sequence_number=self._sequence_number,
            items=self._items,
            env_steps=self._steps_now,
            episodes=self._episodes_now,
            episode_returns=self._log.returns,
            episode_lengths=self._log.lengths,
            weights_version=self._weights_version,
        )
        self._sequence_number += 1
        self._env_steps += fragment.env_steps
        self._episodes += fragment.episodes
        return fragment

    def set_weights(self, version: int, weights: Any) -> bool:
        """Acts with ``weights`` from now on if ``version`` is newer than the one held; returns whether it was."""
        version = _non_negative("Collector.set_weights: version", version)
        if version <= self._weights_version:
            return False
        set_policy_weights(self._parts.agent, weights, version)
        self._weights_version = version
        return True

    # ------------------------------------------------------------------ restarts and checkpoints
    def restart(self, next_sequence_number: int) -> None:
        """Fresh environments and policies (generation ``next_sequence_number + 1`` of the seed stream),
        the weights held kept, the next fragment numbered ``next_sequence_number``; its first item
        starts new episodes (FIRST) everywhere."""
        next_sequence_number = _non_negative("Collector.restart: next_sequence_number", next_sequence_number)
        held = get_policy_weights(self._parts.agent)[1] if self._weights_version >= 0 else None
        parts = self._build(next_sequence_number + 1)
        if held is not None:
            set_policy_weights(parts.agent, held, self._weights_version)
        old, self._parts = self._parts, parts
        old.env.close()
        self._sequence_number = next_sequence_number
        self._start_over()

    def _start_over(self) -> None:
        """New episodes: no time step, no policy state, no partial returns."""
        self._time_step, self._policy_state, self._acting = None, None, None
        self._log.reset()
        self._broken = False

    def state_dict(self) -> dict[str, Any]:
        """See the module docstring; the arrays are the live ones (pickle or copy before collecting on)."""
        parts = self._parts
        return {
            "index": self._index,
            "sequence_number": self._sequence_number,
            "weights_version": self._weights_version,
            "weights": get_policy_weights(parts.agent)[1],
            "env_steps": self._env_steps,
            "episodes": self._episodes,
            "episode_log": self._log.state_dict(),
            "collect_policy": parts.collect_policy.state_dict(),
            "warmup_policy": None if parts.warmup_policy is None else parts.warmup_policy.state_dict(),
            "env": env_state(parts.env, "collector checkpoints", "a resumed collector"),
            "time_step": self._time_step,
            "policy_state": self._policy_state,
            "acting": self._acting,
        }

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """Restores :meth:`state_dict`; False if the environments' state was not in it: then the
        collector continues on fresh environments (new episodes, the unfinished ones dropped)."""
        if state["index"] != self._index:
            raise ValueError(f"Collector {self._index}: the state is collector {state['index']}'s")
        parts = self._parts
        set_policy_weights(parts.agent, state["weights"], max(int(state["weights_version"]), 0))
        self._weights_version = int(state["weights_version"])
        parts.collect_policy.load_state_dict(state["collect_policy"])
        if parts.warmup_policy is not None and state["warmup_policy"] is not None:
            parts.warmup_policy.load_state_dict(state["warmup_policy"])
        self._sequence_number = int(state["sequence_number"])
        self._env_steps, self._episodes = int(state["env_steps"]), int(state["episodes"])
        if load_env_state(parts.env, state["env"]):
            self._log.load_state_dict(state["episode_log"])
            self._time_step, self._policy_state = state["time_step"], state["policy_state"]
            self._acting = state["acting"]
            self._broken = False
            return True
        # fresh environments, seeded as a restart at this sequence number (apart from earlier lives)
        fresh = make_env(self._config.env, self._num_envs, self._seeds(self._sequence_number + 1)[0])
        parts.env.close()
        parts.env = fresh
        self._start_over()
        return False

    def close(self) -> None:
        self._parts.env.close()


def _non_negative(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)
