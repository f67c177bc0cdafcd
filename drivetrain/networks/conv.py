"""Convolutional torso for channels-last images, and the Nature DQN CNN.

Environments emit images channels-last, ``[B, H, W, C]`` (Atari: ``84 × 84 × 4``
stacked frames). :class:`ConvTorso` permutes them to ``[B, C, H, W]``, converts them to
float32 in PyTorch's channels-last memory format, scales ``uint8`` pixels to ``[0, 1]``,
applies ``Conv2d -> ReLU`` layers without padding and flattens.

The convolutions run in the channels-last memory format (NHWC): their weights are kept in
it and the input is converted to it with the float conversion (one copy, which transposes
when the images arrive frames-first in memory, as a replay's stacked frames do). oneDNN,
PyTorch's CPU convolutions, runs NHWC fastest: the Nature CNN's update of a batch of 32
replayed stacks takes ~20 % less time than in the default NCHW format, eager or compiled, on
one CPU thread (``docs/benchmarks.md``). Values are the same; the sums of a convolution may
round differently from NCHW's. The format is PyTorch's recommendation for convolutional
networks on GPUs too, where it has not been measured here.

A layer is ``(filters, kernel, stride)``; ``kernel`` and ``stride`` are each an int or a
``(height, width)`` pair, so TF-Agents' (and the book's) ``conv_layer_params``
``[(32, (8, 8), 4), (64, (4, 4), 2), (64, (3, 3), 1)]`` and ``((32, 8, 4), ...)`` build
the same network. :func:`conv_layer` normalizes one and refuses anything else by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from drivetrain.networks.initialization import HIDDEN_GAIN, conv2d

__all__ = ["NATURE_CNN_LAYERS", "ConvLayer", "ConvTorso", "conv_layer", "conv_output_size", "nature_cnn"]

Size = int | tuple[int, int]
ConvLayers = Sequence[tuple[int, Size, Size]]

NATURE_CNN_LAYERS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
"""``(filters, kernel, stride)`` of the DQN CNN (Mnih et al. 2015): 84×84 -> 20 -> 9 -> 7."""


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Spatial size after an unpadded convolution."""
    return (size - kernel) // stride + 1


class ConvLayer(NamedTuple):
    """One convolution: ``filters``, ``kernel`` and ``stride`` as ``(height, width)``."""

    filters: int
    kernel: tuple[int, int]
    stride: tuple[int, int]


_FORM = (
    "(filters, kernel, stride) with kernel and stride an int or a (height, width) pair, "
    "e.g. (32, 8, 4) or (32, (8, 8), 4)"
)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        return None
    return int(value)


def _pair(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, (tuple, list)):
        v = _positive_int(value)
        return None if v is None else (v, v)
    pair = tuple(_positive_int(v) for v in value)
    if len(pair) != 2 or pair[0] is None or pair[1] is None:
        return None
    return pair[0], pair[1]


def conv_layer(layer: Any, where: str = "conv_layers[0]") -> ConvLayer:
    """``layer`` as a :class:`ConvLayer`; ``ValueError`` naming ``where`` unless it is one of the accepted forms."""
    if not isinstance(layer, (tuple, list)) or len(layer) != 3:
        extra = " (dilation is not supported)" if isinstance(layer, (tuple, list)) and len(layer) == 4 else ""
        raise ValueError(f"{where} must be {_FORM}{extra}, got {layer!r}")
    filters, kernel, stride = _positive_int(layer[0]), _pair(layer[1]), _pair(layer[2])
    if filters is None or kernel is None or stride is None:
        name, raw = next(
            (n, r)
            for n, v, r in zip(("filters", "kernel", "stride"), (filters, kernel, stride), layer, strict=True)
            if v is None
        )
        raise ValueError(
            f"{where} must be {_FORM}: its {name} {raw!r} is not a positive int (or pair), got {layer!r}"
        )
    return ConvLayer(filters, kernel, stride)


class ConvTorso(nn.Module):
    """``[B, H, W, C] -> [B, output_dim]``: ``Conv2d -> ReLU`` per ``(filters, kernel, stride)`` (see the module docstring).

    ``scale`` multiplies the input after the conversion to float32 (``1/255`` for
    ``uint8`` pixels; ``None`` leaves it alone). Weights are orthogonal with gain √2.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        conv_layers: ConvLayers = NATURE_CNN_LAYERS,
        scale: float | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"ConvTorso: input_shape must be (height, width, channels), got {tuple(input_shape)}"
            )
        if isinstance(conv_layers, (str, bytes)) or not isinstance(conv_layers, Sequence) or not conv_layers:
            raise ValueError(
                f"ConvTorso: conv_layers must be a non-empty sequence of {_FORM}, got {conv_layers!r}"
            )
        height, width, channels = (int(d) for d in input_shape)
        if min(height, width, channels) < 1:
            raise ValueError(f"ConvTorso: input_shape {tuple(input_shape)} needs every size >= 1")
        layers: list[nn.Module] = []
        for i, raw in enumerate(conv_layers):
            layer = conv_layer(raw, f"ConvTorso: conv_layers[{i}]")
            (kh, kw), (sh, sw) = layer.kernel, layer.stride
            if kh > height or kw > width:
                raise ValueError(
                    f"ConvTorso: conv_layers[{i}] kernel {kh if kh == kw else f'{kh}×{kw}'} does not fit the {height}×{width} feature map "
                    f"of input {tuple(input_shape)}"
                )
            layers.append(conv2d(channels, layer.filters, layer.kernel, layer.stride, HIDDEN_GAIN, generator))
            layers.append(nn.ReLU())
            height, width = conv_output_size(height, kh, sh), conv_output_size(width, kw, sw)
            channels = layer.filters
        # weights in the channels-last memory format (the module docstring); torch's stubs lack the keyword
        self.convs = nn.Sequential(*layers).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.input_shape = tuple(int(d) for d in input_shape)
        self.scale = scale
        self.output_dim = channels * height * width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.channels_last)
        if self.scale is not None:
            x = x * self.scale
        features: torch.Tensor = self.convs(x)
        return features.flatten(1)


def nature_cnn(
    input_shape: Sequence[int] = (84, 84, 4),
    scale: float | None = 1.0 / 255.0,
    generator: torch.Generator | None = None,
) -> ConvTorso:
    """The convolutional part of the Nature DQN (32×8×8/4, 64×4×4/2, 64×3×3/1) for ``uint8`` images."""
    return ConvTorso(input_shape, NATURE_CNN_LAYERS, scale, generator)
