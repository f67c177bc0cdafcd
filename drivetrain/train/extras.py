"""Which of drivetrain's pip extras a config needs: ``pip install "drivetrain[EXTRA,...]"``.

Derived from the config, not kept by hand: every run needs ``torch`` (agents, networks,
logs; it brings Gymnasium's classic-control environments); an Atari suite needs ``atari``;
a Gymnasium id needs the extra of the package its registered entry point lives in
(``gymnasium.envs.box2d`` -> ``box2d``, ``gymnasium.envs.mujoco`` -> ``mujoco``, ``ale_py`` ->
``atari``); the EnvPool backend needs ``envpool``, Ray execution ``ray``, and ``loop.track``
its tracker's extra. ``drivetrain presets`` shows them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BASE_EXTRA", "env_extras", "required_extras"]

BASE_EXTRA = "torch"
"""What every training run needs."""

_ENTRY_POINT_EXTRAS = {
    "gymnasium.envs.box2d": "box2d",
    "gymnasium.envs.mujoco": "mujoco",
    "ale_py": "atari",
}


def env_extras(env_id: str) -> tuple[str, ...]:
    """The extra a registered Gymnasium id needs beyond ``torch``; ``()`` for classic control
    and for ids Gymnasium does not know (a third-party package registers those itself)."""
    import gymnasium

    try:
        entry_point = gymnasium.spec(env_id).entry_point
    except gymnasium.error.Error:
        return ()
    if not isinstance(entry_point, str):
        return ()
    module = entry_point.split(":", 1)[0]
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
