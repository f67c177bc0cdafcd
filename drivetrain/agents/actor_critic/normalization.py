"""Running statistics for observation normalization and reward scaling (policy-gradient agents).

:class:`RunningMeanStd` keeps a running mean and variance (Chan et al.'s parallel update,
float64) as module buffers, so they travel with the network's ``state_dict`` into
checkpoints and exported programs. Observations are normalized inside the network,
``clip((o - mean) / sqrt(var + ε), -clip, clip)``; the statistics are updated between
updates, never while a rollout is collected or trained on, so the policy that trains on a
rollout sees the observations as the policy that collected it did.

:func:`discounted_returns` is what reward scaling divides by the standard deviation of
(Stable-Baselines3's ``VecNormalize``, CleanRL's ``NormalizeReward``): the running
discounted return ``R_t = γ R_{t-1} + r_t`` of each environment, restarted at every FIRST and
carried from one rollout to the next (each item folded in once, in order).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from drivetrain.core import types

__all__ = ["RunningMeanStd", "discounted_returns"]

_FIRST = int(types.StepType.FIRST)


class RunningMeanStd(nn.Module):
    """Mean and variance of everything :meth:`update` saw, per feature of ``shape``."""

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-8, clip: float = 10.0):
        super().__init__()
        self.mean: torch.Tensor
        self.var: torch.Tensor
        self.count: torch.Tensor
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.epsilon = float(epsilon)
        self.clip = float(clip)

    def update(self, batch: Any) -> None:
        """Folds a batch ``[N, *shape]`` into the statistics."""
        x = torch.as_tensor(np.asarray(batch, np.float64), device=self.mean.device)
        if x.shape[0] == 0:
            return
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), float(x.shape[0])
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean.add_(delta * n / total)
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.fill_(total)

    @property
    def std(self) -> torch.Tensor:
        return torch.sqrt(self.var + self.epsilon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``clip((x - mean) / std)`` in ``x``'s dtype."""
        mean, std = self.mean.to(x.dtype), self.std.to(x.dtype)
        return torch.clamp((x - mean) / std, -self.clip, self.clip)


def discounted_returns(
    step_type: np.ndarray, reward: np.ndarray, gamma: float, include: np.ndarray, carry: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(R, carry)``: the running discounted returns of the ``include``d items of ``[E, T]``
    rewards, in order, continuing each environment's ``carry`` (restarted at every FIRST)."""
    reward = np.asarray(reward, np.float64)
    running = np.asarray(carry, np.float64).copy()
    out = np.zeros(reward.shape, np.float64)
    for t in range(reward.shape[1]):
        on = include[:, t]
        advanced = np.where(step_type[:, t] == _FIRST, 0.0, running) * gamma + reward[:, t]
        running = np.where(on, advanced, running)
        out[:, t] = running
    return out[include], running
