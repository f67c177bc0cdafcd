"""The PPO loss (Schulman et al. 2017, "Proximal Policy Optimization Algorithms"), as a pure function.

For the items of a minibatch (those with ``mask``), with ``r = exp(log π_new(a) - log π_old(a))``::

    policy   = mean( max(-A · r, -A · clip(r, 1 - ε, 1 + ε)) )
    value    = ½ mean( (V - R)² )                                    or, with value clipping c,
             = ½ mean( max((V - R)², (V_old + clip(V - V_old, -c, c) - R)²) )
    entropy  = mean( H[π_new] )
    loss     = policy + vf_coef · value - ent_coef · entropy

``A`` are the advantages (normalized to zero mean and unit variance over the minibatch's
items when ``normalize_advantages``), ``R`` the returns (``A + V_old`` before
normalization: the λ-returns), ``V_old`` the values the collect policy reported.
Diagnostics: the approximate KL divergence ``mean((r - 1) - log r)`` (Schulman's
low-variance estimator) and the fraction of items whose ratio was clipped.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["PPOLossTerms", "ppo_loss"]


class PPOLossTerms(NamedTuple):
    """The total loss (with gradients) and its parts (detached scalars)."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    approx_kl: torch.Tensor
    clip_fraction: torch.Tensor


def _mean(x: torch.Tensor, mask: torch.Tensor | None, count: torch.Tensor) -> torch.Tensor:
    if mask is None:  # every item counts: the common case of flat minibatches
        return x.mean()
    return torch.where(mask, x, torch.zeros_like(x)).sum() / count


def ppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    value: torch.Tensor,
    old_value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    mask: torch.Tensor | None,
    *,
    clip_ratio: float | torch.Tensor,
    value_clip: float | None,
    vf_coef: float,
    ent_coef: float,
    normalize_advantages: bool,
) -> PPOLossTerms:
    """The PPO loss over the items where ``mask`` is True (all tensors share one shape; None: all).

    ``clip_ratio`` may be a 0-d tensor (a compiled update's input): float64 gives the bounds
    ``1 ± ε`` a Python float would.
    """
    if mask is not None:
        mask = mask.to(torch.bool)
        count = mask.sum().clamp(min=1).to(log_prob.dtype)
    else:
        count = torch.tensor(float(log_prob.numel()), dtype=log_prob.dtype)
    if normalize_advantages:  # in float64: equal advantages normalize to 0, not to float32 rounding
        adv64, count64 = advantages.double(), count.double()
        mean = _mean(adv64, mask, count64)
        var = _mean((adv64 - mean) ** 2, mask, count64) * count64 / (count64 - 1).clamp(min=1)
        advantages = ((adv64 - mean) / (var.sqrt() + 1e-8)).to(advantages.dtype)
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    low, high = 1.0 - clip_ratio, 1.0 + clip_ratio  # both floats or both 0-d tensors
    surrogate = torch.max(-advantages * ratio, -advantages * ratio.clamp(low, high))  # type: ignore[arg-type]
    policy_loss = _mean(surrogate, mask, count)
    error = (value - returns) ** 2
    if value_clip is not None:
        clipped = old_value + (value - old_value).clamp(-value_clip, value_clip)
        error = torch.max(error, (clipped - returns) ** 2)
    value_loss = 0.5 * _mean(error, mask, count)
    entropy_mean = _mean(entropy, mask, count)
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    with torch.no_grad():
        approx_kl = _mean((ratio - 1.0) - log_ratio, mask, count)
        clip_fraction = _mean(((ratio - 1.0).abs() > clip_ratio).to(ratio.dtype), mask, count)
    return PPOLossTerms(
        loss, policy_loss.detach(), value_loss.detach(), entropy_mean.detach(), approx_kl, clip_fraction
    )
