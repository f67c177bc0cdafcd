"""Gymnasium spaces -> drivetrain specs.

:func:`spec_from_space` turns the space of *one* environment into a nest of specs
(no batch axis):

=====================================  ===============================================
Gymnasium space                        drivetrain spec
=====================================  ===============================================
``Box(low, high, shape, dtype)``       ``BoundedArraySpec(shape, dtype, low, high)``
``Discrete(n, start)``                 ``BoundedArraySpec((), int64, start, start+n-1)``
``MultiDiscrete(nvec, start)``         ``BoundedArraySpec(nvec.shape, dtype, start, start+nvec-1)``
``MultiBinary(n)``                     ``BoundedArraySpec(shape, int8, 0, 1)``
``Dict({k: space})``                   ``{k: spec}``
``Tuple((space, ...))``                ``(spec, ...)``
=====================================  ===============================================

All bounds are **inclusive**, as Gymnasium's are. Leaves are named after their path
(``"observation.pixels"``). Other spaces (Text, Graph, Sequence, OneOf) have no fixed
shape and raise :class:`TypeError`.

Gymnasium is imported lazily, so ``drivetrain.core`` stays free of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivetrain.core import specs

__all__ = ["spec_from_space"]


def _child(name: str | None, key: str) -> str:
    return f"{name}.{key}" if name else key


def spec_from_space(space: Any, name: str | None = None) -> Any:
    """The nest of specs that describes one value of the Gymnasium ``space``.

    Args:
      space: a ``gymnasium.spaces.Space`` of one environment (not batched).
      name: name of the root spec (``"observation"``, ``"action"``); nested leaves get
        dotted names.

    Raises:
      TypeError: for spaces without a fixed shape (Text, Graph, Sequence, OneOf, ...).
    """
    from gymnasium import spaces as gs

    if isinstance(space, gs.Box):
        return specs.BoundedArraySpec(space.shape, space.dtype, space.low, space.high, name)
    if isinstance(space, gs.Discrete):
        start, n = int(space.start), int(space.n)
        return specs.BoundedArraySpec((), np.int64, start, start + n - 1, name)
    if isinstance(space, gs.MultiDiscrete):
        nvec, low = np.asarray(space.nvec), np.asarray(space.start)
        return specs.BoundedArraySpec(nvec.shape, space.dtype, low, low + nvec - 1, name)
    if isinstance(space, gs.MultiBinary):
        return specs.BoundedArraySpec(space.shape, space.dtype, 0, 1, name)
    if isinstance(space, gs.Dict):
        return {str(k): spec_from_space(s, _child(name, str(k))) for k, s in space.spaces.items()}
    if isinstance(space, gs.Tuple):
        return tuple(spec_from_space(s, _child(name, str(i))) for i, s in enumerate(space.spaces))
    raise TypeError(
        f"{name or 'space'}: cannot convert {type(space).__name__} ({space}) to a spec; drivetrain "
        "supports Box, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple spaces (wrap the "
        "environment to flatten or pad other spaces)"
    )
