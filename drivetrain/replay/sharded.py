"""Sharded replay: several buffers sampled as if they were one.

A replay buffer advances all its environments together (``add_batch`` writes one item
per environment), so writers that deliver at different times (the collectors of a
distributed run) each get their own buffer, a *shard*. :class:`ShardedReplay` samples
over the shards exactly as one buffer holding all their environments side by side
would::

    replay = ShardedReplay([UniformReplay(spec, 1000, num_envs=4, seed=s) for s in (1, 2)], seed=0)
    replay.add_batch(0, trajectory)                # arrays [4, ...]: into shard 0
    batch, info = replay.sample(64, num_steps=2)   # arrays [64, 2, ...]

- **Uniform shards** (all :class:`~drivetrain.replay.UniformReplay`): each window is drawn
  uniformly over the eligible windows of all shards, ``P = 1 / N`` with ``N`` their total.
- **Prioritized shards** (all :class:`~drivetrain.replay.PrioritizedReplay`, with the same
  ``alpha`` and ``epsilon``): ``P = (p + ε)^α / Σ (p_k + ε)^α`` with the sum over the eligible
  windows of every shard, ``w = (N · P)^-β`` normalised by the batch's largest weight.
  ``beta`` (a float or a schedule of the number of ``sample`` calls, as the buffers take it)
  belongs to the sharded replay; the shards' own ``beta`` is not used. New items of every
  shard get the largest priority seen in any shard.
- How: the number of windows each shard gives is drawn from a multinomial weighted by its
  eligible windows (uniform) or its priority mass over them (prioritized), each shard is
  sampled that many times, and the rows are shuffled by the sharded replay's generator
  (so a batch's order says nothing of the shards). This is the distribution of ``B``
  independent draws over all the windows.
- **Ids**: ``SampleInfo.ids`` are ``t * num_envs + env_offset[shard] + env``, with ``t`` the
  item's add index in its shard, ``env`` its environment in the shard, ``num_envs`` the
  total over the shards and ``env_offset`` the shards' cumulative ``num_envs``: the ids one
  buffer with every shard's environments side by side would give. ``update_priorities``
  takes them and routes each to its shard.
- Write through :meth:`add_batch` only (it holds the sharded replay's lock, as ``sample``
  and ``update_priorities`` do). ``state_dict()`` holds views of the shards' storage.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from drivetrain.core import nest, seeding, types
from drivetrain.core.schedules import Schedule
from drivetrain.replay.buffer import ReplayBuffer, SampleInfo
from drivetrain.replay.prioritized import PrioritizedReplay, beta_now, checked_priorities
from drivetrain.replay.uniform import UniformReplay

__all__ = ["ShardedReplay"]


class ShardedReplay:
    """Samples several replay buffers (shards) as one; see the module docstring.

    Args:
      shards: one or more buffers of the same data spec, all ``UniformReplay`` or all
        ``PrioritizedReplay`` (with the same ``alpha``, ``epsilon`` and ``beta``).
      seed: the generator that splits each batch over the shards and shuffles it (each
        shard draws its windows with its own generator).
    """

    def __init__(self, shards: Sequence[ReplayBuffer], seed: seeding.Seed = None):
        shards = tuple(shards)
        if not shards:
            raise ValueError("ShardedReplay: shards must hold at least one replay buffer")
        first = shards[0]
        for i, shard in enumerate(shards):
            if not isinstance(shard, UniformReplay | PrioritizedReplay):
                raise TypeError(
                    f"ShardedReplay: shards[{i}] is a {type(shard).__name__}; shards must be "
                    "UniformReplay or PrioritizedReplay buffers"
                )
            if type(shard) is not type(first):
                raise TypeError(
                    f"ShardedReplay: shards[{i}] is a {type(shard).__name__} and shards[0] a "
                    f"{type(first).__name__}; all shards must be of one kind"
                )
            if shard.data_spec != first.data_spec:
                raise ValueError(f"ShardedReplay: shards[{i}] has another data_spec than shards[0]")
            if isinstance(shard, PrioritizedReplay):
                assert isinstance(first, PrioritizedReplay)
                for name in ("alpha", "epsilon", "beta"):
                    if getattr(shard, name) != getattr(first, name):
                        raise ValueError(
                            f"ShardedReplay: shards[{i}].{name} is {getattr(shard, name)!r} and "
                            f"shards[0].{name} {getattr(first, name)!r}; prioritized shards must agree"
                        )
        if len({id(s) for s in shards}) != len(shards):
            raise ValueError("ShardedReplay: a buffer appears more than once in shards")
        self._shards = shards
        self._prioritized = isinstance(first, PrioritizedReplay)
        self.beta: float | Schedule = first.beta if isinstance(first, PrioritizedReplay) else 0.0
        self._envs = np.array([s.num_envs for s in shards], np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._envs)[:-1]]).astype(np.int64)
        self._num_envs = int(self._envs.sum())
        self._rng = seeding.as_generator(seed)
        self._lock = threading.Lock()
        self._sample_calls = 0
        self._share_max_priority()

    # ------------------------------------------------------------------ properties
    @property
    def shards(self) -> tuple[ReplayBuffer, ...]:
        return self._shards

    @property
    def num_shards(self) -> int:
        return len(self._shards)

    @property
    def num_envs(self) -> int:
        """Environments over all shards."""
        return self._num_envs

    @property
    def prioritized(self) -> bool:
        return self._prioritized

    @property
    def data_spec(self) -> types.Trajectory:
        return self._shards[0].data_spec

    @property
    def capacity(self) -> int:
        """Items all shards hold at most."""
        return sum(s.capacity for s in self._shards)

    @property
    def current_beta(self) -> float:
        """β for the next ``sample`` call (prioritized shards)."""
        return beta_now(self.beta, self._sample_calls, "ShardedReplay")

    def __len__(self) -> int:
        """Items stored in all shards, boundaries included."""
        return sum(len(s) for s in self._shards)

    def num_windows(self, num_steps: int = 2) -> int:
        """Eligible windows of ``num_steps`` over all shards."""
        return sum(s.num_windows(num_steps) for s in self._shards)

    # ------------------------------------------------------------------ adding
    def add_batch(self, shard: int, trajectory: types.Trajectory) -> None:
        """Stores one batched trajectory (arrays ``[shards[shard].num_envs, ...]``) in ``shard``."""
        buffer = self._shards[self._shard_index(shard)]
        with self._lock:
            buffer.add_batch(trajectory)

    def _shard_index(self, shard: int) -> int:
        if (
            isinstance(shard, bool)
            or not isinstance(shard, int | np.integer)
            or not 0 <= shard < len(self._shards)
        ):
            raise ValueError(
                f"ShardedReplay: shard must be an int in [0, {len(self._shards)}), got {shard!r}"
            )
        return int(shard)

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int = 64, num_steps: int = 2) -> tuple[types.Trajectory, SampleInfo]:
        """``batch_size`` eligible windows of ``num_steps`` items over all shards:
        ``([batch, num_steps, ...], info)``."""
        if batch_size < 1 or num_steps < 1:
            raise ValueError(f"sample: batch_size and num_steps must be >= 1, got {batch_size}, {num_steps}")
        with self._lock:
            windows = np.array([s.num_windows(num_steps) for s in self._shards], np.int64)
            total_windows = int(windows.sum())
            if total_windows == 0:
                raise ValueError(
                    f"ShardedReplay.sample: no window of {num_steps} steps to sample yet in any of the "
                    f"{len(self._shards)} shards: they hold {[len(s) for s in self._shards]} items "
                    f"(boundaries included) of {self._envs.tolist()} environments, and a window needs "
                    f"{num_steps} consecutive items of one environment that do not start at a boundary"
                )
            if self._prioritized:
                mass = np.array([self._prioritized_shard(s).priority_mass(num_steps) for s in self._shards])
                if not mass.sum() > 0:
                    raise ValueError(
                        f"ShardedReplay.sample: the {total_windows} eligible windows of {num_steps} steps "
                        "all have priority 0"
                    )
            else:
                mass = windows.astype(np.float64)
            total_mass = float(mass.sum())
            counts = self._rng.multinomial(batch_size, mass / total_mass)
            parts: list[types.Trajectory] = []
            ids: list[np.ndarray] = []
            probabilities: list[np.ndarray] = []
            for s in np.flatnonzero(counts):
                batch, info = self._shards[s].sample(int(counts[s]), num_steps)
                parts.append(batch)
                ids.append(self._encode(int(s), info.ids))
                probabilities.append(info.probabilities * (mass[s] / total_mass))
            order = self._rng.permutation(batch_size)
            if len(parts) == 1:
                windows_batch = nest.map_structure(lambda x: x[order], parts[0])
            else:
                windows_batch = nest.map_structure(lambda *xs: np.concatenate(xs)[order], *parts)
            all_ids = np.concatenate(ids)[order]
            if self._prioritized:
                p = np.concatenate(probabilities)[order]
                beta = self.current_beta
                self._sample_calls += 1
                weights = (total_windows * p) ** -beta
                weights /= weights.max()
            else:
                p = np.full(batch_size, 1.0 / total_windows)
                weights = np.ones(batch_size)
        return windows_batch, SampleInfo(all_ids, p, weights.astype(np.float32))

    # ------------------------------------------------------------------ ids and priorities
    def _encode(self, shard: int, local: np.ndarray) -> np.ndarray:
        envs = int(self._envs[shard])
        t, env = np.divmod(np.asarray(local, np.int64), envs)
        out: np.ndarray = t * self._num_envs + self._offsets[shard] + env
        return out

    def decode_ids(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(shard, local_id)`` of sampled ids: the shard and the id that shard's own ``sample``
        gives (``t * shards[shard].num_envs + env``)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        if np.any(ids < 0):
            raise ValueError(f"ShardedReplay: ids must be >= 0, got {ids[ids < 0][:8].tolist()}")
        t, column = np.divmod(ids, self._num_envs)
        shard = np.asarray(np.searchsorted(self._offsets, column, side="right") - 1, np.int64)
        local = t * self._envs[shard] + (column - self._offsets[shard])
        return shard, local

    def update_priorities(self, ids: Any, priorities: Any) -> None:
        """Sets the priorities of sampled windows (prioritized shards); see
        :meth:`PrioritizedReplay.update_priorities` for the rules, which each shard applies to its
        ids. Every shard brings its new items up to date first, then all share the largest
        priority seen."""
        if not self._prioritized:
            raise TypeError(
                "ShardedReplay.update_priorities: the shards are uniform; they have no priorities"
            )
        ids, p = checked_priorities(ids, priorities)
        shard, local = self.decode_ids(ids)
        with self._lock:
            for s, buffer in enumerate(self._shards):
                mine = shard == s
                self._prioritized_shard(buffer).update_priorities(local[mine], p[mine])
            self._share_max_priority()

    def _share_max_priority(self) -> None:
        if self._prioritized:
            shards = [self._prioritized_shard(s) for s in self._shards]
            top = max(s.max_priority for s in shards)
            for s in shards:
                s.raise_max_priority(top)

    @staticmethod
    def _prioritized_shard(shard: ReplayBuffer) -> PrioritizedReplay:
        assert isinstance(shard, PrioritizedReplay)
        return shard

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Every shard's state (views of its storage), the generator and the count of ``sample`` calls."""
        with self._lock:
            return {
                "kind": type(self).__name__,
                "shards": [s.state_dict() for s in self._shards],
                "rng": seeding.generator_state(self._rng),
                "sample_calls": self._sample_calls,
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` of a sharded replay with the same number and kind of shards."""
        if state.get("kind") != type(self).__name__:
            raise ValueError(
                f"sharded replay state: it is from a {state.get('kind')}, this is a ShardedReplay"
            )
        if len(state["shards"]) != len(self._shards):
            raise ValueError(
                f"sharded replay state: it has {len(state['shards'])} shards and this replay "
                f"{len(self._shards)}"
            )
        with self._lock:
            for shard, shard_state in zip(self._shards, state["shards"], strict=True):
                shard.load_state_dict(shard_state)
            seeding.set_generator_state(self._rng, state["rng"])
            self._sample_calls = int(state["sample_calls"])
            self._share_max_priority()

    def __repr__(self) -> str:
        kind = type(self._shards[0]).__name__
        return (
            f"ShardedReplay({len(self._shards)} x {kind}, num_envs={self._envs.tolist()}, items={len(self)})"
        )
