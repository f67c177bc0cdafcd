"""The replay of a distributed run: one shard per collector, a rate limiter, idempotent inserts.

Collectors insert, the learner samples and sends priorities back; the Ray replay actor
wraps a :class:`ReplayServer` (and the local backend calls it directly)::

    server = ReplayServer(spec, capacity=100_000, num_shards=4, envs_per_shard=8,
                          samples_per_insert=8.0, min_size_to_sample=1000,
                          max_insert_steps=4, max_sample_windows=4 * 64, seed=0)
    status = server.insert(writer_id, sequence_number, fragment)   # STORED / DUPLICATE / RATE_LIMITED
    batches = server.sample(num_batches=4, batch_size=64, num_steps=2)   # list, or None: not now
    server.update_priorities(info.ids, priorities)

- **Writers and shards.** Writer ``w`` (a collector, ``0 <= w < num_shards``) owns shard
  ``w``, a replay of ``envs_per_shard`` environments;
  :class:`~drivetrain.replay.sharded.ShardedReplay` samples the shards as one buffer (its
  ``SampleInfo.ids`` go back to ``update_priorities``).
- **Inserts.** ``insert(w, n, items)``: ``items`` are consecutive batched time steps of
  writer ``w`` (Trajectories of ``[envs_per_shard, ...]`` arrays), numbered ``n = 0, 1, ...``
  per writer. ``DUPLICATE``: ``n`` was stored before (a retry), nothing is stored.
  ``RATE_LIMITED``: the limiter does not take the items now, nothing is stored and ``n`` stays
  the next number (send the same insert again later). ``STORED``: all items, in order. A
  number past the next one raises :class:`~drivetrain.replay.SequenceGapError`; items that
  break the data spec raise a SpecError before anything is stored.
- **Units of the limiter** (Reverb's): an *item* is one environment's transition, so an
  insert of ``T`` time steps counts ``T * envs_per_shard`` items (boundaries included); a
  ``sample`` counts its ``num_batches * batch_size`` windows. ``samples_per_insert`` is windows
  sampled per item inserted. Items the rings overwrite count as deleted: the limiter's size is
  what the replay holds.
- **Sampling.** ``sample`` returns ``num_batches`` batches, each one ``ShardedReplay.sample``
  (prioritized weights normalised per batch), or None when the limiter does not allow
  ``num_batches * batch_size`` samples now or no window is eligible yet (ask again later).
- **A collector that restarts** (a fresh process replacing a dead one) calls
  ``restart_writer(w)`` and numbers its inserts from the number it returns (the numbers go
  on). Its first item must be FIRST in every environment (checked): the replay treats a FIRST
  that does not follow a LAST as a seam, so no sampled window runs from the dead collector's
  unfinished episode into the new one.
- ``state_dict()`` holds the shards (views of their storage), the limiter's counters, the
  writers' numbers and the counters; ``load_state_dict`` restores them all, so sampling and
  inserting go on identically. Thread-safe: one lock around every call.

Its parts (the shards, the limiter, the check of inserted items) are built, and its settings
checked, by :mod:`drivetrain.distributed.replay_parts`.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from drivetrain.core import types
from drivetrain.core.schedules import Schedule
from drivetrain.distributed.replay_parts import (
    ItemCheck,
    check_int,
    check_memory_fits,
    make_limiter,
    make_shards,
)
from drivetrain.replay import IdempotentInserts, RateLimiter, SampleInfo, SampleToInsertRatio
from drivetrain.replay.sharded import ShardedReplay

__all__ = ["InsertStatus", "ReplayServer"]


class InsertStatus(enum.Enum):
    """What :meth:`ReplayServer.insert` did."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"


