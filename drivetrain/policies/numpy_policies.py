"""NumPy policies: random, scripted, greedy and epsilon-greedy."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from drivetrain.core import nest, seeding, specs, types
from drivetrain.core.policy import Policy
from drivetrain.core.schedules import Schedule, as_schedule

__all__ = ["EpsilonGreedyPolicy", "GreedyPolicy", "RandomPolicy", "ScriptedPolicy"]


def _batch_size(time_step: types.TimeStep) -> int:
    return int(time_step.step_type.shape[0])


def _scalar_discrete(action_spec: Any) -> tuple[int, int] | None:
    """(minimum, maximum) if the action spec is one scalar integer spec."""
    if (
        isinstance(action_spec, specs.BoundedArraySpec)
        and action_spec.shape == ()
        and np.issubdtype(action_spec.dtype, np.integer)
    ):
        return int(action_spec.minimum), int(action_spec.maximum)
    return None


class RandomPolicy(Policy):
    """Uniformly random actions within the (bounded) action spec.

    Its info is empty, so ``RandomPolicy(env.time_step_spec(), env.action_spec())`` writes
    trajectories that fit a replay buffer made for a stateless agent's
    ``collect_data_spec`` (the random warm-up of TF-Agents and of the book). ``info_spec``
    makes it emit zeros of that spec as its info instead, for a data spec that holds
    policy info.
    """

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        seed: seeding.Seed = None,
        info_spec: Any = None,
    ):
        super().__init__(time_step_spec, action_spec, info_spec=info_spec)
        self._zero_info: tuple[int, dict[str, Any]] = (-1, {})
        self._rng = seeding.as_generator(seed)
        self._discrete = _scalar_discrete(action_spec)
        if self._discrete is not None:
            self._dtype = action_spec.dtype
        for path, s in nest.flatten_with_paths(action_spec):
            if not isinstance(s, specs.BoundedArraySpec):
                raise TypeError(f"RandomPolicy: action spec {path or '<root>'} must be bounded, got {s}")

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        b = _batch_size(time_step)
        if self._discrete is not None:
            lo, hi = self._discrete
            if hi - lo < 2**31:
                # floor(u * n) of uniform doubles: ~3x cheaper than rng.integers for small batches
                # (random collection's hot path); its bias is below n / 2**53.
                if b == 1:  # the same draw as rng.random(1), without the arrays between
                    action = np.array([int(self._rng.random() * (hi - lo + 1)) + lo], self._dtype)
                else:
                    action = (self._rng.random(b) * (hi - lo + 1)).astype(self._dtype)
                    if lo:
                        action += lo
            else:
                action = self._rng.integers(lo, hi, b, endpoint=True).astype(self._dtype, copy=False)
        else:
            action = specs.sample(self.action_spec, self._rng, (b,))
        return types.PolicyStep(action, (), self._info(b))

    def _info(self, batch_size: int) -> dict[str, Any]:
        if not self.info_spec:
            return {}
        if self._zero_info[0] != batch_size:  # zeros made once per batch size, never written to
            self._zero_info = (batch_size, specs.zeros(self.info_spec, (batch_size,)))
        return self._zero_info[1]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": seeding.generator_state(self._rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        seeding.set_generator_state(self._rng, state["rng"])


class ScriptedPolicy(Policy):
    """Plays a fixed sequence of actions, then starts it again.

    ``actions[i]`` is the action of call ``i`` for every environment (a scalar or a
    value of the action spec), or a per-environment array ``[B, ...]``.
    """

    def __init__(self, time_step_spec: types.TimeStep, action_spec: Any, actions: Sequence[Any]):
        super().__init__(time_step_spec, action_spec)
        if len(actions) == 0:
            raise ValueError("ScriptedPolicy: actions must not be empty")
        self._actions = list(actions)
        self._i = 0

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        b = _batch_size(time_step)
        a = self._actions[self._i % len(self._actions)]
        self._i += 1

        def batch(spec: specs.ArraySpec, v: Any) -> np.ndarray:
            value = np.asarray(v)
            cast = value.astype(spec.dtype)
            if spec.dtype.kind in "iub" and not np.array_equal(cast, value):
                raise ValueError(f"ScriptedPolicy: action {value.tolist()} is not a value of {spec.dtype}")
            return np.broadcast_to(cast, (b, *spec.shape)).copy()

        action = nest.map_structure(batch, self.action_spec, a)
        specs.validate(self.action_spec, action, outer_ndim=1, name="ScriptedPolicy action")
        return types.PolicyStep(action, (), {})

    def state_dict(self) -> dict[str, Any]:
        return {"i": self._i}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._i = int(state["i"])


def _preferences(info: Any) -> np.ndarray | None:
    if isinstance(info, dict):
        for key in ("q_values", "logits"):
            if key in info:
                return np.asarray(info[key])
    return None


class GreedyPolicy(Policy):
    """The argmax of the wrapped policy's ``info["q_values"]`` (or ``info["logits"]``).

    A policy whose info holds neither (an agent's collect policy drops its q-values; an
    epsilon-greedy one explores) is unwrapped through its ``wrapped`` policies down to one whose
    info does: ``GreedyPolicy(dqn.collect_policy)`` acts as ``dqn.policy``. A policy that says
    it is :attr:`~drivetrain.core.policy.Policy.greedy` (an agent's ``policy``, e.g. PPO's or
    SAC's deterministic one) is passed on as it is. Any other (a PPO or SAC collect policy
    samples its actions; a random policy) is a TypeError: the agent's ``policy`` is its greedy
    one.
    """

    greedy_is_wrapped = True

    def __init__(self, policy: Policy):
        source = policy
        while not source.greedy:
            inner = getattr(source, "wrapped", None) if source.greedy_is_wrapped else None
            if _has_preferences(source.info_spec):
                if isinstance(inner, Policy) and _has_preferences(inner.info_spec):
                    source = inner  # the policy whose preferences these are: an exploring wrapper's own
                    continue  # state (its call counter, its RNG) is left alone
                break
            if not isinstance(inner, Policy):
                raise TypeError(
                    f"GreedyPolicy: the info of {type(policy).__name__} holds neither q_values nor logits"
                    f"{'' if source is policy else ', nor does that of any policy it wraps'}; use the "
                    "agent's greedy policy (agent.policy), or give a wrapper of your own q_values in its "
                    "info (or greedy_is_wrapped = True if it only explores)"
                )
            source = inner
        super().__init__(
            source.time_step_spec, source.action_spec, source.policy_state_spec, source.info_spec
        )
        self.wrapped = source
        bounds = _scalar_discrete(source.action_spec)
        self._minimum = 0 if bounds is None else bounds[0]

    def get_initial_state(self, batch_size: int) -> Any:
        return self.wrapped.get_initial_state(batch_size)

    @property
    def greedy(self) -> bool:
        return True

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        step = self.wrapped.action(time_step, policy_state)
        if self.wrapped.greedy:
            return step
        prefs = _preferences(step.info)
        if prefs is None:
            raise RuntimeError(
                f"GreedyPolicy: {type(self.wrapped).__name__} declares q_values or logits in its info_spec "
                "but its step's info holds neither"
            )
        action = (np.argmax(prefs, axis=-1) + self._minimum).astype(self.action_spec.dtype)
        return step._replace(action=action)


def _has_preferences(info_spec: Any) -> bool:
    return isinstance(info_spec, dict) and ("q_values" in info_spec or "logits" in info_spec)


class EpsilonGreedyPolicy(Policy):
    """With probability epsilon a uniformly random action, else the wrapped policy's.

    ``epsilon`` is a float, a schedule (a callable of a step counter) or a callable of no
    arguments (TF-Agents' ``epsilon_greedy=lambda: epsilon_fn(train_step)``), called at
    every :meth:`action`; anything else is refused here. A schedule's counter is
    ``step_fn()`` when given (e.g. the agent's train step), else the number of calls to
    :meth:`action` so far.

    ``emit_info=False`` drops the wrapped policy's info (e.g. its q-values): the policy's
    ``info_spec`` is then empty, and its trajectories hold only what an agent trains on
    (an agent's collect policy, as in TF-Agents). Then a stateless wrapped policy runs on the
    rows that do not explore only, and not at all when every row explores (its actions there
    would be replaced).
    """

    greedy_is_wrapped = True

    def __init__(
        self,
        policy: Policy,
        epsilon: float | Schedule | Callable[[], float],
        seed: seeding.Seed = None,
        step_fn: Callable[[], int] | None = None,
        emit_info: bool = True,
    ):
        super().__init__(
            policy.time_step_spec,
            policy.action_spec,
            policy.policy_state_spec,
            policy.info_spec if emit_info else None,
        )
        self.wrapped = policy
        self._emit_info = bool(emit_info)
        if isinstance(epsilon, numbers.Real) and not isinstance(epsilon, bool) and not 0 <= epsilon <= 1:
            raise ValueError(f"EpsilonGreedyPolicy: epsilon must be a probability in [0, 1], got {epsilon}")
        self._epsilon = as_schedule(epsilon, "EpsilonGreedyPolicy: epsilon")
        self._step_fn = step_fn
        self._calls = 0
        self._rng = seeding.as_generator(seed)
        self._random = RandomPolicy(policy.time_step_spec, policy.action_spec, self._rng)
        self._stateful_wrapped = policy.stateful

    @property
    def epsilon(self) -> float:
        """Epsilon at the current step."""
        step = self._step_fn() if self._step_fn is not None else self._calls
        eps = float(self._epsilon(step))
        if not 0.0 <= eps <= 1.0:  # NaN too
            raise ValueError(
                f"EpsilonGreedyPolicy: the epsilon schedule gave {eps} at step {step}; "
                "a probability must be in [0, 1]"
            )
        return eps

    @property
    def schedule(self) -> Schedule:
        """Epsilon as a schedule of the step counter (a constant's is constant): what :attr:`epsilon` evaluates."""
        return self._epsilon

    def diagnostics(self) -> dict[str, float]:
        """``{"epsilon": ...}``: the probability of a random action at the next step."""
        return {"epsilon": self.epsilon}

    def get_initial_state(self, batch_size: int) -> Any:
        return self.wrapped.get_initial_state(batch_size)

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        eps = self.epsilon
        self._calls += 1
        n = _batch_size(time_step)
        if n == 1:  # one draw, the number rng.random(1) would take, without the array
            explore = None
            explored = int(self._rng.random() < eps)
        else:
            explore = self._rng.random(n) < eps
            explored = int(np.count_nonzero(explore))
        if explored and not self._emit_info and not self._stateful_wrapped:
            # nothing of the wrapped policy is kept but its actions: it runs on the greedy rows only
            return types.PolicyStep(self._greedy_rows_only(time_step, explore, explored == n), (), {})
        step = self.wrapped.action(time_step, policy_state)
        if not self._emit_info:
            step = types.PolicyStep(step.action, step.state, {})
        if not explored:
            return step
        if explore is None:
            explore = np.ones(1, bool)
        random_action = self._random.action(time_step).action

        def mix(greedy: np.ndarray, rand: np.ndarray) -> np.ndarray:
            m = explore.reshape(explore.shape + (1,) * (np.ndim(greedy) - 1))
            return np.where(m, rand, greedy).astype(np.asarray(greedy).dtype, copy=False)

        return step._replace(action=nest.map_structure(mix, step.action, random_action))

    def _greedy_rows_only(
        self, time_step: types.TimeStep, explore: np.ndarray | None, every_row: bool
    ) -> Any:
        """The random actions, with the wrapped policy's in the rows that do not explore (it runs
        on those rows alone, and not at all when every row explores)."""
        action = self._random.action(time_step).action
        if every_row or explore is None:
            return action
        rows = np.flatnonzero(~explore)
        greedy = self.wrapped.action(nest.map_structure(lambda x: x[rows], time_step)).action

        def put(rand: np.ndarray, chosen: np.ndarray) -> np.ndarray:
            out = np.asarray(rand).astype(np.asarray(chosen).dtype)
            out[rows] = chosen
            return out

        return nest.map_structure(put, action, greedy)

    def state_dict(self) -> dict[str, Any]:
        return {
            "calls": self._calls,
            "rng": seeding.generator_state(self._rng),
            "wrapped": self.wrapped.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._calls = int(state["calls"])
        seeding.set_generator_state(self._rng, state["rng"])
        self.wrapped.load_state_dict(state["wrapped"])
