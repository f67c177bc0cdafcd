"""Collection beside learning in one process: collectors in threads, the replay as a plain object.

:class:`ThreadTransport` is the :class:`~drivetrain.distributed.topology.Transport` of
``execution.backend = "threads"``: the topology of a distributed run (collectors, one replay
server, the learner; see :mod:`drivetrain.distributed.runner`) without Ray, so that the
environments step while the learner trains. Each collector has a thread of its own
(``execution.collectors`` of them) and runs the library's own driver over its batch of
environments; the learner, in the calling thread, inserts the fragments, samples and trains.
The work overlaps where it leaves Python: an environment's emulator or physics (ale-py,
EnvPool, MuJoCo), OpenCV's preprocessing and PyTorch's operators release the GIL.

The schedule is the learner's (:mod:`drivetrain.distributed.learner`), so the updates per env
step are exactly those of the config (``gradient_steps`` per ``update_period``, pro rata per
fragment), or the rate limiter's ``execution.samples_per_insert`` within its error buffer.

- A collector's weights are applied by its own thread when its next collect starts (only
  newer versions); its agent is its own copy, so acting never races the learner's update.
- The replay server guards itself with a lock; the learner alone inserts and samples.
- An error in a collector's thread ends the run with that error (a thread is not restarted:
  the process is the unit that fails, and ``--resume`` continues from the last checkpoint).
- ``state_dict`` waits for every collect in flight (a consistent cut, as on Ray): counters and
  replay contents at a checkpoint are exact; the interleaving of threads is not reproducible,
  so the same seed does not give the same run (use ``backend="local"`` for that).
"""

from __future__ import annotations

import collections
import concurrent.futures
from typing import Any

from drivetrain.distributed.topology import Collected, InProcessTransport
from drivetrain.train.config import ExperimentConfig

__all__ = ["ThreadTransport"]


class ThreadTransport(InProcessTransport):
    """Collectors in threads of this process; see the module docstring."""

    concurrent = True

    def __init__(self) -> None:
        super().__init__()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._flight: dict[concurrent.futures.Future[Collected], int] = {}

    def start(self, config: ExperimentConfig, server_settings: dict[str, Any] | None) -> None:
        super().start(config, server_settings)
        count = config.execution.collectors
        self._pool = concurrent.futures.ThreadPoolExecutor(count, thread_name_prefix="drivetrain-collector")
        self.max_in_flight = count

    def collect(self, index: int, num_steps: int, warmup: bool, count_boundaries: bool = False) -> None:
        assert self._pool is not None, "ThreadTransport.start() first"
        future = self._pool.submit(self._run, index, num_steps, warmup, count_boundaries)
        self._flight[future] = index

    def in_flight(self) -> set[int]:
        return set(self._flight.values()) | {c.index for c in self._pending}

    def next_fragment(self) -> Collected:
        if self._pending:
            return self._pending.popleft()
        if not self._flight:
            raise RuntimeError("ThreadTransport.next_fragment: no collect was started")
        done, _ = concurrent.futures.wait(self._flight, return_when=concurrent.futures.FIRST_COMPLETED)
        # Several ready: the one started first (the dict keeps the starts' order). The lowest index
        # would take collector 0's fragment again and again, restarted at once, while another's
        # finished fragment waited, its weights ever older.
        future = next(f for f in self._flight if f in done)
        del self._flight[future]
        return future.result()  # a collector's error ends the run here

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        for future in concurrent.futures.as_completed(list(self._flight)):
            self._pending.append(future.result())
        self._flight.clear()
        self._pending = collections.deque(sorted(self._pending, key=lambda c: c.index))
        return super().state_dict(include_replay)

    def load_state_dict(self, state: dict[str, Any]) -> list[Collected]:
        self._drain()
        return super().load_state_dict(state)

    def _drain(self) -> None:
        """Waits for the collects in flight and forgets them (their results are not used)."""
        concurrent.futures.wait(self._flight)
        self._flight.clear()

    def close(self) -> None:
        if self._pool is not None:
            for future in self._flight:
                future.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None
        self._flight.clear()
        super().close()
