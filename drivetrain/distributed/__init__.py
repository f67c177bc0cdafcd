"""Scaling out: collectors, one replay and one learner, on Ray or in one process.

``drivetrain train PRESET --execution.backend ray --execution.collectors N`` runs
:func:`drivetrain.distributed.runner.train_distributed` (``train`` dispatches to it). Its parts:

- :mod:`~drivetrain.distributed.config`: :class:`ExecutionConfig`, the ``execution`` section;
- :mod:`~drivetrain.distributed.collector`: a ``Collector`` (its environments, the agent's
  collect policy, the library's ``StepDriver``) producing numbered fragments;
- :class:`ReplayServer` (here): one replay shard per collector, a rate limiter, idempotent
  inserts; it imports neither Ray nor torch, so the in-process transport uses it directly
  and the Ray replay actor wraps it;
- :mod:`~drivetrain.distributed.learner` and :mod:`~drivetrain.distributed.runner`: the
  learner's loop and the run; :mod:`~drivetrain.distributed.topology` (the transport
  protocol, in-process) and :mod:`~drivetrain.distributed.ray_topology` (Ray actors).

Only the replay server is imported here: the training config imports the execution config,
so importing the collector or the runner from this package would be circular.
"""

from drivetrain.distributed.replay_server import InsertStatus, ReplayServer

__all__ = ["InsertStatus", "ReplayServer"]
