"""The critics' loss that SAC and TD3 share, as a pure function."""

from __future__ import annotations

import torch

__all__ = ["critic_loss"]


def critic_loss(q: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``½ Σ_i Σ_b weight_b (q[i, b] - target_b)²`` for the critics' values ``q [N, B]``.

    ``weight`` sums to 1 over the valid transitions, so each critic's term is half its mean
    squared TD error (Stable-Baselines3's ``0.5 * sum(mse(q_i, y))``)."""
    return 0.5 * (((q - target) ** 2) * weight).sum()
