"""``make_reinforce``: a REINFORCE agent and its policy network from a :class:`ReinforceConfig`."""

from __future__ import annotations

from typing import Any

from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.reinforce.agent import Reinforce
from drivetrain.agents.reinforce.config import ReinforceConfig
from drivetrain.core import seeding, types

__all__ = ["make_reinforce"]


def make_reinforce(
    config: ReinforceConfig, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None = None
) -> Reinforce:
    """Builds the network (seeded) and the agent (its sampling seeded)."""
    network_seed, agent_seed = seeding.spawn_seeds(seed, 2)
    network = ActorCriticNetwork(time_step_spec.observation, action_spec, config.layers, seed=network_seed)
    return Reinforce(time_step_spec, action_spec, network, config, seed=agent_seed)
