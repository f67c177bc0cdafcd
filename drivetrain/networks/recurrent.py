"""Recurrent cores (LSTM, GRU) and the recurrent Q-network of R2D2-style agents.

Protocol (PyTorch, batch-first; ``state`` is a tuple of float32 tensors ``[B, hidden_size]``,
``(h, c)`` for an LSTM and ``(h,)`` for a GRU)::

    net = RecurrentQNetwork(observation_spec, action_spec, core="lstm", hidden_size=64, fc_layers=(64,))
    state = net.initial_state(batch_size)                     # zeros
    q, state = net(observation, first, state)                 # observation [B, T, ...], first bool [B, T]
    q                                                         # float32 [B, T, num_actions]

The state is **reset to zeros wherever** ``first[:, t]`` **is True**, before step ``t``
is processed, inside a sequence too: this is what a driver does at FIRST time steps
while collecting (it resets the policy state to ``get_initial_state``, zeros), so a
sequence replayed from the state stored at its first step reproduces the q-values
the policy computed, across episode boundaries included.

``state_spec`` is the NumPy spec of one environment's state (a tuple of
``ArraySpec((hidden_size,), float32)``): the ``policy_state_spec`` of a policy that
wraps the network, and so what a driver stores in ``policy_info["state"]``.

Architecture: the encoder of :class:`~drivetrain.networks.QNetwork` (chosen by the
observation spec), ``fc_layers`` (``Linear -> ReLU``), the core, then a linear (or
dueling) q-value head. Core weights: orthogonal (gain 1) input and recurrent
matrices, zero biases, and an LSTM forget-gate bias of 1 (Jozefowicz et al. 2015);
seeded by ``seed`` like the other layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from drivetrain.core import specs
from drivetrain.networks.conv import ConvLayers
from drivetrain.networks.heads import q_head
from drivetrain.networks.initialization import make_generator
from drivetrain.networks.mlp import MLP, layer_sizes
from drivetrain.networks.q_network import make_encoder, num_actions_of

__all__ = ["CoreKind", "RecurrentCore", "RecurrentQNetwork", "State"]

CoreKind = Literal["lstm", "gru"]
State = tuple[torch.Tensor, ...]


class RecurrentCore(nn.Module):
    """An LSTM or GRU cell unrolled over ``[B, T, input_dim]`` with resets where ``first`` is True."""

    def __init__(
        self,
        input_dim: int,
        hidden_size: int,
        kind: CoreKind = "lstm",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if kind not in ("lstm", "gru"):
            raise ValueError(f"RecurrentCore: kind must be 'lstm' or 'gru', got {kind!r}")
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, (int, np.integer)):
            raise TypeError(f"RecurrentCore: hidden_size must be an int, got {hidden_size!r}")
        if input_dim < 1 or hidden_size < 1:
            raise ValueError(
                f"RecurrentCore: input_dim and hidden_size must be >= 1, got {input_dim} and {hidden_size}"
            )
        self.kind: CoreKind = kind
        self.input_dim = int(input_dim)
        self.hidden_size = int(hidden_size)
        self.output_dim = self.hidden_size
        rnn_class = nn.LSTM if kind == "lstm" else nn.GRU
        rnn = rnn_class(
            self.input_dim, self.hidden_size, batch_first=True, device="meta", dtype=torch.float32
        )
        self.rnn: nn.LSTM | nn.GRU = rnn.to_empty(device="cpu")
        w_ih, w_hh, b_ih, b_hh = self.weights
        with torch.no_grad():
            nn.init.orthogonal_(w_ih, generator=generator)
            nn.init.orthogonal_(w_hh, generator=generator)
            b_ih.zero_()
            b_hh.zero_()
            if kind == "lstm":  # gates in PyTorch's order: input, forget, cell, output
                b_ih[self.hidden_size : 2 * self.hidden_size].fill_(1.0)

    @property
    def weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of the single layer (PyTorch's gate layout)."""
        w_ih, w_hh, b_ih, b_hh = self.rnn.all_weights[0]
        return w_ih, w_hh, b_ih, b_hh

    @property
    def num_state_tensors(self) -> int:
        return 2 if self.kind == "lstm" else 1

    @property
    def state_spec(self) -> tuple[specs.ArraySpec, ...]:
        """NumPy spec of one environment's state: ``(h, c)`` (LSTM) or ``(h,)`` (GRU)."""
        names = ("h", "c")[: self.num_state_tensors]
        return tuple(specs.ArraySpec((self.hidden_size,), np.float32, name) for name in names)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros ``[batch_size, hidden_size]`` per state tensor, on the core's device by default."""
        if device is None:
            device = self.weights[1].device
        return tuple(
            torch.zeros(batch_size, self.hidden_size, device=device, dtype=torch.float32)
            for _ in range(self.num_state_tensors)
        )

    def check_state(self, state: Any, batch_size: int) -> State:
        """``state`` as a tuple of tensors; a clear error if its structure or shapes are wrong."""
        if not isinstance(state, (tuple, list)) or len(state) != self.num_state_tensors:
            raise ValueError(
                f"RecurrentCore({self.kind}): state must be a tuple of {self.num_state_tensors} tensors "
                f"[B, {self.hidden_size}], got {type(state).__name__} of length "
                f"{len(state) if isinstance(state, (tuple, list)) else '?'}"
            )
        for i, s in enumerate(state):
            if tuple(s.shape) != (batch_size, self.hidden_size):
                raise ValueError(
                    f"RecurrentCore({self.kind}): state[{i}] must have shape ({batch_size}, {self.hidden_size}), "
                    f"got {tuple(s.shape)}"
                )
        return tuple(state)

    def forward(
        self, inputs: torch.Tensor, first: torch.Tensor, state: State, *, stepwise: bool = False
    ) -> tuple[torch.Tensor, State]:
        """``inputs [B, T, D]``, ``first`` bool ``[B, T]`` -> ``(outputs [B, T, H], final state)``.

        The sequence is cut at every step where some row resets; each piece runs through
        PyTorch's fused ``nn.LSTM``/``nn.GRU`` from the state zeroed where ``first`` is True.
        ``stepwise=True`` runs one ``torch.lstm_cell``/``gru_cell`` step at a time instead, the
        same recurrence with the same weights, in an order that does not depend on the data
        (what a compiled update traces).
        """
        length = inputs.shape[1]
        state = self.check_state(state, inputs.shape[0])
        first = first.to(torch.bool)
        keep = (~first).to(inputs.dtype).unsqueeze(-1)  # [B, T, 1]: 0 where the state resets
        if stepwise:
            return self._steps(inputs, keep, state)
        starts = [0, *(t for t in torch.nonzero(first[:, 1:].any(dim=0)).flatten().add(1).tolist())]
        if len(starts) > max(2, length // 4):  # resets nearly everywhere: cheaper one cell step at a time
            return self._steps(inputs, keep, state)
        outputs = []
        for start, end in zip(starts, [*starts[1:], length], strict=True):
            k = keep[:, start]
            hidden = tuple((s * k).unsqueeze(0) for s in state)  # [1, B, H]: nn.LSTM's layout
            if self.kind == "lstm":
                out, (h, c) = self.rnn(inputs[:, start:end], (hidden[0], hidden[1]))
                state = (h[0], c[0])
            else:
                out, h = self.rnn(inputs[:, start:end], hidden[0])
                state = (h[0],)
            outputs.append(out)
        return (outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)), state

    def _steps(self, inputs: torch.Tensor, keep: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The same recurrence, one ``torch.lstm_cell``/``gru_cell`` step at a time (same weights)."""
        weights = self.weights
        outputs = []
        for t in range(inputs.shape[1]):
            k = keep[:, t]
            if self.kind == "lstm":
                h, c = torch.lstm_cell(inputs[:, t], (state[0] * k, state[1] * k), *weights)
                state = (h, c)
            else:
                h = torch.gru_cell(inputs[:, t], state[0] * k, *weights)
                state = (h,)
            outputs.append(h)
        return torch.stack(outputs, dim=1), state


class RecurrentQNetwork(nn.Module):
    """``(observation [B, T, ...], first [B, T], state) -> (q-values [B, T, A], state)``.

    Args:
        observation_spec: a single ``ArraySpec`` of one observation (no batch axis).
        action_spec: a scalar integer ``BoundedArraySpec``; one q-value per action.
        core: "lstm" or "gru".
        hidden_size: width of the core's state.
        fc_layers: hidden widths between the encoder and the core.
        conv_layers: ``(filters, kernel, stride)`` per convolution for image observations
            (kernel and stride an int or a ``(height, width)`` pair).
        dueling: a dueling head (value and advantage streams) on the core's output.
        seed: seeds the weight initialization (``None``: PyTorch's global generator).
    """

    def __init__(
        self,
        observation_spec: Any,
        action_spec: Any,
        core: CoreKind = "lstm",
        hidden_size: int = 128,
        fc_layers: Sequence[int] = (128,),
        conv_layers: ConvLayers | None = None,
        dueling: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        self.num_actions = num_actions_of(action_spec)
        gen = make_generator(seed)
        self.encoder = make_encoder(observation_spec, conv_layers, gen, "RecurrentQNetwork")
        fc = layer_sizes(fc_layers, "RecurrentQNetwork: fc_layers")
        self.torso = MLP(int(self.encoder.output_dim), fc, gen)  # type: ignore[arg-type]
        self.core = RecurrentCore(self.torso.output_dim, hidden_size, core, gen)
        self.head = q_head(self.core.output_dim, self.num_actions, dueling, (), gen)
        self.observation_spec = observation_spec
        self.action_spec = action_spec

    @property
    def state_spec(self) -> tuple[specs.ArraySpec, ...]:
        """NumPy spec of one environment's state (a policy's ``policy_state_spec``)."""
        return self.core.state_spec

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        """Zeros: the state at the start of every episode."""
        return self.core.initial_state(batch_size, device)

    def forward(
        self, observation: torch.Tensor, first: torch.Tensor, state: State, *, stepwise: bool = False
    ) -> tuple[torch.Tensor, State]:
        """``stepwise``: the core's fixed-order recurrence (:meth:`RecurrentCore.forward`)."""
        batch, length = first.shape[0], first.shape[1]
        flat = observation.reshape(batch * length, *observation.shape[2:])
        features = self.torso(self.encoder(flat)).reshape(batch, length, -1)
        outputs, state = self.core(features, first, state, stepwise=stepwise)
        q: torch.Tensor = self.head(outputs.reshape(batch * length, -1)).reshape(batch, length, -1)
        return q, state
