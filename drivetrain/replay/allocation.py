"""Memory for replay buffers: what is available, and arrays in memory or on disk.

:class:`Allocator` returns ``np.zeros`` arrays (the OS commits pages as data is written)
or, with a ``storage_dir``, numpy memmaps of temporary files unlinked at once (the space
is freed with the mapping). :func:`available_memory` is what the capacity check compares to.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from typing import Any

import numpy as np

__all__ = ["Allocator", "available_memory"]


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


class Allocator:
    """Allocates a buffer's arrays: zeros in memory, or memmaps of unlinked files in ``storage_dir``."""

    def __init__(self, storage_dir: str | os.PathLike[str] | None):
        self.storage_dir = None if storage_dir is None else os.fspath(storage_dir)

    def __call__(self, name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        if self.storage_dir is None or int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype)
        fd, path = tempfile.mkstemp(prefix=f"replay-{name}-", suffix=".bin", dir=self.storage_dir)
        os.close(fd)
        mm = np.memmap(path, dtype=dtype, mode="w+", shape=shape)
        try:
            os.unlink(path)  # the mapping stays valid; the disk space is freed with it
        except OSError:  # pragma: no cover - platforms that cannot unlink open files
            weakref.finalize(mm, _remove, path)
        return mm.view(np.ndarray)


def _remove(path: str) -> None:  # pragma: no cover
    with contextlib.suppress(OSError):
        os.unlink(path)
