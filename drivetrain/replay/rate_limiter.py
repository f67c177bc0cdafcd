"""Rate limiters: when a replay may take inserts and serve samples (Reverb's semantics).

A limiter only counts; it stores nothing and never blocks. Its owner (a replay actor
that the collectors and the learner call) polls it around each operation::

    if limiter.can_insert(n):      # before storing n items
        replay.add_batch(...)      # store them
        limiter.insert(n)          # then count them
    if limiter.can_sample(k):      # before drawing k items
        batch = replay.sample(k)   # draw them
        limiter.sample(k)          # then count them
    limiter.delete(n)              # n items left the replay (evicted, removed)
    limiter.reset()                # the replay was cleared

- Counters: ``inserts``, ``samples`` and ``deletes`` count items since construction (or the
  last ``reset``); ``size = inserts - deletes`` is what the replay holds.
- ``can_insert(n)`` / ``can_sample(k)`` answer without changing anything. ``insert(n)`` /
  ``sample(k)`` count an operation and raise :class:`RateLimitError` (counting nothing) if
  it is not allowed, so a caller that skipped the check hears of it. ``delete(n)`` is
  always allowed (``0 <= n <= size``).
- **Stage 1** (``size < min_size_to_sample``): every insert is allowed, every sample refused.
- **Stage 2** (``size >= min_size_to_sample``): :class:`MinSize` allows everything;
  :class:`SampleToInsertRatio` keeps ``diff = inserts * samples_per_insert - samples`` within
  ``[min_diff, max_diff]``: an insert of ``n`` is allowed iff ``diff + n * samples_per_insert
  <= max_diff``, a sample of ``k`` iff ``diff - k >= min_diff``.
- Comparisons are exact (rational arithmetic on the float settings), so a setting that is
  valid on paper cannot be stuck by rounding at a boundary; the settings are checked (and
  made exact) by :mod:`drivetrain.replay.rate_settings`.
- ``state_dict()`` holds the settings and the counters; ``load_state_dict`` restores the
  counters exactly and refuses a state from other settings, naming the field.
- Not thread-safe: the owner runs one call at a time (a Ray actor does) and keeps the check,
  the operation and the count together.
"""

from __future__ import annotations

import abc
import math
from fractions import Fraction
from typing import Any

from drivetrain.replay.rate_settings import at_least, count, ratio_band, real

__all__ = ["MinSize", "RateLimitError", "RateLimiter", "SampleToInsertRatio"]


class RateLimitError(RuntimeError):
    """``insert`` or ``sample`` was called when the limiter does not allow it."""


