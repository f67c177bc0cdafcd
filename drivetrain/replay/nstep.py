"""n-step transitions from windows of consecutive trajectories (NumPy).

A window is a :class:`~drivetrain.core.types.Trajectory` whose arrays are shaped
``[batch, n + 1, ...]``: ``n + 1`` consecutive transitions of one environment. The
n-step transition of its first step is::

    reward   = r_0 + γ d_0 r_1 + γ² d_0 d_1 r_2 + ...      (stops where an episode ends)
    discount = γ^m d_0 d_1 ... d_{m-1}
    next_observation = observation[m]

where ``m`` is ``n``, or the index ``k + 1`` of the first LAST time step if the
episode ends inside the window (``next_step_type[k] == LAST``). A termination has
discount 0, so nothing is bootstrapped; a **truncation** has discount 1, so the target
bootstraps from the final observation of the episode and never from the next episode.
The TD target is ``reward + discount * V(next_observation)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from drivetrain.core import nest, types

__all__ = ["NStepTransition", "n_step_sequence", "n_step_transitions"]

_LAST = int(types.StepType.LAST)


class NStepTransition(NamedTuple):
    """Batched n-step transitions; ``valid`` is False where the window starts at a boundary."""

    observation: Any
    action: Any
    reward: np.ndarray
    discount: np.ndarray
    next_observation: Any
    valid: np.ndarray
    steps: np.ndarray
    """Number of rewards summed (``m``), in 1..n."""


def n_step_transitions(window: types.Trajectory, gamma: float, n: int | None = None) -> NStepTransition:
    """Turns ``[batch, n + 1]`` windows into n-step transitions (see the module docstring).

    ``n`` defaults to ``window_length - 1``. Rewards and discounts are summed in
    float64 and returned as float32.
    """
    step_type = np.asarray(window.step_type)
    if step_type.ndim != 2:
        raise ValueError(
            f"n_step_transitions: expected [batch, n + 1] windows, got step_type shape {step_type.shape}"
        )
    length = step_type.shape[1]
    n = length - 1 if n is None else int(n)
    if not 1 <= n <= length - 1:
        raise ValueError(
            f"n_step_transitions: n must be in 1..{length - 1} for windows of length {length}, got {n}"
        )
    if n == 1:
        return _one_step(window, gamma)
    seq = _n_step(window, gamma, n, 1)
    return NStepTransition(*(nest.map_structure(lambda x: x[:, 0], field) for field in seq))


def _one_step(window: types.Trajectory, gamma: float) -> NStepTransition:
    """``n = 1``: what :func:`_n_step` computes, without its loop (the target is always the next step)."""
    step_type = np.asarray(window.step_type)
    discount = np.asarray(window.discount)[:, 0].astype(np.float64)
    return NStepTransition(
        observation=nest.map_structure(lambda x: x[:, 0], window.observation),
        action=nest.map_structure(lambda x: x[:, 0], window.action),
        reward=np.asarray(window.reward)[:, 0].astype(np.float64).astype(np.float32),
        discount=(gamma * discount).astype(np.float32),
        next_observation=nest.map_structure(lambda x: x[:, 1], window.observation),
        valid=step_type[:, 0] != _LAST,
        steps=np.ones(step_type.shape[0], np.int64),
    )


def n_step_sequence(window: types.Trajectory, gamma: float, n: int) -> NStepTransition:
    """The n-step transition of every step ``s < L - n`` of ``[batch, L]`` windows: arrays ``[batch, L - n, ...]``.

    Entry ``[:, s]`` equals ``n_step_transitions`` of the sub-window ``[:, s : s + n + 1]``
    (for recurrent agents that train on whole sequences).
    """
    step_type = np.asarray(window.step_type)
    if step_type.ndim != 2:
        raise ValueError(
            f"n_step_sequence: expected [batch, L] windows, got step_type shape {step_type.shape}"
        )
    length = step_type.shape[1]
    if not 1 <= int(n) <= length - 1:
        raise ValueError(
            f"n_step_sequence: n must be in 1..{length - 1} for windows of length {length}, got {n}"
        )
    return _n_step(window, gamma, int(n), length - int(n))


def _n_step(window: types.Trajectory, gamma: float, n: int, count: int) -> NStepTransition:
    """n-step transitions of the first ``count`` steps (arrays ``[batch, count, ...]``)."""
    step_type = np.asarray(window.step_type)
    batch = step_type.shape[0]
    reward = np.asarray(window.reward, np.float64)
    discount = np.asarray(window.discount, np.float64)
    next_last = np.asarray(window.next_step_type) == _LAST

    total = np.zeros((batch, count), np.float64)
    scale = np.ones((batch, count), np.float64)  # γ^k d_0 ... d_{k-1}
    running = np.ones((batch, count), bool)  # episode has not ended before step k
    last_index = np.full((batch, count), n, np.int64)
    for k in range(n):
        total += np.where(running, scale * reward[:, k : k + count], 0.0)
        scale = np.where(running, scale * gamma * discount[:, k : k + count], scale)
        ended = running & next_last[:, k : k + count]
        last_index[ended] = k + 1
        running &= ~next_last[:, k : k + count]

    rows = np.arange(batch)[:, None]
    target = np.arange(count) + last_index
    return NStepTransition(
        observation=nest.map_structure(lambda x: x[:, :count], window.observation),
        action=nest.map_structure(lambda x: x[:, :count], window.action),
        reward=total.astype(np.float32),
        discount=scale.astype(np.float32),
        next_observation=nest.map_structure(lambda x: x[rows, target], window.observation),
        valid=step_type[:, :count] != _LAST,
        steps=last_index,
    )
