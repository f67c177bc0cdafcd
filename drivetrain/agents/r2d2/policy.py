"""The greedy, stateful policy of a recurrent Q-network, backed by PyTorch.

``RecurrentQPolicy`` is a stateful :class:`drivetrain.core.Policy` that works with the
drivers unchanged::

    state = policy.get_initial_state(B)          # tuple of float32 zeros [B, hidden_size]
    step = policy.action(time_step, state)       # one network step on observation [B, ...]
    step.action                                  # argmax_a q + action_spec.minimum, [B]
    step.state                                   # the state after this step: pass it back next call
    step.info["q_values"]                        # float32 [B, num_actions]

``policy_state_spec`` is the network's ``state_spec``; the driver stores the state the
policy acted from in ``policy_info["state"]``. The network resets its state where
``time_step.step_type`` is FIRST as the driver does (a no-op after the driver's reset,
and the same rule the agent applies when it replays sequences).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from drivetrain.agents.tensors import to_torch
from drivetrain.core import specs, types
from drivetrain.core.policy import Policy
from drivetrain.networks.recurrent import RecurrentQNetwork

__all__ = ["RecurrentQPolicy"]

_FIRST = int(types.StepType.FIRST)


class RecurrentQPolicy(Policy):
    """Greedy actions of a :class:`RecurrentQNetwork`; the network is shared, not copied."""

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        q_network: RecurrentQNetwork,
        device: str | torch.device | None = None,
    ):
        if not isinstance(q_network, RecurrentQNetwork):
            raise TypeError(
                f"RecurrentQPolicy: q_network must be a RecurrentQNetwork, got {type(q_network).__name__}"
            )
        num_actions = q_network.num_actions
        super().__init__(
            time_step_spec,
            action_spec,
            policy_state_spec=q_network.state_spec,
            info_spec={"q_values": specs.ArraySpec((num_actions,), np.float32, "q_values")},
        )
        if device is None:
            device = next(iter(q_network.parameters())).device
        self._device = torch.device(device)
        self._q_network = q_network
        self._minimum = int(action_spec.minimum)
        self._dtype = action_spec.dtype

    @property
    def q_network(self) -> RecurrentQNetwork:
        return self._q_network

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        observation = to_torch(time_step.observation, self._device).unsqueeze(1)
        first = to_torch(np.asarray(time_step.step_type) == _FIRST, self._device).unsqueeze(1)
        state = tuple(to_torch(np.asarray(s, np.float32), self._device) for s in policy_state)
        with torch.inference_mode():
            q, next_state = self._q_network(observation, first, state)
        q_values: np.ndarray = q[:, 0].to("cpu", torch.float32).numpy()
        new_state = tuple(s.to("cpu", torch.float32).numpy() for s in next_state)
        action = q_values.argmax(axis=1)
        if self._minimum:
            action += self._minimum
        return types.PolicyStep(action.astype(self._dtype, copy=False), new_state, {"q_values": q_values})
