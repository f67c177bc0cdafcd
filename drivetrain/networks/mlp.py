"""Multi-layer perceptron torso: ``Linear -> ReLU`` for each hidden width."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from drivetrain.networks.initialization import HIDDEN_GAIN, linear

__all__ = ["MLP"]


class MLP(nn.Sequential):
    """``[B, input_dim] -> [B, output_dim]``: a ``Linear -> ReLU`` pair per width in ``layers``.

    With no ``layers`` it is the identity and ``output_dim == input_dim``. Weights are
    initialized orthogonally with gain √2 (see :mod:`drivetrain.networks.initialization`).
    The forward pass applies the layers' weights directly (``linear``, then ``relu``): the
    same operations as calling the ``Linear`` and ``ReLU`` modules, without a module call
    each (the Python overhead that dominates small networks); hooks registered on the
    inner layers are therefore not called.
    """

    def __init__(self, input_dim: int, layers: Sequence[int], generator: torch.Generator | None = None):
        if input_dim < 1:
            raise ValueError(f"MLP: input_dim must be >= 1, got {input_dim}")
        modules: list[nn.Module] = []
        width = int(input_dim)
        for i, units in enumerate(layers):
            if int(units) < 1:
                raise ValueError(f"MLP: layer {i} must have >= 1 units, got {units} in {list(layers)}")
            modules.append(linear(width, int(units), HIDDEN_GAIN, generator))
            modules.append(nn.ReLU())
            width = int(units)
        super().__init__(*modules)
        self.input_dim = int(input_dim)
        self.output_dim = width
        self._linears: list[nn.Linear] = [m for m in modules if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._linears:
            x = torch.relu(functional.linear(x, layer.weight, layer.bias))
        return x
