"""Q-value heads: a linear head and the dueling head (Wang et al. 2016).

Both map features ``[B, input_dim]`` to q-values ``[B, num_actions]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from drivetrain.networks.initialization import OUTPUT_GAIN, linear
from drivetrain.networks.mlp import MLP, apply_linear

__all__ = ["DuelingHead", "QHead", "q_head"]


class QHead(nn.Module):
    """``q = W x + b``: one linear output per action (orthogonal, gain 1, zero bias).

    The forward pass applies the layer's weights directly (:func:`~drivetrain.networks.mlp.apply_linear`:
    a module call costs more than a small layer); hooks on ``linear`` are not called.
    """

    def __init__(self, input_dim: int, num_actions: int, generator: torch.Generator | None = None):
        super().__init__()
        self.linear = linear(input_dim, num_actions, OUTPUT_GAIN, generator)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return apply_linear(self._modules["linear"], features)


class DuelingHead(nn.Module):
    """``q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')``.

    The value and the advantage streams each have their own hidden layers
    (``hidden``, ``Linear -> ReLU``) followed by a linear output of size 1 and
    ``num_actions``; subtracting the mean advantage makes the split identifiable. The
    forward pass applies the layers' weights directly (hooks on the inner layers are not called).
    """

    def __init__(
        self,
        input_dim: int,
        num_actions: int,
        hidden: Sequence[int] = (),
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.value_torso = MLP(input_dim, hidden, generator)
        self.advantage_torso = MLP(input_dim, hidden, generator)
        self.value = linear(self.value_torso.output_dim, 1, OUTPUT_GAIN, generator)
        self.advantage = linear(self.advantage_torso.output_dim, num_actions, OUTPUT_GAIN, generator)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        parts = self._modules  # the parts without Module.__getattr__ (see apply_linear)
        value = apply_linear(parts["value"], self.value_torso.forward(features))
        advantage = apply_linear(parts["advantage"], self.advantage_torso.forward(features))
        q: torch.Tensor = value + advantage - advantage.mean(dim=1, keepdim=True)
        return q


def q_head(
    input_dim: int,
    num_actions: int,
    dueling: bool,
    hidden: Sequence[int] = (),
    generator: torch.Generator | None = None,
) -> nn.Module:
    """A :class:`DuelingHead` (its streams with ``hidden`` layers) if ``dueling``, else a :class:`QHead`."""
    if dueling:
        return DuelingHead(input_dim, num_actions, hidden, generator)
    return QHead(input_dim, num_actions, generator)
