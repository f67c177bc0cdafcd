"""Nested structures: dicts, tuples, lists and namedtuples of leaves.

A *nest* is a leaf (anything that is not a dict, list, tuple or namedtuple) or a
container of nests. Dicts are traversed in sorted-key order so that flattening is
deterministic. ``None`` and the empty tuple are empty nests with no leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "flatten",
    "flatten_with_paths",
    "is_nested",
    "map_structure",
    "map_structure_with_path",
    "pack_sequence_as",
]


def _is_namedtuple(x: object) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def is_nested(x: object) -> bool:
    """True for dicts, lists, tuples and namedtuples."""
    return isinstance(x, (Mapping, list, tuple))


def _children(x: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(x, Mapping):
        for k in sorted(x):
            yield str(k), x[k]
    elif _is_namedtuple(x):
        yield from zip(x._fields, x, strict=True)
    else:
        for i, v in enumerate(x):
            yield str(i), v


def flatten(x: Any) -> list[Any]:
    """Leaves of ``x`` in a deterministic order."""
    if x is None:
        return []
    if not is_nested(x):
        return [x]
    out: list[Any] = []
    for _, v in _children(x):
        out.extend(flatten(v))
    return out


def flatten_with_paths(x: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(path, leaf)`` pairs; paths are dotted, e.g. ``"observation.pixels"``."""
    if x is None:
        return []
    if not is_nested(x):
        return [(prefix, x)]
    out: list[tuple[str, Any]] = []
    for k, v in _children(x):
        out.extend(flatten_with_paths(v, f"{prefix}.{k}" if prefix else k))
    return out


def _rebuild(template: Any, children: list[Any]) -> Any:
    if isinstance(template, Mapping):
        keys = sorted(template)
        return type(template)(zip(keys, children, strict=True))  # type: ignore[call-arg]
    if _is_namedtuple(template):
        return type(template)(*children)
    return type(template)(children)


def map_structure(fn: Callable[..., Any], *nests: Any) -> Any:
    """Applies ``fn`` to corresponding leaves of nests of the same structure."""
    return map_structure_with_path(lambda _p, *xs: fn(*xs), *nests)


def map_structure_with_path(fn: Callable[..., Any], *nests: Any, prefix: str = "") -> Any:
    """Like :func:`map_structure`; ``fn`` gets the dotted path first."""
    first = nests[0]
    if first is None:
        if any(other is not None for other in nests[1:]):
            raise ValueError(f"structure mismatch at {prefix or '<root>'!r}: expected None, got a value")
        return None
    if not is_nested(first):
        return fn(prefix, *nests)
    for other in nests[1:]:
        _assert_same_container(first, other, prefix)
    names = [k for k, _ in _children(first)]
    columns = [[v for _, v in _children(n)] for n in nests]
    children = [
        map_structure_with_path(
            fn, *(col[i] for col in columns), prefix=f"{prefix}.{name}" if prefix else name
        )
        for i, name in enumerate(names)
    ]
    return _rebuild(first, children)


def _assert_same_container(a: Any, b: Any, path: str) -> None:
    where = path or "<root>"
    if not is_nested(b):
        raise ValueError(f"structure mismatch at {where!r}: expected a {type(a).__name__}, got a leaf")
    if isinstance(a, Mapping):
        if not isinstance(b, Mapping) or sorted(a) != sorted(b):
            got = sorted(b) if isinstance(b, Mapping) else type(b).__name__
            raise ValueError(f"structure mismatch at {where!r}: expected keys {sorted(a)}, got {got}")
    elif isinstance(b, Mapping):
        raise ValueError(
            f"structure mismatch at {where!r}: expected a {type(a).__name__}, got keys {sorted(b)}"
        )
    elif _is_namedtuple(a) and _is_namedtuple(b) and a._fields != b._fields:
        raise ValueError(f"structure mismatch at {where!r}: expected fields {a._fields}, got {b._fields}")
    elif len(a) != len(b):
        raise ValueError(f"structure mismatch at {where!r}: expected {len(a)} elements, got {len(b)}")


def pack_sequence_as(structure: Any, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten`: puts ``leaves`` into the shape of ``structure``."""
    needed = len(flatten(structure))
    if len(leaves) < needed:
        raise ValueError(f"pack_sequence_as: the structure holds {needed} leaves, got {len(leaves)}")
    it = iter(leaves)
    result = map_structure(lambda _: next(it), structure)
    rest = list(it)
    if rest:
        raise ValueError(f"pack_sequence_as: {len(rest)} leaves left over")
    return result
