"""Checking batched actions against an action spec, cheaply.

``env.step(action)`` is the hot path of every driver, so :class:`ActionChecker` has a
fast path for the common case of one scalar integer action per environment (CartPole,
Atari): an ``ndarray`` of the spec's dtype and shape ``[B]`` costs one ``tolist`` and a
``min``/``max`` over ``B`` Python ints, and is split into NumPy scalars, as Gymnasium's
``SyncVectorEnv`` passes them (``Discrete.contains``, which environments such as CartPole
call on every step, checks a NumPy integer faster than a Python int). Small float vectors
with finite bounds (Pendulum, MuJoCo) have one too: their values are compared with the
bounds as Python floats. Few NumPy calls matter more than they seem: after a training step
has evicted the caches, each one costs several microseconds. Anything else goes through
:func:`drivetrain.core.specs.validate`, whose errors name the field and the expected
vs actual shape, dtype or range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivetrain.core import nest, specs

__all__ = ["ActionChecker"]

_SMALL = 64  # float actions of up to this many values (over the batch) are checked in Python


class ActionChecker:
    """Validates batched actions of ``action_spec`` for ``batch_size`` environments.

    ``checker(action)`` returns the action as a nest of arrays ``[B, ...]`` or raises
    :class:`~drivetrain.core.specs.SpecError`; ``checker.split(action)`` turns a checked
    batched action into a list of ``B`` per-environment actions (NumPy scalars or
    arrays, inside dicts/tuples for nested specs) as Gymnasium environments take them;
    ``checker.check_and_split(action)`` does both.
    """

    def __init__(self, action_spec: Any, batch_size: int):
        self.spec = action_spec
        self.batch_size = int(batch_size)
        leaves = nest.flatten(action_spec)
        for path, leaf in nest.flatten_with_paths(action_spec):
            if not isinstance(leaf, specs.ArraySpec):
                raise TypeError(f"action spec {path or '<root>'}: expected an ArraySpec, got {leaf!r}")
        self._single = len(leaves) == 1 and not nest.is_nested(action_spec)
        self._fast = (
            self._single
            and isinstance(action_spec, specs.BoundedArraySpec)
            and action_spec.shape == ()
            and np.issubdtype(action_spec.dtype, np.integer)
        )
        if self._fast:
            self._dtype = action_spec.dtype
            self._shape = (self.batch_size,)
            self._lo = int(action_spec.minimum)
            self._hi = int(action_spec.maximum)
        # A small float vector per environment with finite bounds (Pendulum, MuJoCo): its values
        # are compared to the bounds as Python floats (a NaN fails the comparison, so it takes
        # the slow path, which names it).
        self._fast_float = (
            self._single
            and isinstance(action_spec, specs.BoundedArraySpec)
            and action_spec.dtype.kind == "f"
            and len(action_spec.shape) == 1
            and self.batch_size * action_spec.shape[0] <= _SMALL
            and bool(np.all(np.isfinite(action_spec.minimum)) and np.all(np.isfinite(action_spec.maximum)))
        )
        if self._fast_float:
            self._dtype = action_spec.dtype
            self._shape = (self.batch_size, *action_spec.shape)
            self._lo_values = action_spec.minimum.tolist() * self.batch_size
            self._hi_values = action_spec.maximum.tolist() * self.batch_size

    def __call__(self, action: Any) -> Any:
        return action if self._fast_ok(action) else self._check_slowly(action)

    def check_and_split(self, action: Any) -> list[Any]:
        """``split(checker(action))``."""
        if (  # _fast_ok, inlined: this runs on every step
            self._fast
            and type(action) is np.ndarray
            and action.dtype == self._dtype
            and action.shape == self._shape
        ):
            values: list[int] = action.tolist()
            if min(values) >= self._lo and max(values) <= self._hi:
                return [action[0]] if self.batch_size == 1 else list(action)  # indexing beats iterating
        elif (
            self._fast_float
            and type(action) is np.ndarray
            and action.dtype == self._dtype
            and action.shape == self._shape
            and all(
                lo <= v <= hi
                for v, lo, hi in zip(action.ravel().tolist(), self._lo_values, self._hi_values, strict=True)
            )
        ):
            return list(action)
        return self.split(self._check_slowly(action))

    def _fast_ok(self, action: Any) -> bool:
        """True if ``action`` is a valid ``[B]`` array of a scalar integer spec."""
        if (
            self._fast
            and type(action) is np.ndarray
            and action.dtype == self._dtype
            and action.shape == self._shape
        ):
            values: list[int] = action.tolist()
            return min(values) >= self._lo and max(values) <= self._hi
        return False

    def _check_slowly(self, action: Any) -> Any:
        try:
            action = nest.map_structure_with_path(lambda _p, _s, a: np.asarray(a), self.spec, action)
        except (TypeError, ValueError) as e:  # structure mismatch, ragged lists and the like
            raise specs.SpecError(f"action: {e}") from None
        b = self.batch_size
        for path, leaf in nest.flatten_with_paths(action, prefix="action"):
            if np.ndim(leaf) == 0 or np.shape(leaf)[0] != b:
                raise specs.SpecError(
                    f"{path}: expected a batch of {b} actions (leading axis of size {b}), "
                    f"got shape {np.shape(leaf)}; actions are batched even when num_envs == 1"
                )
        try:
            specs.validate(self.spec, action, outer_ndim=1, name="action")
        except specs.SpecError as e:
            hint = ""
            if "dtype" in str(e):
                hint = " (cast with .astype(spec.dtype), e.g. np.int64 for Discrete actions)"
            raise specs.SpecError(f"{e}{hint}") from None
        return action

    def split(self, action: Any) -> list[Any]:
        """The per-environment actions of a checked batched action."""
        if self._single:
            return list(action)
        return [nest.map_structure(lambda a, i=i: a[i], action) for i in range(self.batch_size)]
