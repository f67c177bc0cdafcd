"""Frame de-duplication: stacked-frame observations stored one frame each.

An environment that stacks frames (Atari's 84×84×4) declares its observation with a
:class:`~drivetrain.core.specs.StackedFramesSpec`: ``obs[..., k]`` is frame ``k`` of the
stack, the newest last. Consecutive stacks of one environment usually share
``num_frames - 1`` frames, so :class:`FrameStore` keeps, per environment, a ring of
single frames (a *frame stream*) and, per stored item, the index of its newest frame.

Protocol of :meth:`FrameStore.add` for each environment:

- If the new stack *continues* the previous one (its frames ``0 .. K-2`` equal, bit for
  bit, frames ``1 .. K-1`` of the previous stack of that environment), only its newest
  frame is appended to the stream.
- Otherwise (the first item, an episode start whose older slots hold padding or a reset
  frame, or any environment that does not stack by shifting) all ``K`` frames are
  appended, oldest first.

Either way the stack of an item is the ``K`` consecutive stream frames ending at its
newest frame, so rebuilding is a gather, and every rebuilt stack equals the stack that
was added, bit for bit, whatever the environment put into it.

The stream ring holds ``item_capacity + K - 1`` frames plus a reserve for the extra
``K - 1`` frames of each non-continuing stack. When the reserve runs out, the items
whose oldest frame was overwritten are *evicted*: :meth:`first_live` says which, and
the replay treats them as gone (a warning says how to raise ``frame_reserve``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from drivetrain.core import specs

__all__ = ["Allocator", "FrameStore"]

Allocator = Callable[[str, tuple[int, ...], np.dtype[Any]], np.ndarray]

_WORDS = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def frame_capacity(spec: specs.StackedFramesSpec, item_capacity: int, reserve: float | None) -> int:
    """Frames per environment ring: every item's newest frame, one full stack, and the reserve.

    ``reserve`` is a fraction of ``item_capacity``; None picks
    ``max(item_capacity / 32, (K - 1) * min(item_capacity, 1024))`` frames.
    """
    k = spec.num_frames
    if reserve is None:
        extra = max(math.ceil(item_capacity / 32), (k - 1) * min(item_capacity, 1024))
    else:
        extra = math.ceil(item_capacity * reserve)
    return item_capacity + k - 1 + extra


class FrameStore:
    """Stores one :class:`~drivetrain.core.specs.StackedFramesSpec` leaf, frame by frame."""

    def __init__(
        self,
        spec: specs.StackedFramesSpec,
        num_envs: int,
        item_capacity: int,
        reserve: float | None,
        alloc: Allocator,
        name: str,
    ):
        self.spec = spec
        self.num_frames = k = spec.num_frames
        self.num_envs = num_envs
        self.item_capacity = item_capacity
        self.frame_shape = spec.shape[:-1]
        self.capacity = frame_capacity(spec, item_capacity, reserve)
        self.frames = alloc(f"{name}.frames", (num_envs, self.capacity, *self.frame_shape), spec.dtype)
        self._flat_frames = self.frames.reshape(num_envs * self.capacity, *self.frame_shape)
        self.newest = alloc(f"{name}.newest", (num_envs, item_capacity), np.dtype(np.int64))
        self._flat_newest = self.newest.reshape(-1)
        self.written = np.zeros(num_envs, np.int64)  # frames appended so far, per environment
        self.has_prev = np.zeros(num_envs, bool)  # a stack was added since the start (or clear)
        self._env = np.arange(num_envs)
        self._frame_base = self._env * self.capacity
        self._offsets = np.arange(k, dtype=np.int64) - (k - 1)
        # Continuation check. With the K frames of a pixel in one machine word (uint8 × 4 ->
        # uint32, little-endian: frame k in byte k), "frames 0..K-2 equal the previous frames
        # 1..K-1" is (word & low) == (previous word >> frame bits). The right side is kept
        # from the previous add (`_expected`), so an add costs three passes over the stack.
        # Other layouts keep a copy of the previous stack and compare its bytes.
        itemsize = spec.dtype.itemsize
        word = _WORDS.get(k * itemsize)
        little = sys.byteorder == "little" and spec.dtype.byteorder in "=|<"
        self._word: Any = word if little else None
        if self._word is not None:
            pixels = int(np.prod(self.frame_shape, dtype=np.int64))
            bits = 8 * itemsize
            self._shift: Any = self._word(bits)
            self._low: Any = self._word((1 << (bits * (k - 1))) - 1)
            self._expected = np.zeros((num_envs, pixels), self._word)
            self._masked = np.empty((num_envs, pixels), self._word)
            self._eq = np.empty((num_envs, pixels), bool)
        else:
            self._prev = np.zeros((num_envs, *spec.shape), spec.dtype)

    @staticmethod
    def nbytes(
        spec: specs.StackedFramesSpec, num_envs: int, item_capacity: int, reserve: float | None
    ) -> int:
        """Bytes the frames and the per-item index of one leaf take."""
        frame_bytes = spec.nbytes // spec.num_frames
        frames = num_envs * frame_capacity(spec, item_capacity, reserve) * frame_bytes
        return frames + num_envs * item_capacity * 8

    # ------------------------------------------------------------------ adding
    def _continues(self, stacks: np.ndarray) -> np.ndarray:
        """[E] bool: the stack of each environment continues its previous stack."""
        if not self.has_prev.any():
            return self.has_prev.copy()
        if self._word is not None:
            words = np.ascontiguousarray(stacks).view(self._word).reshape(self.num_envs, -1)
            np.bitwise_and(words, self._low, out=self._masked)
            np.equal(self._masked, self._expected, out=self._eq)
            same = np.asarray(self._eq.all(axis=1))
        else:
            older, prev = stacks[..., :-1], self._prev[..., 1:]
            same = np.array(
                [np.array_equal(_bits(older[i]), _bits(prev[i])) for i in range(self.num_envs)], bool
            )
        return same & self.has_prev

    def _remember(self, stacks: np.ndarray) -> None:
        """Keeps what the next add compares against."""
        if self._word is not None:
            words = np.ascontiguousarray(stacks).view(self._word).reshape(self.num_envs, -1)
            np.right_shift(words, self._shift, out=self._expected)
        else:
            np.copyto(self._prev, stacks)

    def add(self, stacks: np.ndarray, pos: int) -> None:
        """Appends the stacks ``[E, ..., K]`` of the item at ring position ``pos``."""
        cont = self._continues(stacks)
        w = self.written
        cap = self.capacity
        if cont.all():
            if self.num_envs == 1:
                self.frames[0, w[0] % cap] = stacks[0, ..., -1]
            else:
                self._flat_frames[self._frame_base + w % cap] = stacks[..., -1]
            self.newest[:, pos] = w
            w += 1
        else:
            k = self.num_frames
            for e in range(self.num_envs):
                if cont[e]:
                    self.frames[e, w[e] % cap] = stacks[e, ..., -1]
                    w[e] += 1
                else:
                    self.frames[e, (w[e] + np.arange(k)) % cap] = np.moveaxis(stacks[e], -1, 0)
                    w[e] += k
                self.newest[e, pos] = w[e] - 1
        self._remember(stacks)
        self.has_prev[:] = True

    # ------------------------------------------------------------------ reading
    def first_live(self, env: int, lo: int, hi: int) -> int:
        """The oldest item of ``env`` in absolute indices ``[lo, hi)`` whose frames are all stored.

        Items' newest-frame indices grow with the item index, so the live items are a
        suffix; a binary search finds where it starts (``hi`` when none is live).
        """
        min_newest = int(self.written[env]) - self.capacity + self.num_frames - 1
        cap = self.item_capacity
        if lo >= hi or int(self.newest[env, lo % cap]) >= min_newest:
            return lo
        while lo < hi:
            mid = (lo + hi) // 2
            if int(self.newest[env, mid % cap]) >= min_newest:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def gather(self, item_index: np.ndarray) -> np.ndarray:
        """Stacks of the items at flat item indices ``env * item_capacity + pos`` (any shape ``S``).

        Returns ``[*S, *frame_shape, K]`` as a view of a ``[*S, K, *frame_shape]`` array:
        the values are the stacks that were added, and a consumer that wants the frames
        first (PyTorch's NCHW) gets contiguous memory with ``.permute`` and no copy.
        """
        env = item_index // self.item_capacity
        newest = self._flat_newest[item_index]
        frame_index = (newest[..., None] + self._offsets) % self.capacity + (env * self.capacity)[..., None]
        out = np.take(self._flat_frames, frame_index, axis=0)
        return np.moveaxis(out, item_index.ndim, -1)

    # ------------------------------------------------------------------ state
    def clear(self) -> None:
        """The next stack of every env is stored whole (the frame count goes on)."""
        self.has_prev[:] = False

    def last_stacks(self) -> np.ndarray:
        """The last stack added for each environment, rebuilt from the frames ``[E, ..., K]``."""
        index = (self.written[:, None] + self._offsets - 1) % self.capacity + self._frame_base[:, None]
        return np.moveaxis(self._flat_frames.take(index, axis=0), 1, -1)

    def state_dict(self, used_items: int) -> dict[str, Any]:
        used_frames = int(min(self.written.max(initial=0), self.capacity))
        return {
            "frames": self.frames[:, :used_frames],
            "newest": self.newest[:, :used_items],
            "written": self.written.copy(),
            "has_prev": self.has_prev.copy(),
        }

    def load_state_dict(self, state: dict[str, Any], used_items: int, where: str) -> None:
        frames = np.asarray(state["frames"])
        n = frames.shape[1] if frames.ndim > 1 else 0
        if (
            frames.shape != (self.num_envs, n, *self.frame_shape)
            or n > self.capacity
            or frames.dtype != self.spec.dtype
        ):
            raise ValueError(
                f"{where}.frames: expected {self.spec.dtype} frames shaped "
                f"({self.num_envs}, <= {self.capacity}, {', '.join(map(str, self.frame_shape))}), "
                f"got {frames.dtype} {frames.shape}"
            )
        self.frames[:, :n] = frames
        self.newest[:, :used_items] = np.asarray(state["newest"], np.int64)
        self.written[:] = np.asarray(state["written"], np.int64)
        self.has_prev[:] = np.asarray(state["has_prev"], bool)
        if self.has_prev.any():
            self._remember(np.ascontiguousarray(self.last_stacks()))


def _bits(a: np.ndarray) -> np.ndarray:
    """The raw bytes of an array (bitwise comparison: NaN equals NaN, -0.0 differs from 0.0)."""
    return np.ascontiguousarray(a).view(np.uint8)
