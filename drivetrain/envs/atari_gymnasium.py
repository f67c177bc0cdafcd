"""The Gymnasium backend of :func:`~drivetrain.envs.atari.make_atari`.

Each environment of the batch is this chain of Gymnasium wrappers (inner to outer)::

    gymnasium.make("ALE/<Game>-v5", frameskip=1, repeat_action_probability=0 or 0.25,
                   full_action_space=False, obs_type="grayscale", max_num_frames_per_episode=0)
    NoopFireReset(noop_max, fire)  # reset: 1..noop_max frames of NOOP, the last one FIRE
    AtariPreprocessing(noop_max=0, frame_skip, screen_size, terminal_on_life_loss=False)
        # each step repeats the action frame_skip frames, sums the rewards and
        # max-pools the last two frames ONCE; 84x84 gray (INTER_AREA)
    FireOnLifeLoss         # fire_on_life_loss only: a step that cost a life plays FIRE next
    LifeLossFlag           # .life_lost: this step cost a life (the game goes on)
    FrameStackObservation(4, padding_type="reset")   # [4, 84, 84]; reset frame repeated
    ChannelsLast           # [84, 84, 4], newest frame last
    TimeLimit(max_episode_steps)                     # truncation, in agent steps

and the batch is drivetrain's Gymnasium adapter (:func:`drivetrain.envs.make` with a
factory; ``"sync"`` or ``"async"``). ALE's own 108k-frame limit is switched off
(``max_num_frames_per_episode=0``) so that the only time limit is ``TimeLimit``, counted
in agent steps after the reset. ``AtariPreprocessing`` never sees ALE's frame skip (it
refuses to, and ALE runs with ``frameskip=1``), so frames are skipped exactly once.

:class:`GymnasiumAtari` wraps the adapter: it declares the observation a
:class:`~drivetrain.core.specs.StackedFramesSpec` and, with ``terminal_on_life_loss``,
sets the discount of a step that cost a life to 0 while the step stays MID (see
:mod:`drivetrain.envs.atari` for why).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

from drivetrain.core import specs, types
from drivetrain.core.environment import Environment

if TYPE_CHECKING:
    from drivetrain.envs.atari import AtariConfig

__all__ = [
    "AtariFactory",
    "ChannelsLast",
    "FireOnLifeLoss",
    "GymnasiumAtari",
    "LifeLossFlag",
    "NoopFireReset",
]

_FIRST = int(types.StepType.FIRST)
STICKY_ACTION_PROBABILITY = 0.25
"""Machado et al. (2018), "Revisiting the Arcade Learning Environment", JAIR 61."""


class NoopFireReset(gymnasium.Wrapper):
    """Starts each game with 1..``noop_max`` frames of NOOP, the last one replaced by FIRE if ``fire``.

    Works on ALE's frames (``frameskip=1``), below ``AtariPreprocessing``, so that its first
    observation is the screen after these frames. The number of frames is drawn from the
    environment's seeded ``np_random``; ``noop_max=0`` means no NOOP (and one FIRE frame if
    ``fire``). This is EnvPool's reset, so both backends start games alike (a test checks
    that they emit the same frames). A game that ends during these frames is reset again.
    """

    def __init__(self, env: gymnasium.Env, noop_max: int, fire: bool):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
        if noop_max > 0 and meanings[0] != "NOOP":
            raise ValueError(
                f"NoopFireReset: action 0 must be NOOP for no-op starts, the actions are {meanings}"
            )
        if fire and "FIRE" not in meanings:
            raise ValueError(f"NoopFireReset: the game has no FIRE action (actions: {meanings})")
        self._noop_max = int(noop_max)
        self._fire = meanings.index("FIRE") if fire else None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        frames = int(self.env.unwrapped.np_random.integers(1, self._noop_max + 1)) if self._noop_max else 0
        actions = [0] * max(frames - (self._fire is not None), 0)
        if self._fire is not None:
            actions.append(self._fire)
        for action in actions:
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info


class FireOnLifeLoss(gymnasium.Wrapper):
    """After a step that cost a life (and did not end the game), steps FIRE once more within it.

    Sits above ``AtariPreprocessing``, so the FIRE is a whole agent step (``frame_skip``
    frames): its reward is added to the step's, its observation (the ball launched) and
    end flags are returned. The agent never sees the FIRE step, as with Baselines'
    ``EpisodicLifeEnv`` + ``FireResetEnv``, but the game is not reset.
    """

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()  # type: ignore[attr-defined]
        if "FIRE" not in meanings:
            raise ValueError(
                f"AtariConfig.fire_on_life_loss: the game has no FIRE action (actions: {meanings})"
            )
        self._fire = meanings.index("FIRE")
        self._ale = env.unwrapped.ale  # type: ignore[attr-defined]
        self._lives = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(**kwargs)
        self._lives = self._ale.lives()
        return out

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self._ale.lives()
        if lives < self._lives and not (terminated or truncated):
            obs, fire_reward, terminated, truncated, info = self.env.step(self._fire)
            reward = float(reward) + float(fire_reward)
            lives = self._ale.lives()
        self._lives = lives
        return obs, reward, terminated, truncated, info


class LifeLossFlag(gymnasium.Wrapper):
    """Sets ``life_lost`` after each step: True when the step cost a life (ALE's lives dropped)."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self._ale = env.unwrapped.ale  # type: ignore[attr-defined]
        self._lives = 0
        self.life_lost = False

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(**kwargs)
        self._lives = self._ale.lives()
        self.life_lost = False
        return out

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        out = self.env.step(action)
        lives = self._ale.lives()
        self.life_lost = lives < self._lives
        self._lives = lives
        return out


class ChannelsLast(gymnasium.ObservationWrapper):
    """``[stack, H, W]`` -> ``[H, W, stack]`` (a view; the batch copy makes it contiguous)."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gymnasium.spaces.Box) and space.shape is not None
        n, h, w = space.shape
        self.observation_space = gymnasium.spaces.Box(0, 255, (h, w, n), np.uint8)

    def observation(self, observation: Any) -> Any:
        return np.moveaxis(observation, 0, -1)


def wants_fire(game_id: str, config: AtariConfig, meanings: list[str]) -> bool:
    """Whether to press FIRE on reset: ``config.fire_reset``, or (None) when the game has FIRE."""
    if config.fire_reset is None:
        return "FIRE" in meanings
    if config.fire_reset and "FIRE" not in meanings:
        raise ValueError(
            f"AtariConfig.fire_reset=True but {game_id} has no FIRE action (actions: {meanings})"
        )
    return bool(config.fire_reset)


@dataclasses.dataclass(frozen=True)
class AtariFactory:
    """A picklable zero-argument callable that builds one preprocessed Atari environment."""

    game_id: str
    """Gymnasium id, ``"ALE/Breakout-v5"``."""
    config: AtariConfig
    """The preprocessing settings."""

    def __call__(self) -> gymnasium.Env:
        import ale_py
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

        gymnasium.register_envs(ale_py)
        c = self.config
        env = gymnasium.make(
            self.game_id,
            frameskip=1,
            repeat_action_probability=STICKY_ACTION_PROBABILITY if c.sticky_actions else 0.0,
            full_action_space=c.full_action_space,
            obs_type="grayscale",
            max_num_frames_per_episode=0,
            render_mode=c.render_mode,
        )
        fire = wants_fire(self.game_id, c, env.unwrapped.get_action_meanings())  # type: ignore[attr-defined]
        env = NoopFireReset(env, c.noop_max, fire)
        env = AtariPreprocessing(
            env, noop_max=0, frame_skip=c.frame_skip, screen_size=c.screen_size, terminal_on_life_loss=False
        )
        if c.fire_on_life_loss:
            env = FireOnLifeLoss(env)
        env = LifeLossFlag(env)
        env = FrameStackObservation(env, c.frame_stack, padding_type="reset")
        env = ChannelsLast(env)
        if c.max_episode_steps is not None:
            env = TimeLimit(env, c.max_episode_steps)
        return env


def _life_loss_flags(env: gymnasium.Env) -> LifeLossFlag:
    while not isinstance(env, LifeLossFlag):
        env = env.env  # type: ignore[attr-defined]
    return env


class GymnasiumAtari(Environment):
    """``num_envs`` preprocessed Atari games through drivetrain's Gymnasium adapter."""

    def __init__(
        self, game_id: str, config: AtariConfig, num_envs: int, seed: int | None, asynchronous: bool
    ):
        from drivetrain.envs.gymnasium_env import GymnasiumEnv
        from drivetrain.envs.make import make

        self.config = config
        self._inner = make(
            AtariFactory(game_id, config),
            num_envs=num_envs,
            seed=seed,
            backend="async" if asynchronous else "sync",
        )
        s = config.screen_size
        self._observation_spec = specs.StackedFramesSpec(
            (s, s, config.frame_stack), np.uint8, 0, 255, name="observation", num_frames=config.frame_stack
        )
        self._life_lost: Callable[[], np.ndarray] | None = None
        if config.terminal_on_life_loss:
            if isinstance(self._inner, GymnasiumEnv):
                flags = [_life_loss_flags(e) for e in self._inner.envs]
                self._life_lost = lambda: np.array([f.life_lost for f in flags], bool)
            else:
                vec = self._inner.vector_env  # type: ignore[attr-defined]
                self._life_lost = lambda: np.asarray(vec.get_attr("life_lost"), bool)

    @property
    def batch_size(self) -> int:
        return self._inner.batch_size

    @property
    def envs(self) -> list[Any]:
        """The Gymnasium environments of the synchronous backend (to read ALE state; do not step them)."""
        envs = getattr(self._inner, "envs", None)
        if envs is None:
            raise AttributeError("envs: only the synchronous Gymnasium backend (asynchronous=False) has them")
        return list(envs)

    def observation_spec(self) -> specs.StackedFramesSpec:
        return self._observation_spec

    def action_spec(self) -> Any:
        return self._inner.action_spec()

    def _reset(self) -> types.TimeStep:
        return self._inner.reset()

    def _step(self, action: Any) -> types.TimeStep:
        time_step = self._inner.step(action)
        if self._life_lost is not None:
            lost = self._life_lost() & (time_step.step_type != _FIRST)
            if lost.any():
                discount = np.where(lost, 0.0, time_step.discount).astype(types.REWARD_DTYPE)
                time_step = time_step._replace(discount=discount)
        return time_step

    def state_dict(self) -> dict[str, Any]:
        """The games' full state, for checkpoints that resume exactly (synchronous backend only).

        ``GymnasiumEnv.state_dict``: each chain of wrappers pickled, each emulator's state
        cloned with its RNG (:mod:`drivetrain.envs.snapshots`). Raises :class:`TypeError`
        for the asynchronous backend, whose games live in other processes.
        """
        state_dict = getattr(self._inner, "state_dict", None)
        if state_dict is None:
            raise TypeError(
                "the asynchronous Atari backend cannot save its games' state (they run in other processes)"
            )
        result: dict[str, Any] = state_dict()
        return {**result, "current_time_step": self._current_time_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` into these games (built with the same config and size)."""
        load = getattr(self._inner, "load_state_dict", None)
        if load is None:
            raise TypeError("the asynchronous Atari backend cannot restore its games' state")
        load(state)
        self._current_time_step = state.get("current_time_step")

    def render(self, index: int = 0) -> Any:
        """An RGB frame of environment ``index`` (needs ``AtariConfig.render_mode="rgb_array"``)."""
        if self.config.render_mode is None:
            raise ValueError("render: create the environment with render_mode='rgb_array'")
        return self.envs[index].render()

    def close(self) -> None:
        self._inner.close()
