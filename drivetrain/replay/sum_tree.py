"""A vectorised sum tree: proportional sampling over many priorities in a few NumPy ops.

Leaves hold non-negative values; every inner node holds the sum of its ``branching``
children (32 by default, so a million leaves need four levels and a draw costs about
forty NumPy calls for the whole batch). :meth:`SumTree.find` descends from the top for
a batch of targets at once: per level it gathers each target's block of children,
takes their running sums and picks the child whose range holds the target. Updates
recompute only the ancestors of the changed leaves, from their children (no drift
from adding differences). Values are float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SumTree"]


class SumTree:
    """``size`` leaves under levels of ``branching``-ary sums (level 0: the leaves, padded)."""

    def __init__(self, size: int, branching: int = 32):
        if size < 1:
            raise ValueError(f"SumTree: size must be >= 1, got {size}")
        if branching < 2:
            raise ValueError(f"SumTree: branching must be >= 2, got {branching}")
        self.size = int(size)
        self.branching = b = int(branching)
        self._levels: list[np.ndarray] = []
        n = self.size
        while True:
            padded = -(-n // b) * b
            self._levels.append(np.zeros(padded, np.float64))
            if padded == b:
                break
            n = padded // b
        self._blocks = [level.reshape(-1, b) for level in self._levels]

    @property
    def total(self) -> float:
        return float(self._levels[-1].sum())

    @property
    def values(self) -> np.ndarray:
        """The leaf values (a read-only view)."""
        v = self._levels[0][: self.size]
        v.flags.writeable = False
        return v

    def get(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(self._levels[0].take(np.asarray(index, np.int64)))

    def set(self, index: np.ndarray, values: np.ndarray) -> None:
        """Sets leaves ``index`` (unique indices) to ``values`` and updates their ancestors."""
        node = np.asarray(index, np.int64).reshape(-1)
        self._levels[0][node] = np.asarray(values, np.float64).reshape(-1)
        for d in range(len(self._levels) - 1):
            node = node // self.branching  # a repeated parent is recomputed twice, from the same children
            self._levels[d + 1][node] = self._blocks[d][node].sum(axis=1)

    def set_range(self, start: int, values: np.ndarray) -> None:
        """Sets the contiguous leaves ``start .. start + len(values) - 1``."""
        n = len(values)
        if n == 0:
            return
        lo, hi = start, start + n  # hi exclusive
        self._levels[0][lo:hi] = values
        for d in range(len(self._levels) - 1):
            lo, hi = lo // self.branching, (hi - 1) // self.branching + 1
            self._levels[d + 1][lo:hi] = self._blocks[d][lo:hi].sum(axis=1)

    def find(self, targets: np.ndarray) -> np.ndarray:
        """For each target ``u`` in ``[0, total)``, the leaf ``i`` with ``prefix(i) <= u < prefix(i + 1)``.

        Floating-point rounding can land a target just past the last positive leaf, on
        a zero leaf; callers that must never return zero-valued leaves check and redraw.
        """
        u = np.array(targets, np.float64).reshape(-1)
        column = u[:, None]  # a view: follows the in-place updates of u
        k, b = u.size, self.branching
        rows = np.arange(k)
        node = np.zeros(k, np.int64)
        running = np.zeros((k, b + 1), np.float64)  # running[:, j] = sum of the first j children
        below = running[:, 1:]
        for d in range(len(self._levels) - 1, -1, -1):
            # mode="clip": a rounding overflow into a missing block stays in range (and in zeros)
            np.cumsum(self._blocks[d].take(node, axis=0, mode="clip"), axis=1, out=below)
            child = np.add.reduce(below <= column, axis=1)  # in 0..b; b only by rounding
            u -= running[rows, child]
            node *= b
            node += child
        return np.minimum(node, self.size - 1)

    def rebuild(self) -> None:
        """Recomputes every inner level from the leaves."""
        for d in range(len(self._levels) - 1):
            np.sum(self._blocks[d], axis=1, out=self._levels[d + 1][: len(self._blocks[d])])

    def clear(self) -> None:
        for level in self._levels:
            level[:] = 0.0

    def load_values(self, values: np.ndarray) -> None:
        """Replaces all leaf values and rebuilds the sums."""
        values = np.asarray(values, np.float64)
        if values.shape != (self.size,):
            raise ValueError(f"SumTree: expected {self.size} leaf values, got shape {values.shape}")
        self.clear()
        self._levels[0][: self.size] = values
        self.rebuild()
