"""Environments: Gymnasium adapter, Atari suite, wrappers, check_env, test environments.

``make`` turns a Gymnasium id or factory into a batched
:class:`~drivetrain.core.environment.Environment`; ``from_vector_env`` adapts any
Gymnasium vector environment in next-step auto-reset mode; ``make_atari`` builds Atari
games with DQN-2015 preprocessing; ``check_env`` validates an environment against the
time-step protocol.

The names are imported on first use, so that the configs (``AtariConfig``) need no Gymnasium.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.envs.atari import AtariConfig, make_atari
    from drivetrain.envs.check import EnvCheckError, EnvCheckReport, check_env
    from drivetrain.envs.checks import EnvOutputError
    from drivetrain.envs.gymnasium_env import GymnasiumEnv
    from drivetrain.envs.make import make
    from drivetrain.envs.spaces import spec_from_space
    from drivetrain.envs.testing import CountingEnv
    from drivetrain.envs.vector_env import VectorEnvAdapter, from_vector_env
    from drivetrain.envs.wrappers import ActionOffset, ActionRepeat, MaskVelocity

__all__ = [
    "ActionOffset",
    "ActionRepeat",
    "AtariConfig",
    "CountingEnv",
    "EnvCheckError",
    "EnvCheckReport",
    "EnvOutputError",
    "GymnasiumEnv",
    "MaskVelocity",
    "VectorEnvAdapter",
    "check_env",
    "from_vector_env",
    "make",
    "make_atari",
    "spec_from_space",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".atari": ("AtariConfig", "make_atari"),
        ".check": ("EnvCheckError", "EnvCheckReport", "check_env"),
        ".checks": ("EnvOutputError",),
        ".gymnasium_env": ("GymnasiumEnv",),
        ".make": ("make",),
        ".spaces": ("spec_from_space",),
        ".testing": ("CountingEnv",),
        ".vector_env": ("VectorEnvAdapter", "from_vector_env"),
        ".wrappers": ("ActionOffset", "ActionRepeat", "MaskVelocity"),
    },
    submodules=(
        "actions",
        "atari",
        "atari_envpool",
        "atari_games",
        "atari_gymnasium",
        "check",
        "checks",
        "gymnasium_env",
        "snapshots",
        "spaces",
        "testing",
        "vector_env",
        "wrappers",
    ),
)
