"""Schedules: plain callables from a step counter to a value (e.g. epsilon)."""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from collections.abc import Callable
from typing import Any, cast

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


def as_schedule(value: float | Schedule | Callable[[], float], name: str = "schedule") -> Schedule:
    """A schedule ``step -> value`` from a constant, a schedule, or a callable of no arguments.

    A constant becomes a constant schedule; a callable that takes one positional argument
    (the step) passes through; a callable of no arguments (TF-Agents' ``lambda:
    epsilon_fn(train_step)``) is called at each use, its step ignored. Anything else raises
    ``TypeError`` naming ``name``, here rather than at its first use.
    """
    if isinstance(value, type):  # float, int, a class: callable, but not a schedule
        raise TypeError(f"{name} must be a number or a schedule, got the type {value.__name__}")
    if callable(value):
        try:
            signature = inspect.signature(value)
        except (TypeError, ValueError):  # some builtins have none: trust them to take the step
            return cast(Schedule, value)
        if _binds(signature, 0):
            return cast(Schedule, value)
        if _binds(signature):
            fn = cast(Callable[[], float], value)
            return lambda _step: fn()
        raise TypeError(
            f"{name} must be a number, a schedule called with the step (e.g. PolynomialDecay) "
            f"or a callable of no arguments, got {value!r} with signature {signature}"
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or a callable, got {value!r} ({type(value).__name__})")
    v = float(value)
    return lambda _step: v


def _binds(signature: inspect.Signature, *args: Any) -> bool:
    try:
        signature.bind(*args)
    except TypeError:
        return False
    return True
