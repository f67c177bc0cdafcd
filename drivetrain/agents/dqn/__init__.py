"""DQN: config, Q policy, loss, agent and builder.

The names are imported on first use: ``config`` needs no PyTorch, the rest does.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.agents.dqn.agent import DQN
    from drivetrain.agents.dqn.builder import DQNBuilder, make_dqn, make_optimizer
    from drivetrain.agents.dqn.config import DQNConfig
    from drivetrain.agents.dqn.policy import QPolicy

__all__ = ["DQN", "DQNBuilder", "DQNConfig", "QPolicy", "make_dqn", "make_optimizer"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".agent": ("DQN",),
        ".builder": ("DQNBuilder", "make_dqn", "make_optimizer"),
        ".config": ("DQNConfig",),
        ".policy": ("QPolicy",),
    },
)
