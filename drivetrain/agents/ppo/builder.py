"""``make_ppo``: a PPO agent and its actor-critic network from a :class:`PPOConfig`."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.ppo.agent import PPO
from drivetrain.agents.ppo.config import PPOConfig
from drivetrain.agents.protocol import RunPlan, on_policy_problems, register_builder
from drivetrain.core import seeding, types
from drivetrain.core.policy import Policy
from drivetrain.core.schedules import LinearDecay, Schedule
from drivetrain.replay.sources import RolloutSource

__all__ = ["PPOBuilder", "make_ppo"]


def make_ppo(
    config: PPOConfig,
    time_step_spec: types.TimeStep,
    action_spec: Any,
    seed: int | None = None,
    *,
    planned_rollouts: int | None = None,
) -> PPO:
    """Builds the network (seeded) and the agent (sampling and minibatches seeded).

    ``planned_rollouts``: the number of rollouts the run will train on; with
    ``config.anneal_learning_rate`` (``anneal_clip_ratio``) the learning rate (the clip ratio)
    decays linearly to 0 over them, one step per rollout as CleanRL and Stable-Baselines3 do.
    """
    network_seed, agent_seed = seeding.spawn_seeds(seed, 2)
    network = ActorCriticNetwork(
        time_step_spec.observation,
        action_spec,
        config.layers,
        shared=config.shared,
        core=config.core,
        hidden_size=config.hidden_size,
        initial_log_std=config.initial_log_std,
        normalize_observations=config.normalize_observations,
        seed=network_seed,
    )
    learning_rate: float | Schedule = config.learning_rate
    clip_ratio: float | Schedule = config.clip_ratio
    if planned_rollouts:
        if config.anneal_learning_rate:
            learning_rate = LinearDecay(config.learning_rate, 0.0, planned_rollouts)
        if config.anneal_clip_ratio:
            clip_ratio = LinearDecay(config.clip_ratio, 0.0, planned_rollouts)
    return PPO(
        time_step_spec,
        action_spec,
        network,
        config,
        learning_rate=learning_rate,
        clip_ratio=clip_ratio,
        seed=agent_seed,
    )


class PPOBuilder:
    """PPO from a :class:`PPOConfig`; its experience: rollouts of ``rollout_steps`` per environment,
    trained on for ``num_epochs`` x ``num_minibatches`` and released; no warm-up."""

    kind: ClassVar[str] = "ppo"
    config_type: ClassVar[type] = PPOConfig
    changeable_on_resume: ClassVar[frozenset[str]] = frozenset(
        {
            "learning_rate",
            "anneal_learning_rate",
            "num_epochs",
            "num_minibatches",
            "gamma",
            "gae_lambda",
            "clip_ratio",
            "value_clip",
            "vf_coef",
            "ent_coef",
            "max_grad_norm",
            "normalize_advantages",
            "target_kl",
            "anneal_clip_ratio",
            "device",
            "compile",
        }
    )

    def make_agent(
        self, config: Any, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None, plan: RunPlan
    ) -> PPO:
        rollouts = math.ceil(plan.total_env_steps / self.update_period(config, plan))
        return make_ppo(config, time_step_spec, action_spec, seed, planned_rollouts=rollouts)

    def make_source(self, agent: Any, replay: Any, plan: RunPlan, seed: int) -> RolloutSource:
        del replay, seed  # minibatches are shuffled by the agent's generator (checkpointed with it)
        c = agent.config
        return RolloutSource(
            agent.collect_data_spec,
            plan.num_envs,
            prepare=agent.prepare,
            num_epochs=c.num_epochs,
            num_minibatches=c.num_minibatches,
            rng=agent.minibatch_rng,
            sequences=agent.recurrent,
            stop=agent.stop_epochs,
            finish=agent.finish_rollout,
        )

    def update_period(self, config: Any, plan: RunPlan) -> int:
        return int(config.rollout_steps) * plan.num_envs

    def warmup_policy(self, agent: Any, seed: int) -> Policy | None:
        del agent, seed
        return None

    def check(self, config: Any, plan: RunPlan) -> list[str]:
        problems = on_policy_problems("PPO", plan)
        if config.core is not None and config.num_minibatches > plan.num_envs:
            problems.append(
                f"agent.num_minibatches ({config.num_minibatches}) exceeds env.num_envs ({plan.num_envs}): "
                "a recurrent PPO's minibatches are whole sequences of some environments"
            )
        return problems


register_builder(PPOBuilder())
