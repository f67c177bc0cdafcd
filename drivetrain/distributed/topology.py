"""How the learner reaches the collectors and the replay: the :class:`Transport` protocol, in one process.

The learner (:mod:`drivetrain.distributed.runner`) drives a transport::

    transport.start(config, server_settings)          # C collectors and one ReplayServer (None: no replay)
    transport.set_weights(version, weights)           # to every collector (only newer versions apply)
    transport.collect(i, num_steps, warmup)           # starts a collect on collector i (< max_in_flight at once)
    transport.collect(i, k * E, False, count_boundaries=True)   # exactly k items (on-policy rounds)
    got = transport.next_fragment()                   # a finished one: Collected(index, fragment, items, ...)
    transport.insert(got)                             # STORED / DUPLICATE / RATE_LIMITED
    transport.fetch_items(got)                        # or its time steps, in the learner (on-policy)
    take = transport.sample_async(num_batches, batch_size, num_steps)   # sent now ...
    batches = take()                                  # ... its batches (None: refused) when needed
    transport.update_priorities(ids, p)
    transport.state_dict(include_replay)              # waits for the collects in flight: a consistent cut
    transport.load_state_dict(state); transport.close()

- A :class:`Collected` is a collect that finished and was not inserted yet; ``fragment`` has
  the counts (its ``items`` empty), ``items`` the time steps (a list, or a Ray object
  reference), ``requested`` and ``warmup`` what was asked.
- A collector that a transport finds restarted (a new process) is renumbered with
  ``restart(server.restart_writer(i))`` and collects again what was asked: a fragment of a
  dead or restarted collector never reaches the learner, so the counters stay exact.
- ``state_dict`` first waits for every collect in flight and keeps its fragment as *pending*
  (returned by ``next_fragment`` first): the collectors' states, the pending fragments and
  the replay then agree. It holds ``{"server", "collectors", "pending", "weights"}``;
  ``"server"`` is None without the replay (then ``load_state_dict`` restarts every writer on
  the empty replay and drops the pending fragments, whose numbers belong to the old one).
- Started without server settings (on-policy runs: the learner keeps the rollout), a transport
  has no replay: ``insert`` and ``sample_async`` are not called, ``"server"`` is None and
  ``load_state_dict`` restores the collectors as they were.

:class:`InProcessTransport` calls plain objects: ``collect`` only records the request and
``next_fragment`` runs the oldest one (``max_in_flight = 1``: one collect at a time, in the
learner's order), so the same seed gives the same run, and a checkpoint holds no pending
fragment. Weights are applied to a collector when it next collects (nothing can observe
them earlier). The Ray transport is :class:`drivetrain.distributed.ray_topology.RayTransport`.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from drivetrain.core import types
from drivetrain.distributed.collector import Collector, Fragment
from drivetrain.distributed.replay_server import InsertStatus, ReplayServer
from drivetrain.replay import SampleInfo
from drivetrain.train.config import ExperimentConfig

__all__ = ["Batches", "Collected", "InProcessTransport", "TakeBatches", "Transport"]


Batches = list[tuple[types.Trajectory, SampleInfo]]
"""What one sample call returns: ``num_batches`` pairs of windows ``[B, T, ...]`` and their SampleInfo."""
TakeBatches = Callable[[], Batches | None]
"""Waits for a sample call sent by :meth:`Transport.sample_async` and returns its batches (or None)."""


@dataclasses.dataclass
class Collected:
    """A finished collect, not inserted yet (see the module docstring)."""

    index: int
    fragment: Fragment
    items: Any
    requested: int
    warmup: bool


class Transport(Protocol):
    """What the learner asks of the collectors and the replay; see the module docstring."""

    max_in_flight: int
    """Collects the learner keeps running at once."""
    concurrent: bool
    """Whether collects run while the learner trains (threads, Ray processes): the learner then
    starts a collector's next collect as soon as its fragment arrives, before training on it."""
    restarts: int
    """Collectors found restarted (and renumbered) so far in this session."""

    def start(self, config: ExperimentConfig, server_settings: dict[str, Any] | None) -> None: ...

    def set_weights(self, version: int, weights: Any) -> None: ...

    def collect(self, index: int, num_steps: int, warmup: bool, count_boundaries: bool = False) -> None: ...

    def in_flight(self) -> set[int]:
        """Collectors with a collect running or a pending fragment."""
        ...

    def next_fragment(self) -> Collected: ...

    def insert(self, collected: Collected) -> InsertStatus: ...

    def fetch_items(self, collected: Collected) -> list[types.Trajectory]:
        """The fragment's batched trajectories, in the learner's process (on-policy runs train on them)."""
        ...

    def sample_async(self, num_batches: int, batch_size: int, num_steps: int) -> TakeBatches:
        """Sends a sample call to the replay; the returned callable waits for its batches
        (None when the replay refused: too small, or the rate limiter). Calls to the replay run
        in the order they were sent, so priorities sent later do not change these batches."""
        ...

    def update_priorities(self, ids: Any, priorities: Any) -> None: ...

    def counters(self) -> dict[str, Any]: ...

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> list[Collected]:
        """Restores :meth:`state_dict`; returns the pending fragments it dropped (none with the replay)."""
        ...

    def close(self) -> None: ...


