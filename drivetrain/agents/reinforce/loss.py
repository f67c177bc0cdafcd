"""The REINFORCE loss (Williams 1992), as a pure function.

Over the items of a batch (those with ``mask``)::

    policy   = -mean( log π(a | o) · A )        A: the returns (normalized, as the book does),
                                               or returns minus the baseline's values
    value    = ½ mean( (V - G)² )               (with a baseline)
    loss     = policy + vf_coef · value - ent_coef · mean(H[π])

The gradient of ``policy`` is the score-function estimate of the policy gradient,
``-mean(A · ∇ log π)``: the book's ``np.mean([reward * grads ...])`` in one autograd call.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["ReinforceLossTerms", "reinforce_loss"]


class ReinforceLossTerms(NamedTuple):
    loss: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor


def normalized(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / std`` over the masked items (population std, as NumPy's and the book's).

    In float64: equal values then have a mean equal to each of them, so they normalize to 0, not
    to ±1 from float32 rounding (a std of 1e-7 divided into a rounding error)."""
    x64 = x.double()
    values = x64[mask]
    std = values.std(unbiased=False) if values.numel() > 1 else values.new_ones(())
    return ((x64 - values.mean()) / (std + 1e-8)).to(x.dtype)


def reinforce_loss(
    log_prob: torch.Tensor,
    returns: torch.Tensor,
    value: torch.Tensor | None,
    entropy: torch.Tensor,
    mask: torch.Tensor,
    *,
    normalize: bool,
    vf_coef: float,
    ent_coef: float,
) -> ReinforceLossTerms:
    """The loss over the items where ``mask`` is True; ``value`` None: no baseline."""
    mask = mask.to(torch.bool)
    advantages = returns if value is None else returns - value.detach()
    if normalize:
        advantages = normalized(advantages, mask)
    policy_loss = -(log_prob * advantages)[mask].mean()
    value_loss = log_prob.new_zeros(()) if value is None else 0.5 * ((value - returns) ** 2)[mask].mean()
    entropy_mean = entropy[mask].mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy_mean
    return ReinforceLossTerms(loss, policy_loss.detach(), value_loss.detach(), entropy_mean.detach())
