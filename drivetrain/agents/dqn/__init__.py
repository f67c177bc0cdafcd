"""DQN: config, Q policy, loss, agent and builder."""

from drivetrain.agents.dqn.agent import DQN
from drivetrain.agents.dqn.builder import DQNBuilder, make_dqn, make_optimizer
from drivetrain.agents.dqn.config import DQNConfig
from drivetrain.agents.dqn.policy import QPolicy

__all__ = ["DQN", "DQNBuilder", "DQNConfig", "QPolicy", "make_dqn", "make_optimizer"]
