"""Encoders that turn a batch of raw observations into float features ``[B, output_dim]``.

- :class:`VectorEncoder`: vectors ``[B, d]`` (or scalars ``[B]``) of any numeric dtype,
  cast to float32;
- :class:`OneHotEncoder`: scalar discrete states ``[B]`` in ``minimum..maximum``, one-hot;
- images use :class:`~drivetrain.networks.conv.ConvTorso`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

__all__ = ["OneHotEncoder", "VectorEncoder"]


class VectorEncoder(nn.Module):
    """``[B, d]`` or ``[B]`` -> float32 ``[B, d]`` (``d = 1`` for scalars)."""

    def __init__(self, size: int):
        super().__init__()
        self.output_dim = int(size)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        if observation.dtype is torch.float32 and observation.dim() == 2:  # already [B, d] floats
            return observation
        return observation.reshape(observation.shape[0], self.output_dim).to(torch.float32)


class OneHotEncoder(nn.Module):
    """Integer states ``[B]`` in ``minimum..maximum`` (inclusive) -> one-hot float32 ``[B, n]``."""

    def __init__(self, minimum: int, maximum: int):
        super().__init__()
        self.minimum = int(minimum)
        self.output_dim = int(maximum) - int(minimum) + 1

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        index = observation.to(torch.int64) - self.minimum
        return functional.one_hot(index, self.output_dim).to(torch.float32)
