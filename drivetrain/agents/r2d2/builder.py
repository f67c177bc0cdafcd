"""``make_r2d2``: a recurrent DQN agent, its recurrent Q-network and its optimizer from an :class:`R2D2Config`.

``make_agent`` picks the builder by the config's type (``R2D2Config`` -> :func:`make_r2d2`, any
other ``DQNConfig`` -> :func:`~drivetrain.agents.make_dqn`), for code that builds either agent.
"""

from __future__ import annotations

from typing import Any

from drivetrain.agents.dqn.agent import DQN
from drivetrain.agents.dqn.builder import make_dqn, make_optimizer, q_learning_kwargs
from drivetrain.agents.dqn.config import DQNConfig
from drivetrain.agents.r2d2.agent import R2D2
from drivetrain.agents.r2d2.config import R2D2Config
from drivetrain.core import seeding, types
from drivetrain.networks.recurrent import RecurrentQNetwork

__all__ = ["make_agent", "make_r2d2"]


def make_r2d2(
    config: R2D2Config, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None = None
) -> R2D2:
    """Builds the recurrent Q-network (seeded), the optimizer and the agent (collect policy seeded).

    The same ``seed`` gives the same initial weights and the same exploration.
    """
    network_seed, policy_seed = seeding.spawn_seeds(seed, 2)
    q_network = RecurrentQNetwork(
        time_step_spec.observation,
        action_spec,
        core=config.core,
        hidden_size=config.hidden_size,
        fc_layers=config.fc_layers,
        conv_layers=config.conv_layers,
        dueling=config.dueling,
        seed=network_seed,
    ).to(config.device)
    return R2D2(
        time_step_spec,
        action_spec,
        q_network,
        make_optimizer(config, q_network.parameters()),
        sequence_length=config.sequence_length,
        burn_in=config.burn_in,
        initial_state=config.initial_state,
        priority_eta=config.priority_eta,
        **q_learning_kwargs(config, policy_seed),
    )


def make_agent(
    config: DQNConfig, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None = None
) -> DQN | R2D2:
    """:func:`make_r2d2` for an :class:`R2D2Config`, :func:`~drivetrain.agents.make_dqn` otherwise."""
    if isinstance(config, R2D2Config):
        return make_r2d2(config, time_step_spec, action_spec, seed)
    return make_dqn(config, time_step_spec, action_spec, seed)
