"""Schedules: plain callables from a step counter to a value (e.g. epsilon)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

__all__ = ["LinearDecay", "PolynomialDecay", "Schedule", "as_schedule"]

Schedule = Callable[[int], float]


@dataclasses.dataclass(frozen=True)
class PolynomialDecay:
    """``end + (start - end) * (1 - step / steps) ** power`` for ``step < steps``, then ``end``.

    ``power=1`` is a linear decay (``tf.keras.optimizers.schedules.PolynomialDecay``,
    the book's epsilon schedule).
    """

    start: float
    end: float
    steps: int
    power: float = 1.0

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ValueError(f"PolynomialDecay: steps must be positive, got {self.steps}")

    def __call__(self, step: int) -> float:
        frac = min(max(step, 0), self.steps) / self.steps
        return float(self.end + (self.start - self.end) * (1.0 - frac) ** self.power)


def LinearDecay(start: float, end: float, steps: int) -> PolynomialDecay:  # noqa: N802 - reads as a class
    """Linear decay from ``start`` to ``end`` over ``steps`` steps, then constant."""
    return PolynomialDecay(start, end, steps, 1.0)


def as_schedule(value: float | Schedule) -> Schedule:
    """A constant becomes a constant schedule; callables pass through."""
    if callable(value):
        return value
    v = float(value)
    return lambda _step: v
