"""Atari presets: the book's Breakout DQN and the 2015 DQN paper's setup.

``ATARI_PRESETS`` maps each preset name to a function returning an
:class:`~drivetrain.train.config.ExperimentConfig`; :mod:`drivetrain.train.presets`
registers them. :func:`make_atari_env` builds the environments of such a config
(training, or evaluation as the paper does it: :class:`~drivetrain.envs.atari.AtariEval`).

Units: drivetrain counts *agent steps* (one action = 4 ALE frames) in ``loop`` and *train
steps* (``agent.train`` calls) in the agent's ``epsilon_decay_steps`` and
``target_update_period``. With one train step per 4 agent steps, 1M frames = 250k agent
steps = 62,500 train steps (the book's ε schedule), and the 2015 paper's 1M agent steps of
ε-decay, as DeepMind's code counts them, are 250,000 train steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from drivetrain.agents import DQNConfig
from drivetrain.core.environment import Environment
from drivetrain.envs.atari import AtariBackend, AtariConfig, AtariEval, make_atari
from drivetrain.train.config import EnvConfig, ExperimentConfig, LoopConfig, ReplayConfig

__all__ = ["ATARI_PRESETS", "breakout_dqn", "breakout_dqn_nature", "make_atari_env", "pong_dqn_nature"]

FRAME_SKIP = AtariConfig().frame_skip
UPDATE_PERIOD = 4
"""Agent steps per train step in all three presets (the book and the paper)."""


def _train_steps(frames: int) -> int:
    """Train steps taken while ``frames`` ALE frames are played (one per UPDATE_PERIOD agent steps)."""
    return frames // FRAME_SKIP // UPDATE_PERIOD


def make_atari_env(
    config: EnvConfig, num_envs: int, seed: int, *, evaluation: bool = False, render_mode: str | None = None
) -> Environment:
    """The Atari environments of ``config`` (``config.suite == "atari"``).

    ``config.name`` is the game (``"Breakout"``); ``config.atari`` its preprocessing;
    ``config.backend`` picks the implementation: ``"sync"``/``"gymnasium"`` (ale-py in this
    process), ``"async"`` (ale-py, one process per environment) or ``"envpool"``. With
    ``evaluation=True`` the preprocessing is the paper's evaluation protocol
    (:meth:`AtariEval.env_config`: up to 30 no-op starts, 18,000-frame episodes); the
    evaluation ε (0.05) is ``LoopConfig.eval_epsilon``.
    """
    atari = config.atari
    if evaluation:
        atari = AtariEval().env_config(atari)
    if render_mode is not None:
        atari = dataclasses.replace(atari, render_mode=render_mode)
    backend: AtariBackend = "envpool" if config.backend == "envpool" else "gymnasium"
    return make_atari(
        config.name, num_envs, seed, backend=backend, config=atari, asynchronous=config.backend == "async"
    )


def _atari_env(game: str, atari: AtariConfig) -> EnvConfig:
    return EnvConfig(name=game, num_envs=1, suite="atari", atari=atari)


def breakout_dqn() -> ExperimentConfig:
    """The book's Breakout DQN (Hands-On Machine Learning, 2nd/3rd ed., ch. 18, TF-Agents) on CPU-sized replay.

    Source: A. Géron, "Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow",
    chapter 18 (the TF-Agents DQN on ``BreakoutNoFrameskip-v4`` with ``AtariPreprocessing``
    and ``FrameStack4``): Keras' RMSprop (lr 2.5e-4, ρ 0.95, momentum 0, ε 1e-5, centered),
    which in TensorFlow 2.0-2.10 (the book's) takes ``w -= lr g / (sqrt(ms - mg²) + ε)``
    when momentum is 0 (``keras/optimizer_v2/rmsprop.py``): ε outside the root, as
    ``torch.optim.RMSprop`` (``optimizer="rmsprop"``); Keras 3 and
    ``tf.compat.v1.train.RMSPropOptimizer`` put it inside (``--agent.optimizer rmsprop_tf``);
    Huber loss; γ 0.99; ε-greedy from 1.0 to 0.01 over 250,000 agent steps (62,500 train
    steps, 1M ALE frames); target network updated every 2,000 train steps; one train step
    per 4 collect steps; batches of 64 two-step windows; 20,000 random warm-up steps; a
    Nature CNN with a 512-unit layer; episodes of at most 27,000 agent steps (108k
    frames); no life-loss terminals and no reward clipping (TF-Agents' AtariPreprocessing
    and DqnAgent do neither). Replay: 100,000 transitions (the issue's CPU-sized buffer;
    the book's 1M also fits: frames are stored once, ≤ 7.5 GB). The run length (2.5M
    agent steps = 10M frames), up to 30 no-op starts and FIRE at reset in training (which
    TF-Agents' AtariPreprocessing does not do), and the evaluation (ε = 0.05, 30 no-op
    starts, 5-minute episodes, from Mnih et al. 2015) are this project's choices.
    """
    return ExperimentConfig(
        env=_atari_env("Breakout", AtariConfig()),
        agent=DQNConfig(
            optimizer="rmsprop",
            learning_rate=2.5e-4,
            rmsprop_alpha=0.95,
            rmsprop_momentum=0.0,
            rmsprop_eps=1e-5,
            rmsprop_centered=True,
            loss="huber",
            huber_delta=1.0,
            gamma=0.99,
            n_step=1,
            target_update_period=2_000,
            epsilon_start=1.0,
            epsilon_end=0.01,
            epsilon_decay_steps=_train_steps(1_000_000),
            fc_layers=(512,),
            conv_layers=None,
            reward_clip=None,
            compile="auto",  # 620k updates: the compilation pays on the first run (bench/compile_pays.py)
        ),
        replay=ReplayConfig(capacity=100_000),
        loop=LoopConfig(
            total_env_steps=2_500_000,
            learning_starts=20_000,
            update_period=UPDATE_PERIOD,
            gradient_steps=1,
            batch_size=64,
            eval_interval=100_000,
            eval_episodes=10,
            final_eval_episodes=30,
            eval_epsilon=AtariEval().epsilon,
            log_interval=10_000,
            checkpoint_interval=250_000,
            keep_checkpoints=1,
            torch_threads=None,
        ),
    )


def _nature(game: str) -> ExperimentConfig:
    """Mnih et al. 2015, Extended Data Table 1, in drivetrain's units (see the presets' docstrings)."""
    return ExperimentConfig(
        env=_atari_env(game, AtariConfig(terminal_on_life_loss=True)),
        agent=DQNConfig(
            optimizer="rmsprop_tf",
            learning_rate=2.5e-4,
            rmsprop_alpha=0.95,
            rmsprop_momentum=0.0,
            # DeepMind's gradient is the batch's sum, drivetrain's the mean (1/32 of it): the same
            # steps take the min squared gradient 0.01 divided by 32² inside the root
            rmsprop_eps=0.01 / 32**2,
            rmsprop_centered=True,
            loss="huber",
            huber_delta=1.0,
            gamma=0.99,
            n_step=1,
            target_update_period=10_000 // UPDATE_PERIOD,
            epsilon_start=1.0,
            epsilon_end=0.1,
            epsilon_decay_steps=1_000_000 // UPDATE_PERIOD,  # 1M agent steps after the replay start
            fc_layers=(512,),
            conv_layers=None,
            reward_clip=1.0,
            compile="auto",  # 3.1M updates: the compilation pays on the first run (bench/compile_pays.py)
        ),
        replay=ReplayConfig(capacity=1_000_000),
        loop=LoopConfig(
            total_env_steps=50_000_000 // FRAME_SKIP,
            learning_starts=50_000,
            update_period=UPDATE_PERIOD,
            gradient_steps=1,
            batch_size=32,
            eval_interval=250_000,
            eval_episodes=10,
            final_eval_episodes=30,
            eval_epsilon=AtariEval().epsilon,
            log_interval=10_000,
            checkpoint_interval=1_000_000,
            keep_checkpoints=1,
            torch_threads=None,
        ),
    )


_NATURE_SOURCE = """
    Source: V. Mnih et al., "Human-level control through deep reinforcement learning",
    Nature 518 (2015), Methods and Extended Data Table 1: minibatch 32; replay memory 1M;
    4-frame history; target network updated every 10,000 steps (counted in agent steps,
    as in DeepMind's released code: 2,500 train steps here); γ 0.99; action repeat 4;
    one update per 4 actions; RMSProp with learning rate 2.5e-4, squared-gradient
    momentum 0.95 and min squared gradient 0.01: DeepMind's ``NeuralQLearner.lua``
    computes ``w += lr dw / sqrt(g2 - g² + 0.01)``, a centered RMSprop with ε inside the
    root (``RMSpropTF``, not ``torch.optim.RMSprop``), with ``dw`` the gradient summed over
    the minibatch (Torch's ``backward`` of the clipped TD errors), where drivetrain's loss is
    the minibatch's mean: ε = 0.01 / 32² here gives the same steps; ε-greedy from 1 to 0.1
    over 1M agent steps after the replay start (the paper's "final exploration frame"
    1,000,000 counted as the code counts it, ``ep_endt``: 250,000 train steps); 50,000
    random steps before learning; up to 30 no-op starts;
    rewards clipped to [-1, 1]; TD errors clipped to [-1, 1] (Huber loss, δ = 1); a lost
    life is terminal for training (a zero discount here; the game is still the episode);
    50M frames of training (12.5M agent steps). Evaluation: ε = 0.05, 30 no-op starts,
    5-minute (18,000-frame) episodes, 30 episodes at the end. This project's choices: FIRE
    pressed at reset in games that have it, and training episodes of at most 27,000 agent
    steps (108k frames).
"""


def breakout_dqn_nature() -> ExperimentConfig:
    return _nature("Breakout")


def pong_dqn_nature() -> ExperimentConfig:
    return _nature("Pong")


breakout_dqn_nature.__doc__ = (
    "DQN on Breakout with the 2015 Nature paper's settings (50M frames).\n" + _NATURE_SOURCE
)
pong_dqn_nature.__doc__ = "DQN on Pong with the 2015 Nature paper's settings (50M frames).\n" + _NATURE_SOURCE

ATARI_PRESETS: dict[str, Callable[[], ExperimentConfig]] = {
    "breakout-dqn": breakout_dqn,
    "breakout-dqn-nature": breakout_dqn_nature,
    "pong-dqn-nature": pong_dqn_nature,
}
