"""``make_ppo``: a PPO agent and its actor-critic network from a :class:`PPOConfig`."""

from __future__ import annotations

from typing import Any

from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.ppo.agent import PPO
from drivetrain.agents.ppo.config import PPOConfig
from drivetrain.core import seeding, types
from drivetrain.core.schedules import LinearDecay, Schedule

__all__ = ["make_ppo"]


def make_ppo(
    config: PPOConfig,
    time_step_spec: types.TimeStep,
    action_spec: Any,
    seed: int | None = None,
    *,
    planned_updates: int | None = None,
) -> PPO:
    """Builds the network (seeded) and the agent (sampling and minibatches seeded).

    ``planned_updates``: the number of ``train`` calls the run will make; with
    ``config.anneal_learning_rate`` the learning rate decays linearly to 0 over them.
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
        seed=network_seed,
    )
    learning_rate: float | Schedule = config.learning_rate
    if config.anneal_learning_rate and planned_updates:
        learning_rate = LinearDecay(config.learning_rate, 0.0, planned_updates)
    return PPO(time_step_spec, action_spec, network, config, learning_rate=learning_rate, seed=agent_seed)
