"""``make``: Gymnasium environments as one batched drivetrain :class:`Environment`.

::

    env = dt.envs.make("CartPole-v1", num_envs=8, seed=0)
    time_step = env.reset()                       # FIRST for all 8
    time_step = env.step(np.zeros(8, np.int64))   # batched actions

Backends (all with next-step auto-reset and identical time steps for the same seed):

- ``"sync"`` (default): :class:`~drivetrain.envs.gymnasium_env.GymnasiumEnv`, drivetrain's
  own lean loop over the environments in this process; the fastest for cheap
  environments.
- ``"gymnasium"``: ``gymnasium.vector.SyncVectorEnv`` through
  :func:`~drivetrain.envs.vector_env.from_vector_env`.
- ``"async"``: ``gymnasium.vector.AsyncVectorEnv`` (one process per environment); worth
  it when a step costs far more than inter-process communication (Atari, MuJoCo).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

from drivetrain.core.environment import Environment
from drivetrain.envs.gymnasium_env import GymnasiumEnv
from drivetrain.envs.vector_env import from_vector_env
from drivetrain.envs.wrappers import CheckedOutputs, MaskVelocity

__all__ = ["BACKENDS", "EnvFactory", "make"]

Backend = Literal["sync", "gymnasium", "async"]
BACKENDS: tuple[str, ...] = ("sync", "gymnasium", "async")


@dataclasses.dataclass(frozen=True)
class EnvFactory:
    """A picklable zero-argument callable that builds one wrapped Gymnasium environment."""

    env_id_or_factory: str | Callable[[], Any]
    """A registered Gymnasium id, or a zero-argument callable returning a ``gymnasium.Env``."""
    max_episode_steps: int | None = None
    """Time limit (truncation) in steps; ``None`` keeps the id's registered limit."""
    mask_velocity: bool = False
    """Wrap with :class:`~drivetrain.envs.wrappers.MaskVelocity`."""
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments of ``gymnasium.make`` (only with an id)."""
    wrappers: tuple[Callable[[Any], Any], ...] = ()
    """Callables ``env -> wrapped env`` applied in order, outermost last."""
    check_outputs: int | None = None
    """Wrap with :class:`~drivetrain.envs.wrappers.CheckedOutputs`, outermost, as environment
    ``check_outputs`` of the batch (vector backends); None: not."""

    def __call__(self) -> Any:
        import gymnasium

        if isinstance(self.env_id_or_factory, str):
            try:
                env = gymnasium.make(
                    self.env_id_or_factory, max_episode_steps=self.max_episode_steps, **self.kwargs
                )
            except gymnasium.error.DependencyNotInstalled as e:
                raise gymnasium.error.DependencyNotInstalled(_missing_extra(self.env_id_or_factory, e)) from e
        else:
            env = self.env_id_or_factory()
            if not isinstance(env, gymnasium.Env):
                raise TypeError(
                    f"make: the factory {self.env_id_or_factory!r} returned {type(env).__name__}, "
                    "expected a gymnasium.Env"
                )
            if self.max_episode_steps is not None:
                _refuse_a_shorter_inner_limit(env, self.max_episode_steps)
                env = gymnasium.wrappers.TimeLimit(env, self.max_episode_steps)
        if self.mask_velocity:
            env = MaskVelocity(env)
        for wrapper in self.wrappers:
            wrapped = wrapper(env)
            if not isinstance(wrapped, gymnasium.Env):
                raise TypeError(
                    f"make: the wrapper {wrapper!r} returned {type(wrapped).__name__}, expected a gymnasium.Env"
                )
            env = wrapped
        return env if self.check_outputs is None else CheckedOutputs(env, self.check_outputs)


def _refuse_a_shorter_inner_limit(env: Any, max_episode_steps: int) -> None:
    """ValueError when a TimeLimit inside the factory's environment would truncate episodes before
    ``max_episode_steps`` (an outer limit cannot lengthen them)."""
    import gymnasium

    inner = env
    while isinstance(inner, gymnasium.Wrapper):
        limit = getattr(inner, "_max_episode_steps", None)
        if (
            isinstance(inner, gymnasium.wrappers.TimeLimit)
            and limit is not None
            and limit < max_episode_steps
        ):
            raise ValueError(
                f"make: max_episode_steps={max_episode_steps}, but the factory's environment already "
                f"truncates at {limit} steps (a TimeLimit inside it); pass the id instead of a factory, or "
                f"build it with gymnasium.make(..., max_episode_steps={max_episode_steps})"
            )
        inner = inner.env


# What Gymnasium's message names (lower case) -> drivetrain's extra that installs it.
_EXTRAS = {"box2d": "box2d", "mujoco": "mujoco", "ale_py": "atari", "ale-py": "atari", "atari": "atari"}


def _missing_extra(env_id: str, error: Exception) -> str:
    """Gymnasium's missing-dependency message, with the drivetrain extra that installs it."""
    text = str(error)
    extra = next((x for key, x in _EXTRAS.items() if key in text.lower()), None)
    if extra is None:
        return f"{env_id}: {text}"
    return f'{env_id} needs the {extra} extra: pip install "drivetrain[{extra}]" ({text})'


