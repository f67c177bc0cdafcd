"""The actor-critic network of the policy-gradient agents (REINFORCE, PPO).

::

    net = ActorCriticNetwork(observation_spec, action_spec, layers=(64, 64))
    out = net(observation)                         # feed-forward: observation [B, ...]
    out.logits or out.mean, out.value              # [B, n] or [B, d], and [B]
    out = net(observation, first, state)           # recurrent (core="lstm"/"gru"): [B, T, ...]
    out.state                                      # the core's state after the last step

The encoder is :class:`~drivetrain.networks.QNetwork`'s (vectors, one-hot states, Nature
CNN for images). The **actor** and the **critic** each have a ``Linear -> tanh`` torso
of ``layers`` (``shared=True``: one torso for both, as in the Atari PPO of Schulman et
al. 2017), then a linear head: logits (discrete) or the mean (continuous, with a learned
state-independent ``log_std``), and the value. Initialization follows the PPO
implementations that reach the published scores (Huang et al. 2022, "The 37
implementation details of PPO"): orthogonal, gain √2 in the torsos, 0.01 for the policy
head, 1 for the value head, zero biases; ``log_std`` starts at ``initial_log_std``.

With ``normalize_observations`` (float vector observations) the observations are normalized
by running statistics kept in the network (:mod:`~drivetrain.agents.actor_critic.normalization`;
the agent updates them between updates). With ``core`` the encoder output (after the shared torso) runs through a
:class:`~drivetrain.networks.RecurrentCore` that resets its state where ``first`` is True;
``state_spec`` is the policy state a driver stores in ``policy_info["state"]``.

The forward pass calls its parts' ``forward`` and applies the heads' weights directly
(:func:`~drivetrain.networks.mlp.apply_linear`): a module call costs more than a small layer.
Hooks registered on the parts are therefore not called; hooks on the network are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from drivetrain.agents.actor_critic.distributions import is_continuous
from drivetrain.agents.actor_critic.normalization import RunningMeanStd
from drivetrain.networks.conv import ConvLayers
from drivetrain.networks.initialization import linear, make_generator
from drivetrain.networks.mlp import MLP, apply_linear, layer_sizes
from drivetrain.networks.q_network import make_encoder
from drivetrain.networks.recurrent import CoreKind, RecurrentCore, State

__all__ = ["ActorCriticNetwork", "ActorCriticOutput"]

_POLICY_GAIN = 0.01
_VALUE_GAIN = 1.0


class ActorCriticOutput(NamedTuple):
    """What the network computes; ``logits`` (discrete) or ``mean`` (continuous) is None."""

    logits: torch.Tensor | None
    mean: torch.Tensor | None
    value: torch.Tensor
    state: State = ()


def _torso(width: int, layers: Sequence[int], gen: torch.Generator | None) -> tuple[MLP, int]:
    torso = MLP(width, layer_sizes(layers, "ActorCriticNetwork: layers"), gen, activation="tanh")
    return torso, torso.output_dim


class ActorCriticNetwork(nn.Module):
    """Actor and critic over one encoder; see the module docstring."""

    def __init__(
        self,
        observation_spec: Any,
        action_spec: Any,
        layers: Sequence[int] = (64, 64),
        *,
        shared: bool = False,
        conv_layers: ConvLayers | None = None,
        core: CoreKind | None = None,
        hidden_size: int = 128,
        initial_log_std: float = 0.0,
        normalize_observations: bool = False,
        seed: int | None = None,
    ):
        super().__init__()
        gen = make_generator(seed)
        self.continuous = is_continuous(action_spec)
        self.obs_rms: RunningMeanStd | None = None
        if normalize_observations:
            if len(observation_spec.shape) > 1 or not np.issubdtype(observation_spec.dtype, np.floating):
                raise ValueError(
                    "ActorCriticNetwork: normalize_observations needs float vector observations, got "
                    f"{observation_spec!r}"
                )
            self.obs_rms = RunningMeanStd(tuple(observation_spec.shape))
        self.encoder = make_encoder(observation_spec, conv_layers, gen, "ActorCriticNetwork")
        width: int = self.encoder.output_dim  # type: ignore[assignment]
        self.shared = bool(shared)
        self.shared_torso: nn.Module = nn.Identity()
        if shared:
            self.shared_torso, width = _torso(width, layers, gen)
        self.core = None if core is None else RecurrentCore(width, hidden_size, core, gen)
        if self.core is not None:
            width = self.core.output_dim
        head_layers: Sequence[int] = () if shared else layers
        self.actor_torso, actor_width = _torso(width, head_layers, gen)
        self.critic_torso, critic_width = _torso(width, head_layers, gen)
        out = int(action_spec.shape[0]) if self.continuous else int(action_spec.num_values)
        self.policy_head = linear(actor_width, out, _POLICY_GAIN, gen)
        self.value_head = linear(critic_width, 1, _VALUE_GAIN, gen)
        self.log_std = (
            nn.Parameter(torch.full((out,), float(initial_log_std), dtype=torch.float32))
            if self.continuous
            else None
        )

    @property
    def recurrent(self) -> bool:
        return self.core is not None

    @property
    def state_spec(self) -> Any:
        """NumPy spec of one environment's core state; ``()`` without a core."""
        return () if self.core is None else self.core.state_spec

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        return () if self.core is None else self.core.initial_state(batch_size, device)

    def forward(
        self, observation: Any, first: torch.Tensor | None = None, state: State = ()
    ) -> ActorCriticOutput:
        """Feed-forward: ``observation [B, ...]``. Recurrent: ``[B, T, ...]`` with ``first [B, T]``."""
        if self.obs_rms is not None:
            observation = self.obs_rms(observation.to(torch.float32))
        parts = self._modules  # the parts without module calls (see networks.mlp.apply_linear)
        if self.core is None:
            features = parts["shared_torso"].forward(parts["encoder"].forward(observation))  # type: ignore[union-attr]
            return self._heads(features, ())
        if first is None:
            raise ValueError("ActorCriticNetwork: a recurrent network needs first [B, T] and a state")
        b, t = first.shape
        flat = observation.reshape(b * t, *observation.shape[2:])
        features = parts["shared_torso"].forward(parts["encoder"].forward(flat)).reshape(b, t, -1)  # type: ignore[union-attr]
        outputs, state = self.core(features, first, state)
        return self._heads(outputs, state)

    def _heads(self, features: torch.Tensor, state: State) -> ActorCriticOutput:
        parts = self._modules
        params = apply_linear(parts["policy_head"], parts["actor_torso"].forward(features))  # type: ignore[union-attr]
        value = apply_linear(parts["value_head"], parts["critic_torso"].forward(features)).squeeze(-1)  # type: ignore[union-attr]
        if self.continuous:
            return ActorCriticOutput(None, params, value, state)
        return ActorCriticOutput(params, None, value, state)
