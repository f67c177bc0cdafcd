"""The greedy policy of a Q-network, backed by PyTorch.

``QPolicy`` is a :class:`drivetrain.core.Policy`: NumPy time step in, NumPy policy
step out::

    step = policy.action(time_step)       # observation [B, ...] as the env emits it
    step.action                           # argmax_a q(o, a) + action_spec.minimum, [B]
    step.info["q_values"]                 # float32 [B, num_actions]

It runs the network under ``torch.inference_mode()`` on the network's device and
moves the q-values back in one transfer; the argmax is taken in NumPy. It is on the
collection hot path, so it does no spec validation (the environment validates
observations; the driver, actions).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from drivetrain.agents.tensors import example_observation, to_torch
from drivetrain.core import specs, types
from drivetrain.core.policy import Policy
from drivetrain.networks.q_network import num_actions_of

__all__ = ["QPolicy"]


class QPolicy(Policy):
    """Greedy actions of ``q_network``; ``info["q_values"]`` holds the q-values.

    ``device`` defaults to the device of the network's first parameter. The network is
    shared, not copied: the policy always acts with the current weights.
    """

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        q_network: nn.Module,
        device: str | torch.device | None = None,
    ):
        num_actions = num_actions_of(action_spec)
        super().__init__(
            time_step_spec,
            action_spec,
            info_spec={"q_values": specs.ArraySpec((num_actions,), np.float32, "q_values")},
        )
        if device is None:
            first = next(iter(q_network.parameters()), None)
            device = first.device if first is not None else torch.device("cpu")
        self._device = torch.device(device)
        self._q_network = q_network
        self._num_actions = num_actions
        self._minimum = int(action_spec.minimum)
        self._dtype = action_spec.dtype
        self._check_output()

    @property
    def q_network(self) -> nn.Module:
        return self._q_network

    @property
    def device(self) -> torch.device:
        return self._device

    def _check_output(self) -> None:
        obs = to_torch(example_observation(self.time_step_spec.observation, 2), self._device)
        with torch.inference_mode():
            q = self._q_network(obs)
        if tuple(q.shape) != (2, self._num_actions):
            raise ValueError(
                f"QPolicy: q_network must map a batch of 2 observations to q-values of shape "
                f"(2, {self._num_actions}) (one per action of {self.action_spec!r}), got {tuple(q.shape)}"
            )

    def export_module(self) -> nn.Module:
        """A CPU copy of the network with its argmax (see :func:`drivetrain.export.export_policy`)."""
        from drivetrain.export import GreedyQModule

        network = copy.deepcopy(self._q_network).to("cpu").eval()
        return GreedyQModule(network, self._minimum)

    def q_values(self, observation: Any) -> np.ndarray:
        """float32 q-values ``[B, num_actions]`` of a batch of observations."""
        obs = to_torch(observation, self._device)
        with torch.inference_mode():
            q = self._q_network(obs)
        if q.dtype is not torch.float32 or q.device.type != "cpu":
            q = q.to("cpu", torch.float32)
        out: np.ndarray = q.numpy()
        return out

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        q_values = self.q_values(time_step.observation)
        action = q_values.argmax(axis=1)
        if self._minimum:
            action += self._minimum
        return types.PolicyStep(action.astype(self._dtype, copy=False), (), {"q_values": q_values})
