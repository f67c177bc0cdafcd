"""Background sampling: the book's ``as_dataset(...).prefetch(3)`` as a plain iterator.

:class:`ReplayDataset` calls a sample function on a daemon thread and keeps up to
``prefetch`` results in a queue; ``next(it)`` takes the oldest. NumPy releases the GIL
while it gathers, so sampling overlaps with collection and training. An exception in
the thread is raised by the next ``next(it)``. :meth:`ReplayDataset.close` (also on
``with`` exit and on garbage collection) stops the thread; the iterator then ends.

With ``prefetch=0`` there is no thread: each ``next(it)`` samples on the spot, so the
samples depend only on the replay's seed and on what was added before each call
(exactly reproducible). With a thread, samples are drawn ahead, at times that depend on
scheduling.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["ReplayDataset"]

T = TypeVar("T")

_POLL_S = 0.05


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _worker(sample: Callable[[], T], out: queue.Queue[T | _Failure], stop: threading.Event) -> None:
    try:
        while not stop.is_set():
            item: T | _Failure = sample()
            while not stop.is_set():
                try:
                    out.put(item, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue
    except BaseException as e:  # handed to the consumer
        failure = _Failure(e)
        while not stop.is_set():
            try:
                out.put(failure, timeout=_POLL_S)
                return
            except queue.Full:
                continue


class ReplayDataset(Generic[T], Iterator[T]):
    """An endless iterator of samples, produced ahead of time by a background thread."""

    def __init__(self, sample: Callable[[], T], prefetch: int = 3, name: str = "replay-dataset"):
        if prefetch < 0:
            raise ValueError(f"as_dataset: prefetch must be >= 0, got {prefetch}")
        self._sample = sample
        self._prefetch = int(prefetch)
        self._closed = False
        self._stop = threading.Event()
        self._queue: queue.Queue[T | _Failure] = queue.Queue(maxsize=max(1, self._prefetch))
        self._thread: threading.Thread | None = None
        if self._prefetch > 0:
            # The thread holds only the sample function, the queue and the event, never `self`,
            # so dropping the iterator lets it be collected and closed.
            self._thread = threading.Thread(
                target=_worker, args=(sample, self._queue, self._stop), name=name, daemon=True
            )
            self._thread.start()

    def __iter__(self) -> ReplayDataset[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        if self._thread is None:
            return self._sample()
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self.close()
                    raise StopIteration from None
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float = 5.0) -> None:
        """Stops the thread and drops what it prefetched; further ``next`` raises StopIteration."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            while True:  # unblock a worker waiting on a full queue
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            if self._thread is not threading.current_thread():
                self._thread.join(timeout)

    def __enter__(self) -> ReplayDataset[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)  # None if __init__ failed early
        if stop is not None:
            stop.set()
