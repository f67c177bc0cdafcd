"""What environments return, checked at the environment boundary before anything is stored.

The adapters (:class:`~drivetrain.envs.gymnasium_env.GymnasiumEnv`,
:class:`~drivetrain.envs.vector_env.VectorEnvAdapter`,
:class:`~drivetrain.envs.atari_envpool.EnvPoolAtari`) pass every reset and step result
through these checks, built once from the specs:

- the Gymnasium API (:func:`reset_observation`, :func:`step_api_error`): ``reset()``
  returns ``(observation, info)`` and ``step()`` five values; a bare observation from
  ``reset`` or four values from ``step`` is named as the old Gym API;
- observations (:class:`ObservationChecker`): the exact shape of the spec (nothing is
  broadcast); a dtype that converts to the spec's without changing values, checked
  *before* the cast (``2.7`` or ``-1`` for a ``uint8`` space is refused, not truncated
  to 2 or wrapped to 255); integer values inside the spec's inclusive bounds; float
  values finite (no NaN or inf, also after the cast to the spec's dtype);
- rewards (:class:`RewardChecker`): one real number per environment, finite as float32.

Finite bounds of *float* spaces are not enforced: many Gymnasium environments step
slightly past their declared float bounds (Gymnasium's own checker only warns), the
value is stored as emitted, and refusing it would stop working environments.
:func:`~drivetrain.envs.check_env` reports them.

Cost: the common case (NumPy observations of the spec's shape and dtype, scalar float
rewards) costs one ``np.array`` of the environments' observations (which refuses ragged
shapes) with a shape and dtype comparison of the batch and, per float
leaf, one finite check of the batch (a Python ``sum`` of the values for small batches,
``np.isfinite(...).all()`` for larger ones); the detailed messages are built only on
failure. Every failure raises :class:`EnvOutputError`, naming the field, the
environment, what was expected, what came, and what to do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from drivetrain.core import nest, specs, types

__all__ = [
    "EnvOutputError",
    "ObservationChecker",
    "RewardChecker",
    "reset_observation",
    "step_api_error",
]

_REAL_KINDS = "biuf"
_SMALL = 32  # float batches up to this size are checked in Python (faster than NumPy's calls)
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_RESET_API = "reset(seed=None, options=None) -> (observation, info)"
_STEP_API = "step(action) -> (observation, reward, terminated, truncated, info)"
_OLD_GYM = (
    "this is the old Gym API (gym < 0.26); port the environment to Gymnasium's API, or wrap it "
    "with shimmy's GymV21CompatibilityV0 (pip install shimmy)"
)


class EnvOutputError(specs.SpecError):
    """An environment returned a value that breaks its spec or the Gymnasium API."""


def _env(index: int | None) -> str:
    return "the vector environment" if index is None else f"environment {index}"


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        kinds = ", ".join(type(v).__name__ for v in value)
        return f"a {type(value).__name__} of {len(value)} values ({kinds})"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _show(a: np.ndarray) -> str:
    return str(a.tolist()) if a.size <= 8 else f"array(shape={a.shape}, min={a.min()}, max={a.max()})"


def _first_row(mask: np.ndarray) -> int:
    return int(np.argmax(mask.reshape(mask.shape[0], -1).any(axis=1)))


# ---------------------------------------------------------------------- the Gymnasium API
def reset_observation(result: Any, index: int | None = None) -> Any:
    """The observation of a ``reset()`` result ``(observation, info)``; EnvOutputError for anything else."""
    if type(result) is tuple and len(result) == 2 and isinstance(result[1], dict):
        return result[0]
    old = "" if isinstance(result, tuple) and len(result) == 2 else f"; {_OLD_GYM}"
    raise EnvOutputError(
        f"reset() of {_env(index)}: expected the Gymnasium API {_RESET_API} with info a dict, "
        f"got {_describe(result)}{old}"
    )


def step_api_error(result: Any, index: int | None = None) -> EnvOutputError:
    """The error for a ``step()`` result that is not five values (to raise where unpacking failed)."""
    old = f"; {_OLD_GYM}" if isinstance(result, (tuple, list)) and len(result) == 4 else ""
    return EnvOutputError(
        f"step() of {_env(index)}: expected the Gymnasium API {_STEP_API}, got {_describe(result)}{old}"
    )


# ---------------------------------------------------------------------- rewards
class RewardChecker:
    """Turns the rewards of ``batch_size`` environments into a float32 ``[B]`` array, or raises;
    its errors name environment ``first_index + i`` for the ``i``-th reward."""

    def __init__(self, batch_size: int, first_index: int = 0):
        self._shape = (int(batch_size),)
        self._single = batch_size == 1
        self._first = int(first_index)

    def from_list(self, rewards: list[Any]) -> np.ndarray:
        """``B`` rewards, one per environment (Python or NumPy scalars, as Gymnasium environments return them)."""
        if self._single:  # one environment's float: finite and within float32 (NaN fails both)
            r = rewards[0]
            kind = r.__class__  # rewards as environments return them
            if (
                kind is float or kind is np.float64 or kind is np.float32
            ) and -_FLOAT32_MAX <= r <= _FLOAT32_MAX:
                return np.array(rewards, types.REWARD_DTYPE)
        try:
            sum(rewards)  # a TypeError for str, None and other non-numbers, which np.array might parse
            out = np.array(rewards, types.REWARD_DTYPE)
            # NaN or inf if any reward is (or overflowed float32); a TypeError if one was an array
            finite = math.isfinite(sum(out.tolist()))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            raise self._error(list(rewards))
        return out

    def from_array(self, reward: Any, ignore: np.ndarray) -> np.ndarray:
        """A batched reward ``[B]`` (a vector environment's); entries where ``ignore`` is set become 0."""
        arr = np.asarray(reward)
        if arr.shape != self._shape or arr.dtype.kind not in _REAL_KINDS:
            raise self._error(arr.tolist() if arr.ndim == 1 and len(arr) == self._shape[0] else reward)
        out = np.where(ignore, 0.0, arr).astype(types.REWARD_DTYPE)
        if not math.isfinite(sum(out.tolist())):
            raise self._error(np.where(ignore, 0.0, arr).tolist())
        return out

    def _error(self, rewards: Any) -> EnvOutputError:
        b = self._shape[0]
        if not isinstance(rewards, list) or len(rewards) != b:
            return EnvOutputError(
                f"reward: expected {b} rewards, one per environment, got {_describe(rewards)}"
            )
        for i, r in enumerate(rewards):
            where = f"reward of environment {self._first + i}"
            arr = np.asarray(r) if isinstance(r, (int, float, np.generic, np.ndarray)) else None
            if arr is None or arr.dtype.kind not in _REAL_KINDS:
                return EnvOutputError(
                    f"{where}: expected a real number (a float), got {_describe(r)}; "
                    "return the reward as a float"
                )
            if arr.shape != ():
                return EnvOutputError(
                    f"{where}: expected a scalar, got an array of shape {arr.shape}; return one float per step"
                )
            with np.errstate(over="ignore", invalid="ignore"):
                as_float32 = arr.astype(types.REWARD_DTYPE)
            if not np.isfinite(as_float32):
                beyond = " (beyond float32's range)" if np.isfinite(arr) else ""
                return EnvOutputError(
                    f"{where}: expected a finite number, got {arr.item()}{beyond}; fix the environment's "
                    "reward (a NaN reward turns every return and loss into NaN)"
                )
        return EnvOutputError(f"reward: expected {b} finite real numbers, got {_describe(rewards)}")


# ---------------------------------------------------------------------- observations
class _Leaf:
    """The checks of one observation field (one leaf of the spec)."""

    def __init__(self, path: str, spec: specs.ArraySpec, batch_size: int, first_index: int = 0):
        self.path = path
        self.first = int(first_index)
        self.shape = spec.shape
        self.batch_shape = (batch_size, *spec.shape)
        self.dtype = spec.dtype
        self.is_float = spec.dtype.kind == "f"
        real = [np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8)]
        real += [np.dtype(t) for t in (np.uint16, np.uint32, np.uint64, np.float16, np.float32, np.float64)]
        if self.is_float:  # any float converts (overflow shows up as inf in the finite check)
            accepted = [t for t in real if t.kind == "f"]
            self.lo, self.hi = None, None
        else:  # integers and bools: dtypes whose every value converts exactly
            accepted = [t for t in real if np.can_cast(t, spec.dtype, "safe")]
            if isinstance(spec, specs.BoundedArraySpec):
                self.lo, self.hi = spec.minimum, spec.maximum
            elif spec.dtype.kind in "iu":
                info = np.iinfo(spec.dtype)
                self.lo, self.hi = np.asarray(info.min, spec.dtype), np.asarray(info.max, spec.dtype)
            else:
                self.lo, self.hi = np.asarray(False), np.asarray(True)
        self.accepted = frozenset(accepted) | {spec.dtype}
        self.small = int(np.prod(self.batch_shape, dtype=np.int64)) <= _SMALL
        self.small_float = self.small and self.is_float
        # One environment's float vector (classic control): batched without a round trip through a list.
        self.single_vector = batch_size == 1 and self.small_float and len(self.shape) == 1
        # Bounds that the dtype alone enforces (uint8 in [0, 255]) need no check of the batch.
        self.check_range = False
        if self.lo is not None and self.hi is not None and spec.dtype.kind in "iu":
            info = np.iinfo(spec.dtype)
            self.check_range = bool(self.lo.min() > info.min or self.hi.max() < info.max)
            if np.all(self.lo == self.lo.flat[0]) and np.all(self.hi == self.hi.flat[0]):
                self.lo, self.hi = self.lo.flat[0], self.hi.flat[0]  # scalars compare faster

    def where(self, index: int | None) -> str:
        return f"{self.path} of {_env(None if index is None else self.first + index)}"

    def convert(self, o: Any, index: int | None, batched: bool = False) -> np.ndarray:
        """``o`` as an array whose values survive the cast to the spec's dtype, or EnvOutputError."""
        expected = self.batch_shape if batched else self.shape
        try:
            arr = np.asarray(o)
        except (TypeError, ValueError) as e:
            raise EnvOutputError(
                f"{self.where(index)}: expected an array of shape {expected}, got {_describe(o)} ({e})"
            ) from None
        if arr.shape != expected:
            what = f"[{self.batch_shape[0]} environments] + {self.shape}" if batched else f"{self.shape}"
            raise EnvOutputError(
                f"{self.where(index)}: expected shape {what} (the observation space's), got {arr.shape}; "
                "drivetrain does not broadcast observations: make the environment's observations match "
                "its observation_space"
            )
        if arr.dtype.kind not in _REAL_KINDS:
            raise EnvOutputError(
                f"{self.where(index)}: expected numbers of dtype {self.dtype}, got dtype {arr.dtype} "
                f"({_show(arr) if arr.size <= 8 else 'array'}); return NumPy arrays of the observation space's dtype"
            )
        if not (self.is_float or arr.dtype in self.accepted):
            self._check_integers(arr, index, batched)
        return arr

    def _check_integers(self, arr: np.ndarray, index: int | None, batched: bool) -> None:
        """Values that an integer (or bool) dtype would truncate, wrap or clip: refused before the cast."""
        bad = np.zeros(arr.shape, bool)
        if arr.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                bad |= ~np.isfinite(arr) | (arr != np.floor(arr))
        with np.errstate(invalid="ignore"):
            bad |= (arr < self.lo) | (arr > self.hi)
        if bad.any():
            i = _first_row(bad) if batched else index
            row = arr[i] if batched else arr
            raise EnvOutputError(
                f"{self.where(i)}: got {_show(row)} of dtype {arr.dtype}, which {self.dtype} cannot hold "
                f"exactly (expected integers in [{_show(np.asarray(self.lo))}, {_show(np.asarray(self.hi))}]; "
                "a cast would truncate or wrap them); return observations of the observation space's dtype "
                "and range"
            )

    def check_values(self, out: np.ndarray) -> None:
        """Checks a batch in the spec's dtype: float values finite, integers within the bounds."""
        if self.is_float:
            # Python's sum of the values is NaN or inf if any is; a sum that only overflows is re-checked.
            finite = math.isfinite(sum(out.ravel().tolist())) if self.small else bool(np.isfinite(out).all())
            if not finite:
                self._raise_not_finite(out)
        elif self.check_range and (np.any(out < self.lo) or np.any(out > self.hi)):
            i = _first_row((out < self.lo) | (out > self.hi))
            raise EnvOutputError(
                f"{self.where(i)}: got {_show(out[i])}, outside the observation space's inclusive bounds "
                f"[{_show(np.asarray(self.lo))}, {_show(np.asarray(self.hi))}]; fix the environment or "
                "widen its observation_space"
            )

    def _raise_not_finite(self, out: np.ndarray) -> None:
        bad = ~np.isfinite(out)
        if not bad.any():
            return  # finite values whose sum overflowed
        i = _first_row(bad)
        raise EnvOutputError(
            f"{self.where(i)}: expected finite values, got {_show(out[i])} (NaN or inf, or beyond "
            f"{self.dtype}'s range); fix the environment: NaN observations train the networks to NaN"
        )

    def batch_of(self, observations: list[Any]) -> np.ndarray:
        """One observation per environment -> a checked batch ``[B, ...]`` of the spec's dtype."""
        if self.single_vector:
            o = observations[0]
            if o.__class__ is np.ndarray and o.dtype is self.dtype and o.shape == self.shape:
                if not math.isfinite(sum(o.tolist())):
                    self._raise_not_finite(o[None])
                return o[None].copy()
        try:  # NumPy refuses ragged lists, so a batch of the expected shape has no broadcast rows
            out = np.array(observations)
        except (TypeError, ValueError):
            return self._batch_slowly(observations)
        if out.shape != self.batch_shape or out.dtype not in self.accepted:
            return self._batch_slowly(observations)
        if out.dtype is not self.dtype:
            out = out.astype(self.dtype)
        if self.small_float:  # check_values' finite check, inlined for the common case
            if not math.isfinite(sum(out.ravel().tolist())):
                self._raise_not_finite(out)
        else:
            self.check_values(out)
        return out

    def _batch_slowly(self, observations: list[Any]) -> np.ndarray:
        """Converts each environment's observation on its own (the first bad one raises) and batches them."""
        out = np.empty(self.batch_shape, self.dtype)
        for i, o in enumerate(observations):
            out[i] = self.convert(o, i)
        self.check_values(out)
        return out

    def batched(self, o: Any, copy: bool) -> np.ndarray:
        """A batched value ``[B, ...]`` -> a checked array of the spec's dtype (a copy if ``copy``)."""
        if not (type(o) is np.ndarray and o.shape == self.batch_shape and o.dtype in self.accepted):
            o = self.convert(o, None, batched=True)
        out = np.array(o, self.dtype) if copy else np.asarray(o, self.dtype)
        self.check_values(out)
        return out


