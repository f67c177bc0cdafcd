"""Multi-layer perceptron torso: ``Linear -> ReLU`` for each hidden width."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from drivetrain.networks.initialization import HIDDEN_GAIN, linear

__all__ = ["MLP", "apply_linear", "layer_sizes"]


def layer_sizes(layers: Any, what: str) -> tuple[int, ...]:
    """``layers`` as a tuple of widths >= 1; a ValueError (TypeError for the wrong kind) naming
    ``what`` (e.g. ``"QNetwork: fc_layers"``) and the position in the caller's own sequence."""
    if isinstance(layers, np.ndarray) and layers.ndim == 1:
        layers = layers.tolist()
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise TypeError(f"{what} must be a sequence of layer widths, e.g. (64, 64), got {layers!r}")
    for i, units in enumerate(layers):
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)):
            raise TypeError(f"{what}[{i}] must be an int width, got {units!r} in {list(layers)}")
        if units < 1:
            raise ValueError(f"{what}[{i}] must be >= 1, got {units} in {list(layers)}")
    return tuple(int(units) for units in layers)


def apply_linear(layer: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` without the module call: ``linear`` on the layer's live parameters.

    The parameters are read from the layer's parameter dict, which is what ``layer.weight``
    returns (``torch.func.functional_call`` swaps the tensors there too), without
    ``Module.__getattr__``'s search of three dicts: on a small network the module calls and
    attribute lookups cost more than the layers' arithmetic. Hooks on ``layer`` are not called.
    """
    params = layer._parameters  # type: ignore[union-attr]
    return functional.linear(x, params["weight"], params["bias"])  # type: ignore[arg-type]


Activation = Literal["relu", "tanh"]
"""The nonlinearity after each of an :class:`MLP`'s linear layers."""

# The module, and the in-place function applied to each linear layer's fresh output (no second
# tensor; autograd keeps what the backward pass needs: the linear layer's input, the result).
_ACTIVATIONS: dict[str, tuple[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]]] = {
    "relu": (nn.ReLU, torch.relu_),
    "tanh": (nn.Tanh, torch.tanh_),
}


class MLP(nn.Sequential):
    """``[B, input_dim] -> [B, output_dim]``: a ``Linear -> activation`` pair per width in ``layers``.

    ``activation`` is ``"relu"`` (the default) or ``"tanh"`` (the policy-gradient agents'
    torsos). With no ``layers`` it is the identity and ``output_dim == input_dim``. Weights
    are initialized orthogonally with gain √2 (see :mod:`drivetrain.networks.initialization`).
    The forward pass applies the layers' weights directly (``linear``, then the activation):
    the same operations as calling the ``Linear`` and activation modules, without a module
    call each (the Python overhead that dominates small networks); hooks registered on the
    inner layers are therefore not called.
    """

    def __init__(
        self,
        input_dim: int,
        layers: Sequence[int],
        generator: torch.Generator | None = None,
        activation: Activation = "relu",
    ):
        if input_dim < 1:
            raise ValueError(f"MLP: input_dim must be >= 1, got {input_dim}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        module_type = _ACTIVATIONS[activation][0]
        modules: list[nn.Module] = []
        width = int(input_dim)
        for units in layer_sizes(layers, "MLP: layers"):
            modules.append(linear(width, int(units), HIDDEN_GAIN, generator))
            modules.append(module_type())
            width = int(units)
        super().__init__(*modules)
        self.input_dim = int(input_dim)
        self.output_dim = width
        self.activation = activation
        self._linears: list[nn.Linear] = [m for m in modules if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activate, linear = _ACTIVATIONS[self.activation][1], functional.linear
        for layer in self._linears:
            params = layer._parameters  # as in apply_linear, without a call per layer
            x = activate(linear(x, params["weight"], params["bias"]))  # type: ignore[arg-type]
        return x
