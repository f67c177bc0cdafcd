"""Presets: named, documented starting configs for ``drivetrain train PRESET``.

A preset is a function returning an :class:`~drivetrain.train.config.ExperimentConfig`,
registered with :func:`register`; its docstring's first line is the one-line summary
that ``drivetrain presets`` prints, the rest says where the values come from::

    @register("cartpole-dqn")
    def cartpole_dqn() -> ExperimentConfig:
        \"\"\"DQN on CartPole-v1 ... (source).\"\"\"
        return ExperimentConfig(...)

:func:`get_preset` builds a fresh config; an unknown name raises :class:`UnknownPresetError`
listing the close names.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable

from drivetrain.agents import DQNConfig
from drivetrain.train.config import EnvConfig, ExperimentConfig, LoopConfig, ReplayConfig

__all__ = [
    "DEFAULT_PRESET",
    "Preset",
    "UnknownPresetError",
    "get_preset",
    "preset_names",
    "presets",
    "register",
]

DEFAULT_PRESET = "cartpole-dqn"


class UnknownPresetError(KeyError):
    """No preset has this name; the message lists the close names."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class Preset:
    """A registered preset."""

    name: str
    factory: Callable[[], ExperimentConfig]

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.factory.__doc__ or "")

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""

    def build(self) -> ExperimentConfig:
        return dataclasses.replace(self.factory(), preset=self.name)


_REGISTRY: dict[str, Preset] = {}


def register(name: str) -> Callable[[Callable[[], ExperimentConfig]], Callable[[], ExperimentConfig]]:
    """Decorator registering a preset function under ``name``."""

    def decorate(factory: Callable[[], ExperimentConfig]) -> Callable[[], ExperimentConfig]:
        if name in _REGISTRY:
            raise ValueError(f"preset {name!r} is already registered")
        if not factory.__doc__:
            raise ValueError(f"preset {name!r} needs a docstring (summary line and source)")
        _REGISTRY[name] = Preset(name, factory)
        return factory

    return decorate


def presets() -> list[Preset]:
    """All presets, the default first, then by name."""
    return sorted(_REGISTRY.values(), key=lambda p: (p.name != DEFAULT_PRESET, p.name))


def preset_names() -> list[str]:
    return [p.name for p in presets()]


def get_preset(name: str) -> Preset:
    """The preset called ``name``; UnknownPresetError naming the close ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise UnknownPresetError(
            f"unknown preset {name!r}; {hint}known presets: {', '.join(preset_names())}"
        ) from None


# ---------------------------------------------------------------------- the presets
# rl-baselines3-zoo's CartPole-v1 DQN, in drivetrain's units (see cartpole_dqn's docstring).
_ZOO_TOTAL = 50_000
_ZOO_LEARNING_STARTS = 1_000
_ZOO_TRAIN_FREQ = 256
_ZOO_GRADIENT_STEPS = 128
_ZOO_EXPLORATION_STEPS = int(0.16 * _ZOO_TOTAL)  # exploration_fraction x n_timesteps = 8,000 env steps


def _train_steps_at(env_step: int) -> int:
    """Train steps done by the zoo schedule when ``env_step`` environment steps were taken."""
    return (env_step - _ZOO_LEARNING_STARTS) * _ZOO_GRADIENT_STEPS // _ZOO_TRAIN_FREQ


@register("cartpole-dqn")
def cartpole_dqn() -> ExperimentConfig:
    """DQN on CartPole-v1, rl-baselines3-zoo's tuned settings: solved (greedy return ≥ 475) in 50k env steps.

    Source: rl-baselines3-zoo, ``hyperparams/dqn.yml``, entry ``CartPole-v1``
    (https://github.com/DLR-RM/rl-baselines3-zoo): n_timesteps 5e4, learning_rate 2.3e-3,
    batch_size 64, buffer_size 100000, learning_starts 1000, gamma 0.99,
    target_update_interval 10, train_freq 256, gradient_steps 128, exploration_fraction 0.16,
    exploration_final_eps 0.04, net_arch [256, 256]; with Stable-Baselines3's DQN defaults
    for the rest: Adam, Huber loss, gradient norm clipped at 10, hard target updates.

    Translated to drivetrain's units:

    - Stable-Baselines3 counts ``target_update_interval`` in *environment* steps and copies
      the online network into the target every 10 of them, while collecting. The online
      network only changes during the 128 gradient steps that follow each 256-step
      collection, so the target is the online network as the previous training phase
      left it: a hard update every 128 train steps, which is what ``target_update_period``
      (counted in train steps) says here.
    - Epsilon decays linearly from 1 to 0.04 over the first 16% of the run (8,000 env
      steps), counted by drivetrain in train steps: 8,000 env steps are
      (8,000 - 1,000) x 128 / 256 = 3,500 train steps.
    - Adam's epsilon is 1e-5, this preset's choice (the one its five-seed results were measured
      with): Stable-Baselines3 sets 1e-5 for its actor-critic policies, but its DQN keeps
      PyTorch's 1e-8.

    drivetrain's additions: a greedy evaluation of 10 episodes every 2,500 env steps, and
    the run ends once one reaches a mean return of 475 (CartPole-v1's reward threshold:
    solved); the final evaluation (eval.json) then plays 10 episodes of its own. With these
    settings DQN often solves CartPole and forgets it again before 50k steps; to train for
    the whole budget regardless, pass ``--stop_at_return none``.
    """
    return ExperimentConfig(
        env=EnvConfig(name="CartPole-v1", num_envs=1),
        agent=DQNConfig(
            fc_layers=(256, 256),
            optimizer="adam",
            adam_eps=1e-5,
            learning_rate=2.3e-3,
            gamma=0.99,
            n_step=1,
            target_update_period=_ZOO_GRADIENT_STEPS,
            target_update_tau=1.0,
            loss="huber",
            gradient_clipping=10.0,
            epsilon_start=1.0,
            epsilon_end=0.04,
            epsilon_decay_steps=_train_steps_at(_ZOO_EXPLORATION_STEPS),
        ),
        replay=ReplayConfig(capacity=100_000),
        loop=LoopConfig(
            total_env_steps=_ZOO_TOTAL,
            learning_starts=_ZOO_LEARNING_STARTS,
            update_period=_ZOO_TRAIN_FREQ,
            gradient_steps=_ZOO_GRADIENT_STEPS,
            batch_size=64,
            eval_interval=2_500,
            eval_episodes=10,
            eval_num_envs=10,
            stop_at_return=475.0,
            final_eval_episodes=10,
            log_interval=1_000,
            checkpoint_interval=10_000,
        ),
    )


def _register_atari() -> None:
    from drivetrain.train.atari_presets import ATARI_PRESETS

    for name, factory in ATARI_PRESETS.items():
        register(name)(factory)


def _register_recurrent() -> None:
    from drivetrain.train.recurrent_presets import RECURRENT_PRESETS

    for name, factory in RECURRENT_PRESETS.items():
        register(name)(factory)


def _register_policy_gradient() -> None:
    from drivetrain.train.policy_gradient_presets import POLICY_GRADIENT_PRESETS

    for name, factory in POLICY_GRADIENT_PRESETS.items():
        register(name)(factory)


def _register_continuous() -> None:
    from drivetrain.train.continuous_presets import CONTINUOUS_PRESETS

    for name, factory in CONTINUOUS_PRESETS.items():
        register(name)(factory)


_register_atari()
_register_recurrent()
_register_policy_gradient()
_register_continuous()
