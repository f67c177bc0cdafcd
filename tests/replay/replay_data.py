"""Test data for the replay tests: episodic trajectory streams with a ground-truth record.

Every item carries its own identity in the observation (``[env, t]``, ``t`` the absolute
add index) or, for stacked frames, is recorded in :attr:`Stream.added`, so a test can
check any sampled window against what was added.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivetrain.core import specs, types
from drivetrain.core.types import StepType

FIRST, MID, LAST = int(StepType.FIRST), int(StepType.MID), int(StepType.LAST)

ACTION_SPEC = specs.BoundedArraySpec((), np.int64, 0, 3, "action")


def data_spec(observation_spec: Any = None, policy_info: Any = None) -> types.Trajectory:
    obs = specs.ArraySpec((2,), np.float32, "observation") if observation_spec is None else observation_spec
    return types.trajectory_spec(
        types.time_step_spec(obs), ACTION_SPEC, {} if policy_info is None else policy_info
    )


def stacked_spec(
    frame_shape: tuple[int, ...] = (3, 5), k: int = 4, dtype: Any = np.uint8
) -> specs.StackedFramesSpec:
    if np.issubdtype(dtype, np.integer):
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    else:
        lo, hi = -np.inf, np.inf
    return specs.StackedFramesSpec((*frame_shape, k), dtype, lo, hi, "observation")


class Stream:
    """Batched trajectories of ``num_envs`` environments whose episodes have random lengths.

    Per env, an episode of length ``L`` (``L`` transitions, drawn from ``lengths``) is
    ``FIRST, MID, ..., MID`` followed by the boundary item (``step_type == LAST``). The
    transition into LAST has discount 0 (terminated) or, with probability ``p_truncate``,
    1 (truncated). Reward of item ``t`` of env ``e``: ``1000 * e + t`` (0 at boundaries).

    Observations: ``[env, t]`` (float32) by default; with ``frames`` (a StackedFramesSpec)
    stacks of random frames, shifted each step; at FIRST the older slots hold
    ``first_padding`` ("zeros", "repeat" or "random"), and with probability ``p_jump`` a
    stack does not continue the previous one at all.
    """

    def __init__(
        self,
        num_envs: int,
        lengths: tuple[int, int] = (1, 6),
        p_truncate: float = 0.3,
        seed: int = 0,
        frames: specs.StackedFramesSpec | None = None,
        first_padding: str = "random",
        p_jump: float = 0.0,
    ):
        self.num_envs = num_envs
        self.rng = np.random.default_rng(seed)
        self.lengths = lengths
        self.p_truncate = p_truncate
        self.frames = frames
        self.first_padding = first_padding
        self.p_jump = p_jump
        self.t = 0
        self._phase = np.zeros(num_envs, np.int64)  # next item: 0 FIRST, 1 MID, 2 boundary (LAST)
        self._remaining = np.zeros(num_envs, np.int64)  # transitions left in the episode
        self._truncated = np.zeros(num_envs, bool)
        self._stack: np.ndarray | None = None
        self.added: list[types.Trajectory] = []

    def _new_frame(self, shape: tuple[int, ...]) -> np.ndarray:
        assert self.frames is not None
        dt = self.frames.dtype
        if np.issubdtype(dt, np.integer):
            return self.rng.integers(0, 256, shape).astype(dt)
        return self.rng.standard_normal(shape).astype(dt)

    def _observation(self, step_type: np.ndarray) -> np.ndarray:
        if self.frames is None:
            return np.stack([np.arange(self.num_envs), np.full(self.num_envs, self.t)], 1).astype(np.float32)
        spec = self.frames
        frame_shape = (self.num_envs, *spec.shape[:-1])
        if self._stack is None:
            self._stack = np.zeros((self.num_envs, *spec.shape), spec.dtype)
        stack = np.concatenate([self._stack[..., 1:], self._new_frame(frame_shape)[..., None]], axis=-1)
        for e in range(self.num_envs):
            if step_type[e] == FIRST:
                pad = {
                    "zeros": np.zeros_like(stack[e, ..., :-1]),
                    "repeat": np.repeat(stack[e, ..., -1:], spec.num_frames - 1, axis=-1),
                    "random": self._new_frame(stack[e, ..., :-1].shape),
                }[self.first_padding]
                stack[e, ..., :-1] = pad
            elif self.rng.random() < self.p_jump:
                stack[e] = self._new_frame(stack[e].shape)
        self._stack = stack
        return stack.copy()

    def next(self) -> types.Trajectory:
        """The next batched trajectory (also recorded in :attr:`added`)."""
        e = self.num_envs
        step_type = np.empty(e, np.int32)
        next_step_type = np.empty(e, np.int32)
        discount = np.ones(e, np.float32)
        for i in range(e):
            if self._phase[i] == 2:
                step_type[i], next_step_type[i], self._phase[i] = LAST, FIRST, 0
                continue
            if self._phase[i] == 0:
                step_type[i] = FIRST
                self._remaining[i] = self.rng.integers(self.lengths[0], self.lengths[1] + 1)
                self._truncated[i] = self.rng.random() < self.p_truncate
            else:
                step_type[i] = MID
            self._remaining[i] -= 1
            if self._remaining[i] == 0:
                next_step_type[i], self._phase[i] = LAST, 2
                discount[i] = 1.0 if self._truncated[i] else 0.0
            else:
                next_step_type[i], self._phase[i] = MID, 1
        reward = np.where(step_type == LAST, 0.0, 1000.0 * np.arange(e) + self.t).astype(np.float32)
        action = self.rng.integers(0, 4, e).astype(np.int64)
        traj = types.Trajectory(
            step_type, self._observation(step_type), action, {}, next_step_type, reward, discount
        )
        self.added.append(traj)
        self.t += 1
        return traj

    def item(self, env: int, t: int) -> types.Trajectory:
        """What was added for env ``env`` at add ``t`` (unbatched)."""
        traj = self.added[t]
        return types.Trajectory(*(x[env] if isinstance(x, np.ndarray) else x for x in traj))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def check_window(stream: Stream, batch: types.Trajectory, row: int, env: int, t: int) -> None:
    """Asserts that row ``row`` of ``batch`` is exactly the window of env ``env`` starting at ``t``."""
    length = batch.step_type.shape[1]
    for j in range(length):
        truth = stream.item(env, t + j)
        for name in ("step_type", "action", "next_step_type", "reward", "discount"):
            got = np.asarray(getattr(batch, name))[row, j]
            assert same_bits(got, np.asarray(getattr(truth, name))), (name, row, j, env, t)
        assert same_bits(np.asarray(batch.observation[row, j]), truth.observation), ("observation", row, j)
