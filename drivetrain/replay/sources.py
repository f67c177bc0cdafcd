"""Experience sources: how the collect driver's trajectories reach ``agent.train``.

The training loop is the same for every agent::

    driver = StepDriver(env, agent.collect_policy, [source.observe, *metrics], num_steps=period)
    while ...:
        driver.run(...)                                   # trajectories -> source.observe
        for batch in source.batches(collected):           # what to train on now
            loss_info = agent.train(batch.experience, weights=batch.weights)
            source.trained(batch, loss_info)              # priorities back, early stops

and knows nothing of windows, priorities or epochs; the source does:

- :class:`ReplaySource`: an off-policy replay buffer (uniform or prioritized). Each
  collect phase of ``update_period`` steps is followed by ``gradient_steps`` batches of
  ``batch_size`` windows of ``num_steps`` items; with prioritized replay each batch
  carries importance weights and its new priorities go back after training. Uniform
  batches sampled in the loop are drawn up to 32 at a time (``replay.sample_many``: the
  buffer does not change between them: the same distribution as one call each).
- :class:`RolloutSource`: on-policy rollouts. What the driver produced since the last
  update is prepared (advantages, returns: ``prepare``), trained on for ``num_epochs``
  passes of ``num_minibatches`` minibatches (or fewer when ``stop`` says so, e.g. PPO's
  target KL), then released: only the items a later update still needs are kept.

Both keep only the ``policy_info`` keys of their data spec (what the agent trains on):
a warm-up policy that reports more (e.g. q-values) feeds the same buffer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import numpy as np

from drivetrain.core import types
from drivetrain.replay.buffer import ReplayBuffer, SampleInfo
from drivetrain.replay.dataset import ReplayDataset
from drivetrain.replay.rollout import RolloutBatch, RolloutBuffer, minibatches

__all__ = ["Batch", "ExperienceSource", "ReplaySource", "RolloutSource"]

_CHUNK = 32
"""The most batches of uniform windows drawn and gathered in one call."""


class Batch(NamedTuple):
    """One ``agent.train`` call's input."""

    experience: Any
    """What ``agent.train`` takes: windows ``[B, T, ...]`` or a :class:`RolloutBatch`."""
    weights: np.ndarray | None = None
    """Importance weights ``[B]`` (prioritized replay), else None."""
    info: SampleInfo | None = None
    """Where the windows came from (replay), for the priorities."""


