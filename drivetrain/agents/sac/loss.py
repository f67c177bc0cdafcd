"""The SAC losses (Haarnoja et al. 2018), as pure functions.

With ``weight`` averaging over the valid transitions (it sums to 1 over them)::

    target       y = r + discount · (min_i Q'_i(s', a') - α log π(a' | s')),   a' ~ π(· | s')
    critic_loss    = ½ Σ_i mean( (Q_i(s, a) - y)² )
    actor_loss     = mean( α log π(ã | s) - min_i Q_i(s, ã) ),                    ã ~ π(· | s), reparameterized
    alpha_loss     = -mean( log α · (log π(ã | s) + target_entropy) )            (log π detached)

``discount`` is ``γ`` where the target bootstraps (a truncation included) and 0 after a
termination; ``α`` in the target and in the actor loss is a constant (no gradient).
Log-probabilities are those of unit actions (tanh-squashed, with the Jacobian term).
"""

from __future__ import annotations

import torch

from drivetrain.agents.continuous.loss import critic_loss

__all__ = ["actor_loss", "critic_loss", "critic_target", "temperature_loss"]


def critic_target(
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: torch.Tensor | float,
) -> torch.Tensor:
    """``r + discount · (next_q - α · next_log_prob)``; ``next_q`` is the minimum over the target critics ``[B]``."""
    return reward + discount * (next_q - alpha * next_log_prob)


def actor_loss(
    q: torch.Tensor, log_prob: torch.Tensor, alpha: torch.Tensor | float, weight: torch.Tensor
) -> torch.Tensor:
    """``Σ_b weight_b (α log π_b - q_b)``; ``q`` is the minimum over the critics of the sampled actions."""
    return ((alpha * log_prob - q) * weight).sum()


def temperature_loss(
    log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float, weight: torch.Tensor
) -> torch.Tensor:
    """``-Σ_b weight_b log α (log π_b + target_entropy)``: raises α when the entropy ``-log π`` falls
    below the target, lowers it above."""
    return -(log_alpha * (log_prob.detach() + target_entropy) * weight).sum()
