"""The flat leaves of a trajectory spec, worked out once so that adding stays cheap.

A replay buffer stores one array per leaf of its data spec (a
:class:`~drivetrain.core.types.Trajectory` of specs). :class:`TrajectoryLayout`
flattens the spec once and then flattens each added trajectory field by field: a
field whose spec is a single :class:`~drivetrain.core.specs.ArraySpec` is taken as is,
an empty field (``policy_info == {}`` for a stateless policy) is skipped, and only
nested fields go through :func:`drivetrain.core.nest.flatten`. Leaves come out in
the order of ``nest.flatten(data_spec)``.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from drivetrain.core import nest, specs, types

__all__ = ["TrajectoryLayout"]

_LEAF, _NEST, _EMPTY = 0, 1, 2


class TrajectoryLayout:
    """Flattens trajectories of ``data_spec`` into a list of leaves and packs them back."""

    def __init__(self, data_spec: types.Trajectory):
        if not isinstance(data_spec, types.Trajectory):
            raise TypeError(
                "replay data_spec must be a Trajectory of specs (e.g. policy.trajectory_spec), "
                f"got {type(data_spec).__name__}"
            )
        self.data_spec = data_spec
        flat = nest.flatten_with_paths(data_spec)
        for path, spec in flat:
            if not isinstance(spec, specs.ArraySpec):
                raise TypeError(f"data_spec.{path}: leaves must be ArraySpecs, got {type(spec).__name__}")
        self.paths: list[str] = [p for p, _ in flat]
        self.specs: list[specs.ArraySpec] = [s for _, s in flat]
        st = data_spec.step_type
        if not isinstance(st, specs.ArraySpec) or st.shape != ():
            raise TypeError(f"data_spec.step_type must be a scalar ArraySpec, got {st!r}")
        self.step_type_leaf = 0  # step_type is the first field and a leaf
        self._plan: list[tuple[int, int, int]] = []  # (field index, kind, number of leaves)
        for i, field_spec in enumerate(data_spec):
            n = len(nest.flatten(field_spec))
            if isinstance(field_spec, specs.ArraySpec):
                self._plan.append((i, _LEAF, 1))
            elif n == 0:
                self._plan.append((i, _EMPTY, 0))
            else:
                self._plan.append((i, _NEST, n))
        self._field_specs = list(data_spec)
        self._empty_fields = [i for i, kind, _ in self._plan if kind == _EMPTY]
        leaf_fields = [i for i, kind, _ in self._plan if kind == _LEAF]
        simple = all(kind != _NEST for _, kind, _ in self._plan)
        self._leaf_getter: Any = (
            operator.itemgetter(*leaf_fields) if simple and len(leaf_fields) > 1 else None
        )

    def __len__(self) -> int:
        return len(self.specs)

    def flatten(self, trajectory: types.Trajectory) -> list[Any]:
        """The leaves of ``trajectory`` in spec order (no checks beyond the structure)."""
        if self._leaf_getter is not None:  # no nested fields: one C-level getter
            for i in self._empty_fields:
                value = trajectory[i]
                if value.__class__ is not dict or value:
                    self._check_empty(i, value)
            return list(self._leaf_getter(trajectory))
        out: list[Any] = []
        for i, kind, n in self._plan:
            if kind == _LEAF:
                out.append(trajectory[i])
            elif kind == _NEST:
                leaves = nest.flatten(trajectory[i])
                if len(leaves) != n:
                    raise specs.SpecError(
                        f"trajectory.{types.Trajectory._fields[i]}: expected {n} leaves as in the "
                        f"replay's data_spec, got {len(leaves)}"
                    )
                out.extend(leaves)
            else:
                self._check_empty(i, trajectory[i])
        return out

    @staticmethod
    def _check_empty(i: int, value: Any) -> None:
        empty = value is None or (isinstance(value, (dict, tuple, list)) and not value)
        if not empty and nest.flatten(value):
            raise specs.SpecError(
                f"trajectory.{types.Trajectory._fields[i]}: the replay's data_spec has no "
                f"leaves here, got {_describe(value)}"
            )

    def pack(self, leaves: list[np.ndarray]) -> types.Trajectory:
        """The inverse of :meth:`flatten`: a Trajectory with the structure of the data spec."""
        fields: list[Any] = []
        k = 0
        for (i, kind, n), field_spec in zip(self._plan, self._field_specs, strict=True):
            del i
            if kind == _LEAF:
                fields.append(leaves[k])
            elif kind == _EMPTY:
                fields.append(None if field_spec is None else type(field_spec)())
            else:
                fields.append(nest.pack_sequence_as(field_spec, leaves[k : k + n]))
            k += n
        return types.Trajectory(*fields)

    def check(self, trajectory: types.Trajectory, num_envs: int) -> None:
        """Full check of a batched trajectory against the spec (structure, shapes, dtypes, bounds)."""
        specs.validate(self.data_spec, trajectory, outer_ndim=1, name="trajectory")
        batch = np.shape(trajectory.step_type)[0]
        if batch != num_envs:
            raise specs.SpecError(
                f"trajectory.step_type: the replay was built for num_envs={num_envs}, got a batch of {batch}"
            )


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return type(value).__name__
