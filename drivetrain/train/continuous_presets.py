"""Presets of the continuous-control agents (SAC, TD3), each citing where its values come from.

Units: Stable-Baselines3's ``train_freq`` is ``loop.update_period`` (environment steps per
collect phase), its ``gradient_steps`` is ``loop.gradient_steps`` (``-1``, "as many as
collected", becomes ``gradient_steps = update_period``), ``learning_starts`` and
``batch_size`` are the loop's too; ``buffer_size`` is ``replay.capacity``; ``net_arch`` sets
both ``actor_layers`` and ``critic_layers``; SB3's single ``learning_rate`` sets the actor's,
the critics' and the temperature's. CleanRL's ``policy_lr`` / ``q_lr`` are the actor's / the
critics' (and the temperature's). :data:`CONTINUOUS_PRESETS` maps names to factories;
``presets.py`` registers them like the others.

MuJoCo presets need the ``mujoco`` extra (``pip install "drivetrain[mujoco]"``, MuJoCo 4.0.0,
verified with Gymnasium 1.4's v5 environments); without it a run stops before it writes
anything, with a one-line message naming that extra.
"""

from __future__ import annotations

from collections.abc import Callable

from drivetrain.agents import SACConfig, TD3Config
from drivetrain.train.config import EnvConfig, ExperimentConfig, LoopConfig, ReplayConfig

__all__ = ["CONTINUOUS_PRESETS"]


def _loop(
    total: int,
    learning_starts: int,
    *,
    update_period: int = 1,
    gradient_steps: int = 1,
    batch_size: int = 256,
    eval_interval: int,
    log_interval: int,
    checkpoint_interval: int,
) -> LoopConfig:
    return LoopConfig(
        total_env_steps=total,
        learning_starts=learning_starts,
        update_period=update_period,
        gradient_steps=gradient_steps,
        batch_size=batch_size,
        eval_interval=eval_interval,
        eval_episodes=10,
        eval_num_envs=10,
        final_eval_episodes=10,
        log_interval=log_interval,
        checkpoint_interval=checkpoint_interval,
    )


def pendulum_sac() -> ExperimentConfig:
    """SAC on Pendulum-v1, rl-baselines3-zoo's tuned settings: 20k env steps (rl-zoo reports -157).

    Source: rl-baselines3-zoo, ``hyperparams/sac.yml``, entry ``Pendulum-v1``: n_timesteps 2e4,
    learning_rate 1e-3; with Stable-Baselines3's SAC defaults for the rest: buffer_size 1e6,
    learning_starts 100, batch_size 256, tau 0.005, gamma 0.99, train_freq 1, gradient_steps 1,
    ent_coef "auto" (starting at 1.0, target entropy -|A|), net_arch [256, 256], Adam ε 1e-8.
    drivetrain's additions: a greedy evaluation of 10 episodes every 2,000 env steps.
    """
    return ExperimentConfig(
        env=EnvConfig(name="Pendulum-v1", num_envs=1),
        agent=SACConfig(
            actor_learning_rate=1e-3,
            critic_learning_rate=1e-3,
            alpha_learning_rate=1e-3,
            compile="auto",  # 20k updates: the compilation pays on the first run (bench/compile_pays.py)
        ),
        replay=ReplayConfig(capacity=1_000_000),
        loop=_loop(20_000, 100, eval_interval=2_000, log_interval=1_000, checkpoint_interval=10_000),
    )


def pendulum_td3() -> ExperimentConfig:
    """TD3 on Pendulum-v1, rl-baselines3-zoo's tuned settings: 20k env steps (rl-zoo reports -152).

    Source: rl-baselines3-zoo, ``hyperparams/td3.yml``, entry ``Pendulum-v1`` (``Pendulum-v0``
    before Gymnasium): n_timesteps 2e4, gamma 0.98, buffer_size 2e5, learning_starts 1e4,
    noise_type normal with noise_std 0.1, learning_rate 1e-3, net_arch [400, 300]; train_freq
    [1, "episode"] and gradient_steps -1 (one episode of 200 steps, then 200 train steps), as
    the zoo had them until January 2024 (it now trains once per step: the same 10,000 updates,
    spread out; this preset keeps the episode's batch of them); with
    Stable-Baselines3's TD3 defaults for the rest: batch_size 256, tau 0.005, policy_delay 2,
    target_policy_noise 0.2, target_noise_clip 0.5. drivetrain's additions: a greedy evaluation
    of 10 episodes every 2,000 env steps.
    """
    return ExperimentConfig(
        env=EnvConfig(name="Pendulum-v1", num_envs=1),
        agent=TD3Config(
            actor_learning_rate=1e-3,
            critic_learning_rate=1e-3,
            gamma=0.98,
            exploration_noise=0.1,
            actor_layers=(400, 300),
            critic_layers=(400, 300),
        ),
        replay=ReplayConfig(capacity=200_000),
        loop=_loop(
            20_000,
            10_000,
            update_period=200,
            gradient_steps=200,
            eval_interval=2_000,
            log_interval=1_000,
            checkpoint_interval=10_000,
        ),
    )


