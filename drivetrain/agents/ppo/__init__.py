"""PPO (clipped surrogate, GAE, minibatch epochs; discrete, continuous and recurrent).

The names are imported on first use: ``config`` needs no PyTorch, the rest does.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.agents.ppo.agent import PPO
    from drivetrain.agents.ppo.builder import make_ppo
    from drivetrain.agents.ppo.config import PPOConfig

__all__ = ["PPO", "PPOConfig", "make_ppo"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".agent": ("PPO",),
        ".builder": ("make_ppo",),
        ".config": ("PPOConfig",),
    },
)
