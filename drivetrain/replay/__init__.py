"""Replay buffers: uniform and prioritized, n-step windows, frame de-duplication, sequences.

NumPy and the standard library only (no torch, no ray)::

    replay = UniformReplay(policy.trajectory_spec, capacity=100_000, num_envs=8, seed=0)
    driver = StepDriver(env, policy, observers=[replay.add_batch], num_steps=4)
    batch, info = replay.sample(batch_size=64, num_steps=2)          # arrays [64, 2, ...]
    dataset = replay.as_dataset(batch_size=64, num_steps=2, prefetch=3)
    transitions = n_step_transitions(batch, gamma=0.99)

Stacked-frame observations (a :class:`~drivetrain.core.specs.StackedFramesSpec`) are
stored one frame each; see :mod:`drivetrain.replay.frames`. Which windows can be
sampled is spelled out in :mod:`drivetrain.replay.storage`.
"""

from drivetrain.replay.buffer import ReplayBuffer, SampleInfo
from drivetrain.replay.dataset import ReplayDataset
from drivetrain.replay.idempotent import IdempotentInserts, SequenceGapError
from drivetrain.replay.nstep import NStepTransition, n_step_sequence, n_step_transitions
from drivetrain.replay.prioritized import PrioritizedReplay
from drivetrain.replay.rate_limiter import MinSize, RateLimiter, RateLimitError, SampleToInsertRatio
from drivetrain.replay.sequences import SequenceBatch, sample_sequences, split_sequence
from drivetrain.replay.sharded import ShardedReplay
from drivetrain.replay.sum_tree import SumTree
from drivetrain.replay.uniform import UniformReplay

__all__ = [
    "IdempotentInserts",
    "MinSize",
    "NStepTransition",
    "PrioritizedReplay",
    "RateLimitError",
    "RateLimiter",
    "ReplayBuffer",
    "ReplayDataset",
    "SampleInfo",
    "SampleToInsertRatio",
    "SequenceBatch",
    "SequenceGapError",
    "ShardedReplay",
    "SumTree",
    "UniformReplay",
    "n_step_sequence",
    "n_step_transitions",
    "sample_sequences",
    "split_sequence",
]
