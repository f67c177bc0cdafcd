"""A vectorised sum tree: proportional sampling over many priorities in O(log n) NumPy ops.

Leaves hold non-negative values; every inner node holds the sum of its two children,
so the root is the total. :meth:`SumTree.find` descends from the root for a whole
batch of targets at once (one gather and compare per level), and updates recompute
only the ancestors of the changed leaves, from their children (no drift from adding
differences). Values are float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SumTree"]


class SumTree:
    """``size`` leaves in a complete binary tree stored in one array (root at index 1)."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"SumTree: size must be >= 1, got {size}")
        self.size = int(size)
        self._depth = max(1, (self.size - 1).bit_length())
        self._first = 1 << self._depth  # index of leaf 0
        self._tree = np.zeros(2 * self._first, np.float64)

    @property
    def total(self) -> float:
        return float(self._tree[1])

    @property
    def values(self) -> np.ndarray:
        """The leaf values (a read-only view)."""
        v = self._tree[self._first : self._first + self.size]
        v.flags.writeable = False
        return v

    def get(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(self._tree[self._first + np.asarray(index, np.int64)])

    def set(self, index: np.ndarray, values: np.ndarray) -> None:
        """Sets leaves ``index`` (unique indices) to ``values`` and updates their ancestors."""
        node = self._first + np.asarray(index, np.int64).reshape(-1)
        self._tree[node] = np.asarray(values, np.float64).reshape(-1)
        tree = self._tree
        for _ in range(self._depth):
            node >>= 1  # repeated parents are recomputed twice from the same children: harmless
            tree[node] = tree[2 * node] + tree[2 * node + 1]

    def set_range(self, start: int, values: np.ndarray) -> None:
        """Sets the contiguous leaves ``start .. start + len(values) - 1``."""
        n = len(values)
        if n == 0:
            return
        lo = self._first + start
        hi = lo + n  # exclusive
        tree = self._tree
        tree[lo:hi] = values
        for _ in range(self._depth):
            lo >>= 1
            hi = ((hi - 1) >> 1) + 1
            tree[lo:hi] = tree[2 * lo : 2 * hi : 2] + tree[2 * lo + 1 : 2 * hi : 2]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """For each target ``u`` in ``[0, total)``, the leaf ``i`` with ``prefix(i) <= u < prefix(i + 1)``.

        Floating-point rounding can land a target just past the last positive leaf, on
        a zero leaf; callers that must never return zero-valued leaves check and redraw.
        """
        u = np.array(targets, np.float64).reshape(-1)
        node = np.ones(u.shape, np.int64)
        tree = self._tree
        for _ in range(self._depth):
            node <<= 1
            left = tree[node]
            right = u >= left
            u -= np.where(right, left, 0.0)
            node += right
        return np.minimum(node - self._first, self.size - 1)

    def rebuild(self) -> None:
        """Recomputes every inner node from the leaves."""
        tree = self._tree
        lo, hi = self._first, 2 * self._first
        for _ in range(self._depth):
            lo, hi = lo >> 1, hi >> 1
            tree[lo:hi] = tree[2 * lo : 2 * hi : 2] + tree[2 * lo + 1 : 2 * hi : 2]

    def clear(self) -> None:
        self._tree[:] = 0.0

    def load_values(self, values: np.ndarray) -> None:
        """Replaces all leaf values and rebuilds the sums."""
        values = np.asarray(values, np.float64)
        if values.shape != (self.size,):
            raise ValueError(f"SumTree: expected {self.size} leaf values, got shape {values.shape}")
        self._tree[self._first : self._first + self.size] = values
        self._tree[self._first + self.size :] = 0.0
        self.rebuild()
