"""Networks of the continuous-control agents (SAC, TD3, DDPG): actors, critics and the action scale.

::

    scale = ActionScale(action_spec)                  # the ONE place actions change units
    scale.to_env(unit)                                # [-1, 1] -> [minimum, maximum] (clamped)
    scale.to_unit(action)                             # [minimum, maximum] -> [-1, 1] (clamped)

    actor = SquashedGaussianActor(observation_spec, action_dim)   # SAC
    mean, log_std = actor(observation)                # pre-tanh Gaussian, [B, d] each
    unit, log_prob = squashed_sample(mean, log_std, noise)       # tanh(mean + std * noise), log π
    actor = DeterministicActor(observation_spec, action_dim)      # TD3, DDPG
    actor.mean(observation)                           # pre-tanh output; tanh(mean) is the action
    critics = QCritics(observation_spec, action_dim, num_critics=2)
    critics(observation, unit)                        # [num_critics, B]: Q_i(s, a)

Every network works in **unit actions**, ``[-1, 1]`` per dimension: actors end with a
tanh, critics read unit actions. The environment sees, and the replay stores, actions in
the spec's bounds; :class:`ActionScale` converts between the two, and nothing else does.
The log-probability of a squashed sample is that of the unit action, so SAC's target
entropy ``-|A|`` means the same for every action range.

Torsos are ``Linear -> ReLU`` MLPs (256 x 256 by default) on top of
:func:`~drivetrain.networks.make_encoder` (vectors, one-hot states, a CNN for images).
Initialization is explicit (:mod:`~drivetrain.networks.initialization`): orthogonal with
gain √2 in the torsos, 1 for the critics' output, 0.01 for the actors' heads (so the
first actions are near the middle of the range and SAC starts with a standard deviation
near 1, as its ``log_std`` head outputs about 0).

The forward passes call their parts' ``forward`` and apply their linear heads directly
(:func:`~drivetrain.networks.mlp.apply_linear`): a module call costs more than a small
layer. Hooks registered on the parts are therefore not called; hooks on the networks are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from drivetrain.core import specs
from drivetrain.networks.initialization import OUTPUT_GAIN, linear, make_generator
from drivetrain.networks.mlp import MLP, apply_linear, layer_sizes
from drivetrain.networks.q_network import encoded_features, make_encoder

__all__ = [
    "ActionScale",
    "DeterministicActor",
    "QCritics",
    "SquashedGaussianActor",
    "continuous_action_dim",
    "float32_bounds_inside",
    "log1m_tanh_squared",
    "squashed_gaussian_log_prob",
    "squashed_sample",
]

_HEAD_GAIN = 0.01
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


def float32_bounds_inside(low: Any, high: Any) -> tuple[np.ndarray, np.ndarray]:
    """float32 bounds that lie inside ``[low, high]``: a float64 bound that float32 cannot hold
    (0.3) rounds inward, so an action clamped in float32 stays within the spec's bounds once it
    is cast to the spec's dtype."""
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
    lo32 = np.where(lo32 < lo, np.nextafter(lo32, np.float32(np.inf)), lo32).astype(np.float32)
    hi32 = np.where(hi32 > hi, np.nextafter(hi32, np.float32(-np.inf)), hi32).astype(np.float32)
    return lo32, hi32


def continuous_action_dim(action_spec: Any, owner: str) -> int:
    """``d`` of a float ``BoundedArraySpec`` of shape ``(d,)`` with finite bounds; TypeError naming ``owner`` otherwise."""
    if (
        isinstance(action_spec, specs.BoundedArraySpec)
        and len(action_spec.shape) == 1
        and np.issubdtype(action_spec.dtype, np.floating)
    ):
        if not (np.all(np.isfinite(action_spec.minimum)) and np.all(np.isfinite(action_spec.maximum))):
            raise TypeError(f"{owner}: continuous actions need finite bounds, got {action_spec!r}")
        if action_spec.shape[0] < 1:
            raise TypeError(f"{owner}: continuous actions need at least one dimension, got {action_spec!r}")
        if np.any(np.asarray(action_spec.maximum) <= np.asarray(action_spec.minimum)):
            raise TypeError(f"{owner}: every action dimension needs maximum > minimum, got {action_spec!r}")
        return int(action_spec.shape[0])
    raise TypeError(
        f"{owner}: needs continuous actions, a float BoundedArraySpec of shape (d,), got {action_spec!r}; "
        "for discrete actions use DQN, PPO or REINFORCE"
    )


