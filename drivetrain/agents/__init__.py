"""Agents (PyTorch): one folder per agent (config, loss, policy, agent, builder)."""

from drivetrain.agents.dqn import DQN, DQNConfig, QPolicy, make_dqn, make_optimizer
from drivetrain.agents.loss_info import LossInfo
from drivetrain.export import ExportedPolicy, export_policy, load_exported_policy

__all__ = [
    "DQN",
    "DQNConfig",
    "ExportedPolicy",
    "LossInfo",
    "QPolicy",
    "export_policy",
    "load_exported_policy",
    "make_dqn",
    "make_optimizer",
]
