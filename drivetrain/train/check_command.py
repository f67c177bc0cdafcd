"""``drivetrain check-env``: :func:`drivetrain.envs.check_env` from the command line.

::

    drivetrain check-env CartPole-v1 [--num-envs 4] [--steps 1000] [--seed 0] [--backend sync]
    drivetrain check-env my_package.envs:MyEnv-v0      # Gymnasium imports my_package.envs first
    drivetrain check-env breakout-dqn                  # a preset's environment, as its runs build it

ENV is a preset's name (its environment with the preset's wrappers, e.g. Atari's preprocessing)
or a Gymnasium id. The command plays random actions in a batch of environments built twice from
the same seed, checks every time step against the protocol of
:class:`~drivetrain.core.environment.Environment` (specs, step types, finite observations and
rewards, reproducibility) and prints either one line or every kind of problem found (status 1).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["add_check_env_parser", "cmd_check_env"]

_DESCRIPTION = (
    "Plays random actions in a batch of environments built twice from the same seed and checks every "
    "time step against drivetrain's environment protocol (specs, step types, finite observations and "
    "rewards, reproducibility). ENV is a preset's name (its environment as its runs build it) or a "
    "Gymnasium id; module:Id imports module first, where a custom environment registers itself."
)


def add_check_env_parser(sub: Any) -> None:
    """Adds ``check-env`` to the ``drivetrain`` subparsers."""
    from drivetrain.train.run_commands import _POSITIVE, _SEED

    p = sub.add_parser(
        "check-env",
        help="play random actions in an environment and report every protocol violation",
        description=_DESCRIPTION,
    )
    p.add_argument("env", metavar="ENV", help="a preset's name or a Gymnasium id (module:Id imports module)")
    p.add_argument("--num-envs", type=_POSITIVE, default=2, help="environments in the batch (default: 2)")
    p.add_argument("--steps", type=_POSITIVE, default=1000, help="batched steps to play (default: 1000)")
    p.add_argument("--seed", type=_SEED, default=0, help="seed of the environments and actions (default: 0)")
    p.add_argument(
        "--backend",
        choices=("sync", "gymnasium", "async"),
        default="sync",
        help="how a Gymnasium id is batched (default: sync); a preset uses its own",
    )
    p.set_defaults(func=cmd_check_env)


def cmd_check_env(args: argparse.Namespace) -> int:
    """Checks ENV; 0 when it keeps the protocol, 1 (with the problems listed) when not."""
    from drivetrain.envs import EnvCheckError, check_env

    factory, what = _factory(args)
    try:
        report = check_env(factory, num_steps=args.steps, seed=args.seed)
    except EnvCheckError as e:
        print(f"{what}: {e}")
        return 1
    print(
        f"{what}: no problems in {report.steps} steps of {report.batch_size} environments "
        f"({report.episodes} episodes ended); the same seed gave the same time steps"
    )
    return 0


def _factory(args: argparse.Namespace) -> tuple[Callable[[], Any], str]:
    """A zero-argument factory of ENV's batched environment, and how to name it."""
    from drivetrain.train import presets
    from drivetrain.train.run_commands import _command_error

    if args.env in {p.name for p in presets.presets()}:
        from drivetrain.train.experiment import make_env

        env_config = presets.get_preset(args.env).build().env
        return (
            lambda: make_env(env_config, args.num_envs, args.seed)
        ), f"preset {args.env} ({env_config.name})"
    import gymnasium as gym

    from drivetrain import envs

    module, _, env_id = args.env.rpartition(":")
    if module:  # as gymnasium.make does with "module:Id"
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise _command_error(f"check-env: cannot import {module!r} for {args.env!r} ({e})") from None
    try:  # a clear error for an unknown id here, not inside check_env's first build
        gym.spec(env_id)
    except gym.error.Error as e:
        raise _command_error(
            f"check-env: {args.env!r} is neither a preset nor a Gymnasium id ({e})"
        ) from None
    return (lambda: envs.make(args.env, args.num_envs, seed=args.seed, backend=args.backend)), args.env
