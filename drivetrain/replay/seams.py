"""Seams: where a stored stream of items starts a new episode without an episode end.

Every FIRST starts an episode, whatever precedes it. In a stream of items that follow the
time-step protocol, a FIRST comes right after a LAST (the boundary item); a **seam** is
an item where that breaks: a FIRST that does not follow a LAST (an environment restarted
in the middle of an episode: a restarted driver, a lost collector), or an item that is
not FIRST after a LAST. A window that holds a seam after its first item would run from
one episode into another, and the item before the seam has no next observation, so the
replay (:mod:`drivetrain.replay.storage`) never lets a window cross one.

Seams are rare, so :class:`Seams` keeps, per environment, the sorted absolute indices of
the live ones (no per-item memory), found from the step types as items are synced.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from drivetrain.core import types

__all__ = ["Seams"]

_FIRST = int(types.StepType.FIRST)
_LAST = int(types.StepType.LAST)

BoundariesBefore = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Seams:
    """The live seams of ``num_envs`` environments (absolute item indices, sorted)."""

    def __init__(self, num_envs: int):
        self._seams: list[np.ndarray] = [np.zeros(0, np.int64) for _ in range(num_envs)]

    def __bool__(self) -> bool:
        return any(s.size for s in self._seams)

    def clear(self) -> None:
        self._seams = [np.zeros(0, np.int64) for _ in self._seams]

    def add(self, step_type: np.ndarray, lo: int, last_before_lo: np.ndarray | None) -> None:
        """Finds the seams among new items ``lo ..`` (``step_type [E, n]``); ``last_before_lo``:
        whether item ``lo - 1`` of each env is a LAST, None when it is gone (no window holds both)."""
        is_last = step_type == _LAST
        prev_last = np.empty_like(is_last)
        prev_last[:, 1:] = is_last[:, :-1]
        prev_last[:, 0] = False if last_before_lo is None else last_before_lo
        seam = (step_type == _FIRST) != prev_last
        if last_before_lo is None:
            seam[:, 0] = False
        for env in np.flatnonzero(seam.any(axis=1)):
            self._seams[env] = np.concatenate([self._seams[env], lo + np.flatnonzero(seam[env])])

    def prune(self, starts: np.ndarray) -> None:
        """Forgets seams at or before each env's oldest live item (they end no window)."""
        for e, seams in enumerate(self._seams):
            if seams.size and seams[0] <= starts[e]:
                self._seams[e] = seams[seams > starts[e]]

    def cut(
        self, lo: np.ndarray, n: np.ndarray, num_steps: int, boundaries_before: BoundariesBefore
    ) -> np.ndarray:
        """[E]: non-boundary starts in ``lo .. lo + n - 1`` whose window of ``num_steps`` holds a seam.

        A seam at ``p`` cuts the starts ``p - num_steps + 1 .. p - 1``; the ranges of sorted
        seams are merged by starting each one after the end of the previous one, and the
        boundaries inside them (already not eligible) are not counted twice.
        """
        out = np.zeros(len(self._seams), np.int64)
        if num_steps == 1:
            return out
        for e, seams in enumerate(self._seams):
            if not seams.size or not n[e]:
                continue
            a = np.maximum(seams - num_steps + 1, lo[e])
            b = np.minimum(seams - 1, lo[e] + n[e] - 1)
            a[1:] = np.maximum(a[1:], b[:-1] + 1)
            keep = a <= b
            a, b = a[keep], b[keep]
            if a.size:
                env = np.full(a.size, e)
                out[e] = int(np.sum(b - a + 1 - (boundaries_before(env, b + 1) - boundaries_before(env, a))))
        return out

    def cut_starts(self, num_steps: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(env, t)`` of every live item whose window of ``num_steps`` would hold a seam."""
        envs: list[np.ndarray] = []
        ts: list[np.ndarray] = []
        if num_steps > 1:
            offsets = np.arange(1 - num_steps, 0)
            for e, seams in enumerate(self._seams):
                if seams.size:
                    t = np.unique((seams[:, None] + offsets).reshape(-1))
                    t = t[t >= starts[e]]
                    envs.append(np.full(t.size, e, np.int64))
                    ts.append(t)
        if not ts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(envs), np.concatenate(ts)

    def crosses(self, env: np.ndarray | None, t: np.ndarray, num_steps: int) -> np.ndarray:
        """Whether the windows of ``num_steps`` starting at items ``t`` of envs ``env`` (None: env 0)
        hold a seam."""
        out = np.zeros(t.shape, bool)
        if num_steps == 1:
            return out
        for e, seams in enumerate(self._seams):
            if seams.size == 0 or (env is None and e > 0):
                continue
            mine = np.ones(t.shape, bool) if env is None else np.asarray(env == e)
            first = t[mine]
            inside = np.searchsorted(seams, first + num_steps - 1, "right") - np.searchsorted(
                seams, first, "right"
            )
            out[mine] = inside > 0
        return out