class ActionScale(nn.Module):
    """Unit actions ``[-1, 1]`` <-> the action spec's bounds (the only place actions are rescaled).

    ``center = (low + high) / 2`` and ``half_range = (high - low) / 2`` per dimension.
    """

    low: torch.Tensor
    high: torch.Tensor
    center: torch.Tensor
    half_range: torch.Tensor

    def __init__(self, action_spec: Any):
        super().__init__()
        dim = continuous_action_dim(action_spec, "ActionScale")
        low = np.broadcast_to(np.asarray(action_spec.minimum, np.float64), (dim,))
        high = np.broadcast_to(np.asarray(action_spec.maximum, np.float64), (dim,))
        inside_low, inside_high = float32_bounds_inside(low, high)  # the clamp's: cast back, still inside
        for name, value in (
            ("low", inside_low),
            ("high", inside_high),
            ("center", (low + high) / 2),
            ("half_range", (high - low) / 2),
        ):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32))

    def to_env(self, unit: torch.Tensor) -> torch.Tensor:
        """``center + unit · half_range``, clamped to the bounds (float rounding never leaves them)."""
        return torch.clamp(self.center + unit * self.half_range, self.low, self.high)

    def to_unit(self, action: torch.Tensor) -> torch.Tensor:
        """``(action - center) / half_range``, clamped to ``[-1, 1]``."""
        return torch.clamp((action - self.center) / self.half_range, -1.0, 1.0)


def log1m_tanh_squared(u: torch.Tensor) -> torch.Tensor:
    """``log(1 - tanh(u)²)`` in a stable form: ``2 (log 2 - u - softplus(-2u))``.

    The naive form is ``-inf`` once ``tanh(u)`` rounds to ±1 (``|u| > 9`` in float32).
    """
    return 2.0 * (_LOG_2 - u - functional.softplus(-2.0 * u))


def squashed_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``log π(tanh(u))`` for ``u ~ N(mean, exp(log_std))``, summed over the last axis.

    ``Σ_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)²)]``: the Gaussian's density and the
    Jacobian of the tanh (change of variables).
    """
    z = (u - mean) * torch.exp(-log_std)
    gaussian = -0.5 * z * z - log_std - _HALF_LOG_2PI
    return (gaussian - log1m_tanh_squared(u)).sum(-1)


def squashed_sample(
    mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tanh(u), log π)`` with ``u = mean + exp(log_std) · noise`` (reparameterized: gradients reach
    ``mean`` and ``log_std``); ``noise`` is standard normal, drawn by the caller's seeded generator."""
    u = mean + torch.exp(log_std) * noise
    return torch.tanh(u), squashed_gaussian_log_prob(u, mean, log_std)


def _positive_dim(action_dim: Any, owner: str) -> int:
    if isinstance(action_dim, bool) or not isinstance(action_dim, (int, np.integer)) or action_dim < 1:
        raise ValueError(f"{owner}: action_dim must be an int >= 1, got {action_dim!r}")
    return int(action_dim)


def _torso(
    observation_spec: Any, extra: int, layers: Sequence[int], gen: Any, owner: str
) -> tuple[nn.Module, MLP]:
    sizes = layer_sizes(layers, f"{owner}: layers")
    encoder = make_encoder(observation_spec, None, gen, owner)
    width: int = encoder.output_dim  # type: ignore[assignment]
    return encoder, MLP(width + extra, sizes, gen)


class SquashedGaussianActor(nn.Module):
    """``observation -> (mean, log_std)`` of a Gaussian whose sample goes through a tanh (SAC).

    ``log_std`` is clamped to ``log_std_bounds`` (Stable-Baselines3's [-20, 2]).
    """

    def __init__(
        self,
        observation_spec: Any,
        action_dim: int,
        layers: Sequence[int] = (256, 256),
        *,
        log_std_bounds: tuple[float, float] = (-20.0, 2.0),
        seed: int | None = None,
    ):
        super().__init__()
        gen = make_generator(seed)
        action_dim = _positive_dim(action_dim, "SquashedGaussianActor")
        self.encoder, self.torso = _torso(observation_spec, 0, layers, gen, "SquashedGaussianActor")
        self.mean_head = linear(self.torso.output_dim, action_dim, _HEAD_GAIN, gen)
        self.log_std_head = linear(self.torso.output_dim, int(action_dim), _HEAD_GAIN, gen)
        self.log_std_min, self.log_std_max = (float(b) for b in log_std_bounds)

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = self._modules
        features = encoded_features(parts, observation)
        log_std = apply_linear(parts["log_std_head"], features).clamp(self.log_std_min, self.log_std_max)
        return apply_linear(parts["mean_head"], features), log_std

    def mean(self, observation: torch.Tensor) -> torch.Tensor:
        """The pre-tanh mean: ``tanh(mean)`` is the deterministic (evaluation) action."""
        parts = self._modules
        return apply_linear(parts["mean_head"], encoded_features(parts, observation))


