"""Which of drivetrain's pip extras a config needs: ``pip install "drivetrain[EXTRA,...]"``.

Derived from the config, not kept by hand: every run needs ``torch`` (agents, networks,
logs; it brings Gymnasium's classic-control environments); an Atari suite needs ``atari``;
a Gymnasium id needs the extra of the package its registered entry point lives in
(``gymnasium.envs.box2d`` -> ``box2d``, ``gymnasium.envs.mujoco`` -> ``mujoco``), and an id in
ALE's namespace (``ALE/Pong-v5``) ``atari``; the EnvPool backend needs ``envpool``, Ray
execution ``ray``, and ``loop.track`` its tracker's extra. ``drivetrain presets`` shows them.

The entry points are read from Gymnasium's own registrations (``gymnasium/envs/__init__.py``)
without importing Gymnasium, so that listing the presets stays instant.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from pathlib import Path
from typing import Any

__all__ = ["BASE_EXTRA", "env_extras", "required_extras"]

BASE_EXTRA = "torch"
"""What every training run needs."""

_ENTRY_POINT_EXTRAS = {"gymnasium.envs.box2d": "box2d", "gymnasium.envs.mujoco": "mujoco"}
_NAMESPACE_EXTRAS = {"ALE": "atari"}


@functools.cache
def _gymnasium_entry_points() -> dict[str, str]:
    """``{id: entry point}`` of the environments Gymnasium registers itself (literal ``register`` calls)."""
    spec = importlib.util.find_spec("gymnasium")
    if spec is None or not spec.submodule_search_locations:
        return {}
    source = Path(next(iter(spec.submodule_search_locations))) / "envs" / "__init__.py"
    try:
        tree = ast.parse(source.read_text())
    except (OSError, SyntaxError):
        return {}
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register":
            kw = {k.arg: k.value for k in node.keywords}
            env_id, entry = kw.get("id"), kw.get("entry_point")
            if isinstance(env_id, ast.Constant) and isinstance(entry, ast.Constant):
                found[str(env_id.value)] = str(entry.value)
    return found


def env_extras(env_id: str) -> tuple[str, ...]:
    """The extra a Gymnasium id needs beyond ``torch``; ``()`` for classic control and for ids
    that Gymnasium does not register itself (a third-party package registers those)."""
    namespace = env_id.split("/", 1)[0] if "/" in env_id else ""
    if namespace in _NAMESPACE_EXTRAS:
        return (_NAMESPACE_EXTRAS[namespace],)
    module = _gymnasium_entry_points().get(env_id, "").split(":", 1)[0]
    return tuple(
        extra
        for prefix, extra in _ENTRY_POINT_EXTRAS.items()
        if module == prefix or module.startswith(prefix + ".")
    )


def required_extras(config: Any) -> tuple[str, ...]:
    """The extras an :class:`~drivetrain.train.config.ExperimentConfig` needs, ``torch`` first."""
    env = config.env
    extras = [BASE_EXTRA, *(("atari",) if env.suite == "atari" else env_extras(env.name))]
    if env.backend == "envpool":
        extras.append("envpool")
    if config.execution.backend == "ray":
        extras.append("ray")
    if config.loop.track != "none":
        extras.append(config.loop.track)
    return tuple(dict.fromkeys(extras))