class ObservationChecker:
    """Checks the observations of ``observation_spec`` from ``batch_size`` environments and batches them.

    ``checker.batch(observations)`` takes one observation per environment (what single
    Gymnasium environments return) and ``checker.batched(observation)`` a batched one
    (``[B, ...]`` per field, what vector environments return); both return the nest of
    batched arrays in the spec's dtypes, or raise :class:`EnvOutputError` naming the field
    (``observation``, ``observation.pixels``), the environment, the expected and the
    actual shape, dtype or value. ``first_index`` is the index its errors give the first
    environment (one environment of a larger batch, checked where it runs).
    """

    def __init__(self, observation_spec: Any, batch_size: int, first_index: int = 0):
        self.spec = observation_spec
        self._first = int(first_index)
        self.batch_size = int(batch_size)
        paths = nest.flatten_with_paths(observation_spec, prefix="observation")
        for path, leaf in paths:
            if not isinstance(leaf, specs.ArraySpec):
                raise TypeError(f"observation spec {path}: expected an ArraySpec, got {leaf!r}")
        self._paths = [p for p, _ in paths]
        self._leaves = [_Leaf(p, s, self.batch_size, first_index) for p, s in paths]
        self._single = self._leaves[0] if not nest.is_nested(observation_spec) else None
        self.batch: Callable[[list[Any]], Any] = (
            self._single.batch_of if self._single is not None else self._batch_nested
        )
        """One observation per environment -> the batched, checked observation."""

    def _batch_nested(self, observations: list[Any]) -> Any:
        columns: list[list[Any]] = [[] for _ in self._leaves]
        for i, o in enumerate(observations):
            for column, value in zip(columns, self._leaf_values(o, i), strict=True):
                column.append(value)
        return nest.pack_sequence_as(
            self.spec, [leaf.batch_of(c) for leaf, c in zip(self._leaves, columns, strict=True)]
        )

    def batched(self, observation: Any, copy: bool = True) -> Any:
        """A batched observation -> the checked observation in the spec's dtypes (copied unless ``copy=False``)."""
        if self._single is not None:
            return self._single.batched(observation, copy)
        values = self._leaf_values(observation, None)
        return nest.pack_sequence_as(
            self.spec, [leaf.batched(v, copy) for leaf, v in zip(self._leaves, values, strict=True)]
        )

    def _leaf_values(self, observation: Any, index: int | None) -> list[Any]:
        try:
            paths = nest.flatten_with_paths(observation, prefix="observation")
        except TypeError:
            paths = []
        if [p for p, _ in paths] != self._paths:
            raise EnvOutputError(
                f"observation of {_env(None if index is None else self._first + index)}: expected the fields "
                f"{self._paths} of the observation space, "
                f"got {[p for p, _ in paths] or _describe(observation)}; return observations with the "
                "structure of the observation_space"
            )
        return [v for _, v in paths]
