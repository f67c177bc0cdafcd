"""Scaling out: collectors, one replay and one learner, on Ray or in one process.

:class:`ReplayServer` is the replay of such a run (one shard per collector, a rate limiter,
idempotent inserts); it imports neither Ray nor torch, so the in-process backend uses it
directly and the Ray replay actor wraps it.
"""

from drivetrain.distributed.replay_server import InsertStatus, ReplayServer

__all__ = ["InsertStatus", "ReplayServer"]
