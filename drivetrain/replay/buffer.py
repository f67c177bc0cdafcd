"""The replay buffer protocol, shared by the uniform and the prioritized buffers.

::

    replay = UniformReplay(policy.trajectory_spec, capacity=100_000, num_envs=8, seed=0)
    driver = StepDriver(env, policy, observers=[replay.add_batch], num_steps=4)
    batch, info = replay.sample(batch_size=64, num_steps=2)   # arrays [64, 2, ...]
    for batch, info in replay.as_dataset(batch_size=64, num_steps=2, prefetch=3): ...

- ``add_batch(trajectory)`` stores one item per environment (arrays ``[num_envs, ...]``),
  boundaries included. It checks shapes and dtypes of every leaf (the first call checks
  the whole spec, bounds included) and writes nothing if any is wrong.
- ``sample(batch_size, num_steps)`` draws ``batch_size`` eligible windows of
  ``num_steps`` consecutive items of one environment (the rules are in
  :mod:`drivetrain.replay.storage`) and returns a Trajectory of ``[batch, num_steps,
  ...]`` arrays with a :class:`SampleInfo`. Recurrent agents sample
  ``num_steps = burn_in + T (+ n)``; ``policy_info["state"][:, 0]`` is the state the
  policy held at the first step (see :mod:`drivetrain.replay.sequences`).
- ``capacity`` counts items over all environments; each environment keeps the newest
  ``capacity // num_envs``. ``len(replay)`` is the number of items stored, boundaries
  included.
- All methods are thread-safe (one lock), so a background dataset can sample while a
  driver adds. ``state_dict()`` holds views of the storage (like ``torch``'s): save it
  before adding more, or use :meth:`ReplayBuffer.save`.
"""

from __future__ import annotations

import abc
import os
import threading
from typing import Any, NamedTuple, Self

import numpy as np

from drivetrain.core import seeding, specs, types
from drivetrain.replay import files
from drivetrain.replay.dataset import ReplayDataset
from drivetrain.replay.layout import TrajectoryLayout
from drivetrain.replay.storage import RingStorage, StorageConfig, Windows

__all__ = ["ReplayBuffer", "SampleInfo"]


class SampleInfo(NamedTuple):
    """What the buffer knows about each sampled window."""

    ids: np.ndarray
    """int64 [batch]: the window's first item, ``t * num_envs + env`` (``t`` counts adds); stable
    until the item is overwritten. ``PrioritizedReplay.update_priorities`` takes these."""
    probabilities: np.ndarray
    """float64 [batch]: the probability of drawing this window in one draw."""
    weights: np.ndarray
    """float32 [batch]: importance weights (ones for uniform sampling)."""


