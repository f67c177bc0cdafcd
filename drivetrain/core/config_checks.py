"""A typed dataclass config's field values, checked against their annotations.

A config calls :func:`check_fields` first thing in its ``__post_init__``, so that a
value of the wrong type is named before any range check compares it::

    >>> DQNConfig(learning_rate="0.001")
    ConfigTypeError: DQNConfig.learning_rate: expected float, got '0.001' (str)

Annotations understood (anything else is not checked):

- ``bool``, ``int``, ``float``, ``str``; an ``int`` is accepted where a ``float`` is
  declared, a ``bool`` is never taken for a number, and NumPy scalars count as the
  Python type they stand for (``np.float32`` as ``float``, ``np.int64`` as ``int``);
- ``Literal[...]``: one of the values, of the same type;
- ``X | None`` and ``Optional[X]`` (and other unions): any arm;
- ``tuple[X, ...]`` and ``tuple[X, Y]`` (a list is accepted too), ``list[X]``;
- classes (nested dataclass configs, enums): an instance; ``Any``: anything.

:class:`ConfigTypeError` is both a :class:`TypeError` and a :class:`ValueError`, so
code that reports a config's :class:`ValueError` (its range checks) reports it too.
Standard library and NumPy only, like the rest of :mod:`drivetrain.core`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any

import numpy as np

__all__ = ["ConfigTypeError", "check_fields", "require", "type_name"]


class ConfigTypeError(TypeError, ValueError):
    """A config field holds a value of the wrong type; the message names the field, expected and got."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    return typing.get_args(tp) if origin is typing.Union or origin is types.UnionType else None


def type_name(tp: Any) -> str:
    """A readable name of an annotation: ``float``, ``int | None``, ``tuple[int, ...]``, ``'huber' or 'mse'``."""
    if tp is type(None):
        return "None"
    args = _union_args(tp)
    if args is not None:
        return " | ".join(type_name(a) for a in args)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        *rest, last = (repr(a) for a in typing.get_args(tp))
        return f"{', '.join(rest)} or {last}" if rest else last
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{inner}]"
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _fits(value: Any, tp: Any) -> bool:
    """True if ``value`` has the annotated type ``tp`` (unknown annotations always fit)."""
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    args = _union_args(tp)
    if args is not None:
        return any(_fits(value, a) for a in args)
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in typing.get_args(tp))
    if origin in (tuple, list) or tp in (tuple, list):
        return _fits_sequence(value, tp)
    if tp is bool:
        return isinstance(value, (bool, np.bool_))
    if tp is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _fits_sequence(value: Any, tp: Any) -> bool:
    if not isinstance(value, (tuple, list)):
        return False
    args = typing.get_args(tp)
    if not args:
        return True
    if typing.get_origin(tp) is list or (len(args) == 2 and args[1] is Ellipsis):
        return all(_fits(v, args[0]) for v in value)
    return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args, strict=True))


def check_fields(config: Any) -> None:
    """Raises :class:`ConfigTypeError` for the first field of ``config`` whose value breaks its annotation.

    The message reads ``"{Class}.{field}: expected {type}, got {value!r} ({type of value})"``; for a
    ``Literal`` and a value of the right type but not one of the options, ``"expected 'a' or 'b', got 'c'"``.
    """
    cls: type = type(config)
    hints = _hints(cls)
    for f in dataclasses.fields(config):
        tp = hints.get(f.name, Any)
        value = getattr(config, f.name)
        if not _fits(value, tp):
            literal = typing.get_origin(tp) is typing.Literal
            same_type = literal and any(type(value) is type(a) for a in typing.get_args(tp))
            of_type = "" if same_type else f" ({type(value).__name__})"
            raise ConfigTypeError(
                f"{cls.__name__}.{f.name}: expected {type_name(tp)}, got {value!r}{of_type}"
            )
        if isinstance(value, (float, np.floating)) and not math.isfinite(
            value
        ):  # a range check would let inf pass
            raise ConfigTypeError(f"{cls.__name__}.{f.name}: expected a finite number, got {value!r}")


def require(config: Any, ok: bool, field: str, expected: str) -> None:
    """A config's range check: ``ValueError("Cls.field: expected ..., got value")`` unless ``ok``."""
    if not ok:
        raise ValueError(
            f"{type(config).__name__}.{field}: expected {expected}, got {getattr(config, field)!r}"
        )
