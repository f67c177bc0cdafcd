"""Prioritized replay (Schaul et al. 2016, proportional variant) over windows.

Each item carries a priority ``p``; a window is drawn with probability
``P = (p + ε)^α / Σ (p_k + ε)^α`` over the eligible windows (the sum runs over items
that can start a window of the requested length: boundaries have priority 0, and the
newest ``num_steps - 1`` items of each env, and starts whose window would cross a seam,
are left out of the draw). New items get
the largest priority seen so far (1 at first), so each is likely drawn at least once.
Importance weights are ``w = (N · P)^-β``, normalised by the largest weight in the
batch, with ``N`` the number of eligible windows.

``beta`` is a float or a schedule (a callable of the number of ``sample`` calls so
far); the training loop may also set ``replay.beta`` at any time.
``update_priorities(info.ids, priorities)`` sets the priorities of sampled windows
(e.g. ``|TD error|``); ids whose item was overwritten since are ignored.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from drivetrain.core import seeding, types
from drivetrain.core.schedules import Schedule
from drivetrain.replay.buffer import ReplayBuffer, SampleInfo
from drivetrain.replay.storage import Windows
from drivetrain.replay.sum_tree import SumTree

__all__ = ["PrioritizedReplay"]

_LAST = int(types.StepType.LAST)
_ROUNDS = 32


def checked_priorities(ids: Any, priorities: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(ids int64 [N], priorities float64 [N])`` for ``update_priorities``, or a ValueError
    naming the mismatch or the priorities that are not finite and >= 0."""
    ids_array = np.asarray(ids, np.int64).reshape(-1)
    p = np.asarray(priorities, np.float64).reshape(-1)
    if ids_array.shape != p.shape:
        raise ValueError(f"update_priorities: {ids_array.size} ids but {p.size} priorities")
    bad = ~np.isfinite(p) | (p < 0)
    if bad.any():
        raise ValueError(f"update_priorities: priorities must be finite and >= 0, got {p[bad][:8].tolist()}")
    return ids_array, p


def beta_now(beta: float | Schedule, sample_calls: int, owner: str) -> float:
    """β at ``sample_calls``: a float, or a schedule's value; a ValueError naming ``owner`` outside
    [0, 1] (NaN too: a schedule, or a beta set after construction)."""
    value = float(beta(sample_calls)) if callable(beta) else float(beta)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}: beta must be in [0, 1], got {value} at sample call {sample_calls}")
    return value


