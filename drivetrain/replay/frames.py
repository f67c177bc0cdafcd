"""Frame de-duplication: stacked-frame observations stored one frame each.

An environment that stacks frames (Atari's 84×84×4) declares its observation with a
:class:`~drivetrain.core.specs.StackedFramesSpec`: ``obs[..., k]`` is frame ``k`` of the
stack, the newest last. Consecutive stacks of one environment usually share
``K - 1 = num_frames - 1`` frames, so :class:`FrameStore` keeps per environment

- the **newest frame of every item**, in a ring aligned with the items (item ``t`` at
  ``t % (capacity + K - 1)``, so one slice assignment writes it for all environments,
  and the ``K - 1`` items before the oldest one are still there);
- for items whose stack does **not continue** the previous stack of that environment
  (the first item, an episode start whose older slots hold padding or a reset frame, or
  any stack that is not the previous one shifted by a frame), its ``K - 1`` older frames,
  in a ring of *extra* frames;
- per item, ``depth``: the number of items since the last non-continuing one (capped at
  ``K - 1``), and ``key``: where that item's extra frames start.

A stack continues the previous one when its frames ``0 .. K-2`` equal, bit for bit,
frames ``1 .. K-1`` of the previous stack; :meth:`FrameStore.add` checks this for every
stack, so every rebuilt stack equals the stack that was added, bit for bit, whatever
the environment put into it. Rebuilding item ``t``: frame ``K-1-j`` (age ``j``) is the
newest frame of item ``t - j`` if ``j <= depth``, else slot ``K-1-(j-depth)`` of the
extra frames at ``key``: one gather.

When the ring of extra frames wraps, the items that refer to overwritten extra frames
(those up to the next non-continuing stack) are *evicted* with all items before them:
:meth:`FrameStore.first_live` says where the live items start, and the replay treats the
others as gone (a warning says how to raise ``frame_reserve``).
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


def extra_capacity(spec: specs.StackedFramesSpec, item_capacity: int, reserve: float | None) -> int:
    """Extra-frame slots per environment (at least one stack's worth).

    ``reserve`` is a fraction of ``item_capacity``; None picks
    ``max(item_capacity / 32, (K - 1) * min(item_capacity, 1024))``.
    """
    k = spec.num_frames
    if reserve is None:
        extra = max(math.ceil(item_capacity / 32), (k - 1) * min(item_capacity, 1024))
    else:
        extra = math.ceil(item_capacity * reserve)
    return max(extra, k - 1)


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
        if not 2 <= k <= 256:
            raise ValueError(f"{name}: frame de-duplication needs 2..256 frames per stack, got {k}")
        self.num_envs = num_envs
        self.item_capacity = item_capacity
        self.frame_shape = spec.shape[:-1]
        self.newest_capacity = item_capacity + k - 1
        self.extra_capacity = extra_capacity(spec, item_capacity, reserve)
        self.capacity = self.newest_capacity + self.extra_capacity  # frames per environment
        self.frames = alloc(f"{name}.frames", (num_envs, self.capacity, *self.frame_shape), spec.dtype)
        self._flat_frames = self.frames.reshape(num_envs * self.capacity, *self.frame_shape)
        self.depth = alloc(f"{name}.depth", (num_envs, item_capacity), np.dtype(np.uint8))
        self.key = alloc(f"{name}.key", (num_envs, item_capacity), np.dtype(np.int64))
        self._flat_depth = self.depth.reshape(-1)
        self._flat_key = self.key.reshape(-1)
        self.extras_written = np.zeros(num_envs, np.int64)  # extra frames written so far, per env
        self.has_prev = np.zeros(num_envs, bool)  # a stack was added since the start (or clear)
        self._depth = np.zeros(num_envs, np.uint8)  # depth and key of the last item, per env
        self._key = np.zeros(num_envs, np.int64)
        self._ages = np.arange(k - 1, -1, -1, dtype=np.int64)  # age of slot 0 .. K-1
        self._max_depth = np.uint8(k - 1)
        self._saturated = False  # every env's last depth is K - 1
        self._all_prev = False  # has_prev.all()
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
        else:
            self._prev = np.zeros((num_envs, *spec.shape), spec.dtype)

    @staticmethod
    def nbytes(
        spec: specs.StackedFramesSpec, num_envs: int, item_capacity: int, reserve: float | None
    ) -> int:
        """Bytes the frames and the per-item depth and key of one leaf take."""
        k = spec.num_frames
        frames = item_capacity + k - 1 + extra_capacity(spec, item_capacity, reserve)
        return num_envs * (frames * (spec.nbytes // k) + item_capacity * 9)

    # ------------------------------------------------------------------ adding
    def _continues(self, stacks: np.ndarray, words: np.ndarray | None) -> list[bool]:
        """Per env: does its stack continue its previous stack?"""
        if not self._all_prev and not self.has_prev.any():
            return [False] * self.num_envs
        if words is not None:
            # (bytes == bytes) is one memcmp per env: cheaper than np.equal and a reduction.
            masked, expected = self._masked, self._expected
            np.bitwise_and(words, self._low, out=masked)
            same = [masked[e].tobytes() == expected[e].tobytes() for e in range(self.num_envs)]
        else:
            older, prev = stacks[..., :-1], self._prev[..., 1:]
            same = [_bits(older[e]).tobytes() == _bits(prev[e]).tobytes() for e in range(self.num_envs)]
        if not self._all_prev:
            same = [x and bool(p) for x, p in zip(same, self.has_prev, strict=True)]
        return same

    def _words(self, stacks: np.ndarray) -> np.ndarray | None:
        """The stacks as one machine word per pixel ``[E, pixels]`` (None without the word check)."""
        if self._word is None:
            return None
        words: np.ndarray = np.ascontiguousarray(stacks).view(self._word).reshape(self.num_envs, -1)
        return words

    def _remember(self, stacks: np.ndarray, words: np.ndarray | None) -> None:
        """Keeps what the next add compares against."""
        if words is not None:
            np.right_shift(words, self._shift, out=self._expected)
        else:
            np.copyto(self._prev, stacks)

    def add(self, stacks: np.ndarray, t: int) -> None:
        """Stores the stacks ``[E, ..., K]`` of item ``t`` (an absolute index) of every env."""
        words = self._words(stacks)
        cont = self._continues(stacks, words)
        self.frames[:, t % self.newest_capacity] = stacks[..., -1]
        depth, key = self._depth, self._key
        if all(cont):
            if not self._saturated:  # until K - 1 items after the last episode start
                depth += depth < self._max_depth  # uint8: depth + 1 would wrap at 255 (K = 256)
                self._saturated = bool(np.all(depth == self._max_depth))
        else:
            k, extra = self.num_frames, self.extra_capacity
            for e in range(self.num_envs):
                if cont[e]:
                    depth[e] = min(int(depth[e]) + 1, k - 1)
                    continue
                slots = self.newest_capacity + (self.extras_written[e] + np.arange(k - 1)) % extra
                self.frames[e, slots] = np.moveaxis(stacks[e, ..., :-1], -1, 0)
                key[e] = self.extras_written[e]
                self.extras_written[e] += k - 1
                depth[e] = 0
            self._saturated = False
        pos = t % self.item_capacity
        self.depth[:, pos] = depth
        self.key[:, pos] = key
        self._remember(stacks, words)
        if not self._all_prev:
            self.has_prev[:] = True
            self._all_prev = True

    # ------------------------------------------------------------------ reading
    def first_live(self, env: int, lo: int, hi: int) -> int:
        """The first item of ``env`` in ``[lo, hi)`` from which on all items can be rebuilt.

        Items whose extra frames were overwritten cannot; ``key`` grows with the item
        index, so a binary search finds the first item whose key is still stored (``hi``
        when none is).
        """
        oldest_key = int(self.extras_written[env]) - self.extra_capacity
        cap = self.item_capacity
        if lo >= hi or int(self.key[env, lo % cap]) >= oldest_key:
            return lo
        while lo < hi:
            mid = (lo + hi) // 2
            if int(self.key[env, mid % cap]) >= oldest_key:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def gather(self, env: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Stacks of items ``t`` (absolute) of envs ``env`` (same shape ``S``, or env None for env 0).

        Returns ``[*S, *frame_shape, K]`` as a view of a ``[*S, K, *frame_shape]`` array:
        the values are the stacks that were added, and a consumer that wants the frames
        first (PyTorch's NCHW) gets contiguous memory with ``.permute`` and no copy.
        """
        pos = t % self.item_capacity
        if self.num_envs > 1:
            pos += env * self.item_capacity
        depth = self._flat_depth.take(pos)[..., None].astype(np.int64)
        key = self._flat_key.take(pos)[..., None]
        ages = self._ages
        newest = (t[..., None] - ages) % self.newest_capacity
        extra = self.newest_capacity + (key + (self.num_frames - 1) - ages + depth) % self.extra_capacity
        index = np.where(ages <= depth, newest, extra)
        if self.num_envs > 1:
            index += (env * self.capacity)[..., None]
        out = self._flat_frames.take(index, axis=0)
        return np.moveaxis(out, t.ndim, -1)

    # ------------------------------------------------------------------ state
    def clear(self) -> None:
        """The next stack of every env is stored whole (the frame counts go on)."""
        self.has_prev[:] = False
        self._all_prev = False

    def state_dict(self, used_items: int) -> dict[str, Any]:
        used_extras = int(min(self.extras_written.max(initial=0), self.extra_capacity))
        return {
            "newest_frames": self.frames[:, : min(used_items + self.num_frames - 1, self.newest_capacity)],
            "extra_frames": self.frames[:, self.newest_capacity : self.newest_capacity + used_extras],
            "depth": self.depth[:, :used_items],
            "key": self.key[:, :used_items],
            "extras_written": self.extras_written.copy(),
            "has_prev": self.has_prev.copy(),
            "last_depth": self._depth.copy(),
            "last_key": self._key.copy(),
        }

    def load_state_dict(self, state: dict[str, Any], adds: int, used_items: int, where: str) -> None:
        for name, limit, offset in (
            ("newest_frames", self.newest_capacity, 0),
            ("extra_frames", self.extra_capacity, self.newest_capacity),
        ):
            frames = np.asarray(state[name])
            n = frames.shape[1] if frames.ndim > 1 else 0
            if (
                frames.shape != (self.num_envs, n, *self.frame_shape)
                or n > limit
                or frames.dtype != self.spec.dtype
            ):
                raise ValueError(
                    f"{where}.{name}: expected {self.spec.dtype} frames shaped ({self.num_envs}, <= {limit}, "
                    f"{', '.join(map(str, self.frame_shape))}), got {frames.dtype} {frames.shape}"
                )
            self.frames[:, offset : offset + n] = frames
        self.depth[:, :used_items] = np.asarray(state["depth"], np.uint8)
        self.key[:, :used_items] = np.asarray(state["key"], np.int64)
        self.extras_written[:] = np.asarray(state["extras_written"], np.int64)
        self.has_prev[:] = np.asarray(state["has_prev"], bool)
        self._depth[:] = np.asarray(state["last_depth"], np.uint8)
        self._key[:] = np.asarray(state["last_key"], np.int64)
        self._saturated = bool(np.all(self._depth == self._max_depth))
        self._all_prev = bool(self.has_prev.all())
        if self.has_prev.any() and adds > 0:  # what the next add compares against: the last stacks
            env = np.arange(self.num_envs)
            last = np.ascontiguousarray(self.gather(env, np.full(self.num_envs, adds - 1, np.int64)))
            self._remember(last, self._words(last))


def _bits(a: np.ndarray) -> np.ndarray:
    """The raw bytes of an array (bitwise comparison: NaN equals NaN, -0.0 differs from 0.0)."""
    return np.ascontiguousarray(a).view(np.uint8)
