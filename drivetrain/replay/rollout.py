"""On-policy rollouts: what the collect driver produced since the last update, then minibatches.

::

    rollout = RolloutBuffer(policy.trajectory_spec, num_envs)
    driver = StepDriver(env, policy, observers=[rollout.add_batch], num_steps=128 * num_envs)
    items, trained = rollout.gather()           # Trajectory [E, T, ...], bool [E, T]
    ... advantages, valid = ...                 # e.g. drivetrain.replay.advantages.gae
    for batch in minibatches(prepared, num_epochs=4, num_minibatches=4, rng=rng): agent.train(batch)
    rollout.release(valid)                      # keeps what later updates still need

Every item of every environment is kept in order, boundaries included, one item per
environment per ``add_batch`` (as in the replay buffers). After an update,
:meth:`RolloutBuffer.release` drops the items no later update needs and keeps the
**open tail** of each environment, the items of the episode still in progress that
were not trained on yet: the newest item (PPO cannot train on it before the value of
its successor is known) or a whole unfinished episode (Monte-Carlo returns need its end).
Items kept that were trained on already are marked ``trained`` so that they are never
trained on twice; they stay for the returns that run through them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from drivetrain.core import specs, types
from drivetrain.replay.advantages import trainable
from drivetrain.replay.layout import TrajectoryLayout

__all__ = ["RolloutBatch", "RolloutBuffer", "minibatches", "open_tail"]

_LAST = int(types.StepType.LAST)


class RolloutBatch(NamedTuple):
    """Items to train on: flat ``[N, ...]`` (``mask`` all True) or whole sequences ``[E, T, ...]``."""

    trajectory: types.Trajectory
    advantages: np.ndarray
    returns: np.ndarray
    mask: np.ndarray
    """bool: the items that count in the loss (sequences also carry the others, for the state)."""


def open_tail(step_type: np.ndarray, next_step_type: np.ndarray) -> np.ndarray:
    """bool ``[E, T]``: items of the episode still in progress at the end of each row.

    An item is in the open tail when it is not a boundary and every item from it to the
    newest continues the previous one without an episode end.
    """
    step_type, next_step_type = np.asarray(step_type), np.asarray(next_step_type)
    links = trainable(step_type, next_step_type) & (next_step_type != _LAST)  # t -> t + 1, same episode
    out = np.zeros(step_type.shape, bool)
    out[:, -1] = step_type[:, -1] != _LAST
    for t in range(step_type.shape[1] - 2, -1, -1):
        out[:, t] = out[:, t + 1] & links[:, t]
    return out


class RolloutBuffer:
    """The items of the current rollout, per environment; see the module docstring."""

    def __init__(self, data_spec: types.Trajectory, num_envs: int):
        if num_envs < 1:
            raise ValueError(f"RolloutBuffer: num_envs must be >= 1, got {num_envs}")
        self._layout = TrajectoryLayout(data_spec)
        self._num_envs = int(num_envs)
        self._expected = [((self._num_envs, *s.shape), s.dtype) for s in self._layout.specs]
        self._step_type_leaf = self._layout.paths.index("step_type")
        self._next_step_type_leaf = self._layout.paths.index("next_step_type")
        self._items: list[list[Any]] = []
        self._trained: list[np.ndarray] = []
        self._checked = False

    @property
    def data_spec(self) -> types.Trajectory:
        return self._layout.data_spec

    @property
    def num_envs(self) -> int:
        return self._num_envs

    def __len__(self) -> int:
        """Items per environment (boundaries included)."""
        return len(self._items)

    def add_batch(self, trajectory: types.Trajectory) -> None:
        """Stores one batched trajectory (arrays ``[num_envs, ...]``); usable as a driver observer."""
        if not self._checked:
            self._layout.check(trajectory, self._num_envs)
            self._checked = True
        leaves = self._layout.flatten(trajectory)
        for value, (shape, dtype) in zip(leaves, self._expected, strict=True):
            if value.__class__ is not np.ndarray or value.shape != shape or value.dtype != dtype:
                self._refuse(leaves)
        self._items.append([v.copy() for v in leaves])
        self._trained.append(np.zeros(self._num_envs, bool))

    def _refuse(self, leaves: list[Any]) -> None:
        """Raises a SpecError naming the first leaf whose shape or dtype is wrong."""
        for path, (shape, dtype), value in zip(self._layout.paths, self._expected, leaves, strict=True):
            got = np.asarray(value)
            if got.shape != shape or got.dtype != dtype:
                raise specs.SpecError(
                    f"trajectory.{path}: expected {dtype} {shape}, got {got.dtype} {got.shape}"
                )

    def gather(self) -> tuple[types.Trajectory, np.ndarray]:
        """All items, oldest first: ``(Trajectory [E, T, ...], trained bool [E, T])``."""
        if not self._items:
            raise ValueError("RolloutBuffer.gather: the rollout is empty; collect first")
        leaves = [np.stack(column, axis=1) for column in zip(*self._items, strict=True)]
        return self._layout.pack(leaves), np.stack(self._trained, axis=1)

    def release(self, trained_now: np.ndarray) -> None:
        """Marks ``trained_now`` ``[E, T]`` as trained and drops the items no later update needs."""
        if not self._items:
            raise ValueError("RolloutBuffer.release: the rollout is empty; collect first")
        # Only the step types decide what is kept: stack those two leaves, not the whole rollout.
        step_type = np.stack([item[self._step_type_leaf] for item in self._items], axis=1)
        next_step_type = np.stack([item[self._next_step_type_leaf] for item in self._items], axis=1)
        trained = np.stack(self._trained, axis=1)
        trained_now = np.asarray(trained_now, bool)
        if trained_now.shape != trained.shape:
            raise ValueError(f"release: trained_now has shape {trained_now.shape}, expected {trained.shape}")
        trained |= trained_now
        pending = open_tail(step_type, next_step_type) & ~trained
        columns = np.flatnonzero(pending.any(axis=0))
        start = int(columns[0]) if columns.size else len(self._items)
        self._items = self._items[start:]
        self._trained = [trained[:, t].copy() for t in range(start, trained.shape[1])]

    def clear(self) -> None:
        """Drops every item."""
        self._items, self._trained = [], []

    def state_dict(self) -> dict[str, Any]:
        return {"items": [list(item) for item in self._items], "trained": list(self._trained)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._items = [list(item) for item in state["items"]]
        self._trained = [np.asarray(t, bool).copy() for t in state["trained"]]


def minibatches(
    data: RolloutBatch, num_epochs: int, num_minibatches: int, rng: np.random.Generator, sequences: bool
) -> Iterator[RolloutBatch]:
    """``num_epochs`` shuffled passes over ``data`` (``[E, T]`` arrays), each in ``num_minibatches``.

    Flat (``sequences=False``): the items with ``data.mask`` are shuffled and split into
    near-equal parts, ``[N, ...]`` each, so every item is in exactly one minibatch per
    epoch. Sequences: the environments are shuffled and split; each minibatch holds whole
    rows ``[E_mb, T, ...]`` with their mask.
    """
    if num_epochs < 1 or num_minibatches < 1:
        raise ValueError(
            f"minibatches: num_epochs and num_minibatches must be >= 1, got {num_epochs}, {num_minibatches}"
        )
    mask = np.asarray(data.mask, bool)
    if sequences:
        rows = np.arange(mask.shape[0])
        parts = min(num_minibatches, len(rows))
        for _ in range(num_epochs):
            for part in np.array_split(rng.permutation(rows), parts):
                yield _take(data, np.sort(part))
        return
    env, t = np.nonzero(mask)
    if env.size == 0:
        return
    items = _take(data, (env, t))  # once per rollout; minibatches then take rows
    parts = min(num_minibatches, env.size)
    for _ in range(num_epochs):
        for part in np.array_split(rng.permutation(env.size), parts):
            yield _take(items, part)


def _take(data: RolloutBatch, index: Any) -> RolloutBatch:
    """``data`` with every array indexed by ``index`` (rows, or ``(env, t)`` pairs)."""
    return RolloutBatch(*(_pick(field, index) for field in data))


def _pick(x: Any, index: Any) -> Any:
    # Shallow nests (a Trajectory, a policy_info dict, a recurrent state tuple): a direct
    # rebuild costs a fraction of nest.map_structure's on this per-minibatch path.
    if isinstance(x, np.ndarray):
        return x[index]
    if isinstance(x, dict):
        return {k: _pick(v, index) for k, v in x.items()}
    if isinstance(x, tuple):
        values = [_pick(v, index) for v in x]
        return type(x)(*values) if hasattr(x, "_fields") else tuple(values)
    return x