class PrioritizedReplay(ReplayBuffer):
    """Proportional prioritized replay with a vectorised sum tree."""

    def __init__(
        self,
        data_spec: types.Trajectory,
        capacity: int,
        num_envs: int = 1,
        alpha: float = 0.6,
        beta: float | Schedule | None = 0.4,
        seed: seeding.Seed = None,
        *,
        epsilon: float = 1e-6,
        dedup_frames: bool = True,
        frame_reserve: float | None = None,
        storage_dir: str | os.PathLike[str] | None = None,
        check_memory: bool = True,
    ):
        if not alpha >= 0:
            raise ValueError(f"PrioritizedReplay: alpha must be >= 0, got {alpha}")
        if beta is None:
            raise ValueError(
                "PrioritizedReplay: beta is required (a buffer saved with a beta schedule "
                "needs load(path, beta=schedule))"
            )
        if not callable(beta) and not 0 <= beta <= 1:
            raise ValueError(f"PrioritizedReplay: beta must be in [0, 1] or a schedule, got {beta}")
        if not epsilon >= 0:
            raise ValueError(f"PrioritizedReplay: epsilon must be >= 0, got {epsilon}")
        super().__init__(
            data_spec,
            capacity,
            num_envs,
            seed,
            dedup_frames=dedup_frames,
            frame_reserve=frame_reserve,
            storage_dir=storage_dir,
            check_memory=check_memory,
        )
        self.alpha = float(alpha)
        self.beta: float | Schedule = beta
        self.epsilon = float(epsilon)
        self._tree = SumTree(self._storage.num_envs * self._storage.capacity)
        self._max_priority = 1.0
        self._flushed = 0  # items before this absolute index have their priority in the tree
        self._zeroed = np.zeros(self._storage.num_envs, np.int64)  # evicted items zeroed up to here
        self._sample_calls = 0
        self._excluded_key: tuple[int, int] = (-1, 0)
        self._excluded = np.zeros(0, np.int64)

    @property
    def current_beta(self) -> float:
        """β for the next ``sample`` call."""
        return beta_now(self.beta, self._sample_calls, "PrioritizedReplay")

    @property
    def max_priority(self) -> float:
        """The priority new items get (the largest ``p + ε`` seen, at least 1)."""
        return self._max_priority

    def raise_max_priority(self, value: float) -> None:
        """Makes ``value`` (a ``p + ε``, like :attr:`max_priority`) the priority new items get, if it
        is larger than :attr:`max_priority`; items already given a priority keep theirs.

        New items get their priority when the buffer next brings them up to date (``sample``,
        ``update_priorities``, ``priority_mass``). Buffers sampled as one (the shards of a
        :class:`~drivetrain.replay.sharded.ShardedReplay`) share their largest priority this way.
        """
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"raise_max_priority: value must be finite and >= 0, got {value}")
        with self._lock:
            self._max_priority = max(self._max_priority, value)

    def priority_mass(self, num_steps: int = 2) -> float:
        """``Σ (p + ε)^α`` over the eligible windows of ``num_steps`` (0.0 when there are none): the
        normaliser of ``P`` in a ``sample(..., num_steps)`` now.

        Gives new items their priority first, as ``sample`` does.
        """
        if num_steps < 1:
            raise ValueError(f"priority_mass: num_steps must be >= 1, got {num_steps}")
        with self._lock:
            st = self._storage
            st.sync()
            self._sync_tree()
            if st.windows(num_steps).eligible == 0:
                return 0.0
            excluded = self._tree.get(self._excluded_leaves(num_steps))
            return max(0.0, self._tree.total - float(excluded.sum()))

    # ------------------------------------------------------------------ tree upkeep
    def _sync_tree(self) -> None:
        """Gives new items the max priority (0 for boundaries) and zeroes evicted ones."""
        st = self._storage
        e, cap, adds = st.num_envs, st.capacity, st.adds
        if self._flushed == adds:  # nothing added (evictions only happen on adds)
            return
        base = max(0, adds - cap)
        start = max(self._flushed, base)
        value = self._max_priority**self.alpha
        while start < adds:  # at most two chunks that do not wrap around the ring
            pos = start % cap
            m = min(adds - start, cap - pos)
            chunk = np.where(st.step_type[:, pos : pos + m] == _LAST, 0.0, value)  # [E, m]
            self._tree.set_range(pos * e, chunk.T.reshape(-1))
            start += m
        self._flushed = adds
        zeroed = np.maximum(self._zeroed, base)
        if np.any(st.starts > zeroed):
            for env in np.flatnonzero(st.starts > zeroed):
                t = np.arange(zeroed[env], st.starts[env])
                self._tree.set((t % cap) * e + env, np.zeros(t.size))
        self._zeroed = st.starts.copy()

    def _leaf(self, env: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.asarray((t % self._storage.capacity) * self._storage.num_envs + env)

    # ------------------------------------------------------------------ sampling
    def _excluded_leaves(self, num_steps: int) -> np.ndarray:
        """Leaves of items that cannot start a window of ``num_steps`` though their priority may be
        positive: the newest ``num_steps - 1`` items of each env, and those whose window would
        cross a seam (see :mod:`drivetrain.replay.storage`)."""
        key = (self._storage.version, num_steps)
        if self._excluded_key != key:
            st = self._storage
            ex_lo = np.maximum(st.starts, st.adds - num_steps + 1)
            count = st.adds - ex_lo
            ex_env = np.repeat(np.arange(st.num_envs), count)
            ex_t = np.repeat(ex_lo - (np.cumsum(count) - count), count) + np.arange(int(count.sum()))
            cut_env, cut_t = st.starts_cut_by_seams(num_steps)
            if cut_t.size:
                leaves = np.unique(
                    self._leaf(np.concatenate([ex_env, cut_env]), np.concatenate([ex_t, cut_t]))
                )
            else:
                leaves = self._leaf(ex_env, ex_t)
            self._excluded = leaves
            self._excluded_key = key
        return self._excluded

    def sample_many(
        self, count: int, batch_size: int = 64, num_steps: int = 2
    ) -> list[tuple[types.Trajectory, SampleInfo]]:
        """``count`` calls of :meth:`sample`: each batch's importance weights are normalized by its
        own largest weight, with its own ``beta`` (the schedule advances once per batch)."""
        if count < 1:
            raise ValueError(f"sample_many: count must be >= 1, got {count}")
        return [self.sample(batch_size, num_steps) for _ in range(count)]

    def _draw(
        self, batch_size: int, num_steps: int, windows: Windows
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._sync_tree()
        st = self._storage
        tree = self._tree
        adds, num_envs = st.adds, st.num_envs
        num_windows = windows.eligible
        ex_leaf = self._excluded_leaves(num_steps)
        excluded = tree.get(ex_leaf)
        leaf = np.empty(batch_size, np.int64)
        todo = np.arange(batch_size)
        last_start = adds - num_steps
        # Usually the newest items hold little of the mass: draw from the whole tree and redraw
        # the few that land on them. Otherwise (or if that keeps failing) take them out of the
        # tree for this draw, which also keeps the normalising mass exact.
        mass = tree.total - float(excluded.sum())
        if mass > 0.5 * tree.total:
            for _ in range(_ROUNDS):
                todo = self._find(leaf, todo, last_start, num_steps)
                if todo.size == 0:
                    break
        if todo.size:
            tree.set(ex_leaf, np.zeros(ex_leaf.size))
            try:
                mass = tree.total
                if not mass > 0:
                    raise ValueError(
                        f"sample: the {num_windows} eligible windows of {num_steps} steps all have priority 0"
                    )
                for _ in range(100 * _ROUNDS):
                    todo = self._find(leaf, todo, last_start, num_steps)
                    if todo.size == 0:
                        break
                else:  # pragma: no cover - needs a pathological tree
                    raise RuntimeError("PrioritizedReplay: could not draw positive-priority windows")
            finally:
                tree.set(ex_leaf, excluded)
        env = leaf % num_envs
        pos = leaf // num_envs
        t = adds - 1 - (adds - 1 - pos) % st.capacity
        probabilities = tree.get(leaf) / mass
        beta = self.current_beta
        self._sample_calls += 1
        weights = (num_windows * probabilities) ** -beta
        weights /= weights.max()
        return env, t, probabilities, weights.astype(np.float32)

    def _find(self, leaf: np.ndarray, todo: np.ndarray, last_start: int, num_steps: int) -> np.ndarray:
        """Draws the ``todo`` entries of ``leaf``; returns those still to redraw."""
        tree, st = self._tree, self._storage
        found = tree.find(self._rng.random(todo.size) * tree.total)
        env, pos = found % st.num_envs, found // st.num_envs
        t = st.adds - 1 - (st.adds - 1 - pos) % st.capacity
        ok = (tree.get(found) > 0) & (t <= last_start) & ~st.crosses_seam(env, t, num_steps)
        leaf[todo[ok]] = found[ok]
        left: np.ndarray = todo[~ok]
        return left

    def update_priorities(self, ids: Any, priorities: Any) -> None:
        """Sets the priorities of the windows starting at ``ids`` (from :class:`SampleInfo`).

        Priorities must be finite and >= 0; the tree stores ``(p + ε)^α``. Ids of items
        overwritten since they were sampled, and of boundaries, are ignored; if an id
        repeats, its last priority wins.
        """
        ids, p = checked_priorities(ids, priorities)
        with self._lock:
            st = self._storage
            st.sync()
            self._sync_tree()
            env, t = ids % st.num_envs, ids // st.num_envs
            unknown = (ids < 0) | (t >= st.adds)
            if unknown.any():
                raise ValueError(
                    f"update_priorities: ids {ids[unknown][:8].tolist()} name no item of this buffer "
                    f"(it holds items t < {st.adds}; ids are t * num_envs + env)"
                )
            keep = (t >= st.starts[env]) & ~st.is_boundary(env, t)
            ids, env, t, p = ids[keep], env[keep], t[keep], p[keep]
            if ids.size == 0:
                return
            _, first = np.unique(ids[::-1], return_index=True)
            last = ids.size - 1 - first
            value = p[last] + self.epsilon
            self._max_priority = max(self._max_priority, float(value.max()))
            self._tree.set(self._leaf(env[last], t[last]), value**self.alpha)

    # ------------------------------------------------------------------ state
    def _clear_sampler(self) -> None:
        """Forgets all priorities (the beta schedule's counter goes on)."""
        self._tree.clear()
        self._max_priority = 1.0
        self._flushed = self._storage.adds
        self._zeroed = self._storage.starts.copy()

    def _sampler_state(self) -> dict[str, Any]:
        return {
            "priorities": np.array(self._tree.values),
            "max_priority": self._max_priority,
            "flushed": self._flushed,
            "zeroed": self._zeroed.copy(),
            "sample_calls": self._sample_calls,
        }

    def _load_sampler_state(self, state: dict[str, Any]) -> None:
        self._tree.load_values(np.asarray(state["priorities"]))
        self._max_priority = float(state["max_priority"])
        self._flushed = int(state["flushed"])
        self._zeroed = np.asarray(state["zeroed"], np.int64).copy()
        self._sample_calls = int(state["sample_calls"])

    def _fixed_config_keys(self) -> tuple[str, ...]:
        return (*super()._fixed_config_keys(), "alpha")  # the stored priorities are raised to it

    def _config_state(self) -> dict[str, Any]:
        return {
            **super()._config_state(),
            "alpha": self.alpha,
            "beta": None if callable(self.beta) else float(self.beta),
            "epsilon": self.epsilon,
        }