class InProcessTransport:
    """Collectors and the replay server as plain objects, called in the learner's order (deterministic)."""

    max_in_flight = 1
    concurrent = False

    def __init__(self) -> None:
        self.restarts = 0
        self._collectors: list[Collector] = []
        self._server: ReplayServer | None = None
        self._requests: collections.deque[tuple[int, int, bool, bool]] = collections.deque()
        self._pending: collections.deque[Collected] = collections.deque()
        self._weights: tuple[int, Any] | None = None

    @property
    def server(self) -> ReplayServer:
        assert self._server is not None, "InProcessTransport.start() first"
        return self._server

    @property
    def collectors(self) -> list[Collector]:
        return self._collectors

    def start(self, config: ExperimentConfig, server_settings: dict[str, Any] | None) -> None:
        self._server = None if server_settings is None else ReplayServer(**server_settings)
        for i in range(config.execution.collectors):
            self._collectors.append(Collector(config, i))

    def set_weights(self, version: int, weights: Any) -> None:
        self._weights = (version, weights)

    def collect(self, index: int, num_steps: int, warmup: bool, count_boundaries: bool = False) -> None:
        self._requests.append((index, num_steps, warmup, count_boundaries))

    def in_flight(self) -> set[int]:
        return {r[0] for r in self._requests} | {c.index for c in self._pending}

    def next_fragment(self) -> Collected:
        if self._pending:
            return self._pending.popleft()
        if not self._requests:
            raise RuntimeError("InProcessTransport.next_fragment: no collect was started")
        return self._run(*self._requests.popleft())

    def _run(self, index: int, num_steps: int, warmup: bool, count_boundaries: bool) -> Collected:
        collector = self._collectors[index]
        if self._weights is not None and self._weights[0] > collector.weights_version:
            collector.set_weights(*self._weights)
        fragment = collector.collect(num_steps, warmup=warmup, count_boundaries=count_boundaries)
        return Collected(index, fragment._replace(items=[]), fragment.items, num_steps, warmup)

    def insert(self, collected: Collected) -> InsertStatus:
        f = collected.fragment
        return self.server.insert(f.writer_id, f.sequence_number, collected.items)

    def fetch_items(self, collected: Collected) -> list[types.Trajectory]:
        items: list[types.Trajectory] = collected.items
        return items

    def sample_async(self, num_batches: int, batch_size: int, num_steps: int) -> TakeBatches:
        batches = self.server.sample(num_batches, batch_size, num_steps)  # now: the order of the calls
        return lambda: batches

    def update_priorities(self, ids: Any, priorities: Any) -> None:
        self.server.update_priorities(ids, priorities)

    def counters(self) -> dict[str, Any]:
        return self.server.counters()

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        while self._requests:
            self._pending.append(self._run(*self._requests.popleft()))
        return {
            "server": self.server.state_dict() if include_replay and self._server is not None else None,
            "collectors": [c.state_dict() for c in self._collectors],
            "pending": list(self._pending),
            "weights": self._weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> list[Collected]:
        for collector, s in zip(self._collectors, state["collectors"], strict=True):
            collector.load_state_dict(s)
        self._weights = state["weights"]
        self._requests.clear()
        if state["server"] is None and self._server is not None:
            for collector in self._collectors:
                collector.restart(self.server.restart_writer(collector.index))
            self._pending.clear()
            return list(state["pending"])
        if self._server is not None:
            self.server.load_state_dict(state["server"])
        self._pending = collections.deque(state["pending"])
        return []

    def close(self) -> None:
        for collector in self._collectors:
            collector.close()
