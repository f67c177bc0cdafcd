"""Agents (PyTorch): one folder per agent (config, loss, policy, agent, builder).

``DQN`` (feed-forward, windows of ``n_step + 1`` steps) and ``R2D2`` (recurrent, sequences
with a burn-in and the stored policy state) share one protocol, so the training loop and
the drivers run either; :func:`make_agent` builds the one a config asks for. Both subclass
:class:`QLearningAgent` (networks, policies, the update after the loss, checkpoints).
"""

from drivetrain.agents.dqn import DQN, DQNConfig, QPolicy, make_dqn, make_optimizer
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.q_learning import QLearningAgent
from drivetrain.agents.r2d2 import R2D2, R2D2Config, RecurrentQPolicy, make_agent, make_r2d2
from drivetrain.export import ExportedPolicy, export_policy, load_exported_policy

__all__ = [
    "DQN",
    "R2D2",
    "DQNConfig",
    "ExportedPolicy",
    "LossInfo",
    "QLearningAgent",
    "QPolicy",
    "R2D2Config",
    "RecurrentQPolicy",
    "export_policy",
    "load_exported_policy",
    "make_agent",
    "make_dqn",
    "make_optimizer",
    "make_r2d2",
]
