"""``make_dqn``: a DQN agent, its Q-network and its optimizer from a :class:`DQNConfig`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from drivetrain.agents.dqn.agent import DQN
from drivetrain.agents.dqn.config import DQNConfig
from drivetrain.core import seeding, types
from drivetrain.core.schedules import PolynomialDecay
from drivetrain.networks import QNetwork

__all__ = ["make_dqn", "make_optimizer"]


def make_optimizer(config: DQNConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam or RMSprop with the config's learning rate and constants."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate, eps=config.adam_eps)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=config.learning_rate,
            alpha=config.rmsprop_alpha,
            eps=config.rmsprop_eps,
            momentum=config.rmsprop_momentum,
            centered=config.rmsprop_centered,
        )
    raise ValueError(f"DQNConfig.optimizer: expected 'adam' or 'rmsprop', got {config.optimizer!r}")


def make_dqn(
    config: DQNConfig, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None = None
) -> DQN:
    """Builds the Q-network (seeded), the optimizer and the agent (collect policy seeded).

    The same ``seed`` gives the same initial weights and the same exploration.
    """
    network_seed, policy_seed = seeding.spawn_seeds(seed, 2)
    q_network = QNetwork(
        time_step_spec.observation,
        action_spec,
        conv_layers=config.conv_layers,
        fc_layers=config.fc_layers,
        dueling=config.dueling,
        seed=network_seed,
    ).to(config.device)
    epsilon = PolynomialDecay(
        config.epsilon_start, config.epsilon_end, config.epsilon_decay_steps, config.epsilon_power
    )
    return DQN(
        time_step_spec,
        action_spec,
        q_network,
        make_optimizer(config, q_network.parameters()),
        gamma=config.gamma,
        target_update_period=config.target_update_period,
        target_update_tau=config.target_update_tau,
        n_step=config.n_step,
        double=config.double,
        loss=config.loss,
        huber_delta=config.huber_delta,
        gradient_clipping=config.gradient_clipping,
        reward_scale=config.reward_scale,
        reward_clip=config.reward_clip,
        epsilon_greedy=epsilon,
        seed=policy_seed,
        device=config.device,
    )
