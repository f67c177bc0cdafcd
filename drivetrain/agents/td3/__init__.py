"""TD3 (twin critics, target policy smoothing, delayed actor updates) and DDPG as its special case.

The names are imported on first use: ``config`` needs no PyTorch, the rest does.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.agents.td3.agent import TD3
    from drivetrain.agents.td3.builder import make_td3
    from drivetrain.agents.td3.config import TD3Config

__all__ = ["TD3", "TD3Config", "make_td3"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".agent": ("TD3",),
        ".builder": ("make_td3",),
        ".config": ("TD3Config",),
    },
)
