"""SAC (Soft Actor-Critic: twin critics, Polyak targets, automatic entropy temperature).

The names are imported on first use: ``config`` needs no PyTorch, the rest does.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.agents.sac.agent import SAC
    from drivetrain.agents.sac.builder import make_sac
    from drivetrain.agents.sac.config import SACConfig

__all__ = ["SAC", "SACConfig", "make_sac"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".agent": ("SAC",),
        ".builder": ("make_sac",),
        ".config": ("SACConfig",),
    },
)
