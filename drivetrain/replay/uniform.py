"""Uniform replay: every eligible window equally likely."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from drivetrain.replay.buffer import ReplayBuffer
from drivetrain.replay.storage import Windows

__all__ = ["UniformReplay"]

_ROUNDS = 32


class UniformReplay(ReplayBuffer):
    """Samples eligible windows uniformly, with replacement (the book's ``TFUniformReplayBuffer``).

    ``UniformReplay(data_spec, capacity, num_envs, seed=None, *, dedup_frames=True,
    frame_reserve=None, storage_dir=None, check_memory=True)``; see
    :class:`~drivetrain.replay.buffer.ReplayBuffer` for the protocol. Each window has
    probability ``1 / num_windows``; the weights are ones.
    """

    def _draw(
        self, batch_size: int, num_steps: int, windows: Windows
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        env, t = draw_uniform(self._rng, self._storage.cannot_start(num_steps), batch_size, windows)
        probabilities = np.full(batch_size, 1.0 / windows.eligible)
        return env, t, probabilities, np.ones(batch_size, np.float32)


def draw_uniform(
    rng: np.random.Generator,
    cannot_start: Callable[[np.ndarray | None, np.ndarray], np.ndarray],
    batch_size: int,
    windows: Windows,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform draws over the eligible starts in ``lo[e] .. lo[e] + n[e] - 1`` of every env.

    Draws over all starts in range and redraws those that ``cannot_start(env, t)`` a
    window (a boundary, or a window across a seam: rejection keeps the draw exactly
    uniform over the eligible ones); after 32 rounds, the few left are drawn from an
    explicit list of the eligible starts.
    """
    lo, n, ends, total = windows.lo, windows.n, windows.ends, windows.total
    if len(n) == 1:  # one environment: no need to find the env of each draw
        t = below(rng, total, batch_size)
        t += lo[0]
        env = np.zeros(batch_size, np.int64)
        redraw = cannot_start(None, t)
        if not redraw.any():
            return env, t
        todo = np.flatnonzero(redraw)
    else:
        env = np.empty(batch_size, np.int64)
        t = np.empty(batch_size, np.int64)
        todo = np.arange(batch_size)
    for _ in range(_ROUNDS):
        k = below(rng, total, todo.size)
        e = np.searchsorted(ends, k, side="right")
        tt = lo[e] + k - (ends[e] - n[e])
        ok = ~cannot_start(e, tt)
        env[todo[ok]] = e[ok]
        t[todo[ok]] = tt[ok]
        todo = todo[~ok]
        if todo.size == 0:
            return env, t
    # Rare: almost every start is a boundary. Enumerate the eligible ones.
    all_e = np.repeat(np.arange(len(n)), n)
    all_t = lo[all_e] + np.arange(total) - np.repeat(ends - n, n)
    keep = ~cannot_start(all_e, all_t)
    assert int(keep.sum()) == windows.eligible
    pick = below(rng, windows.eligible, todo.size)
    env[todo] = all_e[keep][pick]
    t[todo] = all_t[keep][pick]
    return env, t


def below(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``size`` uniform ints in ``[0, n)``, as ``floor(n * U)`` with U a 53-bit uniform float.

    (Each value's probability is off by at most ``n / 2**53`` relative; ``rng.integers`` is
    exact but costs a fixed ~10x more per call in NumPy 2.x, and this is the hot path.)
    """
    out = (rng.random(size) * n).astype(np.int64)
    return np.minimum(out, n - 1, out=out)
