"""``ExecutionConfig``: where a training run's parts execute (one process, or collectors on Ray).

It is the ``execution`` section of :class:`~drivetrain.train.config.ExperimentConfig`, set
from the command line like the others::

    drivetrain train cartpole-dqn --execution.backend ray --execution.collectors 4

``backend="local"`` (the default) is the single-process training loop, which reads no other
field of this section. ``backend="ray"`` runs the distributed topology (``backend="threads"``
runs it in this process, collectors in threads beside the learner): ``collectors``
collector actors (each its own batch of ``envs_per_collector`` environments) insert into one
replay actor under a samples-per-insert rate limiter, and one learner samples
``batches_per_sample`` batches per call and publishes its weights every
``weight_publish_period`` updates.

Each field is checked on construction; an error names the field (``ExecutionConfig.collectors:
expected >= 1, got 0``). :data:`CHANGEABLE_ON_RESUME` lists the keys a resumed run may change.
This module imports neither ray nor torch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from drivetrain.core.config_checks import check_fields, require

__all__ = ["CHANGEABLE_ON_RESUME", "ExecutionConfig", "apex_epsilon"]


@dataclasses.dataclass(frozen=True)
class ExecutionConfig:
    """Where the run executes: one process ('local') or collectors, a replay and a learner on Ray."""

    backend: Literal["local", "ray", "threads"] = "local"
    """'local': the single-process training loop; 'ray': collector actors, a replay actor and a learner on Ray;
    'threads': the same parts in this process, collectors in threads that step their environments while the
    learner trains."""
    collectors: int = 2
    """Collectors (backend 'ray'), each stepping its own batch of environments with the collect policy."""
    envs_per_collector: int | None = None
    """Environments of each collector's batch; None: env.num_envs."""
    fragment_steps: int | None = None
    """Env steps a collector gathers per collect call (a fragment; a multiple of its environments),
    each followed by gradient_steps x fragment_steps / loop.update_period updates; None: loop.update_period.
    Larger fragments cost fewer round trips (Atari's 4-step period is one call per 4 env steps)."""
    samples_per_insert: float | None = None
    """Target ratio of sampled windows to inserted transitions (Reverb's SampleToInsertRatio);
    None: no ratio limit beyond the replay's minimum size (loop.learning_starts)."""
    rate_error_buffer: float | None = None
    """How far samples may run ahead of or behind samples_per_insert x inserts, in samples;
    None: derived from the ratio, the minimum size and the batch sizes (the smallest that cannot deadlock or more)."""
    weight_publish_period: int = 1
    """Learner updates (train steps) between two broadcasts of the weights to the collectors; a broadcast
    goes out when a collect starts (collectors take new weights then), so 1 means the latest weights."""
    batches_per_sample: int = 4
    """Batches the learner takes from the replay actor per call (fewer round trips)."""
    ray_address: str | None = None
    """Address of a running Ray cluster ('auto', 'ray://host:10001'); None: start a local Ray."""
    apex_epsilons: bool = False
    """Ape-X exploration: collector i of C acts with the fixed epsilon 0.4 ** (1 + 7 i / (C - 1))
    instead of the agent's schedule (collect policies that have an epsilon: DQN, R2D2)."""

    def __post_init__(self) -> None:
        check_fields(self)  # each field's type, named (ConfigTypeError)
        require(self, self.collectors >= 1, "collectors", ">= 1")
        require(
            self,
            self.envs_per_collector is None or self.envs_per_collector >= 1,
            "envs_per_collector",
            "None or >= 1",
        )
        require(
            self, self.fragment_steps is None or self.fragment_steps >= 1, "fragment_steps", "None or >= 1"
        )
        require(self, _positive(self.samples_per_insert), "samples_per_insert", "None or a finite number > 0")
        require(self, _positive(self.rate_error_buffer), "rate_error_buffer", "None or a finite number > 0")
        require(
            self,
            self.rate_error_buffer is None or self.samples_per_insert is not None,
            "rate_error_buffer",
            "None when samples_per_insert is None (it is the tolerance of that ratio)",
        )
        require(self, self.weight_publish_period >= 1, "weight_publish_period", ">= 1")
        require(self, self.batches_per_sample >= 1, "batches_per_sample", ">= 1")
        require(
            self,
            self.ray_address is None or bool(self.ray_address.strip()),
            "ray_address",
            "None (start a local Ray) or an address such as 'auto' or 'ray://host:10001'",
        )

    @property
    def distributed(self) -> bool:
        """Whether the run has collectors, a replay server and a learner (backend 'ray' or 'threads')."""
        return self.backend != "local"

    def num_envs(self, env_num_envs: int) -> int:
        """Environments of each collector's batch: ``envs_per_collector``, else ``env.num_envs``."""
        return env_num_envs if self.envs_per_collector is None else self.envs_per_collector

    def fragment(self, update_period: int) -> int:
        """Env steps of each collect call: ``fragment_steps``, else ``loop.update_period``."""
        return update_period if self.fragment_steps is None else self.fragment_steps


def _positive(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and value > 0)


def apex_epsilon(index: int, collectors: int) -> float:
    """Ape-X's epsilon of collector ``index`` of ``collectors``: ``0.4 ** (1 + 7 * index / (collectors - 1))``
    (0.4 for a single collector), from 0.4 for the first down to 0.4 ** 8 ≈ 0.00066 for the last."""
    if not 0 <= index < collectors:
        raise ValueError(f"apex_epsilon: index must be in [0, {collectors}), got {index}")
    exponent = 1.0 if collectors == 1 else 1.0 + 7.0 * index / (collectors - 1)
    return float(0.4**exponent)


CHANGEABLE_ON_RESUME: frozenset[str] = frozenset(
    f"execution.{name}" for name in ("weight_publish_period", "ray_address", "apex_epsilons")
)
"""Execution keys a resumed run may change: how often weights travel, where Ray runs, and the
collectors' exploration. The others are fixed by the run's checkpoint: the backend and the
collectors' number and environments (their states, writer ids and seed streams are in it), and
the rate limiter's settings and ``batches_per_sample`` (a limiter's state is refused by one of
other settings, and its largest sample is ``batches_per_sample`` batches)."""
