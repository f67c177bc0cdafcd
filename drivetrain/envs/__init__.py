"""Environments: Gymnasium adapter, Atari suite, wrappers, check_env, test environments."""

from drivetrain.envs.testing import CountingEnv

__all__ = ["CountingEnv"]
