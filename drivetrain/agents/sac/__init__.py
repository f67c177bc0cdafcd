"""SAC (Soft Actor-Critic: twin critics, Polyak targets, automatic entropy temperature)."""

from drivetrain.agents.sac.agent import SAC
from drivetrain.agents.sac.builder import make_sac
from drivetrain.agents.sac.config import SACConfig

__all__ = ["SAC", "SACConfig", "make_sac"]
