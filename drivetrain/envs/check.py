"""``check_env``: plays a random policy in an environment and reports every protocol violation.

::

    dt.envs.check_env(lambda: dt.envs.make("CartPole-v1", num_envs=4, seed=0))  # also checks seeding
    dt.envs.check_env(my_env)                                                  # an instance: no seeding check

What is checked, at every time step of every environment of the batch:

- the result is a :class:`~drivetrain.core.types.TimeStep` whose ``step_type`` (int32),
  ``reward`` and ``discount`` (float32) have shape ``[B]``;
- each observation field matches ``observation_spec()``: batch size, shape, dtype,
  bounds (inclusive), and is finite (no NaN or inf); rewards are finite;
- the ordering: ``reset()`` gives FIRST everywhere; after LAST comes FIRST; FIRST comes
  *only* after LAST (or from ``reset()``), so an episode never restarts without ending;
  step types are FIRST, MID or LAST;
- FIRST has reward 0 and discount 1; every discount is in [0, 1];
- given a factory, two environments it builds produce identical time steps for the
  same actions (the same seed reproduces the same episodes).

Problems are collected (the first occurrence of each kind, with its step and
environment, and how often it happened) and raised together as :class:`EnvCheckError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from drivetrain.core import nest, seeding, specs, types
from drivetrain.core.environment import Environment

__all__ = ["EnvCheckError", "EnvCheckReport", "check_env"]

_FIRST, _MID, _LAST = (int(s) for s in types.StepType)
_HINT_TS = "build time steps with drivetrain.core.types.restart/transition/termination/truncation"


class EnvCheckError(ValueError):
    """``check_env`` found problems; ``problems`` lists one message per kind of problem."""

    def __init__(self, problems: list[str], env_name: str = "environment"):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"check_env found {len(self.problems)} problem(s) in {env_name}:\n{lines}")


@dataclasses.dataclass(frozen=True)
class EnvCheckReport:
    """What a successful :func:`check_env` saw."""

    batch_size: int
    """Number of environments in the batch."""
    steps: int
    """Calls to ``step`` (each steps the whole batch)."""
    episodes: int
    """Episodes that ended (LAST time steps) over the batch."""
    reproducibility_checked: bool
    """True if ``check_env`` got a factory and compared two environments it built."""


class _Problems:
    """The first message of each kind of problem, and how often each kind happened."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}
        self.count: dict[str, int] = {}

    def add(self, kind: str, message: str) -> None:
        self.first.setdefault(kind, message)
        self.count[kind] = self.count.get(kind, 0) + 1

    def messages(self) -> list[str]:
        return [
            msg + (f" [{self.count[k]} occurrences]" if self.count[k] > 1 else "")
            for k, msg in self.first.items()
        ]


def _where(t: int | None, i: int | None = None) -> str:
    at = "after reset()" if t is None else f"at step {t}"
    return at if i is None else f"{at}, env {i}"


def _check_field(problems: _Problems, name: str, value: Any, dtype: Any, b: int, t: int | None) -> bool:
    arr = np.asarray(value)
    if arr.shape != (b,):
        problems.add(
            f"{name}.shape",
            f"{name}: expected shape ({b},) (one per env), got {arr.shape} {_where(t)}; {_HINT_TS}",
        )
        return False
    if arr.dtype != dtype:
        problems.add(
            f"{name}.dtype",
            f"{name}: expected dtype {np.dtype(dtype)}, got {arr.dtype} {_where(t)}; {_HINT_TS}",
        )
        return False
    return True


def _check_observation(problems: _Problems, spec: Any, obs: Any, b: int, t: int | None) -> None:
    pairs: list[tuple[str, Any, Any]] = []
    try:
        nest.map_structure_with_path(lambda p, s, v: pairs.append((p, s, v)), spec, obs, prefix="observation")
    except ValueError as e:
        problems.add(
            "observation.structure",
            f"observation: does not have the structure of observation_spec() ({e}) {_where(t)}",
        )
        return
    for path, s, v in pairs:
        arr = np.asarray(v)
        if arr.ndim != 1 + len(s.shape) or arr.shape[0] != b or arr.shape[1:] != s.shape:
            problems.add(
                f"{path}.shape",
                f"{path}: expected shape ({b}, *{s.shape}) = [B] + spec shape, got {arr.shape} {_where(t)}",
            )
            continue
        if arr.dtype != s.dtype:
            problems.add(
                f"{path}.dtype",
                f"{path}: expected dtype {s.dtype} (the spec's), got {arr.dtype} {_where(t)}; cast observations to the spec's dtype",
            )
            continue
        if np.issubdtype(arr.dtype, np.floating):
            bad = ~np.isfinite(arr.reshape(b, -1)).all(axis=1)
            if bad.any():
                i = int(np.argmax(bad))
                problems.add(
                    f"{path}.finite",
                    f"{path}: NaN or inf in the observation {_where(t, i)}: {arr[i].tolist() if arr[i].size <= 8 else '...'}; observations must be finite",
                )
                continue
        if isinstance(s, specs.BoundedArraySpec):
            out = ((arr < s.minimum) | (arr > s.maximum)).reshape(b, -1).any(axis=1)
            if out.any():
                i = int(np.argmax(out))
                problems.add(
                    f"{path}.bounds",
                    f"{path}: value {arr[i].tolist() if arr[i].size <= 8 else '...'} {_where(t, i)} is outside the spec's inclusive bounds [{s.minimum.tolist() if s.minimum.size <= 8 else '...'}, {s.maximum.tolist() if s.maximum.size <= 8 else '...'}]; fix the environment or widen its observation space",
                )


