"""The parts of a :class:`~drivetrain.distributed.replay_server.ReplayServer`, built from its settings.

:func:`check_int` checks an integer setting and :func:`check_memory_fits` refuses shards that
do not fit in the memory available; :func:`make_limiter` makes the rate limiter (a
:class:`~drivetrain.replay.MinSize`, or a :class:`~drivetrain.replay.SampleToInsertRatio`
whose settings are checked for deadlocks against the largest insert and sample), and
:func:`make_shards` the :class:`~drivetrain.replay.sharded.ShardedReplay` of one shard per
writer. :class:`ItemCheck` checks an insert's items against the data spec before anything
is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from drivetrain.core import seeding, specs, types
from drivetrain.core.schedules import Schedule
from drivetrain.replay import (
    MinSize,
    PrioritizedReplay,
    RateLimiter,
    ReplayBuffer,
    SampleToInsertRatio,
    UniformReplay,
)
from drivetrain.replay.layout import TrajectoryLayout
from drivetrain.replay.sharded import ShardedReplay
from drivetrain.replay.storage import available_memory

__all__ = ["ItemCheck", "check_int", "check_memory_fits", "make_limiter", "make_shards"]

_FIRST = int(types.StepType.FIRST)


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, or a ValueError naming the setting ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"ReplayServer: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_memory_fits(
    data_spec: types.Trajectory,
    num_shards: int,
    capacity: int,
    envs: int,
    dedup_frames: bool,
    frame_reserve: float | None,
) -> None:
    """MemoryError if ``num_shards`` shards of ``capacity`` items need more memory than is available."""
    need = num_shards * ReplayBuffer.estimate_nbytes(
        data_spec, capacity, envs, dedup_frames=dedup_frames, frame_reserve=frame_reserve
    )
    avail = available_memory()
    if avail is not None and need > avail:
        raise MemoryError(
            f"ReplayServer: {num_shards} shards of capacity={capacity} need {need / 1e9:.2f} GB "
            f"but only {avail / 1e9:.2f} GB of memory is available; lower the capacity or pass "
            "storage_dir= (check_memory=False skips this check)"
        )


def make_limiter(
    ratio: float | None,
    min_size: int,
    error_buffer: float | tuple[float, float] | None,
    max_insert_steps: int | None,
    max_sample_windows: int | None,
    envs: int,
) -> RateLimiter:
    """The server's rate limiter, in its units: an insert of ``T`` time steps is ``T * envs`` items."""
    steps = None if max_insert_steps is None else check_int("max_insert_steps", max_insert_steps, 1)
    windows = None if max_sample_windows is None else check_int("max_sample_windows", max_sample_windows, 1)
    if ratio is None:
        if error_buffer is not None:
            raise ValueError("ReplayServer: error_buffer applies only with samples_per_insert")
        return MinSize(min_size)
    if steps is None or windows is None:
        raise ValueError(
            "ReplayServer: samples_per_insert needs max_insert_steps (the most time steps one insert "
            "carries) and max_sample_windows (num_batches * batch_size of the largest sample call), "
            "to check that inserts and samples can never both be refused"
        )
    limits = {"max_insert_batch": steps * envs, "max_sample_batch": windows}
    if error_buffer is None:
        return SampleToInsertRatio.from_tolerance(ratio, min_size, **limits)
    return SampleToInsertRatio(ratio, min_size, error_buffer, **limits)


def make_shards(
    data_spec: types.Trajectory,
    capacity: int,
    num_shards: int,
    envs: int,
    seed: int | None,
    storage: dict[str, Any],
    prioritized: bool,
    alpha: float | None,
    beta: float | Schedule | None,
    epsilon: float | None,
) -> ShardedReplay:
    """One replay of ``envs`` environments per writer (prioritized ones with the defaults
    0.6, 0.4, 1e-6 for ``alpha``, ``beta``, ``epsilon``), sampled as one buffer; the shards'
    and the sampler's generators derived from ``seed``."""
    seeds = seeding.spawn_seeds(None if seed is None else int(seed), num_shards + 1)
    shards: list[ReplayBuffer]
    if prioritized:
        alpha, epsilon = 0.6 if alpha is None else alpha, 1e-6 if epsilon is None else epsilon
        beta = 0.4 if beta is None else beta
        shards = [
            PrioritizedReplay(data_spec, capacity, envs, alpha, beta, s, epsilon=epsilon, **storage)
            for s in seeds[:-1]
        ]
    else:
        shards = [UniformReplay(data_spec, capacity, envs, s, **storage) for s in seeds[:-1]]
    return ShardedReplay(shards, seeds[-1])


class ItemCheck:
    """Checks the items of an insert against the data spec (shaped ``[envs, ...]``)."""

    def __init__(self, data_spec: types.Trajectory, envs: int):
        self._envs = envs
        self._layout = TrajectoryLayout(data_spec)
        self._shapes = [(envs, *s.shape) for s in self._layout.specs]
        self._dtypes = [s.dtype for s in self._layout.specs]

    def check(self, shard: int, items: Sequence[types.Trajectory], full: bool, restarted: bool) -> None:
        """Raises a SpecError before anything is stored if an item breaks the spec. ``full``: check
        every item against the spec's bounds too (a shard's first insert); ``restarted``: the
        writer restarted, so the first item must be FIRST in every environment."""
        for k, item in enumerate(items):
            if not isinstance(item, types.Trajectory):
                raise TypeError(
                    f"ReplayServer.insert: items[{k}] is a {type(item).__name__}, not a Trajectory"
                )
            leaves = self._layout.flatten(item)
            try:
                ok = [v.shape for v in leaves] == self._shapes and [v.dtype for v in leaves] == self._dtypes
            except AttributeError:
                ok = False
            if not ok or full:
                try:
                    self._layout.check(item, self._envs)
                except specs.SpecError as error:
                    raise specs.SpecError(f"ReplayServer.insert: items[{k}]: {error}") from None
                if not ok:
                    raise specs.SpecError(
                        f"ReplayServer.insert: items[{k}]: every leaf must be a numpy array of the spec's "
                        f"dtype, shaped [envs_per_shard={self._envs}, ...]"
                    )
        if restarted:
            step_type = np.asarray(items[0].step_type)
            if np.any(step_type != _FIRST):
                raise ValueError(
                    f"ReplayServer.insert: writer {shard} restarted, so its first item must be FIRST in "
                    f"every environment; got step types {step_type.tolist()}"
                )
