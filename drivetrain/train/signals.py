"""SIGINT and SIGTERM during training: a request to stop at the next safe point.

Protocol: while :class:`StopSignals` is entered (in the main thread), the first SIGINT or
SIGTERM only records the signal; the training loop looks at :attr:`StopSignals.received`
between iterations, writes a checkpoint and raises :class:`RunInterruptedError`, whose
:attr:`~RunInterruptedError.exit_status` is ``128 + signal`` (130 for SIGINT, 143 for
SIGTERM). A second signal raises :class:`RunInterruptedError` at once, without a checkpoint (the
previous one stays: checkpoints are written atomically). Leaving the context restores the
handlers that were installed before. Outside the main thread (where Python cannot install
handlers) nothing changes.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

__all__ = ["RunInterruptedError", "StopSignals"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterruptedError(BaseException):
    """Training stopped on a signal; ``checkpoint`` is where it can resume from (None: none written).

    A BaseException, as KeyboardInterrupt: the ``except Exception`` that keeps a video or a
    tracker from ending a run must not keep a second signal from ending it at once."""

    def __init__(self, signum: int, message: str, checkpoint: Path | None = None):
        super().__init__(message)
        self.signal = signal.Signals(signum)
        self.checkpoint = checkpoint

    @property
    def exit_status(self) -> int:
        """The shell's status for a process ended by the signal: ``128 + signal``."""
        return 128 + int(self.signal)


class StopSignals:
    """Turns SIGINT and SIGTERM into a stop request while entered (see the module docstring)."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.received is not None:
            raise RunInterruptedError(
                signum,
                f"stopped at once by a second signal ({signal.Signals(signum).name}); no checkpoint written",
            )
        self.received = signal.Signals(signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._previous.clear()
