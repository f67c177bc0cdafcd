"""The Ray transport: collector actors, a replay actor, the learner in the calling process.

:class:`RayTransport` is the :class:`~drivetrain.distributed.topology.Transport` of
``execution.backend = "ray"`` (see that module for the protocol):

- ``start`` calls ``ray.init(address=execution.ray_address)`` unless Ray is initialised (then it
  reuses it), and starts one actor per :class:`~drivetrain.distributed.collector.Collector`
  (``max_restarts=-1``, ``max_task_retries=-1``: Ray restarts a dead one and retries its task)
  and one :class:`~drivetrain.distributed.replay_server.ReplayServer` actor (never restarted;
  none for an on-policy run, whose learner keeps the rollout).
  A collector actor takes one CPU when the cluster has one for each, else none.
- A collect returns two objects: the fragment's counts (with the actor's PID) to the learner,
  and its items, which go from the object store to the replay actor without passing through
  the learner. The learner waits with ``ray.wait`` for whichever collect ends first.
- **A restarted collector** reports another PID: its fragment (from a fresh collector that
  starts over at sequence number 0) is dropped, the actor is renumbered with
  ``restart(server.restart_writer(i))`` (without a replay: the number after its last fragment
  the learner got), given the latest weights, and collects again what was asked. So the counters stay exact and no sampled window crosses the restart.
- Weights go to every collector through one ``ray.put``.
- **A lost replay actor** ends the run with :class:`~drivetrain.distributed.runner.DistributedRunError`,
  whose message says that ``--resume`` continues from the last checkpoint.
- ``close`` kills the actors; Ray itself stays up (a caller that started it shuts it down).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

from drivetrain.core import types
from drivetrain.distributed.collector import Collector, Fragment
from drivetrain.distributed.replay_server import InsertStatus, ReplayServer
from drivetrain.distributed.topology import Batches, Collected, TakeBatches
from drivetrain.train.config import ExperimentConfig

__all__ = ["CollectorActor", "RayTransport"]


class CollectorActor:
    """The body of a collector actor: a :class:`Collector` that also reports its process id."""

    def __init__(self, config: ExperimentConfig, index: int):
        import torch

        torch.set_num_threads(config.loop.torch_threads or 1)
        self._collector = Collector(config, index)

    def pid(self) -> int:
        return os.getpid()

    def collect(
        self, num_steps: int, warmup: bool, count_boundaries: bool = False
    ) -> tuple[tuple[int, Fragment], list[types.Trajectory]]:
        fragment = self._collector.collect(num_steps, warmup=warmup, count_boundaries=count_boundaries)
        return (os.getpid(), fragment._replace(items=[])), fragment.items

    def set_weights(self, version: int, weights: Any) -> bool:
        return self._collector.set_weights(version, weights)

    def restart(self, next_sequence_number: int) -> None:
        self._collector.restart(next_sequence_number)

    def state_dict(self) -> tuple[int, dict[str, Any]]:
        return os.getpid(), self._collector.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        return self._collector.load_state_dict(state)


def _lost(error: BaseException) -> Exception:
    from drivetrain.distributed.runner import DistributedRunError

    first_line = next(iter(str(error).splitlines()), "")  # Ray's own message goes on for lines
    return DistributedRunError(
        f"the replay actor was lost ({type(error).__name__}: {first_line}); the run cannot go on without "
        "its replay: `drivetrain train ... --resume` (train(..., resume=True)) continues from the "
        "last checkpoint in the run directory"
    )


class RayTransport:
    """Collectors and the replay server as Ray actors; see the module docstring.

    Args:
      on_fragment: called with the transport and each fragment before the learner gets it (tests
        use it to kill a collector mid-run).
    """

    def __init__(self, on_fragment: Callable[[RayTransport, Collected], None] | None = None):
        self.on_fragment = on_fragment
        self.max_in_flight = 1
        self.concurrent = True
        self.restarts = 0
        self._actors: list[Any] = []
        self._pids: list[int] = []
        self._server: Any = None
        self._flight: dict[Any, tuple[int, tuple[int, bool, bool], Any]] = {}
        self._numbers: list[int] = []
        self._pending: collections.deque[Collected] = collections.deque()
        self._weights: tuple[int, Any] | None = None

    # ------------------------------------------------------------------ setup
    def start(self, config: ExperimentConfig, server_settings: dict[str, Any] | None) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=config.execution.ray_address)
        count = config.execution.collectors
        cpus = 1 if ray.cluster_resources().get("CPU", 0) >= count else 0  # type: ignore[no-untyped-call]
        actor = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=cpus)(CollectorActor)
        if server_settings is not None:
            server = ray.remote(max_restarts=0, num_cpus=0)(ReplayServer)
            self._server = server.remote(**server_settings)
        self._actors = [actor.remote(config, i) for i in range(count)]
        self._pids = ray.get([a.pid.remote() for a in self._actors])
        self._numbers = [0] * count
        if self._server is not None:
            self._call(self._server.counters)
        self.max_in_flight = count

    def collector_pids(self) -> list[int]:
        """The process ids of the collector actors (as the learner last saw them)."""
        return list(self._pids)

    def _call(self, method: Any, *args: Any) -> Any:
        return self._get(method.remote(*args))

    @staticmethod
    def _get(ref: Any) -> Any:
        """``ray.get(ref)`` of a replay call; a lost replay actor ends the run (DistributedRunError)."""
        import ray

        try:
            return ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError) as e:
            raise _lost(e) from e

    # ------------------------------------------------------------------ collectors
    def set_weights(self, version: int, weights: Any) -> None:
        import ray

        ref = ray.put(weights)
        self._weights = (version, ref)
        for a in self._actors:
            a.set_weights.remote(version, ref)

    def collect(self, index: int, num_steps: int, warmup: bool, count_boundaries: bool = False) -> None:
        asked = (num_steps, warmup, count_boundaries)
        meta, items = self._actors[index].collect.options(num_returns=2).remote(*asked)
        self._flight[meta] = (index, asked, items)

    def in_flight(self) -> set[int]:
        return {f[0] for f in self._flight.values()} | {c.index for c in self._pending}

    def next_fragment(self) -> Collected:
        got = self._pending.popleft() if self._pending else self._finished()
        if self.on_fragment is not None:
            self.on_fragment(self, got)
        return got

    def _finished(self) -> Collected:
        import ray

        while True:
            if not self._flight:
                raise RuntimeError("RayTransport.next_fragment: no collect was started")
            ready, _ = ray.wait(list(self._flight), num_returns=1)
            index, asked, items = self._flight.pop(ready[0])
            try:
                pid, fragment = ray.get(ready[0])
            except ray.exceptions.RayActorError:
                pid, fragment = -1, None
            if fragment is not None and pid == self._pids[index]:
                self._numbers[index] = fragment.sequence_number + 1
                return Collected(index, fragment, items, asked[0], asked[1])
            self._restart(index)
            self.collect(index, *asked)

    def _restart(self, index: int) -> None:
        """Renumbers a collector that Ray restarted (a fresh process) after the replay's last insert."""
        import ray

        actor = self._actors[index]
        number = (
            self._numbers[index] if self._server is None else self._call(self._server.restart_writer, index)
        )
        ray.get(actor.restart.remote(number))
        if self._weights is not None:
            actor.set_weights.remote(*self._weights)
        self._pids[index] = ray.get(actor.pid.remote())
        self.restarts += 1

    def fetch_items(self, collected: Collected) -> list[types.Trajectory]:
        import ray

        items = collected.items
        fetched: list[types.Trajectory] = items if isinstance(items, list) else ray.get(items)
        return fetched

    # ------------------------------------------------------------------ replay
    def insert(self, collected: Collected) -> InsertStatus:
        f = collected.fragment
        status: InsertStatus = self._call(
            self._server.insert, f.writer_id, f.sequence_number, collected.items
        )
        return status

    def sample_async(self, num_batches: int, batch_size: int, num_steps: int) -> TakeBatches:
        ref = self._server.sample.remote(num_batches, batch_size, num_steps)

        def take() -> Batches | None:
            batches: Batches | None = self._get(ref)
            return batches

        return take

    def update_priorities(self, ids: Any, priorities: Any) -> None:
        self._server.update_priorities.remote(ids, priorities)  # ordered before this caller's next sample

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self._call(self._server.counters)
        return counters

    # ------------------------------------------------------------------ state
    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        import ray

        while True:  # a consistent cut: every collect finished, its fragment pending
            while self._flight:
                self._pending.append(self._finished())
            collectors = self._collector_states()
            if collectors is not None:
                break
        pending = [
            c
            if isinstance(c.items, list)
            else Collected(c.index, c.fragment, ray.get(c.items), c.requested, c.warmup)
            for c in self._pending
        ]
        self._pending = collections.deque(pending)
        return {
            "server": self._call(self._server.state_dict)
            if include_replay and self._server is not None
            else None,
            "collectors": collectors,
            "pending": pending,
            "weights": None if self._weights is None else (self._weights[0], ray.get(self._weights[1])),
        }

    def _collector_states(self) -> list[dict[str, Any]] | None:
        """Every collector's state, from the process that collected its pending fragments; None
        when Ray restarted one since (its state call went to a fresh process): that collector is
        renumbered, as after a lost collect, and its pending fragments, which the replay would now
        refuse, are collected again by the new process (in flight: the cut starts over)."""
        import ray

        answers = ray.get([a.state_dict.remote() for a in self._actors])
        restarted = {i for i, (pid, _) in enumerate(answers) if pid != self._pids[i]}
        if not restarted:
            return [state for _, state in answers]
        lost = [c for c in self._pending if c.index in restarted]
        self._pending = collections.deque(c for c in self._pending if c.index not in restarted)
        for index in sorted(restarted):
            self._restart(index)
        for c in lost:
            self.collect(c.index, c.requested, c.warmup)
        return None

    def load_state_dict(self, state: dict[str, Any]) -> list[Collected]:
        import ray

        ray.get([a.load_state_dict.remote(s) for a, s in zip(self._actors, state["collectors"], strict=True)])
        if state["weights"] is not None:
            self._weights = (state["weights"][0], ray.put(state["weights"][1]))
        self._flight.clear()
        self._numbers = [int(s["sequence_number"]) for s in state["collectors"]]
        if state["server"] is None and self._server is not None:
            for index, actor in enumerate(self._actors):
                ray.get(actor.restart.remote(self._call(self._server.restart_writer, index)))
            self._pending.clear()
            return list(state["pending"])
        if self._server is not None:
            self._call(self._server.load_state_dict, state["server"])
        self._pending = collections.deque(state["pending"])
        return []

    def close(self) -> None:
        import ray

        if not ray.is_initialized():
            return
        for a in [*self._actors, self._server]:
            if a is not None:
                ray.kill(a, no_restart=True)
        self._actors, self._server, self._flight = [], None, {}
