"""Explicit weight initialization for the networks of drivetrain.

Every linear and convolutional layer is initialized here, never by PyTorch's
defaults, so that the scheme is documented and seedable:

- hidden layers (followed by a ReLU): orthogonal weights with gain √2 (Saxe et al.
  2014; the gain keeps the activation scale through ReLUs), biases 0;
- output layers (q-values, value and advantage streams): orthogonal weights with gain
  1, biases 0.

``generator`` is a :class:`torch.Generator` that makes the initialization
reproducible without touching PyTorch's global random state; ``None`` uses the
global state (so ``torch.manual_seed`` applies, as everywhere in PyTorch). Layers are
built on the ``meta`` device and then allocated empty (:func:`linear`, :func:`conv2d`,
as :func:`torch.nn.utils.skip_init` does), so PyTorch's default initialization never
runs and never draws from the global state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["HIDDEN_GAIN", "OUTPUT_GAIN", "conv2d", "init_layer", "linear", "make_generator"]

HIDDEN_GAIN = math.sqrt(2.0)
"""Gain of the orthogonal initialization of layers followed by a ReLU."""

OUTPUT_GAIN = 1.0
"""Gain of the orthogonal initialization of output layers."""


def make_generator(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed``, or ``None`` (PyTorch's global state) for ``None``."""
    if seed is None:
        return None
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def init_layer(
    layer: nn.Linear | nn.Conv2d, gain: float = HIDDEN_GAIN, generator: torch.Generator | None = None
) -> nn.Linear | nn.Conv2d:
    """Orthogonal weights with ``gain`` and zero biases, in place; returns ``layer``."""
    with torch.no_grad():
        nn.init.orthogonal_(layer.weight, gain=gain, generator=generator)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def linear(
    in_features: int, out_features: int, gain: float = HIDDEN_GAIN, generator: torch.Generator | None = None
) -> nn.Linear:
    """An ``nn.Linear`` initialized by :func:`init_layer` only."""
    layer = nn.Linear(in_features, out_features, device="meta", dtype=torch.float32).to_empty(device="cpu")
    init_layer(layer, gain, generator)
    return layer


def conv2d(
    in_channels: int,
    out_channels: int,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int],
    gain: float = HIDDEN_GAIN,
    generator: torch.Generator | None = None,
) -> nn.Conv2d:
    """An unpadded ``nn.Conv2d`` initialized by :func:`init_layer` only."""
    layer = nn.Conv2d(in_channels, out_channels, kernel, stride, device="meta", dtype=torch.float32).to_empty(
        device="cpu"
    )
    init_layer(layer, gain, generator)
    return layer
