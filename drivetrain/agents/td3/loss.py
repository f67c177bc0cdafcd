"""The TD3 losses (Fujimoto et al. 2018), as pure functions; DDPG's with one critic and no smoothing.

With ``weight`` averaging over the valid transitions (it sums to 1 over them)::

    smoothed a'  = clip(tanh(mean'(s')) + clip(σ ε, -c, c), -1, 1)        target policy smoothing
    target     y = r + discount · min_i Q'_i(s', a')                       clipped double Q
    critic_loss  = ½ Σ_i mean( (Q_i(s, a) - y)² )
    actor_loss   = -mean( Q_1(s, tanh(mean(s))) )                          every policy_delay steps

``mean'`` is the target actor's pre-tanh output, ``ε`` standard normal, actions in unit scale;
``discount`` is ``γ`` where the target bootstraps (a truncation included), 0 after a termination.
"""

from __future__ import annotations

import torch

from drivetrain.agents.continuous.loss import critic_loss

__all__ = ["actor_loss", "critic_loss", "critic_target", "smoothed_target_action"]


def smoothed_target_action(
    target_mean: torch.Tensor, noise: torch.Tensor, noise_std: float, noise_clip: float
) -> torch.Tensor:
    """``clip(tanh(target_mean) + clip(noise_std · noise, -noise_clip, noise_clip), -1, 1)``."""
    smoothing = torch.clamp(noise_std * noise, -noise_clip, noise_clip)
    return torch.clamp(torch.tanh(target_mean) + smoothing, -1.0, 1.0)


def critic_target(reward: torch.Tensor, discount: torch.Tensor, next_q: torch.Tensor) -> torch.Tensor:
    """``r + discount · next_q``; ``next_q`` is the minimum over the target critics ``[B]``."""
    return reward + discount * next_q


def actor_loss(q: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``-Σ_b weight_b q_b`` with ``q`` the first critic's value of the actor's actions."""
    return -(q * weight).sum()
