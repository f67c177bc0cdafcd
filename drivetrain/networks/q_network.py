"""The Q-network of DQN: an encoder, an MLP torso and a linear or dueling head.

``QNetwork(observation_spec, action_spec)`` maps a batch of observations as the
environment emits them (NumPy arrays converted with ``torch.from_numpy``, no
preprocessing outside) to q-values ``[B, num_actions]``, float32. The observation
spec picks the encoder:

==============================================  ==========================================
observation spec                                 encoder
==============================================  ==========================================
``(d,)`` or ``()``, any numeric dtype            cast to float32 (vector)
``()`` integer ``BoundedArraySpec``              one-hot of ``minimum..maximum`` (tabular)
``(H, W, C)`` channels-last image                ``ConvTorso`` (Nature CNN by default);
                                                 ``uint8`` pixels are scaled to ``[0, 1]``
==============================================  ==========================================

The encoder is followed by ``fc_layers`` (``Linear -> ReLU`` each) and a linear
q-value head. With ``dueling=True`` the last of ``fc_layers`` is duplicated into a
value and an advantage stream (Wang et al. 2016: Nature CNN -> 512 | 512 -> V | A).
Initialization is explicit: see :mod:`drivetrain.networks.initialization`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from drivetrain.core import specs
from drivetrain.networks.conv import NATURE_CNN_LAYERS, ConvLayers, ConvTorso
from drivetrain.networks.encoders import OneHotEncoder, VectorEncoder
from drivetrain.networks.heads import q_head
from drivetrain.networks.initialization import make_generator
from drivetrain.networks.mlp import MLP, layer_sizes

__all__ = ["QNetwork", "encoded_features", "num_actions_of"]


def num_actions_of(action_spec: Any) -> int:
    """Number of discrete actions of a scalar integer ``BoundedArraySpec``; clear error otherwise."""
    if not (
        isinstance(action_spec, specs.BoundedArraySpec)
        and action_spec.shape == ()
        and np.issubdtype(action_spec.dtype, np.integer)
    ):
        raise TypeError(
            "QNetwork: action_spec must be a scalar integer BoundedArraySpec (discrete actions), "
            f"got {action_spec!r}"
        )
    return action_spec.num_values


def make_encoder(
    observation_spec: Any, conv_layers: ConvLayers | None, gen: Any, owner: str = "QNetwork"
) -> nn.Module:
    """The encoder for ``observation_spec`` (one-hot, flat vector, or a CNN for images); ``.output_dim``.
    Errors name ``owner``, the network being built."""
    if not isinstance(observation_spec, specs.ArraySpec):
        raise TypeError(
            f"{owner}: observation_spec must be a single ArraySpec (vector, discrete state or HWC image), "
            f"got {type(observation_spec).__name__}: {observation_spec!r}"
        )
    spec = observation_spec
    if not (np.issubdtype(spec.dtype, np.number) or spec.dtype == np.bool_):
        raise TypeError(f"{owner}: observation dtype must be numeric, got {spec.dtype}")
    rank = len(spec.shape)
    if rank == 3:
        scale = 1.0 / 255.0 if spec.dtype == np.uint8 else None
        return ConvTorso(spec.shape, NATURE_CNN_LAYERS if conv_layers is None else conv_layers, scale, gen)
    if conv_layers is not None:
        raise ValueError(
            f"{owner}: conv_layers need an image observation of shape (height, width, channels), "
            f"got shape {spec.shape}"
        )
    if rank == 0 and isinstance(spec, specs.BoundedArraySpec) and np.issubdtype(spec.dtype, np.integer):
        return OneHotEncoder(int(spec.minimum), int(spec.maximum))
    if rank <= 1:
        return VectorEncoder(int(np.prod(spec.shape, dtype=np.int64)))
    raise ValueError(
        f"{owner}: unsupported observation shape {spec.shape}: expected a vector (d,), a discrete state () "
        "or a channels-last image (height, width, channels); add a channel axis to 2-D images"
    )


def encoded_features(parts: dict[str, nn.Module | None], observation: torch.Tensor) -> torch.Tensor:
    """``torso(encoder(observation))`` of a network's ``_modules``, calling the parts' ``forward``
    (without module calls or ``Module.__getattr__``'s search; see :func:`~drivetrain.networks.mlp.apply_linear`)."""
    out: torch.Tensor = parts["torso"].forward(parts["encoder"].forward(observation))  # type: ignore[union-attr]
    return out


class QNetwork(nn.Module):
    """``observation [B, ...] -> q-values [B, num_actions]`` (see the module docstring).

    Args:
        observation_spec: a single ``ArraySpec`` of one observation (no batch axis).
        action_spec: a scalar integer ``BoundedArraySpec``; one q-value per action.
        conv_layers: ``(filters, kernel, stride)`` per convolution, images only, kernel and
            stride an int or a ``(height, width)`` pair (TF-Agents' ``conv_layer_params``);
            ``None`` is the Nature DQN CNN for images.
        fc_layers: hidden widths after the encoder.
        dueling: a dueling head instead of a linear one.
        seed: seeds the weight initialization (``None``: PyTorch's global generator).

    The forward pass calls its parts' ``forward`` directly (a module call each costs more than a
    small layer): hooks registered on ``encoder``, ``torso`` or ``head`` are not called; hooks on
    the QNetwork itself are.
    """

    def __init__(
        self,
        observation_spec: Any,
        action_spec: Any,
        conv_layers: ConvLayers | None = None,
        fc_layers: Sequence[int] = (512,),
        dueling: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        self.num_actions = num_actions_of(action_spec)
        gen = make_generator(seed)
        self.encoder = make_encoder(observation_spec, conv_layers, gen)
        fc = layer_sizes(fc_layers, "QNetwork: fc_layers")
        in_dim = int(self.encoder.output_dim)  # type: ignore[arg-type]
        # a dueling head takes the last hidden layer into each of its two streams
        torso_layers, head_layers = (fc[:-1], fc[-1:]) if dueling else (fc, ())
        self.torso = MLP(in_dim, torso_layers, gen)
        self.head = q_head(self.torso.output_dim, self.num_actions, dueling, head_layers, gen)
        self.observation_spec = observation_spec
        self.action_spec = action_spec

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        parts = self._modules
        q: torch.Tensor = parts["head"].forward(encoded_features(parts, observation))  # type: ignore[union-attr]
        return q