def _check_time_step(
    problems: _Problems, ts: Any, prev: np.ndarray | None, spec: Any, b: int, t: int | None
) -> np.ndarray | None:
    """Checks one time step; returns its step types if they are usable for ordering checks."""
    if not isinstance(ts, types.TimeStep):
        what = "reset()" if t is None else "step()"
        problems.add(
            "timestep.type",
            f"{what} returned a {type(ts).__name__}, expected a drivetrain TimeStep; {_HINT_TS}",
        )
        return None
    ok = _check_field(problems, "step_type", ts.step_type, types.STEP_TYPE_DTYPE, b, t)
    ok_r = _check_field(problems, "reward", ts.reward, types.REWARD_DTYPE, b, t)
    ok_d = _check_field(problems, "discount", ts.discount, types.REWARD_DTYPE, b, t)
    _check_observation(problems, spec, ts.observation, b, t)
    if ok_r and not np.isfinite(ts.reward).all():
        i = int(np.argmax(~np.isfinite(ts.reward)))
        problems.add("reward.finite", f"reward: {ts.reward[i]} {_where(t, i)}; rewards must be finite")
    if ok_d and ((ts.discount < 0) | (ts.discount > 1) | ~np.isfinite(ts.discount)).any():
        i = int(np.argmax((ts.discount < 0) | (ts.discount > 1) | ~np.isfinite(ts.discount)))
        problems.add(
            "discount.range",
            f"discount: {ts.discount[i]} {_where(t, i)} is outside [0, 1]; use 0 on termination and 1 otherwise",
        )
    if not ok:
        return None
    st = np.asarray(ts.step_type)
    if ((st < _FIRST) | (st > _LAST)).any():
        i = int(np.argmax((st < _FIRST) | (st > _LAST)))
        problems.add(
            "step_type.value", f"step_type: {st[i]} {_where(t, i)} is not FIRST (0), MID (1) or LAST (2)"
        )
        return None
    first = st == _FIRST
    if ok_r and (first & (ts.reward != 0)).any():
        i = int(np.argmax(first & (ts.reward != 0)))
        problems.add(
            "first.reward",
            f"FIRST time step with reward {ts.reward[i]} {_where(t, i)}; a FIRST time step has reward 0",
        )
    if ok_d and (first & (ts.discount != 1)).any():
        i = int(np.argmax(first & (ts.discount != 1)))
        problems.add(
            "first.discount",
            f"FIRST time step with discount {ts.discount[i]} {_where(t, i)}; a FIRST time step has discount 1",
        )
    if prev is None:
        if not first.all():
            i = int(np.argmax(~first))
            problems.add(
                "reset.first",
                f"reset() returned step type {types.StepType(int(st[i])).name} for env {i}; reset() must return FIRST for every environment",
            )
        return st
    after_last = prev == _LAST
    if (after_last & ~first).any():
        i = int(np.argmax(after_last & ~first))
        problems.add(
            "order.after_last",
            f"{types.StepType(int(st[i])).name} follows LAST {_where(t, i)}; the step after LAST must start a new episode and return FIRST (next-step auto-reset, the action is ignored)",
        )
    if (~after_last & first).any():
        i = int(np.argmax(~after_last & first))
        problems.add(
            "order.first_without_last",
            f"FIRST follows {types.StepType(int(prev[i])).name} {_where(t, i)}: the episode restarted without ending; end every episode with a LAST time step (termination or truncation) before FIRST",
        )
    return st