def lunarlander_continuous_sac() -> ExperimentConfig:
    """SAC on LunarLanderContinuous-v3, rl-baselines3-zoo's tuned settings: 500k env steps.

    Source: rl-baselines3-zoo, ``hyperparams/sac.yml``, entry ``LunarLanderContinuous-v2`` (v3 is
    the same task with Gymnasium's fixes; ``LunarLander-v3`` with ``continuous=True``):
    n_timesteps 5e5, batch_size 256, learning_rate lin_7.3e-4, buffer_size 1e6, ent_coef "auto",
    gamma 0.99, tau 0.01, train_freq 1, gradient_steps 1, learning_starts 1e4, net_arch [400, 300].
    ``lin_7.3e-4`` is ``anneal_learning_rate`` (every learning rate decays linearly to 0 over the
    run's environment steps). Needs the ``box2d`` extra.
    """
    return ExperimentConfig(
        env=EnvConfig(name="LunarLanderContinuous-v3", num_envs=1),
        agent=SACConfig(
            actor_learning_rate=7.3e-4,
            critic_learning_rate=7.3e-4,
            alpha_learning_rate=7.3e-4,
            anneal_learning_rate=True,
            tau=0.01,
            actor_layers=(400, 300),
            critic_layers=(400, 300),
            compile="auto",  # 490k updates (bench/compile_pays.py)
        ),
        replay=ReplayConfig(capacity=1_000_000),
        loop=_loop(500_000, 10_000, eval_interval=25_000, log_interval=5_000, checkpoint_interval=50_000),
    )


def _cleanrl_sac(env_id: str) -> ExperimentConfig:
    return ExperimentConfig(
        env=EnvConfig(name=env_id, num_envs=1),
        agent=SACConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=1e-3,
            alpha_learning_rate=1e-3,
            compile="auto",  # 995k updates (bench/compile_pays.py)
        ),
        replay=ReplayConfig(capacity=1_000_000),
        loop=_loop(1_000_000, 5_000, eval_interval=50_000, log_interval=10_000, checkpoint_interval=100_000),
    )


def halfcheetah_sac() -> ExperimentConfig:
    """SAC on HalfCheetah-v5 (MuJoCo), CleanRL's settings: 1M env steps.

    Source: CleanRL ``sac_continuous_action.py`` (Huang et al. 2022, "CleanRL", JMLR 23):
    total_timesteps 1e6, buffer_size 1e6, gamma 0.99, tau 0.005, batch_size 256,
    learning_starts 5e3, policy_lr 3e-4, q_lr 1e-3 (the temperature's too), autotune (target
    entropy -|A|), [256, 256] ReLU networks, one critic update per env step. CleanRL updates the
    actor twice every second step (policy_frequency 2); drivetrain once every step, the same
    number of actor updates. Also drivetrain's (Stable-Baselines3's forms): the actor's log-std
    clamped to [-20, 2] (CleanRL squashes it into [-5, 2] with a tanh) and the temperature's
    loss -log α (log π + target) (CleanRL's -α (...)). Needs the ``mujoco`` extra.
    """
    return _cleanrl_sac("HalfCheetah-v5")


def hopper_sac() -> ExperimentConfig:
    """SAC on Hopper-v5 (MuJoCo), CleanRL's settings: 1M env steps.

    Source: CleanRL ``sac_continuous_action.py``, as ``halfcheetah-sac`` (its docstring has the
    values). Needs the ``mujoco`` extra.
    """
    return _cleanrl_sac("Hopper-v5")


def halfcheetah_td3() -> ExperimentConfig:
    """TD3 on HalfCheetah-v5 (MuJoCo), CleanRL's settings: 1M env steps.

    Source: CleanRL ``td3_continuous_action.py``: total_timesteps 1e6, learning_rate 3e-4 (actor
    and critics), buffer_size 1e6, gamma 0.99, tau 0.005, batch_size 256, policy_noise 0.2,
    noise_clip 0.5, exploration_noise 0.1, learning_starts 25e3, policy_frequency 2, [256, 256]
    ReLU networks. Needs the ``mujoco`` extra.
    """
    return ExperimentConfig(
        env=EnvConfig(name="HalfCheetah-v5", num_envs=1),
        agent=TD3Config(actor_learning_rate=3e-4, critic_learning_rate=3e-4, compile="auto"),  # 975k updates
        replay=ReplayConfig(capacity=1_000_000),
        loop=_loop(1_000_000, 25_000, eval_interval=50_000, log_interval=10_000, checkpoint_interval=100_000),
    )


CONTINUOUS_PRESETS: dict[str, Callable[[], ExperimentConfig]] = {
    "pendulum-sac": pendulum_sac,
    "pendulum-td3": pendulum_td3,
    "lunarlander-continuous-sac": lunarlander_continuous_sac,
    "halfcheetah-sac": halfcheetah_sac,
    "halfcheetah-td3": halfcheetah_td3,
    "hopper-sac": hopper_sac,
}
