"""Array specs: the shape, dtype and (optionally) bounds of one item.

A spec describes a single item, without the batch axis; batched values carry one or
more leading *outer* dimensions. Bounds of :class:`BoundedArraySpec` are **inclusive**:
four discrete actions are ``BoundedArraySpec((), np.int64, 0, 3)``.

Specs nest like values (dicts, tuples, namedtuples). :func:`validate` checks a nest of
values against a nest of specs and raises :class:`SpecError` naming the field, the
expected and the actual shape, dtype or range.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt

from drivetrain.core import nest

__all__ = [
    "ArraySpec",
    "BoundedArraySpec",
    "SpecError",
    "StackedFramesSpec",
    "sample",
    "validate",
    "zeros",
]


class SpecError(ValueError):
    """A value does not match its spec."""


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """Shape and dtype of one item (no batch axis)."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    name: str | None = None

    def __init__(self, shape: tuple[int, ...] | list[int], dtype: npt.DTypeLike, name: str | None = None):
        object.__setattr__(self, "shape", tuple(int(d) for d in shape))
        object.__setattr__(self, "dtype", np.dtype(dtype))
        object.__setattr__(self, "name", name)

    # ------------------------------------------------------------------ checks
    def check(self, value: Any, outer_ndim: int = 0, path: str = "") -> None:
        """Raises :class:`SpecError` if ``value`` does not fit (with ``outer_ndim`` batch axes)."""
        where = path or self.name or "value"
        arr = np.asarray(value)
        expected_ndim = outer_ndim + len(self.shape)
        if arr.ndim != expected_ndim or tuple(arr.shape[outer_ndim:]) != self.shape:
            outer = "[" + ", ".join("B" for _ in range(outer_ndim)) + "] + " if outer_ndim else ""
            raise SpecError(f"{where}: expected shape {outer}{self.shape}, got {tuple(arr.shape)}")
        if arr.dtype != self.dtype:
            raise SpecError(f"{where}: expected dtype {self.dtype}, got {arr.dtype}")

    def sample(self, rng: np.random.Generator, outer_shape: tuple[int, ...] = ()) -> np.ndarray:
        """A random value of this spec (standard normal for floats, any integer for ints)."""
        shape = outer_shape + self.shape
        if np.issubdtype(self.dtype, np.floating):
            return rng.standard_normal(shape).astype(self.dtype)
        if np.issubdtype(self.dtype, np.complexfloating):
            return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(self.dtype)
        if self.dtype == np.bool_:
            return rng.integers(0, 2, shape).astype(np.bool_)
        info = np.iinfo(self.dtype)
        return rng.integers(
            max(info.min, -(2**31)), min(info.max, 2**31 - 1), shape, dtype=self.dtype, endpoint=True
        )

    def zeros(self, outer_shape: tuple[int, ...] = ()) -> np.ndarray:
        return np.zeros(outer_shape + self.shape, self.dtype)

    def replace(self, **changes: Any) -> ArraySpec:
        return dataclasses.replace(self, **changes)

    @property
    def nbytes(self) -> int:
        """Bytes of one item."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclasses.dataclass(frozen=True)
class BoundedArraySpec(ArraySpec):
    """An :class:`ArraySpec` with inclusive ``minimum`` and ``maximum`` (scalars or arrays)."""

    minimum: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(()))
    maximum: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(()))

    def __init__(
        self,
        shape: tuple[int, ...] | list[int],
        dtype: npt.DTypeLike,
        minimum: Any,
        maximum: Any,
        name: str | None = None,
    ):
        super().__init__(shape, dtype, name)
        lo = _bound(minimum, "minimum", self)
        hi = _bound(maximum, "maximum", self)
        if np.any(lo > hi):
            raise ValueError(f"{name or 'spec'}: minimum {minimum} exceeds maximum {maximum}")
        lo.flags.writeable = False
        hi.flags.writeable = False
        object.__setattr__(self, "minimum", lo)
        object.__setattr__(self, "maximum", hi)

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, BoundedArraySpec)
            and self.shape == other.shape
            and self.dtype == other.dtype
            and self.name == other.name
            and np.array_equal(self.minimum, other.minimum)
            and np.array_equal(self.maximum, other.maximum)
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.name, self.minimum.tobytes(), self.maximum.tobytes()))

    @property
    def num_values(self) -> int:
        """Number of discrete values of a scalar integer spec (``maximum - minimum + 1``)."""
        if self.shape != () or not np.issubdtype(self.dtype, np.integer):
            raise TypeError(f"{self.name or 'spec'}: num_values needs a scalar integer spec, got {self}")
        return int(self.maximum) - int(self.minimum) + 1

    def check(self, value: Any, outer_ndim: int = 0, path: str = "") -> None:
        super().check(value, outer_ndim, path)
        arr = np.asarray(value)
        if arr.size == 0:
            return
        floating = np.issubdtype(arr.dtype, np.floating)
        if floating and (
            bool(np.isnan(arr).any())  # NaN passes every comparison with the bounds
            or (
                not np.all(np.isfinite(arr))
                and np.all(np.isfinite(self.minimum))
                and np.all(np.isfinite(self.maximum))
            )
        ):
            raise SpecError(
                f"{path or self.name or 'value'}: non-finite value in {arr.tolist() if arr.size < 20 else 'array'}"
            )
        below = arr < self.minimum
        above = arr > self.maximum
        if np.any(below) or np.any(above):
            bad = arr[below | above]
            raise SpecError(
                f"{path or self.name or 'value'}: expected values in "
                f"[{_fmt(self.minimum)}, {_fmt(self.maximum)}] (inclusive), got {_fmt(bad)}"
            )

    def sample(self, rng: np.random.Generator, outer_shape: tuple[int, ...] = ()) -> np.ndarray:
        shape = outer_shape + self.shape
        if self.dtype == np.uint64 and bool(np.any(self.maximum > np.iinfo(np.int64).max)):
            return rng.integers(self.minimum, self.maximum, shape, dtype=np.uint64, endpoint=True)
        if np.issubdtype(self.dtype, np.integer) or self.dtype == np.bool_:
            lo = self.minimum.astype(np.int64)
            hi = self.maximum.astype(np.int64)
            return rng.integers(lo, hi, shape, endpoint=True).astype(self.dtype)
        finite_lo, finite_hi = np.isfinite(self.minimum), np.isfinite(self.maximum)
        big = float(np.finfo(self.dtype).max) / 4
        lo = np.where(finite_lo, self.minimum, -big).astype(np.float64)
        hi = np.where(finite_hi, self.maximum, big).astype(np.float64)
        u = rng.uniform(lo, hi, shape)
        if not (np.all(finite_lo) and np.all(finite_hi)):
            # A dimension bounded on one side: the finite bound plus (minus) a half-normal; on none: a normal.
            n = rng.standard_normal(shape)
            half = np.where(finite_lo, lo + np.abs(n), np.where(finite_hi, hi - np.abs(n), n))
            u = np.where(finite_lo & finite_hi, u, half)
        return u.astype(self.dtype)


def _bound(value: Any, which: str, spec: ArraySpec) -> np.ndarray:
    """``value`` as the spec's ``minimum`` or ``maximum``: of its dtype and shape, unchanged by the
    cast (a ValueError naming the spec otherwise), read-only."""
    name, dtype = spec.name or "BoundedArraySpec", spec.dtype
    raw = np.asarray(value)
    if raw.dtype.kind in "fc" and bool(np.isnan(raw).any()):
        raise ValueError(f"{name}: {which} {_fmt(raw)} holds NaN")
    if dtype.kind in "iub" and raw.dtype.kind in "iubf":
        info = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        whole = raw.dtype.kind != "f" or bool(np.all(np.isfinite(raw) & (raw == np.floor(raw))))
        if not whole or bool(np.any(raw < info[0])) or bool(np.any(raw > info[1])):
            raise ValueError(
                f"{name}: {which} {_fmt(raw)} is not a value of {dtype} (integers in {list(info)})"
            )
    elif dtype.kind == "f" and raw.dtype.kind in "iuf":
        with np.errstate(over="ignore"):
            cast = raw.astype(dtype)
        if bool(np.any(np.isfinite(raw) & ~np.isfinite(cast))):
            raise ValueError(f"{name}: {which} {_fmt(raw)} is beyond the range of {dtype}")
    try:
        out = np.broadcast_to(raw.astype(dtype), spec.shape).copy()
    except ValueError:
        raise ValueError(
            f"{name}: {which} of shape {raw.shape} does not broadcast to the spec's shape {spec.shape}"
        ) from None
    out.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class StackedFramesSpec(BoundedArraySpec):
    """A bounded image spec whose last axis stacks the ``num_frames`` latest frames.

    An environment that stacks frames (Atari's 84×84×4) says so with this spec; the
    replay buffer then stores each frame once and rebuilds the stacks when sampling.
    Frame ``k`` of a stack is ``obs[..., k]``; the newest frame is last.
    """

    num_frames: int = 4

    def __init__(
        self,
        shape: tuple[int, ...] | list[int],
        dtype: npt.DTypeLike,
        minimum: Any,
        maximum: Any,
        name: str | None = None,
        num_frames: int | None = None,
    ):
        super().__init__(shape, dtype, minimum, maximum, name)
        if not self.shape:
            raise ValueError(
                f"StackedFramesSpec: shape () has no last axis of frames (num_frames={num_frames})"
            )
        n = self.shape[-1] if num_frames is None else int(num_frames)
        if self.shape[-1] != n:
            raise ValueError(f"StackedFramesSpec: last axis of {self.shape} must be num_frames={n}")
        object.__setattr__(self, "num_frames", n)

    def __eq__(self, other: object) -> bool:
        return (
            super().__eq__(other)
            and isinstance(other, StackedFramesSpec)
            and other.num_frames == self.num_frames
        )

    def __hash__(self) -> int:
        return super().__hash__()


def _fmt(a: np.ndarray) -> str:
    a = np.asarray(a)
    if a.size == 1:
        return str(a.reshape(()).item())
    if a.size <= 8:
        return str(a.tolist())
    return f"array(min={a.min()}, max={a.max()}, shape={a.shape})"


# ---------------------------------------------------------------------- nests of specs
def validate(spec: Any, value: Any, outer_ndim: int = 1, name: str = "") -> None:
    """Checks a nest of values against a nest of specs.

    ``outer_ndim`` is the number of leading batch axes of every value (1 for what
    environments and drivers move). Raises :class:`SpecError` naming the first field
    that is wrong.
    """

    def check(path: str, s: ArraySpec, v: Any) -> None:
        if not isinstance(s, ArraySpec):
            raise TypeError(f"{path or '<root>'}: spec leaf must be an ArraySpec, got {type(s).__name__}")
        s.check(v, outer_ndim, path)

    try:
        nest.map_structure_with_path(check, spec, value, prefix=name)
    except SpecError:
        raise
    except ValueError as e:  # structure mismatch
        raise SpecError(str(e)) from None


def sample(spec: Any, rng: np.random.Generator, outer_shape: tuple[int, ...] = ()) -> Any:
    """A random nest of values of ``spec``."""
    return nest.map_structure(lambda s: s.sample(rng, outer_shape), spec)


def zeros(spec: Any, outer_shape: tuple[int, ...] = ()) -> Any:
    """A nest of zero arrays of ``spec``."""
    return nest.map_structure(lambda s: s.zeros(outer_shape), spec)
