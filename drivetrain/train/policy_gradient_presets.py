"""Presets of the policy-gradient agents (REINFORCE, PPO), each citing where its values come from.

Units: rl-baselines3-zoo's ``n_steps`` is ``PPOConfig.rollout_steps`` (per environment), its
``batch_size`` (transitions per minibatch) becomes ``num_minibatches = n_envs x n_steps /
batch_size``, ``n_epochs`` is ``num_epochs``, ``lin_X`` a linear anneal to 0 over the run.
CleanRL's ``num_steps`` is ``rollout_steps`` too. :data:`POLICY_GRADIENT_PRESETS` maps names to
factories; ``presets.py`` registers them like the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from drivetrain.agents import PPOConfig, ReinforceConfig
from drivetrain.train.config import EnvConfig, ExperimentConfig, LoopConfig

__all__ = ["POLICY_GRADIENT_PRESETS"]


def _loop(total: int, eval_interval: int, stop_at: float | None, log_interval: int = 5_000) -> LoopConfig:
    return LoopConfig(
        total_env_steps=total,
        learning_starts=0,
        eval_interval=eval_interval,
        eval_episodes=10,
        eval_num_envs=10,
        final_eval_episodes=10,
        stop_at_return=stop_at,
        log_interval=log_interval,
        checkpoint_interval=50_000,
    )


def cartpole_ppo() -> ExperimentConfig:
    """PPO on CartPole-v1, rl-baselines3-zoo's tuned settings: solved (greedy return ≥ 475) within 100k env steps.

    Source: rl-baselines3-zoo, ``hyperparams/ppo.yml``, entry ``CartPole-v1``: n_envs 8,
    n_timesteps 1e5, n_steps 32, batch_size 256 (one minibatch per epoch), gae_lambda 0.8,
    gamma 0.98, n_epochs 20, ent_coef 0.0, learning_rate lin_1e-3, clip_range lin_0.2; with
    Stable-Baselines3's PPO defaults for the rest (vf_coef 0.5, max_grad_norm 0.5, [64, 64]
    tanh torsos for actor and critic, advantages normalized per minibatch, Adam ε 1e-5).
    drivetrain's additions: a greedy evaluation every 10k env steps; the run stops once one
    reaches 475 (the final evaluation, eval.json, plays episodes of its own).
    """
    return ExperimentConfig(
        env=EnvConfig(name="CartPole-v1", num_envs=8),
        agent=PPOConfig(
            learning_rate=1e-3,
            anneal_learning_rate=True,
            rollout_steps=32,
            num_epochs=20,
            num_minibatches=1,
            gamma=0.98,
            gae_lambda=0.8,
            clip_ratio=0.2,
            anneal_clip_ratio=True,
            ent_coef=0.0,
        ),
        loop=_loop(100_000, 10_000, 475.0),
    )


def acrobot_ppo() -> ExperimentConfig:
    """PPO on Acrobot-v1, CleanRL's ppo.py defaults: 500k env steps (CleanRL reports -86.4).

    Source: CleanRL ``ppo.py`` (Huang et al. 2022, "CleanRL", JMLR 23), its documented
    Acrobot-v1 run: 4 environments, num_steps 128, 4 minibatches x 4 epochs, learning rate
    2.5e-4 annealed, gamma 0.99, gae_lambda 0.95, clip 0.2, ent_coef 0.01, vf_coef 0.5,
    max_grad_norm 0.5, [64, 64] tanh torsos, the value loss clipped as the policy's (clip_vloss,
    at 0.2). Not CleanRL's: a truncated episode (Acrobot's 500-step limit) bootstraps from
    the value of its last observation, where ppo.py treats it as terminated.
    """
    return ExperimentConfig(
        env=EnvConfig(name="Acrobot-v1", num_envs=4),
        agent=PPOConfig(
            learning_rate=2.5e-4,
            rollout_steps=128,
            num_epochs=4,
            num_minibatches=4,
            gamma=0.99,
            gae_lambda=0.95,
            ent_coef=0.01,
            value_clip=0.2,
        ),
        loop=_loop(500_000, 25_000, None),
    )


def lunarlander_ppo() -> ExperimentConfig:
    """PPO on LunarLander-v3, rl-baselines3-zoo's tuned settings: 1M env steps (rl-zoo reports 242).

    Source: rl-baselines3-zoo, ``hyperparams/ppo.yml``, entry ``LunarLander-v2`` (v3 is the same
    task with Gymnasium's fixes): n_envs 16, n_timesteps 1e6, n_steps 1024, batch_size 64
    (256 minibatches of the 16,384 transitions), gae_lambda 0.98, gamma 0.999, n_epochs 4,
    ent_coef 0.01; Stable-Baselines3's defaults for the rest (learning rate 3e-4 constant,
    clip 0.2, vf_coef 0.5, max_grad_norm 0.5). Needs the ``box2d`` extra.
    """
    return ExperimentConfig(
        env=EnvConfig(name="LunarLander-v3", num_envs=16),
        agent=PPOConfig(
            learning_rate=3e-4,
            anneal_learning_rate=False,
            rollout_steps=1024,
            num_epochs=4,
            num_minibatches=256,
            gamma=0.999,
            gae_lambda=0.98,
            ent_coef=0.01,
            compile="auto",  # 62k updates: the compilation pays on the first run (bench/compile_pays.py)
        ),
        loop=_loop(1_000_000, 50_000, None, log_interval=16_384),
    )


def pendulum_ppo() -> ExperimentConfig:
    """PPO on Pendulum-v1 (continuous actions), after rl-baselines3-zoo: 4 envs, observations normalized.

    Source: rl-baselines3-zoo, ``hyperparams/ppo.yml``, entry ``Pendulum-v1``: n_envs 4,
    n_steps 1024, gae_lambda 0.95, gamma 0.9, n_epochs 10, ent_coef 0.0, learning_rate 1e-3,
    clip_range 0.2, normalize (observations and rewards). drivetrain has no gSDE (the zoo's
    use_sde), so it keeps a state-independent log std and trains 300k env steps, not 100k;
    minibatches of 64 as Stable-Baselines3's default (64 per epoch).
    """
    return ExperimentConfig(
        env=EnvConfig(name="Pendulum-v1", num_envs=4),
        agent=PPOConfig(
            learning_rate=1e-3,
            anneal_learning_rate=False,
            rollout_steps=1024,
            num_epochs=10,
            num_minibatches=64,
            gamma=0.9,
            gae_lambda=0.95,
            ent_coef=0.0,
            normalize_observations=True,
            scale_rewards=True,
            compile="auto",  # 47k updates: the compilation pays on the first run (bench/compile_pays.py)
        ),
        loop=_loop(300_000, 25_000, None, log_interval=4_096),
    )


def cartpole_masked_rppo() -> ExperimentConfig:
    """Recurrent PPO (GRU, stored state) on CartPole-v1 without velocities.

    The task of ``cartpole-masked-rdqn``. Each training sequence starts from the state the
    driver stored in ``policy_info["state"]`` at its first step (the book's point: the
    replay holds the policy's state) and resets at every FIRST inside, as the policy did
    while acting. Settings: ``cartpole-ppo``'s losses (8 environments, γ 0.98, λ 0.8) with 128
    steps per rollout, 10 epochs, a GRU of 64 units after a 64-unit shared tanh layer,
    and 4 minibatches of 2 environments' whole sequences; stops once an evaluation reaches
    475. These are drivetrain's choices for this task (CleanRL's ``ppo_atari_lstm.py``
    trains the same way on Atari), not a paper's table.
    """
    return ExperimentConfig(
        env=EnvConfig(name="CartPole-v1", num_envs=8, mask_velocity=True),
        agent=PPOConfig(
            learning_rate=1e-3,
            rollout_steps=128,
            num_epochs=10,
            num_minibatches=4,
            gamma=0.98,
            gae_lambda=0.8,
            ent_coef=0.0,
            layers=(64,),
            shared=True,
            core="gru",
            hidden_size=64,
        ),
        loop=_loop(300_000, 10_000, 475.0),
    )


def cartpole_masked_ppo() -> ExperimentConfig:
    """``cartpole-ppo`` on CartPole-v1 without velocities: the feed-forward control of ``cartpole-masked-rppo``."""
    config = cartpole_ppo()
    return dataclasses.replace(
        config,
        env=dataclasses.replace(config.env, mask_velocity=True),
        loop=dataclasses.replace(config.loop, total_env_steps=300_000),
    )


def cartpole_reinforce() -> ExperimentConfig:
    """REINFORCE with a baseline on CartPole-v1 (the book's first algorithm): ≥ 475 within 500k env steps.

    *Hands-On Machine Learning* (ch. 18) trains REINFORCE on CartPole with Adam 0.01, γ 0.95,
    10 episodes per update and returns normalized over the update. CartPole-v1's episodes
    last up to 500 steps (the book used v0's 200), which γ 0.95 cannot see: here γ 0.99, a
    learned baseline (the advantages normalized as the book normalizes returns), Adam
    5e-3, one update per 1,000 env steps of the episodes that ended in them; drivetrain's
    choices for v1, not the book's. It stops once an evaluation reaches 475.
    """
    return ExperimentConfig(
        env=EnvConfig(name="CartPole-v1", num_envs=1),
        agent=ReinforceConfig(
            learning_rate=5e-3,
            rollout_steps=1000,
            gamma=0.99,
            baseline=True,
            normalize_returns=True,
        ),
        loop=_loop(500_000, 10_000, 475.0),
    )


POLICY_GRADIENT_PRESETS: dict[str, Callable[[], ExperimentConfig]] = {
    "cartpole-ppo": cartpole_ppo,
    "acrobot-ppo": acrobot_ppo,
    "lunarlander-ppo": lunarlander_ppo,
    "pendulum-ppo": pendulum_ppo,
    "cartpole-masked-rppo": cartpole_masked_rppo,
    "cartpole-masked-ppo": cartpole_masked_ppo,
    "cartpole-reinforce": cartpole_reinforce,
}
