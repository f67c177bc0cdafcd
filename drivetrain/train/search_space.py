"""The search space of ``drivetrain tune``: ``--param KEY=DIST`` and a default space per agent kind.

``KEY`` is a config key as ``--key value`` takes it (``agent.learning_rate``, or a unique last
name: ``learning_rate``); ``DIST`` is one of

- ``loguniform(a,b)``: a float drawn log-uniformly from [a, b] (0 < a < b);
- ``uniform(a,b)``: a float drawn uniformly from [a, b] (a < b);
- ``int(a,b)``: an integer from a to b, both included (a <= b);
- ``choice(x,y,...)``: one of the values, each written as ``--key value`` would write it
  (``choice(adam,rmsprop)``, ``choice((64,64),(256,256))``).

:func:`parse_param` checks a parameter against the config before any trial runs: the key
exists, the bounds and every choice are values of the field's type that the config accepts
(its own range checks included); :class:`ParamError` names ``--param`` and what is wrong.

Without ``--param``, :func:`default_space` searches the learning rate(s) of the agent and one
or two fields that matter most for its kind (:data:`DEFAULT_SPACES`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from drivetrain.train.fields import (
    ConfigError,
    apply_overrides,
    coerce,
    fields_of,
    parse_value,
    resolve_key,
    type_name,
)

__all__ = ["DEFAULT_SPACES", "KINDS", "Param", "ParamError", "default_space", "parse_param", "parse_space"]

Kind = Literal["loguniform", "uniform", "int", "choice"]
KINDS: tuple[str, ...] = ("loguniform", "uniform", "int", "choice")

DEFAULT_SPACES: dict[str, tuple[str, ...]] = {
    "dqn": (
        "agent.learning_rate=loguniform(1e-5,1e-2)",
        "agent.gamma=uniform(0.95,0.999)",
        "agent.epsilon_end=uniform(0.01,0.1)",
    ),
    "r2d2": ("agent.learning_rate=loguniform(1e-5,1e-2)", "agent.gamma=uniform(0.95,0.999)"),
    "ppo": (
        "agent.learning_rate=loguniform(1e-5,1e-2)",
        "agent.ent_coef=loguniform(1e-5,1e-1)",
        "agent.clip_ratio=uniform(0.1,0.3)",
    ),
    "reinforce": ("agent.learning_rate=loguniform(1e-5,1e-2)", "agent.gamma=uniform(0.95,0.999)"),
    "sac": (
        "agent.actor_learning_rate=loguniform(1e-5,1e-2)",
        "agent.critic_learning_rate=loguniform(1e-5,1e-2)",
        "agent.tau=loguniform(1e-3,5e-2)",
    ),
    "td3": (
        "agent.actor_learning_rate=loguniform(1e-5,1e-2)",
        "agent.critic_learning_rate=loguniform(1e-5,1e-2)",
        "agent.exploration_noise=uniform(0.05,0.3)",
    ),
}
"""``--param`` texts searched when none is given, by the agent builder's ``kind``."""

_DIST = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$", re.S)
_FORMS = "loguniform(a,b), uniform(a,b), int(a,b) or choice(x,y,...)"


class ParamError(ConfigError):
    """A ``--param`` is malformed or does not fit the config; the message quotes it."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched config key: ``key`` (full, dotted), its distribution ``kind`` and ``args``
    (the bounds, or the choices as text)."""

    key: str
    kind: Kind
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.key}={self.kind}({','.join(str(a) for a in self.args)})"

    def suggest(self, trial: Any) -> tuple[str, Any]:
        """``(key, value)`` drawn by an Optuna trial, for :func:`~drivetrain.train.fields.apply_overrides`."""
        if self.kind == "choice":
            return self.key, trial.suggest_categorical(self.key, list(self.args))
        if self.kind == "int":
            return self.key, trial.suggest_int(self.key, *self.args)
        return self.key, trial.suggest_float(self.key, *self.args, log=self.kind == "loguniform")


def parse_param(text: str, config: Any) -> Param:
    """Parses ``KEY=DIST`` against ``config``; ParamError naming ``--param`` and the problem."""
    where = f"--param {text!r}"
    key, eq, dist = text.partition("=")
    if not eq or not key.strip():
        raise ParamError(f"{where}: expected KEY=DIST, e.g. agent.learning_rate=loguniform(1e-5,1e-2)")
    try:
        full = resolve_key(config, key)
    except ConfigError as e:
        raise ParamError(f"{where}: {e}") from None
    match = _DIST.match(dist)
    if match is None or match.group(1) not in KINDS:
        raise ParamError(f"{where}: the distribution must be {_FORMS}, got {dist!r}")
    kind: Kind = match.group(1)  # type: ignore[assignment]
    items = _split(match.group(2))
    field_type = {f.key: f.type for f in fields_of(config)}[full]
    if kind in ("uniform", "loguniform"):
        try:
            coerce(0.5, field_type, full)
        except ConfigError:
            raise ParamError(
                f"{where}: {full} is {type_name(field_type)}, which a float distribution does not fit; "
                "use int(a,b) or choice(...)"
            ) from None
    if kind == "choice":
        if not items or any(not item for item in items):
            raise ParamError(f"{where}: choice(...) needs values separated by commas")
        for item in items:
            try:
                parse_value(item, field_type, full)
            except ConfigError as e:
                raise ParamError(f"{where}: {e}") from None
        param = Param(full, kind, tuple(items))
    else:
        param = Param(full, kind, _bounds(where, kind, items))
    for value in param.args:  # each bound or choice builds a config: its type and range checks
        try:
            apply_overrides(config, [(full, value)])
        except (ConfigError, ValueError) as e:
            raise ParamError(f"{where}: {e}") from None
    return param


def parse_space(texts: list[str], config: Any) -> list[Param]:
    """Parses every ``--param``; a key given twice is a ParamError."""
    space = [parse_param(text, config) for text in texts]
    keys = [p.key for p in space]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ParamError(f"--param: {', '.join(twice)} given more than once")
    return space


def default_space(config: Any, kind: str) -> list[Param]:
    """The default search space of an agent ``kind`` (:data:`DEFAULT_SPACES`) for ``config``."""
    if kind not in DEFAULT_SPACES:
        raise ParamError(f"no default search space for agent kind {kind!r}: give --param KEY=DIST")
    return parse_space(list(DEFAULT_SPACES[kind]), config)


def _bounds(where: str, kind: str, items: list[str]) -> tuple[Any, ...]:
    if len(items) != 2:
        raise ParamError(f"{where}: {kind}(a,b) takes two bounds, got {len(items)}")
    number = int if kind == "int" else float
    try:
        low, high = (number(float(x)) if number is int and _integral(x) else number(x) for x in items)
    except ValueError:
        raise ParamError(f"{where}: {kind}(a,b) takes two {number.__name__}s, got {items}") from None
    if (kind == "int" and low > high) or (kind != "int" and low >= high):
        raise ParamError(f"{where}: the lower bound {low} must be below the upper bound {high}")
    if kind == "loguniform" and low <= 0:
        raise ParamError(f"{where}: loguniform(a,b) needs 0 < a, got {low}")
    return low, high


def _integral(text: str) -> bool:
    try:
        return float(text).is_integer()
    except ValueError:
        return False


def _split(text: str) -> list[str]:
    """Splits at the commas outside brackets: ``(64,64),(256,256)`` -> two items."""
    items, depth, current = [], 0, ""
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip() or items:
        items.append(current.strip())
    return items
