"""``check_env``: plays a random policy in an environment and reports every protocol violation.

::

    dt.envs.check_env(lambda: dt.envs.make("CartPole-v1", num_envs=4, seed=0))  # also checks seeding
    dt.envs.check_env(my_env)                                                  # an instance: no seeding check

What is checked, at every time step of every environment of the batch:

- the specs are nests of ``ArraySpec``; ``reset()``/``step()`` return a
  :class:`~drivetrain.core.types.TimeStep` whose ``step_type`` (int32), ``reward`` and
  ``discount`` (float32) have shape ``[B]``;
- each observation field matches ``observation_spec()``: batch size, shape, dtype,
  inclusive bounds, and is finite (no NaN or inf); rewards are finite;
- ordering: ``reset()`` gives FIRST everywhere; after LAST comes FIRST; FIRST comes
  *only* after LAST (or from ``reset()``), so an episode never restarts without
  ending; step types are FIRST, MID or LAST;
- FIRST has reward 0 and discount 1; every discount is in [0, 1];
- ``step`` accepts actions sampled from ``action_spec()``;
- given a factory, two environments it builds produce identical time steps for the
  same actions (the same seed reproduces the same episodes).

Problems are collected -- the first occurrence of each kind, with its step and
environment, and how often it happened -- and raised together as :class:`EnvCheckError`.
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
_BUILD_HINT = "build time steps with drivetrain.core.types.restart/transition/termination/truncation"


class EnvCheckError(ValueError):
    """``check_env`` found problems; ``problems`` holds one message per kind of problem."""

    def __init__(self, problems: list[str], env_name: str = "environment"):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"check_env found {len(self.problems)} problem(s) in {env_name}:\n{lines}")


@dataclasses.dataclass(frozen=True)
class EnvCheckReport:
    """What a successful :func:`check_env` played."""

    batch_size: int
    """Number of environments in the batch."""
    steps: int
    """Calls to ``step`` (each steps the whole batch)."""
    episodes: int
    """Episodes that ended (LAST time steps), over the batch."""
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
            m + (f" [{self.count[k]} occurrences]" if self.count[k] > 1 else "")
            for k, m in self.first.items()
        ]


def _where(t: int | None, i: int | None = None) -> str:
    at = "after reset()" if t is None else f"at step {t}"
    return at if i is None else f"{at}, env {i}"


def _show(x: Any) -> str:
    a = np.asarray(x)
    return str(a.tolist()) if a.size <= 8 else f"array(shape={a.shape})"


def _first(mask: np.ndarray) -> int | None:
    """Index of the first environment where ``mask`` ([B] or [B, ...]) is set, or None."""
    rows = mask.reshape(mask.shape[0], -1).any(axis=1)
    return int(np.argmax(rows)) if rows.any() else None


def _name(step_type: Any) -> str:
    return types.StepType(int(step_type)).name


def _check_field(problems: _Problems, name: str, value: Any, dtype: Any, b: int, t: int | None) -> bool:
    arr = np.asarray(value)
    if arr.shape != (b,):
        problems.add(
            f"{name}.shape",
            f"{name}: expected shape ({b},), one per env, got {arr.shape} {_where(t)}; {_BUILD_HINT}",
        )
        return False
    if arr.dtype != dtype:
        problems.add(
            f"{name}.dtype",
            f"{name}: expected dtype {np.dtype(dtype)}, got {arr.dtype} {_where(t)}; {_BUILD_HINT}",
        )
        return False
    return True


def _check_observation(problems: _Problems, spec: Any, obs: Any, b: int, t: int | None) -> None:
    leaves: list[tuple[str, Any, Any]] = []
    try:
        nest.map_structure_with_path(
            lambda p, s, v: leaves.append((p, s, v)), spec, obs, prefix="observation"
        )
    except ValueError as e:
        problems.add(
            "observation.structure",
            f"observation: does not have the structure of observation_spec() ({e}) {_where(t)}",
        )
        return
    for path, s, v in leaves:
        arr = np.asarray(v)
        if arr.shape != (b, *s.shape):
            problems.add(
                f"{path}.shape",
                f"{path}: expected shape {(b, *s.shape)} (batch {b} + spec shape {s.shape}), "
                f"got {arr.shape} {_where(t)}",
            )
            continue
        if arr.dtype != s.dtype:
            problems.add(
                f"{path}.dtype",
                f"{path}: expected the spec's dtype {s.dtype}, got {arr.dtype} {_where(t)}; "
                "cast observations to the spec's dtype",
            )
            continue
        if np.issubdtype(arr.dtype, np.floating):
            i = _first(~np.isfinite(arr))
            if i is not None:
                problems.add(
                    f"{path}.finite",
                    f"{path}: NaN or inf in the observation {_show(arr[i])} {_where(t, i)}; "
                    "observations must be finite",
                )
                continue
        if isinstance(s, specs.BoundedArraySpec):
            i = _first((arr < s.minimum) | (arr > s.maximum))
            if i is not None:
                problems.add(
                    f"{path}.bounds",
                    f"{path}: {_show(arr[i])} {_where(t, i)} is outside the spec's inclusive bounds "
                    f"[{_show(s.minimum)}, {_show(s.maximum)}]; fix the environment or widen its "
                    "observation space",
                )


def _check_values(
    problems: _Problems, ts: types.TimeStep, ok_reward: bool, ok_discount: bool, t: int | None
) -> None:
    if ok_reward and (i := _first(~np.isfinite(ts.reward))) is not None:
        problems.add("reward.finite", f"reward: {ts.reward[i]} {_where(t, i)}; rewards must be finite")
    bad = (ts.discount < 0) | (ts.discount > 1) | ~np.isfinite(ts.discount) if ok_discount else None
    if bad is not None and (i := _first(bad)) is not None:
        problems.add(
            "discount.range",
            f"discount: {ts.discount[i]} {_where(t, i)} is outside [0, 1]; "
            "use 0 on termination and 1 otherwise",
        )


def _check_order(
    problems: _Problems, ts: types.TimeStep, st: np.ndarray, prev: np.ndarray | None, t: int | None
) -> None:
    first = st == _FIRST
    if (i := _first(first & (ts.reward != 0))) is not None:
        problems.add(
            "first.reward",
            f"FIRST time step with reward {ts.reward[i]} {_where(t, i)}; a FIRST time step has reward 0",
        )
    if (i := _first(first & (ts.discount != 1))) is not None:
        problems.add(
            "first.discount",
            f"FIRST time step with discount {ts.discount[i]} {_where(t, i)}; a FIRST time step has discount 1",
        )
    if prev is None:
        if (i := _first(~first)) is not None:
            problems.add(
                "reset.first",
                f"reset() returned step type {_name(st[i])} for env {i}; "
                "reset() must return FIRST for every environment",
            )
        return
    if (i := _first((prev == _LAST) & ~first)) is not None:
        problems.add(
            "order.after_last",
            f"{_name(st[i])} follows LAST {_where(t, i)}; the step after LAST must start a new episode and "
            "return FIRST (next-step auto-reset: that step's action is ignored)",
        )
    if (i := _first((prev != _LAST) & first)) is not None:
        problems.add(
            "order.first_without_last",
            f"FIRST follows {_name(prev[i])} {_where(t, i)}: the episode restarted without ending; end every "
            "episode with a LAST time step (termination or truncation) before FIRST",
        )


def _check_time_step(
    problems: _Problems, ts: Any, prev: np.ndarray | None, spec: Any, b: int, t: int | None
) -> np.ndarray | None:
    """Checks one time step; returns its step types if the ordering checks can go on."""
    if not isinstance(ts, types.TimeStep):
        what = "reset()" if t is None else "step()"
        problems.add(
            "timestep.type",
            f"{what} returned a {type(ts).__name__}, expected a drivetrain TimeStep; {_BUILD_HINT}",
        )
        return None
    ok_st = _check_field(problems, "step_type", ts.step_type, types.STEP_TYPE_DTYPE, b, t)
    ok_r = _check_field(problems, "reward", ts.reward, types.REWARD_DTYPE, b, t)
    ok_d = _check_field(problems, "discount", ts.discount, types.REWARD_DTYPE, b, t)
    _check_observation(problems, spec, ts.observation, b, t)
    _check_values(problems, ts, ok_r, ok_d, t)
    if not (ok_st and ok_r and ok_d):
        return None
    st = np.asarray(ts.step_type)
    if (i := _first((st < _FIRST) | (st > _LAST))) is not None:
        problems.add(
            "step_type.value", f"step_type: {st[i]} {_where(t, i)} is not FIRST (0), MID (1) or LAST (2)"
        )
        return None
    _check_order(problems, ts, st, prev, t)
    return st


def _play(
    env: Environment, num_steps: int, seed: int, problems: _Problems, actions: list[Any] | None = None
) -> tuple[list[types.TimeStep], list[Any], int]:
    """Plays random (or the given) actions and checks every time step; stops at a broken one."""
    b, obs_spec, action_spec = env.batch_size, env.observation_spec(), env.action_spec()
    rng = seeding.as_generator(seed)
    record: list[types.TimeStep] = []
    played: list[Any] = []
    episodes = 0
    try:
        ts = env.reset()
    except Exception as e:
        problems.add("reset.raised", f"reset() raised {type(e).__name__}: {e}")
        return record, played, episodes
    record.append(ts)
    prev = _check_time_step(problems, ts, None, obs_spec, b, None)
    for t in range(num_steps if actions is None else len(actions)):
        if prev is None:
            break  # a broken time step: later checks would only repeat it
        action = specs.sample(action_spec, rng, (b,)) if actions is None else actions[t]
        try:
            ts = env.step(action)
        except Exception as e:
            problems.add(
                "step.raised",
                f"step() raised {type(e).__name__}: {e} {_where(t)} (for an action sampled from action_spec())",
            )
            break
        played.append(action)
        record.append(ts)
        prev = _check_time_step(problems, ts, prev, obs_spec, b, t)
        if prev is not None:
            episodes += int(np.count_nonzero(prev == _LAST))
    return record, played, episodes


def _first_difference(a: types.TimeStep, b: types.TimeStep) -> str | None:
    for field in ("step_type", "reward", "discount", "observation"):
        pairs = zip(
            nest.flatten_with_paths(getattr(a, field), field), nest.flatten(getattr(b, field)), strict=False
        )
        for (path, x), y in pairs:
            x, y = np.asarray(x), np.asarray(y)
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=np.issubdtype(x.dtype, np.floating)):
                return f"{path}: {_show(x)} vs {_show(y)}"
    return None


def _check_reproducible(
    problems: _Problems,
    factory: Callable[[], Environment],
    first: Environment,
    record: list[types.TimeStep],
    actions: list[Any],
    seed: int,
) -> None:
    other = factory()
    try:
        if other is first:
            problems.add(
                "seed.same_object",
                "the factory returned the same environment object twice; it must build a new one per call",
            )
            return
        replay, _, _ = _play(other, 0, seed, _Problems(), actions)
        for t, (x, y) in enumerate(zip(record, replay, strict=False)):
            diff = _first_difference(x, y)
            if diff is not None:
                problems.add(
                    "seed.reproducible",
                    f"two environments from the same factory differ {_where(None if t == 0 else t - 1)} "
                    f"({diff}) for "
                    "the same actions; derive every source of randomness (env.reset(seed=...), spaces, RNGs) "
                    "from the seed given to the factory",
                )
                return
    finally:
        other.close()


def _check_specs(problems: _Problems, env: Environment) -> None:
    for what, spec in (("observation_spec()", env.observation_spec()), ("action_spec()", env.action_spec())):
        for path, leaf in nest.flatten_with_paths(spec):
            if not isinstance(leaf, specs.ArraySpec):
                problems.add(
                    f"spec.{what}",
                    f"{what}: {path or 'the spec'} is {leaf!r}, expected an ArraySpec or BoundedArraySpec "
                    "(drivetrain.envs.spec_from_space converts Gymnasium spaces)",
                )
    b = env.batch_size
    if not isinstance(b, int) or b < 1:
        problems.add("batch_size", f"batch_size: expected an int >= 1, got {b!r}")


def check_env(
    env: Environment | Callable[[], Environment], num_steps: int = 1000, seed: int = 0
) -> EnvCheckReport:
    """Plays ``num_steps`` batched random actions and checks the time steps against the protocol.

    Args:
      env: an :class:`Environment`, or a zero-argument factory returning one (e.g.
        ``lambda: dt.envs.make("CartPole-v1", seed=0)``). With a factory, ``check_env``
        builds two environments, plays the same actions in both and checks that they
        give identical time steps (seeding), and closes them. An instance is reset,
        not closed, and its reproducibility is not checked.
      num_steps: calls to ``step``; use enough for several episodes to end.
      seed: seed of the random actions.

    Returns:
      An :class:`EnvCheckReport` of what was played.

    Raises:
      EnvCheckError: listing every kind of problem found, each with where it first
        happened and what to fix.
      TypeError: if ``env`` is neither an Environment nor a factory of one.
    """
    instance_of_another_kind = not isinstance(env, (Environment, type)) and hasattr(env, "reset")
    if isinstance(env, str) or instance_of_another_kind:
        what = repr(env) if isinstance(env, str) else f"a {type(env).__name__} (a Gymnasium environment?)"
        raise TypeError(
            f"check_env: expected a drivetrain Environment or a factory of one, got {what}; check a Gymnasium "
            'environment through drivetrain\'s adapter: check_env(lambda: dt.envs.make("CartPole-v1", seed=0))'
        )
    factory = None if isinstance(env, Environment) else env
    if factory is not None and not callable(factory):
        raise TypeError(f"check_env: expected a drivetrain Environment or a factory of one, got {env!r}")
    instance = env if factory is None else factory()
    if not isinstance(instance, Environment):
        raise TypeError(
            f"check_env: expected a drivetrain Environment or a factory of one, got {type(instance).__name__}"
        )
    name = type(instance).__name__
    problems = _Problems()
    try:
        _check_specs(problems, instance)
        if problems.first:
            raise EnvCheckError(problems.messages(), name)
        record, actions, episodes = _play(instance, num_steps, seed, problems)
    finally:
        if factory is not None:
            instance.close()
    if factory is not None and not problems.first:
        _check_reproducible(problems, factory, instance, record, actions, seed)
    if problems.first:
        raise EnvCheckError(problems.messages(), name)
    return EnvCheckReport(instance.batch_size, len(actions), episodes, factory is not None)
