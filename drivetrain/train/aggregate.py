"""Aggregates over seeds: the interquartile mean, its stratified bootstrap interval, and mean
learning curves with a bootstrap band (NumPy only).

The definitions are those of rliable (Agarwal et al., *Deep RL at the Edge of the
Statistical Precipice*, NeurIPS 2021), computed with a few lines of NumPy instead of
rliable's stack (arch, statsmodels, pandas, seaborn):

- :func:`iqm` is ``scipy.stats.trim_mean(x, 0.25)``: sort the ``n`` values, drop
  ``k = floor(0.25 * n)`` from each end, average the ``n - 2k`` left. Fractional trimming
  is rounded down, never interpolated: ``n = 2, 3`` keep every value (the plain mean),
  ``n = 4, 5, 6, 7`` drop one value at each end, ``n = 8`` two.
- :func:`iqm_interval` is a stratified percentile bootstrap: each stratum (an environment)
  is resampled with replacement to its own size, the strata are pooled, the IQM of the
  pool is one bootstrap statistic; the interval is the ``(1 - c) / 2`` and ``(1 + c) / 2``
  percentiles (``np.percentile``, linear interpolation) of ``resamples`` statistics.
  Random numbers: ``rng = np.random.default_rng(seed)``, then for each stratum, in the
  order its label first appears, ``rng.integers(0, n_s, size=(resamples, n_s))`` indexes
  its values.
- :func:`curve_band` is the mean over seeds of curves on a shared grid, with a percentile
  bootstrap band over seeds (``rng.integers(0, n, size=(resamples, n))``, seeds resampled
  with replacement, the same resample for every grid point).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["Curve", "Interval", "curve_band", "interpolate", "iqm", "iqm_interval", "shared_grid"]


@dataclasses.dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap confidence interval."""

    value: float
    low: float
    high: float
    confidence: float
    resamples: int


@dataclasses.dataclass(frozen=True)
class Curve:
    """Mean over seeds of interpolated curves, with a bootstrap band, on the grid ``x``."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def _trimmed(sorted_values: np.ndarray) -> np.ndarray:
    """IQM along the last axis of values sorted along it (``floor(n / 4)`` dropped at each end)."""
    n = sorted_values.shape[-1]
    k = int(0.25 * n)
    return np.asarray(sorted_values[..., k : n - k].mean(axis=-1))


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """The interquartile mean: ``scipy.stats.trim_mean(values, 0.25)`` (see the module docstring)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("iqm: no values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"iqm: values must be finite, got {x.tolist()}")
    return float(_trimmed(np.sort(x)))


def _check_confidence(confidence: float, resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")


def iqm_interval(
    values: Sequence[float] | np.ndarray,
    *,
    strata: Sequence[str] | None = None,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The IQM of ``values`` and its stratified percentile bootstrap interval.

    Args:
      values: the final returns of the seeds.
      strata: a label per value (its environment); values are resampled within their
        stratum, strata in the order their labels first appear. None: one stratum.
      resamples: bootstrap resamples.
      confidence: the interval's coverage (0.95: the 2.5 and 97.5 percentiles).
      seed: seed of the bootstrap's generator (see the module docstring for the draws).
    """
    _check_confidence(confidence, resamples)
    x = np.asarray(values, dtype=np.float64).ravel()
    labels = [""] * x.size if strata is None else list(strata)
    if len(labels) != x.size:
        raise ValueError(f"iqm_interval: {x.size} values but {len(labels)} strata labels")
    value = iqm(x)
    groups = [x[[i for i, s in enumerate(labels) if s == label]] for label in dict.fromkeys(labels)]
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([g[rng.integers(0, g.size, size=(resamples, g.size))] for g in groups], axis=1)
    stats = _trimmed(np.sort(pooled, axis=1))
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(stats, [tail, 100.0 - tail])
    return Interval(value, float(low), float(high), confidence, resamples)


def shared_grid(xs: Sequence[np.ndarray], points: int = 100) -> np.ndarray:
    """``points`` evenly spaced steps over the range every curve covers (from the latest first
    step to the earliest last step): curves are compared where all of them have data.

    A range of one step (every curve has one point there, or the ranges touch) is that step.
    ValueError when the ranges do not overlap.
    """
    if not xs or any(len(x) == 0 for x in xs):
        raise ValueError("shared_grid: every curve needs at least one point")
    lo = max(float(np.min(x)) for x in xs)
    hi = min(float(np.max(x)) for x in xs)
    if lo > hi:
        raise ValueError(
            f"shared_grid: the curves cover no common steps (latest start {lo}, earliest end {hi})"
        )
    if lo == hi:
        return np.array([lo])
    return np.linspace(lo, hi, max(2, points))


def interpolate(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``y(x)`` linearly interpolated onto ``grid`` (``x`` sorted first; repeated steps keep their last value)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    last = np.append(x[1:] != x[:-1], True)  # the last value of each repeated step
    return np.asarray(np.interp(grid, x[last], y[last]))


def curve_band(
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    points: int = 100,
    resamples: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Curve:
    """Mean over seeds of ``(x, y)`` curves on their :func:`shared_grid`, with a bootstrap band."""
    _check_confidence(confidence, resamples)
    grid = shared_grid([np.asarray(x) for x, _ in curves], points)
    ys = np.stack([interpolate(x, y, grid) for x, y in curves])  # [seeds, grid]
    n = ys.shape[0]
    rng = np.random.default_rng(seed)
    means = ys[rng.integers(0, n, size=(resamples, n))].mean(axis=1)  # [resamples, grid]
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail], axis=0)
    return Curve(grid, ys.mean(axis=0), low, high, n)
