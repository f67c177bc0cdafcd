"""Recurrent DQN (R2D2-style): config, stateful Q policy, sequence loss, agent and builder.

The names are imported on first use: ``config`` needs no PyTorch, the rest does.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.agents.r2d2.agent import R2D2
    from drivetrain.agents.r2d2.builder import R2D2Builder, make_r2d2
    from drivetrain.agents.r2d2.config import R2D2Config
    from drivetrain.agents.r2d2.policy import RecurrentQPolicy

__all__ = ["R2D2", "R2D2Builder", "R2D2Config", "RecurrentQPolicy", "make_r2d2"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".agent": ("R2D2",),
        ".builder": ("R2D2Builder", "make_r2d2"),
        ".config": ("R2D2Config",),
        ".policy": ("RecurrentQPolicy",),
    },
)