class ReplayServer:
    """Sharded replay, rate limiter and idempotent inserts; see the module docstring.

    Args:
      data_spec: the trajectory spec (e.g. ``agent.collect_data_spec``).
      capacity: items each shard holds at most, over its environments (as ``UniformReplay``
        takes it: each environment keeps the newest ``capacity // envs_per_shard``).
      num_shards: writers (collectors), one shard each.
      envs_per_shard: environments of each writer's batch.
      prioritized: ``PrioritizedReplay`` shards; ``alpha``, ``beta`` (a float or a schedule of
        the number of sampled batches) and ``epsilon`` as it takes them (only with
        ``prioritized=True``; defaults 0.6, 0.4, 1e-6).
      samples_per_insert: windows sampled per item inserted, kept by a
        :class:`~drivetrain.replay.SampleToInsertRatio`; None: a
        :class:`~drivetrain.replay.MinSize` limiter (no ratio).
      min_size_to_sample: items stored before sampling starts.
      error_buffer: the ratio limiter's ``error_buffer`` (a number or ``(min_diff, max_diff)``);
        None: ``SampleToInsertRatio.from_tolerance`` with a tolerance of 0.1.
      max_insert_steps: the most time steps one insert carries (required with
        ``samples_per_insert``: the no-deadlock check uses it).
      max_sample_windows: the most windows one ``sample`` call draws, ``num_batches *
        batch_size`` (required with ``samples_per_insert``).
      seed: an int or None; the shards' and the sampler's generators are derived from it.
      dedup_frames, frame_reserve, storage_dir, check_memory: storage options of each shard.
    """

    def __init__(
        self,
        data_spec: types.Trajectory,
        *,
        capacity: int,
        num_shards: int,
        envs_per_shard: int,
        prioritized: bool = False,
        alpha: float | None = None,
        beta: float | Schedule | None = None,
        epsilon: float | None = None,
        samples_per_insert: float | None = None,
        min_size_to_sample: int = 1,
        error_buffer: float | tuple[float, float] | None = None,
        max_insert_steps: int | None = None,
        max_sample_windows: int | None = None,
        seed: int | None = None,
        dedup_frames: bool = True,
        frame_reserve: float | None = None,
        storage_dir: str | os.PathLike[str] | None = None,
        check_memory: bool = True,
    ):
        num_shards = check_int("num_shards", num_shards, 1)
        envs = check_int("envs_per_shard", envs_per_shard, 1)
        capacity = check_int("capacity", capacity, envs)
        min_size = check_int("min_size_to_sample", min_size_to_sample, 1)
        held = num_shards * (capacity // envs) * envs
        if min_size > held:
            raise ValueError(
                f"ReplayServer: min_size_to_sample={min_size} is more than the {held} items the "
                f"{num_shards} shards hold (capacity={capacity} each): sampling would never start"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(f"ReplayServer: seed must be an int or None, got {seed!r}")
        if not prioritized:
            given = [n for n, v in (("alpha", alpha), ("beta", beta), ("epsilon", epsilon)) if v is not None]
            if given:
                raise ValueError(f"ReplayServer: {', '.join(given)} apply only with prioritized=True")
        if check_memory and storage_dir is None:
            check_memory_fits(data_spec, num_shards, capacity, envs, dedup_frames, frame_reserve)
        self._limiter = make_limiter(
            samples_per_insert, min_size, error_buffer, max_insert_steps, max_sample_windows, envs
        )
        storage: dict[str, Any] = {"dedup_frames": dedup_frames, "frame_reserve": frame_reserve}
        storage.update(storage_dir=storage_dir, check_memory=check_memory)
        self._replay = make_shards(
            data_spec, capacity, num_shards, envs, seed, storage, prioritized, alpha, beta, epsilon
        )
        self._num_shards = num_shards
        self._envs = envs
        self._max_insert_steps = max_insert_steps
        self._item_check = ItemCheck(data_spec, envs)
        self._inserts: IdempotentInserts[tuple[int, Sequence[types.Trajectory]]] = IdempotentInserts(
            self._store
        )
        self._lock = threading.Lock()
        self._checked = [False] * num_shards  # a shard's first insert gets the full check (bounds too)
        self._restarting: set[int] = set()
        self._counts = {"stored": 0, "duplicate": 0, "rate_limited": 0, "samples_refused": 0}
        self._restarts = [0] * num_shards

    # ------------------------------------------------------------------ properties
    @property
    def replay(self) -> ShardedReplay:
        """The sharded replay (read it; write through :meth:`insert`)."""
        return self._replay

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    @property
    def data_spec(self) -> types.Trajectory:
        return self._replay.data_spec

    @property
    def num_shards(self) -> int:
        return self._num_shards

    @property
    def envs_per_shard(self) -> int:
        return self._envs

    def __len__(self) -> int:
        return len(self._replay)

    # ------------------------------------------------------------------ writers
    def insert(self, writer_id: int, sequence_number: int, items: Sequence[types.Trajectory]) -> InsertStatus:
        """Stores insert ``sequence_number`` of writer ``writer_id`` once; see the module docstring."""
        shard = self._writer(writer_id)
        if isinstance(items, types.Trajectory) or not isinstance(items, Sequence):
            raise TypeError(
                "ReplayServer.insert: items must be a list of Trajectories (consecutive time steps), "
                f"got {type(items).__name__}"
            )
        if not items:
            raise ValueError("ReplayServer.insert: items must hold at least one time step")
        if self._max_insert_steps is not None and len(items) > self._max_insert_steps:
            raise ValueError(
                f"ReplayServer.insert: {len(items)} time steps in one insert, more than "
                f"max_insert_steps={self._max_insert_steps}"
            )
        with self._lock:
            if self._inserts.is_applied(shard, sequence_number):
                self._counts["duplicate"] += 1
                return InsertStatus.DUPLICATE
            self._item_check.check(shard, items, not self._checked[shard], shard in self._restarting)
            num = len(items) * self._envs
            if not self._limiter.can_insert(num):
                self._counts["rate_limited"] += 1
                return InsertStatus.RATE_LIMITED
            before = len(self._replay.shards[shard])
            self._inserts.insert(shard, sequence_number, (shard, items))
            self._limiter.insert(num)
            evicted = before + num - len(self._replay.shards[shard])
            if evicted:
                self._limiter.delete(evicted)
            self._checked[shard] = True
            self._restarting.discard(shard)
            self._counts["stored"] += 1
            return InsertStatus.STORED

    def _store(self, batch: tuple[int, Sequence[types.Trajectory]]) -> None:
        shard, items = batch
        for item in items:
            self._replay.add_batch(shard, item)

    def next_sequence_number(self, writer_id: int) -> int:
        """The number writer ``writer_id``'s next insert must carry."""
        return self._inserts.next_sequence_number(self._writer(writer_id))

    def restart_writer(self, writer_id: int) -> int:
        """A fresh collector replaces writer ``writer_id``: returns the number its first insert
        carries (the numbers go on); that insert must start with FIRST in every environment."""
        shard = self._writer(writer_id)
        with self._lock:
            self._restarting.add(shard)
            self._restarts[shard] += 1
            return self._inserts.next_sequence_number(shard)

    def _writer(self, writer_id: int) -> int:
        if isinstance(writer_id, bool) or not isinstance(writer_id, int | np.integer):
            raise TypeError(f"ReplayServer: writer_id must be an int, got {writer_id!r}")
        if not 0 <= writer_id < self._num_shards:
            raise ValueError(
                f"ReplayServer: writer_id must be in [0, num_shards={self._num_shards}), got {writer_id}"
            )
        return int(writer_id)

    # ------------------------------------------------------------------ learner
    def sample(
        self, num_batches: int, batch_size: int, num_steps: int
    ) -> list[tuple[types.Trajectory, SampleInfo]] | None:
        """``num_batches`` batches of ``batch_size`` windows of ``num_steps`` items, or None when
        the limiter does not allow ``num_batches * batch_size`` samples now or no window is
        eligible yet. RuntimeError when no window is eligible and the limiter refuses inserts
        (it would wait for ever: ``min_size_to_sample`` is too small for windows of ``num_steps``)."""
        num_batches = check_int("num_batches", num_batches, 1)
        batch_size = check_int("batch_size", batch_size, 1)
        num_steps = check_int("num_steps", num_steps, 1)
        num = num_batches * batch_size
        with self._lock:
            if not self._limiter.can_sample(num):
                self._counts["samples_refused"] += 1
                return None
            if self._replay.num_windows(num_steps) == 0:
                self._counts["samples_refused"] += 1
                # the smallest insert a writer makes: one time step of its environments
                if isinstance(self._limiter, SampleToInsertRatio) and not self._limiter.can_insert(
                    self._envs
                ):
                    raise RuntimeError(
                        f"ReplayServer.sample: the limiter allows sampling and refuses inserts, but no "
                        f"window of {num_steps} steps is eligible in the {len(self._replay)} items stored: "
                        f"min_size_to_sample={self._limiter.min_size_to_sample} is too small for "
                        "such windows"
                    )
                return None
            batches = [self._replay.sample(batch_size, num_steps) for _ in range(num_batches)]
            self._limiter.sample(num)
            return batches

    def update_priorities(self, ids: Any, priorities: Any) -> None:
        """New priorities of sampled windows (prioritized shards); see
        :meth:`ShardedReplay.update_priorities`."""
        with self._lock:
            self._replay.update_priorities(ids, priorities)

    # ------------------------------------------------------------------ counters and state
    def counters(self) -> dict[str, Any]:
        """``items_inserted``, ``windows_sampled`` and ``items_deleted`` (the limiter's units),
        ``size`` (items stored), the inserts ``stored`` / ``duplicate`` / ``rate_limited``,
        ``samples_refused`` (sample calls answered None), ``restarts`` per writer, and
        ``last_sequence_numbers`` (writer -> its last stored insert's number)."""
        with self._lock:
            return {
                "items_inserted": self._limiter.inserts,
                "windows_sampled": self._limiter.samples,
                "items_deleted": self._limiter.deletes,
                "size": len(self._replay),
                **self._counts,
                "restarts": list(self._restarts),
                "last_sequence_numbers": {int(w): n for w, n in self._inserts.writers.items()},
            }

    def state_dict(self) -> dict[str, Any]:
        """Shards (views of their storage), limiter, writers' numbers and counters."""
        with self._lock:
            return {
                "kind": type(self).__name__,
                "replay": self._replay.state_dict(),
                "limiter": self._limiter.state_dict(),
                "inserts": self._inserts.state_dict(),
                "counts": dict(self._counts),
                "restarts": list(self._restarts),
                "restarting": sorted(self._restarting),
                "checked": list(self._checked),
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` of a server built with the same settings (a state that does
        not match raises, naming what differs, and may leave this server partly loaded)."""
        if state.get("kind") != type(self).__name__:
            raise ValueError(f"replay server state: it is from a {state.get('kind')}, this is a ReplayServer")
        if len(state["restarts"]) != self._num_shards:
            raise ValueError(
                f"replay server state: it has {len(state['restarts'])} writers and this server "
                f"num_shards={self._num_shards}"
            )
        with self._lock:
            self._limiter.load_state_dict(state["limiter"])
            self._replay.load_state_dict(state["replay"])
            self._inserts.load_state_dict(state["inserts"])
            self._counts = {k: int(state["counts"][k]) for k in self._counts}
            self._restarts = [int(n) for n in state["restarts"]]
            self._restarting = {int(w) for w in state["restarting"]}
            self._checked = [bool(c) for c in state["checked"]]

    def __repr__(self) -> str:
        return (
            f"ReplayServer({self._num_shards} shards x {self._envs} envs, items={len(self._replay)}, "
            f"limiter={self._limiter!r})"
        )
