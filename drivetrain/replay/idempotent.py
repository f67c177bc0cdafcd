"""Idempotent inserts: an insert that is retried is stored once.

A writer (e.g. a collector sending trajectories to a replay actor) numbers its inserts
0, 1, 2, ... and sends each with its ``writer_id``; when it hears no acknowledgement it
sends the same insert again, with the same number. In front of the storing callable::

    inserts = IdempotentInserts(replay.add_batch)
    if inserts.is_applied(writer_id, number):     # a retry of a stored insert
        return                                    # acknowledge it, store nothing
    if limiter.can_insert(n):
        inserts.insert(writer_id, number, batch)  # stores it, remembers the number
        limiter.insert(n)

- The first insert of a writer is number 0; each next one is the last applied number + 1.
- A number at or below the writer's last applied one is a retry: ``insert`` returns False
  and stores nothing; ``is_applied`` returns True.
- The next number is stored with ``store(batch)``, then recorded; ``insert`` returns True.
  If ``store`` raises, nothing is recorded and the same number can be sent again.
- A number past the next one (an insert in between never arrived) is refused with a
  :class:`SequenceGapError` naming the number expected and the number received; nothing
  is stored.
- ``state_dict()`` holds the last applied number of every writer; checkpoint it with the
  replay it guards, so that a restored replay and its numbers agree.
- A writer that restarts either goes on from ``next_sequence_number(writer_id)`` or takes a
  new ``writer_id``; starting again at 0 under its old id would make its inserts retries.
- Thread-safe (one lock around check, store and record), so concurrent retries of one
  insert store it once.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["IdempotentInserts", "SequenceGapError", "WriterId"]

Batch = TypeVar("Batch")
WriterId = str | int


class SequenceGapError(ValueError):
    """An insert arrived whose number is past the writer's next one."""


class IdempotentInserts(Generic[Batch]):
    """Stores each ``(writer_id, sequence_number)`` once; see the module docstring.

    ``IdempotentInserts(store)``: ``store(batch)`` is any callable that stores a batch
    (e.g. ``replay.add_batch``); its result is ignored.
    """

    def __init__(self, store: Callable[[Batch], object]):
        self._store = store
        self._last: dict[WriterId, int] = {}
        self._lock = threading.Lock()

    @property
    def writers(self) -> dict[WriterId, int]:
        """The last applied number of every writer seen (a copy)."""
        with self._lock:
            return dict(self._last)

    def next_sequence_number(self, writer_id: WriterId) -> int:
        """The number the writer's next insert must carry (0 for a writer not seen)."""
        with self._lock:
            return self._last.get(_writer(writer_id), -1) + 1

    def is_applied(self, writer_id: WriterId, sequence_number: int) -> bool:
        """True for a retry of an applied insert, False for the next one; SequenceGapError past it."""
        with self._lock:
            return self._check(_writer(writer_id), _number(sequence_number))

    def insert(self, writer_id: WriterId, sequence_number: int, batch: Batch) -> bool:
        """Stores ``batch`` unless this insert was applied before; True iff it was stored now."""
        writer, number = _writer(writer_id), _number(sequence_number)
        with self._lock:
            if self._check(writer, number):
                return False
            self._store(batch)
            self._last[writer] = number
            return True

    def forget(self, writer_id: WriterId) -> None:
        """Drops a writer that is gone for good (its id may then start again at 0)."""
        with self._lock:
            self._last.pop(_writer(writer_id), None)

    def _check(self, writer: WriterId, number: int) -> bool:
        expected = self._last.get(writer, -1) + 1
        if number > expected:
            raise SequenceGapError(
                f"IdempotentInserts: writer {writer!r} sent insert {number}, but the next one "
                f"expected is {expected} (inserts {expected}..{number - 1} never arrived)"
            )
        return number < expected

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The last applied number of every writer."""
        with self._lock:
            return {"last_applied": dict(self._last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict` (replacing every writer known here)."""
        last = {_writer(w): _number(n) for w, n in state["last_applied"].items()}
        with self._lock:
            self._last = last

    def __repr__(self) -> str:
        return f"IdempotentInserts({self._store!r}, writers={len(self._last)})"


def _writer(writer_id: Any) -> WriterId:
    if isinstance(writer_id, bool) or not isinstance(writer_id, str | int):
        raise TypeError(f"IdempotentInserts: writer_id must be a str or an int, got {writer_id!r}")
    return writer_id


def _number(sequence_number: Any) -> int:
    if isinstance(sequence_number, bool):
        raise TypeError(f"IdempotentInserts: sequence_number must be an int >= 0, got {sequence_number!r}")
    try:
        number = operator.index(sequence_number)
    except TypeError:
        raise TypeError(
            f"IdempotentInserts: sequence_number must be an int >= 0, got {sequence_number!r}"
        ) from None
    if number < 0:
        raise ValueError(f"IdempotentInserts: sequence_number must be an int >= 0, got {number}")
    return number
