"""Typed dataclass configs: field docs, values parsed by type, overrides, JSON round trips.

A config is a (possibly nested) dataclass whose fields carry type annotations and a
docstring right under each field::

    @dataclasses.dataclass
    class LoopConfig:
        batch_size: int = 64
        \"\"\"Transitions per gradient step.\"\"\"

Every leaf field has a dotted *key* (``"agent.learning_rate"``). :func:`apply_overrides`
sets leaves from strings, parsed by the field's type (bool, int, float, str, None,
``X | None``, tuples, ``Literal``); a key may be shortened to its last name when that
name is unique (``"learning_rate"``). An unknown key raises :class:`ConfigError` naming
it and the closest keys. :func:`to_dict` / :func:`from_dict` round-trip through JSON.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import enum
import functools
import inspect
import itertools
import pathlib
import textwrap
import types
import typing
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ConfigError",
    "FieldInfo",
    "apply_overrides",
    "field_docs",
    "fields_of",
    "from_dict",
    "parse_value",
    "resolve_key",
    "to_dict",
]


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the key, the expected and the given value."""


class FieldInfo(NamedTuple):
    """One leaf field of a nested config."""

    key: str
    type: Any
    value: Any
    doc: str


# ---------------------------------------------------------------------- introspection
@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field name: docstring}`` from the string literals right under the fields (and in bases)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        node = ast.parse(source).body[0]
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for stmt, nxt in itertools.pairwise(body):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def fields_of(config: Any, prefix: str = "") -> list[FieldInfo]:
    """The leaf fields of a (nested) config instance, in declaration order."""
    out: list[FieldInfo] = []
    cls: type = type(config)
    hints, docs = _hints(cls), field_docs(cls)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.extend(fields_of(value, key + "."))
        else:
            out.append(FieldInfo(key, hints[f.name], value, docs.get(f.name, "")))
    return out


