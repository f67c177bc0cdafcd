"""Presets of recurrent agents (R2D2-style) on partially observable tasks.

``cartpole-masked-rdqn``: CartPole-v1 with the cart and pole velocities removed from the
observation (``EnvConfig.mask_velocity``), so a policy must infer them from the
positions it saw: a feed-forward Q-network cannot balance the pole for long, a
recurrent one can. :data:`RECURRENT_PRESETS` maps names to factories; ``presets.py``
registers them like the Atari ones.

``cartpole-masked-dqn`` is the control for the comparison: ``cartpole-dqn``'s settings,
unchanged, on the same masked observations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from drivetrain.agents.r2d2.config import R2D2Config
from drivetrain.train.config import EnvConfig, ExperimentConfig, LoopConfig, ReplayConfig

__all__ = ["RECURRENT_PRESETS", "cartpole_masked_dqn", "cartpole_masked_rdqn"]

_TOTAL = 200_000
_LEARNING_STARTS = 5_000
_UPDATE_PERIOD = 16  # env steps (over the batch) per collection
_GRADIENT_STEPS = 1  # train steps per collection: one sequence batch per 16 env steps


def cartpole_masked_rdqn() -> ExperimentConfig:
    """Recurrent DQN (GRU, stored state, burn-in, 3-step targets) on CartPole-v1 without velocities.

    R2D2's recipe (Kapturowski et al. 2019: stored state, burn-in 40 of 80 steps,
    n-step returns) scaled down to CartPole: sequences of 20 trained steps after a
    burn-in of 10, a GRU of 128 units after one 128-unit layer, Adam 1e-3, Double DQN
    with 3-step targets, a hard target update every 500 train steps, 4 environments, one
    batch of 32 sequences per 16 environment steps, at most 200k environment steps.
    These are drivetrain's choices for this task, picked by a sweep over 8 variants (not
    from a paper's table). As ``cartpole-dqn`` does, it evaluates the greedy policy every
    5,000 env steps and stops once an evaluation reaches 475: recurrent DQN, too, solves
    the task and can forget it later. The update is compiled where a C++ compiler is found
    (``compile="auto"``: ~1.5x as fast per update; the first run on a machine spends ~33 s
    compiling, later runs ~3 s). Results (5 seeds, and the comparisons with
    ``cartpole-masked-dqn`` and with zero-state starts) are in ``docs/benchmarks.md``.
    """
    return ExperimentConfig(
        env=EnvConfig(name="CartPole-v1", num_envs=4, mask_velocity=True),
        agent=R2D2Config(
            core="gru",
            hidden_size=128,
            fc_layers=(128,),
            sequence_length=20,
            burn_in=10,
            initial_state="stored",
            n_step=3,
            double=True,
            gamma=0.99,
            optimizer="adam",
            learning_rate=1e-3,
            target_update_period=500,
            loss="huber",
            gradient_clipping=10.0,
            epsilon_start=1.0,
            epsilon_end=0.02,
            epsilon_decay_steps=3_000,
            compile="auto",
        ),
        replay=ReplayConfig(capacity=100_000),
        loop=LoopConfig(
            total_env_steps=_TOTAL,
            learning_starts=_LEARNING_STARTS,
            update_period=_UPDATE_PERIOD,
            gradient_steps=_GRADIENT_STEPS,
            batch_size=32,
            eval_interval=5_000,
            eval_episodes=10,
            eval_num_envs=10,
            stop_at_return=475.0,
            final_eval_episodes=10,
            log_interval=5_000,
            checkpoint_interval=50_000,
        ),
    )


def cartpole_masked_dqn() -> ExperimentConfig:
    """Feed-forward DQN with the cartpole-dqn settings on CartPole-v1 without velocities (the control)."""
    from drivetrain.train.presets import cartpole_dqn

    base = cartpole_dqn()
    return dataclasses.replace(base, env=dataclasses.replace(base.env, mask_velocity=True))


RECURRENT_PRESETS: dict[str, Callable[[], ExperimentConfig]] = {
    "cartpole-masked-rdqn": cartpole_masked_rdqn,
    "cartpole-masked-dqn": cartpole_masked_dqn,
}
