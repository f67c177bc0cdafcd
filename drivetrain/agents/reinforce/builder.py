"""``make_reinforce``: a REINFORCE agent and its policy network from a :class:`ReinforceConfig`."""

from __future__ import annotations

from typing import Any, ClassVar

from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.protocol import RunPlan, on_policy_problems, register_builder
from drivetrain.agents.reinforce.agent import Reinforce
from drivetrain.agents.reinforce.config import ReinforceConfig
from drivetrain.core import seeding, types
from drivetrain.core.policy import Policy
from drivetrain.replay.sources import RolloutSource

__all__ = ["ReinforceBuilder", "make_reinforce"]


def make_reinforce(
    config: ReinforceConfig, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None = None
) -> Reinforce:
    """Builds the network (seeded) and the agent (its sampling seeded)."""
    network_seed, agent_seed = seeding.spawn_seeds(seed, 2)
    network = ActorCriticNetwork(time_step_spec.observation, action_spec, config.layers, seed=network_seed)
    return Reinforce(time_step_spec, action_spec, network, config, seed=agent_seed)


class ReinforceBuilder:
    """REINFORCE from a :class:`ReinforceConfig`; its experience: the episodes that ended in each
    rollout of ``rollout_steps`` per environment, one gradient step on all of them; no warm-up."""

    kind: ClassVar[str] = "reinforce"
    config_type: ClassVar[type] = ReinforceConfig
    changeable_on_resume: ClassVar[frozenset[str]] = frozenset(
        {"learning_rate", "gamma", "normalize_returns", "vf_coef", "ent_coef", "max_grad_norm", "device"}
    )

    def make_agent(
        self, config: Any, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None, plan: RunPlan
    ) -> Reinforce:
        del plan
        return make_reinforce(config, time_step_spec, action_spec, seed)

    def make_source(self, agent: Any, replay: Any, plan: RunPlan, seed: int) -> RolloutSource:
        del replay, seed
        return RolloutSource(
            agent.collect_data_spec,
            plan.num_envs,
            prepare=agent.prepare,
            num_epochs=1,
            num_minibatches=1,
            rng=agent.minibatch_rng,
        )

    def update_period(self, config: Any, plan: RunPlan) -> int:
        return int(config.rollout_steps) * plan.num_envs

    def warmup_policy(self, agent: Any, seed: int) -> Policy | None:
        del agent, seed
        return None

    def check(self, config: Any, plan: RunPlan) -> list[str]:
        del config
        return on_policy_problems("REINFORCE", plan)


register_builder(ReinforceBuilder())
