"""Small policies for tests and examples."""

from __future__ import annotations

from typing import Any

import numpy as np

from drivetrain.core import specs, types
from drivetrain.core.policy import Policy

__all__ = ["CountingPolicy"]


class CountingPolicy(Policy):
    """A stateful policy whose state counts the steps since the episode began.

    The state is an int64 counter per environment; each call returns ``state + 1``
    as the next state and the action ``state % num_actions``. Because the driver resets
    the state at FIRST, the action at step ``t`` of every episode is ``t % num_actions``.
    ``info["seen_state"]`` echoes the state the policy acted from, so tests can compare
    it with what the driver stored in ``policy_info["state"]``.
    """

    def __init__(self, time_step_spec: types.TimeStep, action_spec: specs.BoundedArraySpec):
        state_spec = specs.ArraySpec((), np.int64, "count")
        super().__init__(time_step_spec, action_spec, state_spec, {"seen_state": state_spec})
        self._n = action_spec.num_values
        self._min = int(action_spec.minimum)

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        count = np.asarray(policy_state, np.int64)
        action = (count % self._n + self._min).astype(self.action_spec.dtype)
        return types.PolicyStep(action, count + 1, {"seen_state": count.copy()})