class ExperienceSource(Protocol):
    """What the training loop asks of a source; see the module docstring."""

    large_state: bool
    """True when the state can be gigabytes (a replay buffer): ``loop.checkpoint_replay = False``
    leaves it out of checkpoints. A rollout's state is small and always kept."""

    def observe(self, trajectory: types.Trajectory) -> None:
        """A collect driver's observer."""
        ...

    def batches(self, collected: int) -> Iterator[Batch]:
        """The batches to train on after a collect phase of ``collected`` environment steps."""
        ...

    def trained(self, batch: Batch, loss_info: Any) -> None:
        """Feedback after ``agent.train`` on ``batch``."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _info_filter(data_spec: types.Trajectory) -> Callable[[types.Trajectory], types.Trajectory]:
    """Keeps the ``policy_info`` keys of ``data_spec`` (all of them when it is not a dict)."""
    spec_info = data_spec.policy_info
    keys = tuple(spec_info) if isinstance(spec_info, dict) else None
    key_set = frozenset(keys or ())

    def keep(trajectory: types.Trajectory) -> types.Trajectory:
        info = trajectory.policy_info
        # the same keys pass as they are; other keys of the same number are not the spec's
        if keys is None or not isinstance(info, dict) or info.keys() == key_set:
            return trajectory
        return trajectory._replace(policy_info={k: info[k] for k in keys if k in info})

    return keep


class ReplaySource:
    """Windows sampled from a replay buffer; see the module docstring.

    Args:
      replay: a :class:`~drivetrain.replay.UniformReplay` or ``PrioritizedReplay``.
      batch_size: windows per batch.
      num_steps: items per window (``agent.train_sequence_length``).
      update_period: environment steps of a full collect phase.
      gradient_steps: batches after a full collect phase (pro rata after a shorter one).
      priorities: the new priorities of a batch from its loss info (prioritized replay;
        e.g. DQN's ``|TD error|``); None for uniform replay.
      prefetch: batches sampled ahead in a background thread (0: in ``next``, exactly
        reproducible).
    """

    large_state = True

    def __init__(
        self,
        replay: ReplayBuffer,
        *,
        batch_size: int,
        num_steps: int,
        update_period: int,
        gradient_steps: int,
        priorities: Callable[[Any], np.ndarray] | None = None,
        prefetch: int = 0,
    ):
        self.replay = replay
        self._update_period = int(update_period)
        self._gradient_steps = int(gradient_steps)
        self._priorities = priorities
        self._weighted = priorities is not None
        # Made at the first train phase: a prefetching thread started now would sample the empty
        # buffer before the warm-up fills it.
        self._dataset: ReplayDataset[Any] | None = None
        self._prefetch = int(prefetch)
        # Uniform windows sampled in the loop: the batches of a train phase are drawn together
        # (the buffer does not change between them), in chunks that keep the copy small.
        self._together = not self._weighted and prefetch == 0
        self._shape = (int(batch_size), int(num_steps))
        self._keep = _info_filter(replay.data_spec)
        self._add = replay.add_batch

    @property
    def window_steps(self) -> int:
        """Items of each sampled window (the agent's ``train_sequence_length``)."""
        return self._shape[1]

    def check_capacity(self) -> None:
        """A ValueError when no window could ever be sampled: each environment's share of the
        replay is shorter than one window (called when the run is built, before the warm-up)."""
        replay, num_steps = self.replay, self.window_steps
        per_env = replay.capacity // replay.num_envs
        if num_steps > per_env:
            raise ValueError(
                f"replay.capacity {replay.capacity} keeps {per_env} items for each of the {replay.num_envs} "
                f"environments, fewer than one window of {num_steps} steps (agent.train_sequence_length): "
                f"no batch could ever be sampled; raise replay.capacity to at least {num_steps * replay.num_envs}"
            )

    def observe(self, trajectory: types.Trajectory) -> None:
        self._add(self._keep(trajectory))

    def batches(self, collected: int) -> Iterator[Batch]:
        steps = math.ceil(self._gradient_steps * collected / self._update_period)
        if self._together:
            while steps > 0:
                count = min(steps, _CHUNK)
                steps -= count
                for windows, info in self.replay.sample_many(count, *self._shape):
                    yield Batch(windows, None, info)
            return
        if self._dataset is None and steps > 0:
            self._dataset = self.replay.as_dataset(*self._shape, prefetch=self._prefetch)
        for _ in range(steps):
            assert self._dataset is not None
            windows, info = next(self._dataset)
            yield Batch(windows, info.weights if self._weighted else None, info)

    def trained(self, batch: Batch, loss_info: Any) -> None:
        if self._priorities is not None and batch.info is not None:
            update = getattr(self.replay, "update_priorities")  # noqa: B009 - a PrioritizedReplay
            update(batch.info.ids, self._priorities(loss_info))

    def state_dict(self) -> dict[str, Any]:
        return self.replay.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.replay.load_state_dict(state)

    def close(self) -> None:
        if self._dataset is not None:
            self._dataset.close()


class RolloutSource:
    """On-policy rollouts: gathered, prepared, trained on for epochs, released.

    Args:
      data_spec: the agent's ``collect_data_spec``.
      num_envs: environments of the collect batch.
      prepare: ``(trajectory [E, T], trained [E, T]) -> RolloutBatch`` (the agent's advantages
        and returns; its mask leaves out what was trained on before).
      num_epochs, num_minibatches: passes over each rollout, and minibatches per pass.
      rng: shuffles the minibatches (the agent's, so it is checkpointed with it).
      sequences: minibatches of whole sequences (recurrent agents) instead of items.
      stop: ``loss_info -> bool``: True ends the rollout's epochs after this batch.
      finish: called with the prepared rollout after its epochs (e.g. to update observation
        statistics between updates, never while a rollout is collected or trained on).
    """

    large_state = False

    def __init__(
        self,
        data_spec: types.Trajectory,
        num_envs: int,
        *,
        prepare: Callable[[types.Trajectory, np.ndarray], RolloutBatch],
        num_epochs: int,
        num_minibatches: int,
        rng: np.random.Generator,
        sequences: bool = False,
        stop: Callable[[Any], bool] | None = None,
        finish: Callable[[RolloutBatch], None] | None = None,
    ):
        self.rollout = RolloutBuffer(data_spec, num_envs)
        self._prepare = prepare
        self._epochs = int(num_epochs)
        self._minibatches = int(num_minibatches)
        self._rng = rng
        self._sequences = bool(sequences)
        self._stop = stop
        self._stopping = False
        self._finish = finish
        self._keep = _info_filter(data_spec)

    def observe(self, trajectory: types.Trajectory) -> None:
        self.rollout.add_batch(self._keep(trajectory))

    def batches(self, collected: int) -> Iterator[Batch]:
        del collected  # every rollout is trained on as a whole
        if len(self.rollout) == 0:
            return
        data = self._prepare(*self.rollout.gather())
        self._stopping = False
        if data.mask.any():
            for batch in minibatches(data, self._epochs, self._minibatches, self._rng, self._sequences):
                yield Batch(batch)
                if self._stopping:
                    break
            if self._finish is not None:
                self._finish(data)
        self.rollout.release(data.mask)

    def trained(self, batch: Batch, loss_info: Any) -> None:
        if self._stop is not None and self._stop(loss_info):
            self._stopping = True

    def state_dict(self) -> dict[str, Any]:
        return self.rollout.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rollout.load_state_dict(state)

    def close(self) -> None:
        self.rollout.clear()
