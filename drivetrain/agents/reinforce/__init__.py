"""REINFORCE (Monte-Carlo policy gradient, optional baseline).

The names are imported on first use: ``config`` needs no PyTorch, the rest does.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.agents.reinforce.agent import Reinforce
    from drivetrain.agents.reinforce.builder import make_reinforce
    from drivetrain.agents.reinforce.config import ReinforceConfig

__all__ = ["Reinforce", "ReinforceConfig", "make_reinforce"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".agent": ("Reinforce",),
        ".builder": ("make_reinforce",),
        ".config": ("ReinforceConfig",),
    },
)
