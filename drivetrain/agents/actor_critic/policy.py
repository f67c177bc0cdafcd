"""The policy of an actor-critic network, backed by PyTorch.

``ActorCriticPolicy(..., deterministic=False)`` is the **collect policy**: it samples
actions and reports what the policy-gradient losses need, in ``info``::

    info["log_prob"]     float32 [B]: log π(a | o) of the action taken (of the raw sample, for
                         continuous actions; see :mod:`~drivetrain.agents.actor_critic.distributions`)
    info["value"]        float32 [B]: V(o), the critic's value of the observation; at a LAST
                         time step it is the value of the episode's final observation, which
                         GAE bootstraps a truncated episode from
    info["raw_action"]   float32 [B, d]: the unclipped Gaussian sample (continuous actions only)

``deterministic=True`` is the **greedy policy**: the most likely action (the clipped mean
for continuous actions) and no info. A recurrent network's state is the policy state:
the driver passes it back, resets it at FIRST, and stores the state each action was
chosen from in ``policy_info["state"]``.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from drivetrain.agents.actor_critic.distributions import (
    categorical_log_prob,
    gaussian_log_prob,
    sample_categorical,
    sample_gaussian,
)
from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.tensors import to_torch
from drivetrain.core import seeding, specs, types
from drivetrain.core.policy import Policy
from drivetrain.networks.continuous import float32_bounds_inside

__all__ = ["ActorCriticPolicy", "info_spec"]

_FIRST = int(types.StepType.FIRST)


def info_spec(action_spec: Any, continuous: bool) -> dict[str, specs.ArraySpec]:
    """The ``info`` a collect policy reports (see the module docstring)."""
    info = {
        "log_prob": specs.ArraySpec((), np.float32, "log_prob"),
        "value": specs.ArraySpec((), np.float32, "value"),
    }
    if continuous:
        info["raw_action"] = specs.ArraySpec(action_spec.shape, np.float32, "raw_action")
    return info


class ActorCriticPolicy(Policy):
    """Actions of an :class:`ActorCriticNetwork`: sampled (collect) or most likely (greedy)."""

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        network: ActorCriticNetwork,
        device: torch.device,
        *,
        deterministic: bool,
        seed: seeding.Seed = None,
    ):
        self._continuous = network.continuous
        super().__init__(
            time_step_spec,
            action_spec,
            network.state_spec,
            {} if deterministic else info_spec(action_spec, self._continuous),
        )
        self._network = network
        self._device = device
        self._deterministic = bool(deterministic)
        self._rng = seeding.as_generator(seed)
        self._minimum = 0 if self._continuous else int(action_spec.minimum)

    @property
    def network(self) -> ActorCriticNetwork:
        return self._network

    @property
    def greedy(self) -> bool:
        return self._deterministic

    def _forward(self, time_step: types.TimeStep, policy_state: Any) -> Any:
        obs = to_torch(time_step.observation, self._device)
        if not self._network.recurrent:
            return self._network(obs)
        first = torch.as_tensor(np.asarray(time_step.step_type) == _FIRST, device=self._device)[:, None]
        state = tuple(to_torch(s, self._device) for s in policy_state)
        return self._network(obs.unsqueeze(1), first, state)

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        with torch.inference_mode():
            out = self._forward(time_step, policy_state)
            next_state = tuple(s.cpu().numpy() for s in out.state)
            if self._network.recurrent:  # one step: drop the time axis
                out = out._replace(
                    logits=None if out.logits is None else out.logits[:, 0],
                    mean=None if out.mean is None else out.mean[:, 0],
                    value=out.value[:, 0],
                )
            if self._continuous:
                return self._continuous_step(out, next_state)
            return self._discrete_step(out, next_state)

    def _discrete_step(self, out: Any, next_state: Any) -> types.PolicyStep:
        logits = out.logits
        if self._deterministic:
            index = logits.argmax(-1).cpu().numpy()
            return types.PolicyStep(self._to_action(index), next_state, {})
        index = sample_categorical(logits.cpu().numpy(), self._rng)
        log_prob = categorical_log_prob(logits, torch.as_tensor(index, device=logits.device))
        info = {"log_prob": _numpy(log_prob), "value": _numpy(out.value)}
        return types.PolicyStep(self._to_action(index), next_state, info)

    def _continuous_step(self, out: Any, next_state: Any) -> types.PolicyStep:
        spec = self.action_spec
        mean = out.mean.cpu().numpy()
        if self._deterministic:
            action = np.clip(mean, spec.minimum, spec.maximum).astype(spec.dtype)
            return types.PolicyStep(action, next_state, {})
        log_std = self._network.log_std
        assert log_std is not None
        action, raw = sample_gaussian(mean, np.exp(log_std.detach().cpu().numpy()), spec, self._rng)
        log_prob = gaussian_log_prob(out.mean, log_std, torch.as_tensor(raw, device=out.mean.device))
        info = {"log_prob": _numpy(log_prob), "value": _numpy(out.value), "raw_action": raw}
        return types.PolicyStep(action, next_state, info)

    def export_module(self) -> torch.nn.Module:
        """A CPU copy of the network that picks the most likely action (see :func:`drivetrain.export.export_policy`)."""
        if self._network.recurrent:
            raise TypeError("export_module: a recurrent policy needs its state; it cannot be exported alone")
        network = copy.deepcopy(self._network).to("cpu").eval()
        spec = self.action_spec
        if self._continuous:
            return _MeanModule(network, *float32_bounds_inside(spec.minimum, spec.maximum))
        return _ArgmaxModule(network, self._minimum)

    def diagnostics(self) -> dict[str, float]:
        """``{"action_std": mean std}`` of a continuous collect policy; nothing otherwise."""
        log_std = self._network.log_std
        if self._deterministic or log_std is None:
            return {}
        return {"action_std": float(log_std.detach().exp().mean())}

    def _to_action(self, index: np.ndarray) -> np.ndarray:
        return (index + self._minimum).astype(self.action_spec.dtype)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": seeding.generator_state(self._rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        seeding.set_generator_state(self._rng, state["rng"])


class _ArgmaxModule(torch.nn.Module):
    output_name = "logits"

    def __init__(self, network: ActorCriticNetwork, minimum: int):
        super().__init__()
        self.network, self.minimum = network, int(minimum)

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.network(observation).logits
        return logits.argmax(dim=1) + self.minimum, logits


class _MeanModule(torch.nn.Module):
    output_name = "mean"

    def __init__(self, network: ActorCriticNetwork, minimum: np.ndarray, maximum: np.ndarray):
        super().__init__()
        self.network = network
        self.low: torch.Tensor
        self.high: torch.Tensor
        self.register_buffer("low", torch.tensor(minimum))
        self.register_buffer("high", torch.tensor(maximum))

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.network(observation).mean
        return torch.clamp(mean, self.low, self.high), mean


def _numpy(x: torch.Tensor) -> np.ndarray:
    out: np.ndarray = x.to("cpu", torch.float32).numpy()
    return out
