"""Sequences for recurrent agents (R2D2): burn-in, training steps and the stored state.

Sequence sampling *is* window sampling: ``replay.sample(batch_size, burn_in + T)``
returns windows of ``burn_in + T`` consecutive items, and because a stateful policy's
driver stores the state the policy acted from in ``policy_info["state"]``, the
window's first step carries the state to start the network from. The window rules of
:mod:`drivetrain.replay.storage` hold (no start at a boundary, never past the newest
item or across the overwrite point), so there is no padding: every step is real data.

A sequence may run across an episode's end (``..., LAST, FIRST, ...``): the item
with ``step_type == LAST`` is a boundary (its action was never taken in the MDP) and
must not be trained on, and the network must reset its state where ``step_type ==
FIRST`` (inside sequences too), as the driver did while collecting.
:func:`split_sequence` returns the masks for both choices: train on every real
transition (``mask``), or only on the episode the sequence started in
(``episode_mask``). For n-step targets over a sequence, sample ``burn_in + T + n`` steps
and use :func:`~drivetrain.replay.nstep.n_step_sequence` on the part after the burn-in.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from drivetrain.core import nest, types
from drivetrain.replay.buffer import ReplayBuffer, SampleInfo

__all__ = ["SequenceBatch", "episode_mask", "initial_state", "sample_sequences", "split_sequence"]

_LAST = int(types.StepType.LAST)


class SequenceBatch(NamedTuple):
    """A batch of sequences split into burn-in and training steps."""

    initial_state: Any
    """The policy state stored at each sequence's first step: ``policy_info["state"][:, 0]``."""
    burn_in: types.Trajectory
    """``[B, burn_in, ...]``: steps that only warm the state up (no loss, no gradient)."""
    train: types.Trajectory
    """``[B, T, ...]``: the steps to train on."""
    mask: np.ndarray
    """bool ``[B, T]``: training steps that are real transitions (not boundaries)."""
    episode_mask: np.ndarray
    """bool ``[B, T]``: training steps in the episode the sequence started in (up to its LAST)."""
    info: SampleInfo


def initial_state(window: types.Trajectory) -> Any:
    """``policy_info["state"]`` at the first step of each window (arrays ``[B, ...]``)."""
    info = window.policy_info
    if not isinstance(info, dict) or "state" not in info:
        raise KeyError(
            "the windows carry no policy_info['state']: the data spec comes from a stateless policy "
            "(use the stateful policy's trajectory_spec as the replay's data spec)"
        )
    return nest.map_structure(lambda x: x[:, 0], info["state"])


def episode_mask(window: types.Trajectory) -> np.ndarray:
    """bool ``[B, L]``: steps up to and including the first one that ends an episode (next LAST)."""
    ended = np.asarray(window.next_step_type) == _LAST
    before = np.cumsum(ended, axis=1) - ended  # episode ends strictly before each step
    return np.asarray(before == 0)


def split_sequence(window: types.Trajectory, info: SampleInfo, burn_in: int) -> SequenceBatch:
    """Splits ``[B, burn_in + T]`` windows into a :class:`SequenceBatch`."""
    length = np.shape(window.step_type)[1]
    if not 0 <= burn_in < length:
        raise ValueError(
            f"split_sequence: burn_in must be in 0..{length - 1} for sequences of {length}, got {burn_in}"
        )
    burn = types.Trajectory(*(nest.map_structure(lambda x: x[:, :burn_in], f) for f in window))
    train = types.Trajectory(*(nest.map_structure(lambda x: x[:, burn_in:], f) for f in window))
    return SequenceBatch(
        initial_state=initial_state(window),
        burn_in=burn,
        train=train,
        mask=np.asarray(train.step_type) != _LAST,
        episode_mask=episode_mask(window)[:, burn_in:],
        info=info,
    )


def sample_sequences(replay: ReplayBuffer, batch_size: int, length: int, burn_in: int = 0) -> SequenceBatch:
    """Samples ``batch_size`` sequences of ``burn_in + length`` steps and splits them."""
    if length < 1:
        raise ValueError(f"sample_sequences: length must be >= 1, got {length}")
    window, info = replay.sample(batch_size, burn_in + length)
    return split_sequence(window, info, burn_in)
