"""The settings of the rate limiters (:mod:`drivetrain.replay.rate_limiter`), checked and made exact.

:func:`count` and :func:`real` check a number and name the field that is wrong; a real
setting becomes the exact :class:`~fractions.Fraction` of its float, so the limiters compare
without rounding. :func:`ratio_band` checks the settings of a
:class:`~drivetrain.replay.rate_limiter.SampleToInsertRatio` and gives its band
``[min_diff, max_diff]``, refusing a band too narrow to be free of deadlocks;
:func:`at_least` rounds a bound up to a float.
"""

from __future__ import annotations

import math
import numbers
import operator
from fractions import Fraction
from typing import Any, NamedTuple

__all__ = ["Band", "at_least", "count", "ratio_band", "real"]


def count(owner: str, field: str, value: Any, minimum: int) -> int:
    """``value`` as an int ``>= minimum``, or a ValueError naming ``field``."""
    if isinstance(value, bool):
        raise ValueError(f"{owner}: {field} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{owner}: {field} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{owner}: {field} must be an integer >= {minimum}, got {number}")
    return number


def real(owner: str, field: str, value: Any) -> Fraction:
    """``value`` (a finite real number) as a float, exactly as a Fraction; else a ValueError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{owner}: {field} must be a finite number, got {value!r}")
    return Fraction(float(value))


def at_least(value: Fraction) -> float:
    """The smallest float ``>= value``."""
    out = float(value)
    return out if Fraction(out) >= value else math.nextafter(out, math.inf)


class Band(NamedTuple):
    """What :func:`ratio_band` makes of the settings."""

    ratio: Fraction
    """``samples_per_insert``, exactly."""
    lo: Fraction
    """``min_diff``, exactly."""
    hi: Fraction
    """``max_diff``, exactly."""
    setting: float | tuple[float, float]
    """``error_buffer`` as the limiter reports it (floats)."""


def ratio_band(
    name: str,
    samples_per_insert: Any,
    min_size: int,
    error_buffer: Any,
    n_max: int,
    k_max: int,
) -> Band:
    """The band of a SampleToInsertRatio named ``name``; a ValueError naming the setting that is wrong.

    ``error_buffer`` a number ``e > 0`` makes ``[r * m - e, r * m + e]`` (``r`` the ratio, ``m``
    ``min_size``); a pair ``(min_diff, max_diff)`` is used as it is.

    **No deadlock.** With ``N = n_max`` (``max_insert_batch``) and ``K = k_max``
    (``max_sample_batch``), the settings must satisfy ``max_diff - min_diff >= N * r + K`` (a
    number: ``e >= (N * r + K) / 2``; for single items ``e >= (r + 1) / 2``). Then, whatever the
    counters (any mix of inserts, samples, deletes, a loaded state), an insert of ``n <= N`` or a
    sample of ``k <= K`` is allowed: in stage 1 every insert is; in stage 2 an insert of ``n`` is
    refused only when ``diff > max_diff - n * r >= max_diff - N * r >= min_diff + K >=
    min_diff + k``, and then the sample of ``k`` is allowed. The bound is tight: with a band
    narrower than ``N * r + K``, a ``diff`` in ``(max_diff - N * r, min_diff + K)`` refuses
    both (e.g. ``r = 1``, ``e = 0.9``: as stage 2 begins, ``diff = r * m``, an insert would
    take it to ``r * m + 1 > r * m + 0.9`` and a sample to ``r * m - 1 < r * m - 0.9``).
    """
    ratio = real(name, "samples_per_insert", samples_per_insert)
    if ratio <= 0:
        raise ValueError(f"{name}: samples_per_insert must be > 0, got {samples_per_insert!r}")
    if isinstance(error_buffer, tuple | list):
        if len(error_buffer) != 2:
            raise ValueError(
                f"{name}: error_buffer must be a number or a pair (min_diff, max_diff), got {error_buffer!r}"
            )
        lo = real(name, "error_buffer[0] (min_diff)", error_buffer[0])
        hi = real(name, "error_buffer[1] (max_diff)", error_buffer[1])
        setting: float | tuple[float, float] = (float(error_buffer[0]), float(error_buffer[1]))
        need = f"max_diff - min_diff = {float(hi - lo)!r} must be >= {float(n_max * ratio + k_max)!r}"
    else:
        buffer = real(name, "error_buffer", error_buffer)
        if buffer <= 0:
            raise ValueError(f"{name}: error_buffer must be > 0, got {error_buffer!r}")
        lo, hi = ratio * min_size - buffer, ratio * min_size + buffer
        setting = float(error_buffer)
        need = f"it must be >= {at_least((n_max * ratio + k_max) / 2)!r}"
    if hi - lo < n_max * ratio + k_max:
        raise ValueError(
            f"{name}: error_buffer={error_buffer!r} is too small for samples_per_insert="
            f"{samples_per_insert!r}, max_insert_batch={n_max}, max_sample_batch={k_max}: {need} "
            "(the band must be at least max_insert_batch * samples_per_insert + "
            "max_sample_batch wide, or inserts and samples can both be refused for good)"
        )
    return Band(ratio, lo, hi, setting)
