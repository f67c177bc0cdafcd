"""REINFORCE (Monte-Carlo policy gradient, optional baseline)."""

from drivetrain.agents.reinforce.agent import Reinforce
from drivetrain.agents.reinforce.builder import make_reinforce
from drivetrain.agents.reinforce.config import ReinforceConfig

__all__ = ["Reinforce", "ReinforceConfig", "make_reinforce"]
