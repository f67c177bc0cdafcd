"""PPO (clipped surrogate, GAE, minibatch epochs; discrete, continuous and recurrent)."""

from drivetrain.agents.ppo.agent import PPO
from drivetrain.agents.ppo.builder import make_ppo
from drivetrain.agents.ppo.config import PPOConfig

__all__ = ["PPO", "PPOConfig", "make_ppo"]