class RateLimiter(abc.ABC):
    """Counters, stage 1 and the protocol; subclasses decide what stage 2 allows.

    See the module docstring for the protocol. Use :class:`MinSize` or
    :class:`SampleToInsertRatio`.
    """

    def __init__(self, min_size_to_sample: int, max_insert_batch: int | None, max_sample_batch: int | None):
        self._min_size = count(self.name, "min_size_to_sample", min_size_to_sample, 1)
        self._max_insert = max_insert_batch
        self._max_sample = max_sample_batch
        self._inserts = 0
        self._samples = 0
        self._deletes = 0

    # ------------------------------------------------------------------ settings and counters
    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def min_size_to_sample(self) -> int:
        return self._min_size

    @property
    def inserts(self) -> int:
        """Items inserted since construction or the last ``reset``."""
        return self._inserts

    @property
    def samples(self) -> int:
        """Items sampled since construction or the last ``reset``."""
        return self._samples

    @property
    def deletes(self) -> int:
        """Items deleted since construction or the last ``reset``."""
        return self._deletes

    @property
    def size(self) -> int:
        """Items the replay holds: ``inserts - deletes``."""
        return self._inserts - self._deletes

    @property
    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """The settings, as constructor keyword arguments (and ``kind``)."""

    # ------------------------------------------------------------------ stage 2 (subclasses)
    @abc.abstractmethod
    def _insert_fits(self, num: int) -> bool:
        """Stage 2: may ``num`` items be inserted now?"""

    @abc.abstractmethod
    def _sample_fits(self, num: int) -> bool:
        """Stage 2: may ``num`` items be sampled now?"""

    def _why_refused(self, op: str, num: int) -> str:
        return f"{op} of {num} is not allowed"

    # ------------------------------------------------------------------ the protocol
    def can_insert(self, num: int = 1) -> bool:
        """True iff inserting ``num`` items now keeps to the limits (stage 1: always)."""
        num = self._num("can_insert", num, self._max_insert, "max_insert_batch")
        return self.size < self._min_size or self._insert_fits(num)

    def can_sample(self, num: int = 1) -> bool:
        """True iff sampling ``num`` items now keeps to the limits (stage 1: never)."""
        num = self._num("can_sample", num, self._max_sample, "max_sample_batch")
        return self.size >= self._min_size and self._sample_fits(num)

    def insert(self, num: int = 1) -> None:
        """Counts ``num`` items inserted; :class:`RateLimitError` if ``can_insert(num)`` is False."""
        num = self._num("insert", num, self._max_insert, "max_insert_batch")
        if not self.can_insert(num):
            raise RateLimitError(
                f"{self.name}: insert of {num} refused (check can_insert first): {self._why_refused('insert', num)}"
            )
        self._inserts += num

    def sample(self, num: int = 1) -> None:
        """Counts ``num`` items sampled; :class:`RateLimitError` if ``can_sample(num)`` is False."""
        num = self._num("sample", num, self._max_sample, "max_sample_batch")
        if not self.can_sample(num):
            if self.size < self._min_size:
                why = f"size {self.size} < min_size_to_sample {self._min_size}"
            else:
                why = self._why_refused("sample", num)
            raise RateLimitError(f"{self.name}: sample of {num} refused (check can_sample first): {why}")
        self._samples += num

    def delete(self, num: int = 1) -> None:
        """Counts ``num`` items that left the replay (``0 <= num <= size``)."""
        num = count(f"{self.name}.delete", "num", num, 0)
        if num > self.size:
            raise ValueError(f"{self.name}.delete: num={num} is more than the size {self.size}")
        self._deletes += num

    def reset(self) -> None:
        """The replay was cleared: every counter back to 0."""
        self._inserts = self._samples = self._deletes = 0

    def _num(self, op: str, num: int, maximum: int | None, field: str) -> int:
        num = count(f"{self.name}.{op}", "num", num, 1)
        if maximum is not None and num > maximum:
            raise ValueError(
                f"{self.name}.{op}: num={num} is more than {field}={maximum}, the largest "
                f"batch these settings are checked for (construct it with a larger {field})"
            )
        return num

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The settings and the counters (plain Python values)."""
        return {
            "config": self.config,
            "inserts": self._inserts,
            "samples": self._samples,
            "deletes": self._deletes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the counters of a :meth:`state_dict` from a limiter with the same settings; the
        batch bounds (``error_buffer``, ``max_insert_batch``, ``max_sample_batch``), which follow
        the loop's batch sizes, may differ (a resume that changes ``loop.batch_size``): the counters
        go on under the new bounds, whose deadlock check this limiter's construction made."""
        owner = f"{self.name}.load_state_dict"
        config = state["config"]
        for key, value in self.config.items():
            if key in _BATCH_BOUNDS:
                continue
            saved = config.get(key)
            if isinstance(saved, list):  # a pair that went through JSON
                saved = tuple(saved)
            if saved != value:
                raise ValueError(f"{owner}: {key} is {saved!r} in the state and {value!r} here")
        inserts = count(owner, "inserts", state["inserts"], 0)
        samples = count(owner, "samples", state["samples"], 0)
        deletes = count(owner, "deletes", state["deletes"], 0)
        if deletes > inserts:
            raise ValueError(f"{owner}: deletes ({deletes}) is more than inserts ({inserts})")
        self._inserts, self._samples, self._deletes = inserts, samples, deletes

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "kind")
        return (
            f"{self.name}({settings}; inserts={self._inserts}, samples={self._samples}, "
            f"deletes={self._deletes})"
        )


class MinSize(RateLimiter):
    """Samples only once the replay holds ``min_size_to_sample`` items; inserts never wait.

    ``MinSize(min_size_to_sample)``, ``min_size_to_sample >= 1``. See the module docstring
    for the protocol.
    """

    def __init__(self, min_size_to_sample: int):
        super().__init__(min_size_to_sample, None, None)

    @property
    def config(self) -> dict[str, Any]:
        return {"kind": self.name, "min_size_to_sample": self._min_size}

    def _insert_fits(self, num: int) -> bool:
        return True

    def _sample_fits(self, num: int) -> bool:
        return True


_BATCH_BOUNDS = frozenset({"error_buffer", "max_insert_batch", "max_sample_batch"})