class ReplayBuffer(abc.ABC):
    """Storage, adding, windows, datasets and state; subclasses decide how windows are drawn."""

    def __init__(
        self,
        data_spec: types.Trajectory,
        capacity: int,
        num_envs: int = 1,
        seed: seeding.Seed = None,
        *,
        dedup_frames: bool = True,
        frame_reserve: float | None = None,
        storage_dir: str | os.PathLike[str] | None = None,
        check_memory: bool = True,
    ):
        self._layout = TrajectoryLayout(data_spec)
        self._config = StorageConfig(dedup_frames, frame_reserve, storage_dir, check_memory)
        self._storage = RingStorage(self._layout, int(capacity), int(num_envs), self._config)
        self._rng = seeding.as_generator(seed)
        self._lock = threading.Lock()
        self._checked = False
        self._shapes = [(self._storage.num_envs, *s.shape) for s in self._layout.specs]
        self._dtypes = [s.dtype for s in self._layout.specs]

    # ------------------------------------------------------------------ properties
    @property
    def data_spec(self) -> types.Trajectory:
        return self._layout.data_spec

    @property
    def capacity(self) -> int:
        """Items the buffer holds at most, over all environments."""
        return self._storage.capacity * self._storage.num_envs

    @property
    def num_envs(self) -> int:
        return self._storage.num_envs

    @property
    def nbytes(self) -> int:
        """Bytes of all its arrays once full."""
        return self._storage.nbytes

    @property
    def frame_deduplicated(self) -> bool:
        """True if some stacked-frame leaf is stored one frame at a time."""
        return bool(self._storage.frame_stores)

    @staticmethod
    def estimate_nbytes(
        data_spec: types.Trajectory,
        capacity: int,
        num_envs: int = 1,
        *,
        dedup_frames: bool = True,
        frame_reserve: float | None = None,
    ) -> int:
        """Bytes a buffer of this spec and capacity takes once full, without allocating it."""
        config = StorageConfig(dedup_frames, frame_reserve)
        return RingStorage.estimate_nbytes(TrajectoryLayout(data_spec), int(capacity), int(num_envs), config)

    def __len__(self) -> int:
        with self._lock:
            self._storage.sync()
            return len(self._storage)

    # ------------------------------------------------------------------ adding
    def add_batch(self, trajectory: types.Trajectory) -> None:
        """Stores one batched trajectory (arrays ``[num_envs, ...]``); usable as a driver observer."""
        leaves = self._layout.flatten(trajectory)
        if not self._checked:
            self._layout.check(trajectory, self._storage.num_envs)
            self._checked = True
        try:  # two list comparisons: cheaper than a loop over the leaves on this hot path
            ok = [v.shape for v in leaves] == self._shapes and [v.dtype for v in leaves] == self._dtypes
        except AttributeError:  # a leaf that is not an array
            ok = False
        if not ok:
            self._check_leaves(leaves)
        with self._lock:
            self._storage.add(leaves)

    def _check_leaves(self, leaves: list[Any]) -> None:
        """Raises a SpecError naming the first leaf whose shape or dtype is wrong.

        (The fast check in :meth:`add_batch` only reads ``shape`` and ``dtype``; this one also
        refuses what is not a NumPy array.)"""
        for path, shape, dtype, value in zip(
            self._layout.paths, self._shapes, self._dtypes, leaves, strict=True
        ):
            if not isinstance(value, np.ndarray):
                raise specs.SpecError(
                    f"trajectory.{path}: expected a numpy array, got {type(value).__name__}"
                )
            if value.shape != shape or value.dtype != dtype:
                raise specs.SpecError(
                    f"trajectory.{path}: expected {dtype} {shape} ([num_envs, ...] with "
                    f"num_envs={self._storage.num_envs}), got {value.dtype} {value.shape}"
                )

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int = 64, num_steps: int = 2) -> tuple[types.Trajectory, SampleInfo]:
        """``batch_size`` eligible windows of ``num_steps`` items: ``([batch, num_steps, ...], info)``."""
        leaves, info = self._sample_leaves("sample", batch_size, num_steps)
        return self._layout.pack(leaves), info

    def sample_many(
        self, count: int, batch_size: int = 64, num_steps: int = 2
    ) -> list[tuple[types.Trajectory, SampleInfo]]:
        """``count`` batches as ``count`` calls of :meth:`sample` would give them while the buffer
        does not change between the calls (no add, no priority update), drawn and gathered at once.

        The windows of all batches are drawn in one draw of ``count * batch_size`` and gathered
        with one copy; each batch is a view of its rows. One call costs about what one
        :meth:`sample` call costs, so a loop that trains several times in a row on uniformly
        sampled windows saves the per-call cost of all but one.
        """
        if count < 1:
            raise ValueError(f"sample_many: count must be >= 1, got {count}")
        leaves, info = self._sample_leaves("sample_many", count * batch_size, num_steps)
        out = []
        for k in range(count):
            rows = slice(k * batch_size, (k + 1) * batch_size)
            part = SampleInfo(info.ids[rows], info.probabilities[rows], info.weights[rows])
            out.append((self._layout.pack([leaf[rows] for leaf in leaves]), part))
        return out

    def _sample_leaves(
        self, name: str, batch_size: int, num_steps: int
    ) -> tuple[list[np.ndarray], SampleInfo]:
        for arg, value in (("batch_size", batch_size), ("num_steps", num_steps)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name}: {arg} must be an int, got {value!r} ({type(value).__name__})")
        if batch_size < 1 or num_steps < 1:
            raise ValueError(f"{name}: batch_size and num_steps must be >= 1, got {batch_size}, {num_steps}")
        with self._lock:
            st = self._storage
            st.sync()
            if num_steps > st.capacity:
                raise ValueError(
                    f"{name}: a window of {num_steps} steps never fits: each of the {st.num_envs} environments "
                    f"keeps at most {st.capacity} items (capacity // num_envs)"
                )
            windows = st.windows(num_steps)
            if windows.eligible == 0:
                raise ValueError(
                    f"{name}: no window of {num_steps} steps to sample yet: each of the {st.num_envs} "
                    f"environments holds {[int(x) for x in st.adds - st.starts]} items (boundaries included), "
                    f"and a window needs {num_steps} consecutive items that do not start at a boundary"
                )
            env, t, probabilities, weights = self._draw(batch_size, num_steps, windows)
            leaves = st.gather(env, t, num_steps)
        ids = t if st.num_envs == 1 else t * st.num_envs + env
        return leaves, SampleInfo(ids, probabilities, weights)

    @abc.abstractmethod
    def _draw(
        self, batch_size: int, num_steps: int, windows: Windows
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Draws windows (called with the lock held, storage synced, ``windows.eligible > 0``).

        Returns ``(env, t, probabilities, weights)``, each ``[batch_size]``.
        """

    def as_dataset(
        self, batch_size: int = 64, num_steps: int = 2, prefetch: int = 3
    ) -> ReplayDataset[tuple[types.Trajectory, SampleInfo]]:
        """An endless iterator of ``sample(batch_size, num_steps)`` produced by a background thread.

        ``prefetch`` samples are kept ready; ``prefetch=0`` samples synchronously in
        ``next()`` (exactly reproducible). Close it (or use ``with``) to stop the thread.
        """
        if batch_size < 1 or num_steps < 1:
            raise ValueError(
                f"as_dataset: batch_size and num_steps must be >= 1, got {batch_size}, {num_steps}"
            )

        def sample() -> tuple[types.Trajectory, SampleInfo]:
            return self.sample(batch_size, num_steps)

        return ReplayDataset(sample, prefetch, name=f"{type(self).__name__}.as_dataset")

    def num_windows(self, num_steps: int = 2) -> int:
        """How many eligible windows of ``num_steps`` the buffer holds now."""
        with self._lock:
            self._storage.sync()
            return self._storage.windows(num_steps).eligible

    def gather_all(self) -> types.Trajectory:
        """All items every environment still holds, oldest first: arrays ``[num_envs, n, ...]``.

        ``n`` is the smallest number of live items over the environments (they differ
        only when frame de-duplication evicted items early).
        """
        with self._lock:
            st = self._storage
            st.sync()
            n = int(np.min(st.adds - st.starts))
            env = np.arange(st.num_envs)
            leaves = st.gather(env, np.full(st.num_envs, st.adds - n, np.int64), n)
        return self._layout.pack(leaves)

    # ------------------------------------------------------------------ state
    def clear(self) -> None:
        """Removes every item (the RNG keeps its state; ids of later items never repeat earlier ones)."""
        with self._lock:
            self._storage.clear()
            self._clear_sampler()

    def _clear_sampler(self) -> None:  # noqa: B027 - an optional hook
        """Subclasses reset their sampling state."""

    def _sampler_state(self) -> dict[str, Any]:
        return {}

    def _load_sampler_state(self, state: dict[str, Any]) -> None:
        del state

    def _config_state(self) -> dict[str, Any]:
        """Constructor arguments that :meth:`load` passes back (JSON values)."""
        return {
            "capacity": self.capacity,
            "num_envs": self.num_envs,
            "dedup_frames": self._config.dedup_frames,
            "frame_reserve": self._config.frame_reserve,
        }

    def _fixed_config_keys(self) -> tuple[str, ...]:
        """The constructor arguments a state can only be loaded with: its layout (the frame stores'
        extra slots follow ``frame_reserve``)."""
        keys = ("capacity", "num_envs", "dedup_frames")
        return (*keys, "frame_reserve") if self._storage.frame_stores else keys

    def state_dict(self) -> dict[str, Any]:
        """Items (views), counters, RNG and sampler state."""
        with self._lock:
            return {
                "kind": type(self).__name__,
                "config": self._config_state(),
                "storage": self._storage.state_dict(),
                "rng": seeding.generator_state(self._rng),
                "sampler": self._sampler_state(),
            }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` of a buffer of the same class, spec, capacity and num_envs."""
        if state.get("kind") != type(self).__name__:
            raise ValueError(
                f"replay state: it is from a {state.get('kind')}, this is a {type(self).__name__}"
            )
        config, here = state["config"], self._config_state()
        for key in self._fixed_config_keys():
            if config.get(key) != here[key]:
                raise ValueError(
                    f"replay state: {key} is {config.get(key)} in the state and {here[key]} here "
                    "(it fixes how the state's items are laid out; build the buffer with the state's value)"
                )
        with self._lock:
            self._storage.load_state_dict(state["storage"])
            seeding.set_generator_state(self._rng, state["rng"])
            self._load_sampler_state(state["sampler"])
            self._checked = False

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the whole buffer (spec, items, RNG, sampler) to one file, atomically."""
        files.write_state(path, self.state_dict(), self.data_spec)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **overrides: Any) -> Self:
        """A buffer rebuilt from a :meth:`save` file; ``overrides`` replace constructor arguments
        (e.g. ``storage_dir``, or a ``beta`` schedule, which is not saved), except those that fix the
        saved layout (capacity, num_envs, frame de-duplication and reserve, a prioritized buffer's
        alpha), which are refused by name."""
        state, data_spec = files.read_state(path)
        if state.get("kind") != cls.__name__:
            raise ValueError(f"{os.fspath(path)!r} holds a {state.get('kind')}; use {state.get('kind')}.load")
        kwargs = {**state["config"], **overrides}
        buffer = cls(data_spec, **kwargs)
        buffer.load_state_dict(state)
        return buffer