def _play(
    env: Environment, num_steps: int, seed: int, problems: _Problems | None, actions: list[Any] | None
) -> tuple[list[types.TimeStep], list[Any], int]:
    """Plays random (or given) actions; checks each time step if ``problems`` is given."""
    b = env.batch_size
    obs_spec = env.observation_spec()
    rng = seeding.as_generator(seed)
    record: list[types.TimeStep] = []
    played: list[Any] = []
    episodes = 0
    ts = env.reset()
    prev = _check_time_step(problems, ts, None, obs_spec, b, None) if problems is not None else None
    record.append(ts)
    for t in range(num_steps):
        action = actions[t] if actions is not None else specs.sample(env.action_spec(), rng, (b,))
        try:
            ts = env.step(action)
        except Exception as e:
            if problems is not None:
                problems.add(
                    "step.raised",
                    f"step() raised {type(e).__name__}: {e} {_where(t)} (with an action sampled from action_spec())",
                )
            break
        played.append(action)
        record.append(ts)
        if problems is not None:
            st = _check_time_step(problems, ts, prev, obs_spec, b, t)
            if st is None:
                break  # later ordering checks would only repeat this problem
            episodes += int(np.count_nonzero(st == _LAST))
            prev = st
    return record, played, episodes


def _first_difference(a: types.TimeStep, b: types.TimeStep) -> str | None:
    for field in ("step_type", "reward", "discount", "observation"):
        for (path, x), (_, y) in zip(
            nest.flatten_with_paths(getattr(a, field), field),
            nest.flatten_with_paths(getattr(b, field), field),
            strict=False,
        ):
            x, y = np.asarray(x), np.asarray(y)
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=np.issubdtype(x.dtype, np.floating)):
                return f"{path}: {x.tolist() if x.size <= 8 else '...'} vs {y.tolist() if y.size <= 8 else '...'}"
    return None


def _check_specs(problems: _Problems, env: Environment) -> bool:
    ok = True
    for what, spec in (("observation_spec()", env.observation_spec()), ("action_spec()", env.action_spec())):
        for path, leaf in nest.flatten_with_paths(spec):
            if not isinstance(leaf, specs.ArraySpec):
                problems.add(
                    f"spec.{what}",
                    f"{what}: leaf {path or '<root>'} is {leaf!r}, expected an ArraySpec/BoundedArraySpec",
                )
                ok = False
    b = env.batch_size
    if not isinstance(b, int) or b < 1:
        problems.add("batch_size", f"batch_size: expected an int >= 1, got {b!r}")
        ok = False
    return ok


def check_env(
    env: Environment | Callable[[], Environment], num_steps: int = 1000, seed: int = 0
) -> EnvCheckReport:
    """Plays ``num_steps`` batched random actions and checks the time steps against the protocol.

    Args:
      env: an :class:`Environment`, or a zero-argument factory returning one (e.g.
        ``lambda: dt.envs.make("CartPole-v1", seed=0)``). With a factory, ``check_env``
        builds two environments, plays the same actions in both and checks that they
        give identical time steps (seeding); it closes what it built. An instance is
        reset but not closed, and its reproducibility is not checked.
      num_steps: calls to ``step``; use enough for several episodes to end.
      seed: seed of the random actions.

    Returns:
      An :class:`EnvCheckReport` of what was played.

    Raises:
      EnvCheckError: listing every kind of problem found, each with where it first
        happened and what to fix.
    """
    factory = None if isinstance(env, Environment) else env
    instance = env if isinstance(env, Environment) else env()
    name = type(instance).__name__
    if not isinstance(instance, Environment):
        raise TypeError(f"check_env: expected a drivetrain Environment or a factory of one, got {name}")
    problems = _Problems()
    try:
        if not _check_specs(problems, instance):
            raise EnvCheckError(problems.messages(), name)
        record, actions, episodes = _play(instance, num_steps, seed, problems, None)
    finally:
        if factory is not None:
            instance.close()
    if factory is not None and not problems.first:
        other = factory()
        try:
            if other is instance:
                problems.add(
                    "seed.same_object",
                    "the factory returned the same environment object twice; it must build a new one per call",
                )
            else:
                replay, _, _ = _play(other, len(actions), seed, None, actions)
                for t, (x, y) in enumerate(zip(record, replay, strict=False)):
                    diff = _first_difference(x, y)
                    if diff is not None:
                        at = "after reset()" if t == 0 else f"at step {t - 1}"
                        problems.add(
                            "seed.reproducible",
                            f"two environments from the same factory differ {at} ({diff}) for the same actions; seed every source of randomness (env.reset(seed=...), spaces, RNGs) from the factory's seed",
                        )
                        break
        finally:
            other.close()
    if problems.first:
        raise EnvCheckError(problems.messages(), name)
    return EnvCheckReport(instance.batch_size, len(actions), episodes, factory is not None)