class DeterministicActor(nn.Module):
    """``observation -> mean``, the pre-tanh action: ``tanh(mean)`` is the unit action (TD3, DDPG)."""

    def __init__(
        self,
        observation_spec: Any,
        action_dim: int,
        layers: Sequence[int] = (256, 256),
        *,
        seed: int | None = None,
    ):
        super().__init__()
        gen = make_generator(seed)
        action_dim = _positive_dim(action_dim, "DeterministicActor")
        self.encoder, self.torso = _torso(observation_spec, 0, layers, gen, "DeterministicActor")
        self.head = linear(self.torso.output_dim, action_dim, _HEAD_GAIN, gen)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.mean(observation)

    def mean(self, observation: torch.Tensor) -> torch.Tensor:
        parts = self._modules
        return apply_linear(parts["head"], encoded_features(parts, observation))


class _Critic(nn.Module):
    def __init__(self, observation_spec: Any, action_dim: int, layers: Sequence[int], gen: Any):
        super().__init__()
        action_dim = _positive_dim(action_dim, "QCritics")
        self.encoder, self.torso = _torso(observation_spec, action_dim, layers, gen, "QCritics")
        self.head = linear(self.torso.output_dim, 1, OUTPUT_GAIN, gen)

    def forward(self, observation: torch.Tensor, unit_action: torch.Tensor) -> torch.Tensor:
        if unit_action.dtype is not torch.float32:
            unit_action = unit_action.to(torch.float32)
        parts = self._modules
        features = torch.cat([parts["encoder"].forward(observation), unit_action], dim=-1)  # type: ignore[union-attr]
        return apply_linear(parts["head"], parts["torso"].forward(features)).squeeze(-1)  # type: ignore[union-attr]


class QCritics(nn.Module):
    """``num_critics`` independent Q-functions: ``(observation [B, ...], unit action [B, d]) -> [N, B]``.

    Each has its own encoder and torso; the observation's features and the unit action
    are concatenated before the first ``Linear -> ReLU`` (as in the TD3 and SAC papers).
    """

    def __init__(
        self,
        observation_spec: Any,
        action_dim: int,
        layers: Sequence[int] = (256, 256),
        *,
        num_critics: int = 2,
        seed: int | None = None,
    ):
        super().__init__()
        if int(num_critics) < 1:
            raise ValueError(f"QCritics: num_critics must be >= 1, got {num_critics}")
        gen = make_generator(seed)
        self.critics = nn.ModuleList(
            _Critic(observation_spec, int(action_dim), layers, gen) for _ in range(int(num_critics))
        )

    @property
    def num_critics(self) -> int:
        return len(self.critics)

    def forward(self, observation: torch.Tensor, unit_action: torch.Tensor) -> torch.Tensor:
        return torch.stack([critic.forward(observation, unit_action) for critic in self.critics])

    def min(self, observation: torch.Tensor, unit_action: torch.Tensor) -> torch.Tensor:
        """``min_i Q_i`` ``[B]`` (clipped double Q): pairwise minima, without stacking the critics.

        The values of ``forward(...).min(0).values``; a gradient flows to the smaller critic
        (split between them on an exact tie)."""
        critics = self.critics
        out: torch.Tensor = critics[0].forward(observation, unit_action)
        for critic in critics[1:]:
            out = torch.minimum(out, critic.forward(observation, unit_action))
        return out

    def first(self, observation: torch.Tensor, unit_action: torch.Tensor) -> torch.Tensor:
        """``Q_1`` alone ``[B]`` (TD3's and DDPG's actor loss)."""
        out: torch.Tensor = self.critics[0].forward(observation, unit_action)
        return out