def make(
    env_id_or_factory: str | Callable[[], Any],
    num_envs: int = 1,
    seed: int | None = None,
    backend: Backend = "sync",
    max_episode_steps: int | None = None,
    mask_velocity: bool = False,
    wrappers: Sequence[Any] = (),
    **kwargs: Any,
) -> Environment:
    """A batched :class:`Environment` of ``num_envs`` copies of a Gymnasium environment.

    Args:
      env_id_or_factory: a registered Gymnasium id (``"CartPole-v1"``) or a zero-argument
        callable returning a ``gymnasium.Env`` (for ``backend="async"`` it must pickle
        unless the start method is fork).
      num_envs: the batch size ``B``.
      seed: environment ``i`` is seeded with ``seed + i`` at the first ``reset()``; the
        same seed and actions give identical time steps. ``None``: seeded from the OS.
      backend: ``"sync"`` (drivetrain's lean loop), ``"gymnasium"`` (``SyncVectorEnv``) or
        ``"async"`` (``AsyncVectorEnv``).
      max_episode_steps: truncate episodes after this many steps (LAST, discount 1); with an id it
        replaces the registered limit, with a factory it wraps what the factory returns (a time
        limit inside that is shorter is an error: it would still cut the episodes).
      mask_velocity: drop the velocities from the observation (CartPole-v1 keeps cart
        position and pole angle): a partially observable task for recurrent agents.
      wrappers: callables ``gymnasium.Env -> gymnasium.Env`` applied to each environment in
        order after the time limit (TF-Agents' ``gym_env_wrappers`` and ``env_wrappers``),
        e.g. ``[partial(ActionRepeat, times=4)]`` or Gymnasium's own wrappers; with
        ``backend="async"`` they must pickle (classes and ``functools.partial`` do).
      **kwargs: passed to ``gymnasium.make`` (only with an id), e.g. ``render_mode``.

    Returns:
      An :class:`Environment`; step it with batched actions ``[B, ...]`` of
      ``env.action_spec()``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"make: unknown backend {backend!r}; expected one of {list(BACKENDS)}")
    if int(num_envs) < 1:
        raise ValueError(f"make: num_envs must be >= 1, got {num_envs}")
    if not isinstance(env_id_or_factory, str):
        is_class = isinstance(env_id_or_factory, type)
        if not is_class and hasattr(env_id_or_factory, "step") and hasattr(env_id_or_factory, "reset"):
            raise TypeError(
                "make: got an environment instance; pass a factory instead, e.g. make(lambda: MyEnv(), ...), "
                "so that each of the num_envs copies is a separate environment"
            )
        if not callable(env_id_or_factory):
            raise TypeError(
                f"make: expected an environment id or a zero-argument factory, got {env_id_or_factory!r}"
            )
        if kwargs:
            raise TypeError(
                f"make: keyword arguments {sorted(kwargs)} go to gymnasium.make and need an environment id; "
                "with a factory, pass them to the factory instead"
            )
    if callable(wrappers) or isinstance(wrappers, (str, bytes)):
        raise TypeError(
            f"make: wrappers must be a list of callables env -> env, got {wrappers!r}; "
            "e.g. wrappers=[partial(ActionRepeat, times=4)]"
        )
    wrappers = tuple(wrappers)  # once: a generator would be used up by the check
    if not all(callable(w) for w in wrappers):
        raise TypeError(
            f"make: wrappers must be a list of callables env -> env, got {wrappers!r}; "
            "e.g. wrappers=[partial(ActionRepeat, times=4)]"
        )
    factory = EnvFactory(env_id_or_factory, max_episode_steps, mask_velocity, dict(kwargs), wrappers)
    if backend == "sync":
        return GymnasiumEnv([factory] * int(num_envs), seed)
    # Gymnasium's vector envs batch into buffers that cast and broadcast: check inside each env
    fns = [dataclasses.replace(factory, check_outputs=i) for i in range(int(num_envs))]
    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    if backend == "gymnasium":
        return from_vector_env(SyncVectorEnv(fns, autoreset_mode=AutoresetMode.NEXT_STEP), seed)
    try:
        vector = AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.NEXT_STEP)
    except (EOFError, BrokenPipeError, ConnectionResetError) as e:  # a worker died while building its env
        raise RuntimeError(
            f"make: a subprocess of the async backend ended while it built {env_id_or_factory!r} "
            f"({type(e).__name__}); the environment's constructor failed there (its error is printed "
            "above): try backend='sync' to see it raised here"
        ) from e
    return from_vector_env(vector, seed)
