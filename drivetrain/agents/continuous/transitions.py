"""The batch the continuous-control losses take: 1-step transitions as tensors.

:meth:`~drivetrain.agents.continuous.agent.OffPolicyActorCritic.transitions` makes them from
replay windows; the eager and the compiled updates of SAC and TD3 read them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

__all__ = ["Transitions"]


class Transitions(NamedTuple):
    """1-step transitions of a batch, as tensors; ``weight`` sums to 1 over the valid windows."""

    observation: Any
    action: torch.Tensor
    """Unit actions ``[B, d]`` (the replay's environment actions, rescaled)."""
    reward: torch.Tensor
    discount: torch.Tensor
    """``γ`` where the target bootstraps (also at a truncation), 0 after a termination."""
    next_observation: Any
    weight: torch.Tensor
    """``valid / num_valid``: a masked mean is ``(x * weight).sum()``."""
    num_valid: int
