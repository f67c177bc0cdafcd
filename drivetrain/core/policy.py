"""The policy protocol.

A policy maps a batched time step (and its state) to a :class:`PolicyStep`::

    policy_state = policy.get_initial_state(batch_size)
    step = policy.action(time_step, policy_state)
    step.action   # nest of arrays [B, ...] matching policy.action_spec
    step.state    # the state to pass at the next call; () for stateless policies
    step.info     # dict of arrays [B, ...] matching policy.info_spec (e.g. "q_values")

Stateless policies have ``policy_state_spec == ()``. For stateful policies the driver
passes the returned state back, resets it to the initial state where a time step is
FIRST, and records the state the policy *acted from* in ``policy_info["state"]``, so
``policy.trajectory_spec`` (the data spec of a replay buffer) contains it.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from drivetrain.core import nest, specs, types

__all__ = ["Policy", "is_stateful"]


def is_stateful(policy_state_spec: Any) -> bool:
    """True if the state spec has any leaves."""
    return bool(nest.flatten(policy_state_spec))


class Policy(abc.ABC):
    """Base class of policies; subclasses implement :meth:`_action`."""

    greedy_is_wrapped: ClassVar[bool] = False
    """True for a wrapper whose greedy action is its ``wrapped`` policy's (it only explores around
    it, or takes its argmax): ``GreedyPolicy`` and ``export_policy`` look through it. A wrapper
    that changes what the wrapped policy prefers (an action mask) keeps False: it is not looked
    through, so its changes are never dropped."""

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        policy_state_spec: Any = (),
        info_spec: Any = None,
    ):
        self._time_step_spec = time_step_spec
        self._action_spec = action_spec
        self._policy_state_spec = policy_state_spec
        self._info_spec = {} if info_spec is None else dict(info_spec)

    @property
    def time_step_spec(self) -> types.TimeStep:
        return self._time_step_spec

    @property
    def action_spec(self) -> Any:
        return self._action_spec

    @property
    def policy_state_spec(self) -> Any:
        return self._policy_state_spec

    @property
    def info_spec(self) -> dict[str, Any]:
        """Spec of ``PolicyStep.info`` (without the driver-added ``"state"``)."""
        return self._info_spec

    @property
    def stateful(self) -> bool:
        return is_stateful(self._policy_state_spec)

    @property
    def greedy(self) -> bool:
        """Whether the actions are already the greedy (deterministic) ones: an agent's ``policy``
        says so; :class:`~drivetrain.policies.GreedyPolicy` then passes them on. False by default."""
        return False

    @property
    def trajectory_spec(self) -> types.Trajectory:
        """Spec of the trajectories a driver produces with this policy: a replay's data spec."""
        info = dict(self._info_spec)
        if self.stateful:
            info["state"] = self._policy_state_spec
        return types.trajectory_spec(self._time_step_spec, self._action_spec, info)

    def get_initial_state(self, batch_size: int) -> Any:
        """The state at the start of an episode: zeros of ``policy_state_spec`` by default."""
        if not self.stateful:
            return ()
        return specs.zeros(self._policy_state_spec, (batch_size,))

    def action(self, time_step: types.TimeStep, policy_state: Any = ()) -> types.PolicyStep:
        """The batched action for ``time_step`` from ``policy_state``."""
        return self._action(time_step, policy_state)

    @abc.abstractmethod
    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        """Implements :meth:`action`."""

    def diagnostics(self) -> dict[str, float]:
        """Scalars that describe the policy now (e.g. ``{"epsilon": 0.05}``); the training loop
        logs them with every row. None by default."""
        return {}

    # Stateful parts (RNGs, counters) override these for checkpoints.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state
