"""The EnvPool backend of :func:`~drivetrain.envs.atari.make_atari` (C++ threads, optional).

EnvPool runs the same preprocessing as the Gymnasium backend in C++ (its wrappers
follow OpenAI Baselines: 1..``noop_max`` NOOP frames and a FIRE frame at reset, the
action repeated ``frame_skip`` frames with the last two max-pooled, INTER_AREA resize to
84×84 gray, the reset frame repeated to fill the stack) and auto-resets on the *next*
step, which is drivetrain's protocol. It is driven through its ``dm_env`` interface::

    envpool.make(task, env_type="dm", episodic_life=False, reward_clip=False, ...)

and mapped onto drivetrain time steps with the Gymnasium backend's semantics:

- EnvPool's LAST has discount 0 for a game over *and* for its time limit; here the time
  limit is a truncation (discount 1), told apart by EnvPool's ``terminated`` (game over).
- Rewards are the unclipped game score.
- With ``terminal_on_life_loss``, a step that cost a life (EnvPool's ``lives`` dropped)
  has discount 0 and stays MID: the game goes on.
- Observations ``[B, 4, 84, 84]`` become ``[B, 84, 84, 4]`` (newest frame last).

Frames and rewards pass :mod:`drivetrain.envs.checks` (shape, dtype, finite rewards) like
every adapter's.

Differences that do not change the protocol: EnvPool presses FIRE for one frame inside
its no-op count instead of one agent step, and needs ``noop_max >= 1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from drivetrain.core import specs, types
from drivetrain.core.environment import Environment
from drivetrain.envs.actions import ActionChecker
from drivetrain.envs.checks import ObservationChecker, RewardChecker

if TYPE_CHECKING:
    from drivetrain.envs.atari import AtariConfig

__all__ = ["EnvPoolAtari"]

_FIRST = int(types.StepType.FIRST)
_LAST = int(types.StepType.LAST)
_NO_LIMIT = 2**30


class EnvPoolAtari(Environment):
    """``num_envs`` preprocessed Atari games in one EnvPool."""

    def __init__(self, task_id: str, config: AtariConfig, num_envs: int, seed: int | None):
        try:
            import envpool
        except ImportError as e:
            raise ImportError(
                "make_atari(backend='envpool') needs EnvPool: pip install 'drivetrain[envpool]' "
                "(or use backend='gymnasium')"
            ) from e
        from drivetrain.envs.atari_gymnasium import STICKY_ACTION_PROBABILITY

        if config.noop_max < 1:
            raise ValueError(f"make_atari(backend='envpool'): noop_max must be >= 1, got {config.noop_max}")
        if config.render_mode is not None:
            raise ValueError(
                "make_atari(backend='envpool') cannot render; use backend='gymnasium' to record videos"
            )
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        self.config = config
        self._n = int(num_envs)
        self._pool = envpool.make(
            task_id,
            env_type="dm",
            num_envs=self._n,
            seed=int(seed) % 2**31,  # EnvPool takes an int32; drivetrain's seeds are any int >= 0
            max_episode_steps=config.max_episode_steps or _NO_LIMIT,
            stack_num=config.frame_stack,
            frame_skip=config.frame_skip,
            noop_max=config.noop_max,
            img_height=config.screen_size,
            img_width=config.screen_size,
            gray_scale=True,
            episodic_life=False,
            zero_discount_on_life_loss=False,
            reward_clip=False,
            use_fire_reset=config.fire_reset is not False,
            repeat_action_probability=STICKY_ACTION_PROBABILITY if config.sticky_actions else 0.0,
            full_action_space=config.full_action_space,
        )
        num_actions = int(self._pool.action_spec().num_values)
        self._action_spec = specs.BoundedArraySpec((), np.int64, 0, num_actions - 1, "action")
        self._actions = ActionChecker(self._action_spec, self._n)
        s = config.screen_size
        self._observation_spec = specs.StackedFramesSpec(
            (s, s, config.frame_stack), np.uint8, 0, 255, name="observation", num_frames=config.frame_stack
        )
        self._observations = ObservationChecker(self._observation_spec, self._n)
        self._rewards = RewardChecker(self._n)
        self._lives = np.zeros(self._n, np.int64)
        self._started = False
        self._closed = False

    @property
    def batch_size(self) -> int:
        return self._n

    def observation_spec(self) -> specs.StackedFramesSpec:
        return self._observation_spec

    def action_spec(self) -> specs.BoundedArraySpec:
        return self._action_spec

    def _reset(self) -> types.TimeStep:
        ts = self._pool.reset()
        self._lives = np.asarray(ts.observation.lives, np.int64)
        self._started = True
        return types.restart(self._frames(ts.observation.obs), self._n)

    def _step(self, action: Any) -> types.TimeStep:
        if not self._started:
            raise RuntimeError("EnvPoolAtari: call reset() before step()")
        action = self._actions(action)
        ts = self._pool.step(action.astype(np.int32))
        obs = ts.observation
        step_type = np.asarray(ts.step_type, types.STEP_TYPE_DTYPE)
        first = step_type == _FIRST
        terminated = (step_type == _LAST) & np.asarray(obs.terminated, bool)
        lives = np.asarray(obs.lives, np.int64)
        ends_value = terminated
        if self.config.terminal_on_life_loss:
            ends_value = ends_value | (~first & (lives < self._lives))
        self._lives = lives
        return types.TimeStep(
            step_type,
            self._rewards.from_array(ts.reward, first),
            np.where(ends_value, 0.0, 1.0).astype(types.REWARD_DTYPE),
            self._frames(obs.obs),
        )

    def _frames(self, obs: np.ndarray) -> np.ndarray:
        frames = np.ascontiguousarray(np.moveaxis(np.asarray(obs), 1, -1))
        checked: np.ndarray = self._observations.batched(frames, copy=False)
        return checked

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            close = getattr(self._pool, "close", None)
            if close is not None:
                close()