def type_name(tp: Any) -> str:
    """A short readable name of a type annotation (``int | None``, ``tuple[int, ...]``)."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    if typing.get_origin(tp) is typing.Literal:
        return "{" + ",".join(str(a) for a in typing.get_args(tp)) + "}"
    return str(tp).replace("typing.", "").replace("NoneType", "None")


# ---------------------------------------------------------------------- parsing values
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~"}


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def _spells_none(value: Any, tp: Any) -> bool:
    """``value`` is a string the command line reads as None (``none``, ``null``, ``~``), ``tp`` takes
    None, and no literal of ``tp`` is that string."""
    if not (isinstance(value, str) and value.strip().lower() in _NONE and _accepts_none(tp)):
        return False
    arms = _union_args(tp) or (tp,)
    return not any(typing.get_origin(a) is typing.Literal and value in typing.get_args(a) for a in arms)


def parse_value(text: str, tp: Any, key: str = "value") -> Any:
    """Parses a command-line string into a value of type ``tp``; ConfigError if it does not fit."""
    stripped = text.strip()
    if stripped.lower() in _NONE and _accepts_none(tp):
        return None
    args = _union_args(tp)
    if args is not None:
        for arm in args:
            if arm is type(None):
                continue
            try:
                return parse_value(text, arm, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: cannot parse {text!r} as {type_name(tp)}")
    if tp is str:
        return text
    if tp is bool or tp is int or tp is float:
        return coerce(_scalar(stripped, tp, key), tp, key)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return coerce(stripped, tp, key)
    if typing.get_origin(tp) is typing.Literal:
        options = typing.get_args(tp)
        raw: Any = stripped if all(isinstance(o, str) for o in options) else _literal(stripped, key, tp)
        return coerce(raw, tp, key)
    if typing.get_origin(tp) in (tuple, list) or tp in (tuple, list):
        if stripped and stripped[0] not in "([":
            if typing.get_args(tp)[:1] == (str,):  # names need no quotes: "my_envs,my_agents"
                return coerce([part.strip() for part in stripped.rstrip(",").split(",")], tp, key)
            stripped = f"({stripped.rstrip(',')},)"  # "256,256", "256" or "256," -> a tuple
        value = _literal(stripped, key, tp, text)
        item = typing.get_args(tp)[:1]
        nested = bool(item) and typing.get_origin(item[0]) in (tuple, list)
        if nested and isinstance(value, (tuple, list)) and value and not isinstance(value[0], (tuple, list)):
            value = (value,)  # one layer of a tuple of layers: "(32,8,4)" is ((32, 8, 4),)
        return coerce(value, tp, key)
    return coerce(_literal(stripped, key, tp), tp, key)


def _scalar(text: str, tp: Any, key: str) -> Any:
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"{key}: expected a bool (true/false), got {text!r}")
    try:
        return tp(float(text)) if tp is int and _is_integral_float(text) else tp(text)
    except ValueError:
        raise ConfigError(f"{key}: expected {tp.__name__}, got {text!r}") from None


def _is_integral_float(text: str) -> bool:
    # "1e6" or "50_000.0" name integers; "2.5" does not.
    try:
        value = float(text)
    except ValueError:
        return False
    return value.is_integer() and not text.lstrip("+-").isdigit()


def _literal(text: str, key: str, tp: Any, typed: str | None = None) -> Any:
    """``text`` as a Python literal; a ConfigError quoting what the user ``typed`` (default ``text``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ConfigError(
            f"{key}: expected {type_name(tp)}, got {typed if typed is not None else text!r}"
        ) from None


def _accepts_none(tp: Any) -> bool:
    args = _union_args(tp)
    return tp is type(None) or tp is Any or (args is not None and type(None) in args)


def coerce(value: Any, tp: Any, key: str = "value") -> Any:
    """Checks ``value`` against ``tp`` and converts lists to tuples, ints to floats, names to enums."""
    if tp is Any:
        return value
    if value is None:
        if _accepts_none(tp):
            return None
        raise ConfigError(f"{key}: expected {type_name(tp)}, got None")
    if _spells_none(value, tp):  # a preset file's `none`, as on the command line (YAML reads a string)
        return None
    args = _union_args(tp)
    if args is not None:
        for arm in args:
            if arm is type(None):
                continue
            try:
                return coerce(value, arm, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {type_name(tp)}, got {value!r}")
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{key}: expected one of {list(typing.get_args(tp))}, got {value!r}")
    if origin in (tuple, list) or tp in (tuple, list):
        return _coerce_sequence(value, tp, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected {type_name(tp)}, got {value!r}")
        key_type, value_type = typing.get_args(tp) or (Any, Any)

        def key_of(k: Any) -> Any:  # JSON keys are text: "0" of a dict[int, ...] is 0
            if isinstance(k, str) and key_type not in (str, Any):
                return parse_value(k, key_type, f"{key}[{k!r}]")
            return coerce(k, key_type, f"{key}[{k!r}]")

        return {key_of(k): coerce(v, value_type, f"{key}[{k!r}]") for k, v in value.items()}
    if _is_config(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return from_dict(tp, value, key + ".")
        raise ConfigError(f"{key}: expected a {tp.__name__} mapping, got {value!r}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _coerce_enum(value, tp, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    elif isinstance(tp, type) and issubclass(tp, pathlib.PurePath) and isinstance(value, str):
        return tp(value)  # a path field, as config.json and the command line spell it
    raise ConfigError(f"{key}: expected {type_name(tp)}, got {value!r} ({type(value).__name__})")


def _coerce_sequence(value: Any, tp: Any, key: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}: expected {type_name(tp)}, got {value!r}")
    container = list if (typing.get_origin(tp) or tp) is list else tuple
    args = typing.get_args(tp)
    if not args:
        return container(value)
    if container is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} items ({type_name(tp)}), got {value!r}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    return container(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))


def _coerce_enum(value: Any, tp: type[enum.Enum], key: str) -> Any:
    if isinstance(value, tp):
        return value
    for member in tp:
        if value == member.value or (isinstance(value, str) and value.lower() == member.name.lower()):
            return member
    names = [m.name.lower() for m in tp]
    raise ConfigError(f"{key}: expected one of {names}, got {value!r}")


# ---------------------------------------------------------------------- keys and overrides
def resolve_key(config: Any, key: str) -> str:
    """The full dotted key for ``key`` (full, or a unique last name); ConfigError naming close keys."""
    norm = key.strip().lstrip("-").replace("-", "_")
    full = [f.key for f in fields_of(config)]
    if norm in full:
        return norm
    by_leaf = [k for k in full if k.rsplit(".", 1)[-1] == norm or k.endswith("." + norm)]
    if len(by_leaf) == 1:
        return by_leaf[0]
    if len(by_leaf) > 1:
        raise ConfigError(f"config key {key!r} is ambiguous: use one of {', '.join(by_leaf)}")
    close = difflib.get_close_matches(norm, full, n=4, cutoff=0.6)
    leaves = {k.rsplit(".", 1)[-1]: k for k in full}  # a shorthand's close matches, as full keys
    close += [leaves[c] for c in difflib.get_close_matches(norm, list(leaves), n=3, cutoff=0.6)]
    close = list(dict.fromkeys(close))
    hint = f"; did you mean {', '.join(close)}?" if close else "; `--help` lists the keys"
    raise ConfigError(f"unknown config key {key!r}{hint}")


class _Leaf(NamedTuple):
    value: Any


def apply_overrides(config: Any, overrides: Iterable[tuple[str, str | Any]]) -> Any:
    """A copy of ``config`` with ``(key, value)`` overrides applied; string values parsed by type.

    Every section is rebuilt once with all of its changes (the last of a repeated key wins), so
    a section's checks across its fields see the final values whatever the order of the keys."""
    info = {f.key: f for f in fields_of(config)}
    tree: dict[str, Any] = {}
    for key, raw in overrides:
        full = resolve_key(config, key)
        tp = info[full].type
        value = parse_value(raw, tp, full) if isinstance(raw, str) else coerce(raw, tp, full)
        *sections, name = full.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = _Leaf(value)
    return _replace_all(config, tree)


def _replace_all(config: Any, tree: dict[str, Any]) -> Any:
    changes = {
        name: change.value if isinstance(change, _Leaf) else _replace_all(getattr(config, name), change)
        for name, change in tree.items()
    }
    return dataclasses.replace(config, **changes) if changes else config


# ---------------------------------------------------------------------- dict / JSON
def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists, enums their values)."""

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, enum.Enum):
            return x.value
        if isinstance(x, dict):
            return {plain(k): plain(v) for k, v in x.items()}
        if isinstance(x, np.generic):  # a NumPy scalar (np.int64(0) from np.arange): JSON's number
            return x.item()
        if isinstance(x, pathlib.PurePath):
            return str(x)
        return x

    return typing.cast(dict[str, Any], plain(config))


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Rebuilds a config of type ``cls``; unknown or ill-typed keys raise ConfigError."""
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or cls.__name__
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__}'s keys, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=3)
        hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r} for {cls.__name__}{hint}")
    kwargs = {k: coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)
