"""``make_dqn``: a DQN agent, its Q-network and its optimizer from a :class:`DQNConfig`.

:func:`make_optimizer` and :func:`q_learning_kwargs` (the agent arguments that DQN and R2D2
take alike, the epsilon schedule among them) serve :func:`~drivetrain.agents.make_r2d2` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

import torch

from drivetrain.agents.dqn.agent import DQN
from drivetrain.agents.dqn.config import DQNConfig
from drivetrain.agents.dqn.loss import LossKind
from drivetrain.agents.optimizers import RMSpropTF
from drivetrain.core import seeding, types
from drivetrain.core.schedules import PolynomialDecay, Schedule
from drivetrain.networks import QNetwork

__all__ = ["QLearningKwargs", "make_dqn", "make_optimizer", "q_learning_kwargs"]


class QLearningKwargs(TypedDict):
    """The keyword arguments that :class:`DQN` and :class:`~drivetrain.agents.R2D2` both take."""

    gamma: float
    target_update_period: int
    target_update_tau: float
    n_step: int
    double: bool
    loss: LossKind
    huber_delta: float
    gradient_clipping: float | None
    reward_scale: float
    reward_clip: float | None
    epsilon_greedy: float | Schedule
    seed: seeding.Seed
    device: str | torch.device


def make_optimizer(config: DQNConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, RMSprop or RMSpropTF with the config's learning rate and constants."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate, eps=config.adam_eps)
    if config.optimizer == "rmsprop_tf":
        return RMSpropTF(
            params,
            lr=config.learning_rate,
            rho=config.rmsprop_alpha,
            eps=config.rmsprop_eps,
            momentum=config.rmsprop_momentum,
            centered=config.rmsprop_centered,
        )
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=config.learning_rate,
            alpha=config.rmsprop_alpha,
            eps=config.rmsprop_eps,
            momentum=config.rmsprop_momentum,
            centered=config.rmsprop_centered,
        )
    raise ValueError(
        f"DQNConfig.optimizer: expected 'adam', 'rmsprop' or 'rmsprop_tf', got {config.optimizer!r}"
    )


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
    return DQN(
        time_step_spec,
        action_spec,
        q_network,
        make_optimizer(config, q_network.parameters()),
        **q_learning_kwargs(config, policy_seed),
    )


def q_learning_kwargs(config: DQNConfig, policy_seed: seeding.Seed) -> QLearningKwargs:
    """The config's targets, loss, rewards and device, the polynomial epsilon decay, and ``policy_seed``."""
    return QLearningKwargs(
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
        epsilon_greedy=PolynomialDecay(
            config.epsilon_start, config.epsilon_end, config.epsilon_decay_steps, config.epsilon_power
        ),
        seed=policy_seed,
        device=config.device,
    )
