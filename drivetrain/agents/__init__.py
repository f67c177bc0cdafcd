"""Agents (PyTorch): one folder per agent (config, loss, policy, agent, builder)."""

from drivetrain.agents.dqn import DQN, DQNConfig, QPolicy, make_dqn, make_optimizer
from drivetrain.agents.loss_info import LossInfo

__all__ = ["DQN", "DQNConfig", "LossInfo", "QPolicy", "make_dqn", "make_optimizer"]
