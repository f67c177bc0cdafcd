"""Convolutional torso for channels-last images, and the Nature DQN CNN.

Environments emit images channels-last, ``[B, H, W, C]`` (Atari: ``84 × 84 × 4``
stacked frames). :class:`ConvTorso` permutes them to ``[B, C, H, W]`` (a view in
PyTorch's channels-last memory format, no copy), scales ``uint8`` pixels to
``[0, 1]``, applies ``Conv2d -> ReLU`` layers without padding and flattens.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from drivetrain.networks.initialization import HIDDEN_GAIN, conv2d

__all__ = ["NATURE_CNN_LAYERS", "ConvTorso", "conv_output_size", "nature_cnn"]

ConvLayers = Sequence[tuple[int, int, int]]

NATURE_CNN_LAYERS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
"""``(filters, kernel, stride)`` of the DQN CNN (Mnih et al. 2015): 84×84 -> 20 -> 9 -> 7."""


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Spatial size after an unpadded convolution."""
    return (size - kernel) // stride + 1


class ConvTorso(nn.Module):
    """``[B, H, W, C] -> [B, output_dim]``: ``Conv2d -> ReLU`` per ``(filters, kernel, stride)``.

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
        if not conv_layers:
            raise ValueError("ConvTorso: conv_layers must not be empty")
        height, width, channels = (int(d) for d in input_shape)
        layers: list[nn.Module] = []
        for i, layer in enumerate(conv_layers):
            if len(layer) != 3 or min(int(v) for v in layer) < 1:
                raise ValueError(
                    f"ConvTorso: conv_layers[{i}] must be (filters, kernel, stride) of positive ints, got {layer}"
                )
            filters, kernel, stride = (int(v) for v in layer)
            if kernel > height or kernel > width:
                raise ValueError(
                    f"ConvTorso: conv_layers[{i}] kernel {kernel} does not fit the {height}×{width} feature map "
                    f"of input {tuple(input_shape)}"
                )
            layers.append(conv2d(channels, filters, kernel, stride, HIDDEN_GAIN, generator))
            layers.append(nn.ReLU())
            height, width = conv_output_size(height, kernel, stride), conv_output_size(width, kernel, stride)
            channels = filters
        self.convs = nn.Sequential(*layers)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.scale = scale
        self.output_dim = channels * height * width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).to(torch.float32)
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