class SampleToInsertRatio(RateLimiter):
    """Keeps ``samples ≈ samples_per_insert * inserts`` within an error buffer.

    ``SampleToInsertRatio(samples_per_insert, min_size_to_sample, error_buffer, *,
    max_insert_batch=1, max_sample_batch=1)``, Reverb's limiter of the same name. See the
    module docstring for the protocol; stage 2 keeps
    ``diff = inserts * samples_per_insert - samples`` within ``[min_diff, max_diff]``:

    - ``error_buffer`` a number ``e > 0``: ``[r * m - e, r * m + e]`` (``r`` the ratio, ``m``
      the minimum size), centred on where stage 1 leaves ``diff`` (``m`` items, no samples),
      so the error counts stage 2 only: samples stay within ``e`` of ``r`` times the inserts
      made since the replay reached ``m``.
    - ``error_buffer`` a pair ``(min_diff, max_diff)``: used as it is.
    - ``max_insert_batch`` / ``max_sample_batch``: the largest ``num`` that inserts / samples
      are called with (e.g. the number of environments of a collector, the learner's batch
      size). Larger calls are refused with a ValueError.

    **No deadlock.** With ``N = max_insert_batch`` and ``K = max_sample_batch``, the
    settings must satisfy ``max_diff - min_diff >= N * r + K`` (a number: ``e >= (N * r + K) /
    2``; for single items ``e >= (r + 1) / 2``). Then, whatever the counters, an insert of
    ``n <= N`` or a sample of ``k <= K`` is allowed, and the bound is tight (the proof:
    :func:`~drivetrain.replay.rate_settings.ratio_band`, which checks it).
    Reverb requires ``e >= max(1, r)``, which implies this. Stage 1 also lets through a batch
    that takes the size past ``m``: Reverb frees inserts while ``size + n <= m`` (the same
    rule for single items), which strands a batch that would overshoot the band while
    sampling is not yet allowed. Such a batch may leave ``diff`` above ``max_diff``; then only
    samples are allowed until it is back within.

    The band is kept once reached: in stage 2 an allowed insert leaves ``diff <= max_diff``
    and an allowed sample ``diff >= min_diff``. A replay must be able to hold
    ``min_size_to_sample`` items, or sampling never starts.
    """

    def __init__(
        self,
        samples_per_insert: float,
        min_size_to_sample: int,
        error_buffer: float | tuple[float, float],
        *,
        max_insert_batch: int = 1,
        max_sample_batch: int = 1,
    ):
        name = self.name
        n_max = count(name, "max_insert_batch", max_insert_batch, 1)
        k_max = count(name, "max_sample_batch", max_sample_batch, 1)
        super().__init__(min_size_to_sample, n_max, k_max)
        ratio, lo, hi, setting = ratio_band(
            name, samples_per_insert, self._min_size, error_buffer, n_max, k_max
        )
        self._ratio_setting = float(samples_per_insert)
        self._buffer_setting = setting
        self._lo, self._hi = lo, hi
        scale = math.lcm(ratio.denominator, lo.denominator, hi.denominator)  # exact integer arithmetic
        self._scale, self._r = scale, int(ratio * scale)
        self._lo_scaled, self._hi_scaled = int(lo * scale), int(hi * scale)

    @classmethod
    def from_tolerance(
        cls,
        samples_per_insert: float,
        min_size_to_sample: int,
        tolerance: float = 0.1,
        *,
        max_insert_batch: int = 1,
        max_sample_batch: int = 1,
    ) -> SampleToInsertRatio:
        """``error_buffer = tolerance * samples_per_insert * min_size_to_sample`` (Acme's rule).

        The ratio may drift by ``tolerance`` (a fraction) of the samples due over
        ``min_size_to_sample`` inserts; raised to the smallest deadlock-free buffer,
        ``(max_insert_batch * samples_per_insert + max_sample_batch) / 2``, when below it.
        """
        owner = f"{cls.__name__}.from_tolerance"
        tol, ratio = (
            real(owner, "tolerance", tolerance),
            real(owner, "samples_per_insert", samples_per_insert),
        )
        if tol < 0:
            raise ValueError(f"{owner}: tolerance must be >= 0, got {tolerance!r}")
        size = count(owner, "min_size_to_sample", min_size_to_sample, 1)
        n_max = count(owner, "max_insert_batch", max_insert_batch, 1)
        k_max = count(owner, "max_sample_batch", max_sample_batch, 1)
        buffer = max(float(tol * ratio * size), at_least((n_max * ratio + k_max) / 2))
        return cls(samples_per_insert, size, buffer, max_insert_batch=n_max, max_sample_batch=k_max)

    # ------------------------------------------------------------------ settings
    @property
    def config(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "samples_per_insert": self._ratio_setting,
            "min_size_to_sample": self._min_size,
            "error_buffer": self._buffer_setting,
            "max_insert_batch": self._max_insert,
            "max_sample_batch": self._max_sample,
        }

    @property
    def samples_per_insert(self) -> float:
        return self._ratio_setting

    @property
    def min_diff(self) -> float:
        """The lowest ``diff`` a sample may leave."""
        return float(self._lo)

    @property
    def max_diff(self) -> float:
        """The highest ``diff`` an insert in stage 2 may leave."""
        return float(self._hi)

    @property
    def diff(self) -> float:
        """``inserts * samples_per_insert - samples`` (Reverb's cursor)."""
        return float(Fraction(self._diff_scaled(), self._scale))

    # ------------------------------------------------------------------ stage 2
    def _diff_scaled(self) -> int:
        return self._inserts * self._r - self._samples * self._scale

    def _insert_fits(self, num: int) -> bool:
        return self._diff_scaled() + num * self._r <= self._hi_scaled

    def _sample_fits(self, num: int) -> bool:
        return self._diff_scaled() - num * self._scale >= self._lo_scaled

    def _why_refused(self, op: str, num: int) -> str:
        step = num * self._r if op == "insert" else -num * self._scale
        after = float(Fraction(self._diff_scaled() + step, self._scale))
        limit = f"> max_diff {self.max_diff!r}" if op == "insert" else f"< min_diff {self.min_diff!r}"
        return (
            f"inserts * samples_per_insert - samples would be {after!r} {limit} "
            f"(inserts={self._inserts}, samples={self._samples})"
        )
