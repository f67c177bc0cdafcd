"""TD3 (twin critics, target policy smoothing, delayed actor updates) and DDPG as its special case."""

from drivetrain.agents.td3.agent import TD3
from drivetrain.agents.td3.builder import make_td3
from drivetrain.agents.td3.config import TD3Config

__all__ = ["TD3", "TD3Config", "make_td3"]
