"""Action distributions of stochastic policies: categorical and Gaussian (clipped to the bounds).

Sampling happens in NumPy with the policy's own seeded generator (so a run is
reproducible and its RNG state goes into checkpoints, as the epsilon-greedy policy's
does); log-probabilities and entropies are computed in PyTorch, where the losses need
their gradients, and the policy reports them with the same functions.

**Discrete** actions ``minimum..maximum`` (a scalar integer ``BoundedArraySpec``): the
network outputs logits ``[B, n]``; ``log π(a) = log_softmax(logits)[a - minimum]``.

**Continuous** actions (a float ``BoundedArraySpec`` of shape ``(d,)``): the network
outputs a mean ``[B, d]``, and a state-independent ``log_std [d]`` is learned. The policy
draws ``u ~ N(mean, std)``, sends ``clip(u, minimum, maximum)`` to the environment (so the
action always respects the spec) and stores ``u`` in ``policy_info["raw_action"]``. The
log-probability is that of ``u``, ``Σ log N(u_i; mean_i, std_i)``: clipping is part of
how the environment reads the action, not of the policy, so the likelihood ratio of PPO
and the score function of REINFORCE stay exact (the clipped action's density would have
point masses at the bounds). The entropy is the Gaussian's, ``Σ (½ log(2πe) + log_std)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from drivetrain.core import specs

__all__ = [
    "categorical_entropy",
    "categorical_log_prob",
    "categorical_log_prob_and_entropy",
    "gaussian_entropy",
    "gaussian_log_prob",
    "is_continuous",
    "sample_categorical",
    "sample_gaussian",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def is_continuous(action_spec: Any) -> bool:
    """True for a float ``BoundedArraySpec`` of shape ``(d,)``, False for a scalar integer one.

    Raises a TypeError naming the spec for anything else.
    """
    if isinstance(action_spec, specs.BoundedArraySpec):
        if action_spec.shape == () and np.issubdtype(action_spec.dtype, np.integer):
            return False
        if len(action_spec.shape) == 1 and np.issubdtype(action_spec.dtype, np.floating):
            if not (np.all(np.isfinite(action_spec.minimum)) and np.all(np.isfinite(action_spec.maximum))):
                raise TypeError(f"continuous actions need finite bounds, got {action_spec!r}")
            return True
    raise TypeError(
        "actor-critic agents take a scalar integer BoundedArraySpec (discrete actions) or a float "
        f"BoundedArraySpec of shape (d,) (continuous actions), got {action_spec!r}"
    )


# ---------------------------------------------------------------------- categorical
def categorical_log_prob(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[index]``: logits ``[..., n]``, index ``[...]`` (0-based) -> ``[...]``."""
    log_p = functional.log_softmax(logits, dim=-1)
    return log_p.gather(-1, index.long().unsqueeze(-1)).squeeze(-1)


def categorical_log_prob_and_entropy(
    logits: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`categorical_log_prob` and :func:`categorical_entropy` from one ``log_softmax``."""
    log_p = functional.log_softmax(logits, dim=-1)
    return log_p.gather(-1, index.long().unsqueeze(-1)).squeeze(-1), -(log_p.exp() * log_p).sum(-1)


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    """``-Σ p log p`` over the last axis."""
    log_p = functional.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def sample_categorical(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``logits [B, n]`` (float64 inverse CDF on one uniform draw per row)."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(z))[:, None] * cdf[:, -1:]
    index: np.ndarray = np.minimum((cdf <= u).sum(axis=1), z.shape[1] - 1)
    return index


# ---------------------------------------------------------------------- gaussian
def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """``Σ_i log N(raw_i; mean_i, exp(log_std_i))`` over the last axis."""
    z = (raw - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - _HALF_LOG_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor, batch_shape: torch.Size) -> torch.Tensor:
    """``Σ_i (½ log(2πe) + log_std_i)``, broadcast to ``batch_shape``."""
    value = (log_std + 0.5 + _HALF_LOG_2PI).sum(-1)
    return value.expand(batch_shape)


def sample_gaussian(
    mean: np.ndarray, std: np.ndarray, spec: specs.BoundedArraySpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(action, raw)``: ``raw ~ N(mean, std)`` float32 and ``action = clip(raw)`` in the spec's dtype."""
    raw = (mean + std * rng.standard_normal(mean.shape)).astype(np.float32)
    action = np.clip(raw, spec.minimum, spec.maximum).astype(spec.dtype)
    return action, raw
