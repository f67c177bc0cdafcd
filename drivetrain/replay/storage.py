"""Ring storage laid out per environment, and what is eligible to sample from it.

Every leaf of the data spec gets one array ``[num_envs, capacity_per_env, *shape]``:
item ``t`` (an absolute index, counted from the first add) of environment ``e`` lives
at ``[e, t % capacity_per_env]``, so the consecutive trajectories of one environment
are contiguous. All environments advance together (one add = one item per env).
Stacked-frame leaves go to a :class:`~drivetrain.replay.frames.FrameStore` instead.

Items of environment ``e`` that are *live* are ``starts[e] <= t < adds``: the ring
keeps the newest ``capacity_per_env`` items, and frame de-duplication may evict a few
more of the oldest (see :mod:`drivetrain.replay.frames`).

**Eligible windows.** A window of ``L`` steps starting at item ``t`` of env ``e`` is
eligible when

1. ``t >= starts[e]`` (the item and all its frames are still stored),
2. ``t + L - 1 <= adds - 1`` (it does not run past the newest item),
3. ``step_type[e, t] != LAST`` (it does not start at a boundary), and
4. no item ``t < u <= t + L - 1`` is a **seam**: a FIRST that does not follow a LAST
   (an episode cut short by a reset: a restarted driver, a lost collector), or a
   non-FIRST item after a LAST. Every FIRST starts an episode, whatever precedes it,
   so no window runs from one episode into another except through its boundary,
   and the transition before a seam (whose next observation was never stored) is
   never the first step of a target that would read the FIRST observation as its next.

Together 1 and 2 mean a window never crosses the ring's overwrite point. Windows may
contain an episode's end (``... LAST, FIRST ...``): n-step returns stop at the first
LAST (:func:`~drivetrain.replay.nstep.n_step_transitions`), recurrent agents mask it.
Seams are found lazily in :meth:`RingStorage.sync`, from the step types alone, and kept
by :class:`~drivetrain.replay.seams.Seams`; they are rare, and the counts of eligible
windows stay exact (prefix counts of boundaries per item, and the list of live seams).

Arrays are allocated up front with ``np.zeros`` (the OS commits pages as data is
written) or, with ``storage_dir``, as numpy memmaps of unlinked temporary files.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from drivetrain.core import specs, types
from drivetrain.replay.allocation import Allocator, available_memory
from drivetrain.replay.frames import FrameStore
from drivetrain.replay.layout import TrajectoryLayout
from drivetrain.replay.seams import Seams

__all__ = ["RingStorage", "StorageConfig", "Windows", "available_memory"]

_LAST = int(types.StepType.LAST)


@dataclasses.dataclass(frozen=True)
class StorageConfig:
    """How a replay buffer stores its items."""

    dedup_frames: bool = True
    """Store each frame of :class:`~drivetrain.core.specs.StackedFramesSpec` leaves once."""
    frame_reserve: float | None = None
    """Extra frame slots per environment, as a fraction of its item capacity, for stacks that
    do not continue the previous one (episode starts): each costs ``num_frames - 1`` extra
    frames. None: ``max(1/32, (num_frames - 1) * min(capacity, 1024) / capacity)``, which covers
    episodes of >= 96 steps, and every item in buffers of up to 1024 items per environment.
    When the reserve runs out, the oldest items are evicted early (with a warning)."""
    storage_dir: str | os.PathLike[str] | None = None
    """Keep the arrays in numpy memmaps of temporary files in this directory (on disk)."""
    check_memory: bool = True
    """Refuse a capacity whose arrays do not fit in the available memory (or disk space)."""

    def __post_init__(self) -> None:
        if self.frame_reserve is not None and not 0 <= self.frame_reserve <= 64:
            raise ValueError(f"StorageConfig.frame_reserve must be in [0, 64], got {self.frame_reserve}")


class Windows(NamedTuple):
    """Where windows of one length can start, per environment (absolute item indices)."""

    lo: np.ndarray
    """[E] the first start in range (the oldest live item)."""
    n: np.ndarray
    """[E] starts in range, ``lo .. lo + n - 1`` (boundaries included)."""
    ends: np.ndarray
    """[E] ``cumsum(n)``."""
    total: int
    """``sum(n)``."""
    eligible: int
    """Starts in range that are not boundaries and whose window crosses no seam: the number of
    eligible windows."""


def _frame_leaves(layout: TrajectoryLayout, config: StorageConfig) -> set[int]:
    """Leaves stored frame by frame."""
    if not config.dedup_frames:
        return set()
    return {i for i, s in enumerate(layout.specs) if isinstance(s, specs.StackedFramesSpec)}


class RingStorage:
    """Per-environment rings for every leaf; see the module docstring for the rules."""

    def __init__(self, layout: TrajectoryLayout, capacity: int, num_envs: int, config: StorageConfig):
        if num_envs < 1:
            raise ValueError(f"replay: num_envs must be >= 1, got {num_envs}")
        if capacity < num_envs:
            raise ValueError(
                f"replay: capacity ({capacity} items in all) must be at least num_envs ({num_envs})"
            )
        self.layout = layout
        self.config = config
        self.num_envs = e = int(num_envs)
        self.capacity = cap = int(capacity) // e  # per environment
        frame_leaves = _frame_leaves(layout, config)
        self.nbytes = self.estimate_nbytes(layout, cap * e, e, config)
        self._check_space(capacity)
        alloc = Allocator(config.storage_dir)
        self.frame_stores: dict[int, FrameStore] = {}
        self.arrays: list[np.ndarray | None] = []
        self._flat: list[np.ndarray | None] = []
        for i, (path, s) in enumerate(zip(layout.paths, layout.specs, strict=True)):
            if i in frame_leaves:
                assert isinstance(s, specs.StackedFramesSpec)
                self.frame_stores[i] = FrameStore(s, e, cap, config.frame_reserve, alloc, path)
                self.arrays.append(None)
                self._flat.append(None)
            else:
                arr = alloc(path, (e, cap, *s.shape), s.dtype)
                self.arrays.append(arr)
                self._flat.append(arr.reshape(e * cap, *s.shape))
        step_type = self.arrays[layout.step_type_leaf]
        assert step_type is not None
        self.step_type = step_type
        self._step_type_flat = step_type.reshape(-1)
        self._last_before = alloc("last_before", (e, cap), np.dtype(np.int64))
        self._last_total = np.zeros(e, np.int64)
        self.seams = Seams(e)
        # Several environments: write through time-major views ``[cap, e, ...]`` of the arrays,
        # one integer index per leaf (cheaper than ``arr[:, pos] = leaf``'s tuple of a slice and an int).
        self._by_time = [(i, np.moveaxis(a, 1, 0)) for i, a in enumerate(self.arrays) if a is not None]
        # One environment: write through the flat views, scalars as elements (about half the
        # cost of ``arr[:, pos] = leaf`` per leaf on this hot path).
        self._single = [
            (i, flat, not self.layout.specs[i].shape)
            for i, flat in enumerate(self._flat)
            if flat is not None and e == 1
        ]
        self._stores = list(self.frame_stores.items())
        self._windows: dict[int, Windows] = {}
        self._steps: dict[int, np.ndarray] = {}
        self.version = 0  # changes whenever the stored items do
        self._env = np.arange(e)
        self.adds = 0
        self.starts = np.zeros(e, np.int64)
        self._synced = 0
        self._warned = False

    @staticmethod
    def estimate_nbytes(layout: TrajectoryLayout, capacity: int, num_envs: int, config: StorageConfig) -> int:
        """Bytes of all arrays (items, frames, per-item indices) for ``capacity`` items in all."""
        cap = capacity // num_envs
        frame_leaves = _frame_leaves(layout, config)
        total = num_envs * cap * 8  # boundary prefix counts
        for i, s in enumerate(layout.specs):
            if i in frame_leaves:
                assert isinstance(s, specs.StackedFramesSpec)
                total += FrameStore.nbytes(s, num_envs, cap, config.frame_reserve)
            else:
                total += num_envs * cap * s.nbytes
        return total

    def _check_space(self, capacity: int) -> None:
        if not self.config.check_memory:
            return
        need = self.nbytes
        if self.config.storage_dir is None:
            avail, where = available_memory(), "memory"
            hint = "; lower the capacity, or pass storage_dir= to keep the buffer on disk (numpy memmap)"
        else:
            avail, where = (
                shutil.disk_usage(self.config.storage_dir).free,
                f"disk in {self.config.storage_dir}",
            )
            hint = "; lower the capacity or choose another storage_dir"
        if avail is not None and need > avail:
            raise MemoryError(
                f"replay: capacity {capacity} needs {need / 1e9:.2f} GB ({need} bytes, "
                f"{need / (self.num_envs * self.capacity):.0f} bytes per item) but only "
                f"{avail / 1e9:.2f} GB of {where} is available{hint} (check_memory=False skips this check)"
            )

    # ------------------------------------------------------------------ adding
    def add(self, leaves: list[np.ndarray]) -> None:
        """Writes one item per environment (leaves already checked)."""
        pos = self.adds % self.capacity
        if self._single:
            for i, flat, scalar in self._single:
                flat[pos] = leaves[i][0] if scalar else leaves[i]
        else:
            for i, by_time in self._by_time:
                by_time[pos] = leaves[i]
        for i, store in self._stores:
            store.add(leaves[i], self.adds)
        self.adds += 1
        self.version += 1

    # ------------------------------------------------------------------ bookkeeping
    def sync(self) -> None:
        """Brings ``starts`` and the boundary counts up to date (lazily, before reading)."""
        adds, cap = self.adds, self.capacity
        if adds == self._synced:
            return
        self._windows.clear()
        base = max(0, adds - cap)
        floor = np.maximum(self.starts, base)  # overwritten by the ring, or cleared
        starts = floor.copy()
        for store in self.frame_stores.values():
            for e in range(self.num_envs):
                starts[e] = store.first_live(e, int(starts[e]), adds)
        if not self._warned and bool(np.any(starts > floor)):
            self._warned = True
            warnings.warn(
                "replay: the frame reserve is full, so the oldest items are evicted before the ring "
                "overwrites them (many episode starts or stacks that do not continue the previous one); "
                f"pass a larger frame_reserve (a fraction of the capacity, now {self.config.frame_reserve}) "
                "to keep all of them",
                RuntimeWarning,
                stacklevel=4,
            )
        self.starts = starts
        lo = max(self._synced, 0)
        if lo < base:  # everything live is new: restart the counts (only differences are used)
            lo = base
            self._last_total[:] = 0
        n = adds - lo
        if n > 0:
            pos = (lo + np.arange(n)) % cap
            step_type = self.step_type[:, pos]
            is_last = step_type == _LAST
            counts = is_last.astype(np.int64)
            running = np.cumsum(counts, axis=1)
            self._last_before[:, pos] = self._last_total[:, None] + running - counts
            self._last_total += running[:, -1]
            # the item before lo counts when it is still stored
            before = self.step_type[:, (lo - 1) % cap] == _LAST if lo > base else None
            self.seams.add(step_type, lo, before)
        self.seams.prune(starts)
        self._synced = adds

    def _boundaries_before(self, env: np.ndarray, t: np.ndarray) -> np.ndarray:
        """LAST items of envs ``env`` before absolute indices ``t`` (up to a per-env constant)."""
        inner = self._last_before[env, t % self.capacity]
        return np.asarray(np.where(t >= self.adds, self._last_total[env], inner))

    def windows(self, num_steps: int) -> Windows:
        """Where windows of ``num_steps`` can start; cached until the items change (call :meth:`sync` first)."""
        cached = self._windows.get(num_steps)
        if cached is None:
            env, lo = self._env, self.starts.copy()
            n = np.maximum(self.adds - num_steps + 1 - lo, 0)
            eligible = n - (self._boundaries_before(env, lo + n) - self._boundaries_before(env, lo))
            if self.seams:
                eligible -= self.seams.cut(lo, n, num_steps, self._boundaries_before)
            ends = np.cumsum(n)
            cached = Windows(lo, n, ends, int(ends[-1]), int(eligible.sum()))
            self._windows[num_steps] = cached
        return cached

    def starts_cut_by_seams(self, num_steps: int) -> tuple[np.ndarray, np.ndarray]:
        """``(env, t)`` of every live item whose window of ``num_steps`` would hold a seam."""
        return self.seams.cut_starts(num_steps, self.starts)

    def is_boundary(self, env: np.ndarray | None, t: np.ndarray) -> np.ndarray:
        """Whether items ``t`` of envs ``env`` (None: env 0) are boundaries (step_type LAST)."""
        pos = t % self.capacity
        return np.asarray(
            self._step_type_flat.take(pos if env is None else env * self.capacity + pos) == _LAST
        )

    def crosses_seam(self, env: np.ndarray | None, t: np.ndarray, num_steps: int) -> np.ndarray:
        """Whether the windows of ``num_steps`` starting at items ``t`` of envs ``env`` (None: env 0)
        hold a seam."""
        return self.seams.crosses(env, t, num_steps)

    def cannot_start(self, num_steps: int) -> Callable[[np.ndarray | None, np.ndarray], np.ndarray]:
        """A test of window starts: True where a window of ``num_steps`` may not start (rules 3 and 4)."""
        if num_steps == 1 or not self.seams:
            return self.is_boundary

        def test(env: np.ndarray | None, t: np.ndarray) -> np.ndarray:
            return np.asarray(self.is_boundary(env, t) | self.crosses_seam(env, t, num_steps))

        return test

    def __len__(self) -> int:
        return int(np.sum(self.adds - self.starts))

    # ------------------------------------------------------------------ reading
    def gather(self, env: np.ndarray, t: np.ndarray, num_steps: int) -> list[np.ndarray]:
        """Leaves ``[B, num_steps, ...]`` of the windows starting at items ``t`` of envs ``env``."""
        steps = self._steps.get(num_steps)
        if steps is None:
            steps = self._steps[num_steps] = np.arange(num_steps)
        absolute = t[:, None] + steps
        item = absolute % self.capacity
        if self.num_envs > 1:
            item += env[:, None] * self.capacity
        return [
            self.frame_stores[i].gather(env[:, None], absolute) if flat is None else flat.take(item, axis=0)
            for i, flat in enumerate(self._flat)
        ]

    # ------------------------------------------------------------------ state
    def clear(self) -> None:
        """Drops every item; the add count goes on, so ids stay unique across clears."""
        self.starts[:] = self.adds
        self._windows.clear()
        self.version += 1
        for store in self.frame_stores.values():
            store.clear()

    def state_dict(self) -> dict[str, Any]:
        used = min(self.adds, self.capacity)
        return {
            "adds": self.adds,
            "starts": self.starts.copy(),
            "leaves": {str(i): a[:, :used] for i, a in enumerate(self.arrays) if a is not None},
            "frames": {str(i): s.state_dict(used) for i, s in self.frame_stores.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        adds = int(state["adds"])
        used = min(adds, self.capacity)
        leaves, frames = state["leaves"], state["frames"]
        if sorted(leaves) != sorted(str(i) for i, a in enumerate(self.arrays) if a is not None) or sorted(
            frames
        ) != sorted(str(i) for i in self.frame_stores):
            raise ValueError(
                "replay state: stored leaves do not match this buffer's data spec and frame de-duplication "
                f"(stored {sorted(leaves)} + frames {sorted(frames)})"
            )
        for key, value in leaves.items():
            i = int(key)
            arr = self.arrays[i]
            assert arr is not None
            value = np.asarray(value)
            if value.shape != (self.num_envs, used, *arr.shape[2:]) or value.dtype != arr.dtype:
                raise ValueError(
                    f"replay state: leaf {self.layout.paths[i]!r}: expected {arr.dtype} "
                    f"{(self.num_envs, used, *arr.shape[2:])}, got {value.dtype} {value.shape}"
                )
            arr[:, :used] = value
        for key, value in frames.items():
            self.frame_stores[int(key)].load_state_dict(value, adds, used, self.layout.paths[int(key)])
        self.adds = adds
        self.starts = np.asarray(state["starts"], np.int64).copy()
        self._synced = -1
        self._last_total[:] = 0
        self.seams.clear()
        self.version += 1
        self.sync()
