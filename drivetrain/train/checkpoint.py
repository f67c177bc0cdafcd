"""Checkpoints written atomically, with a checksum verified on load.

File format: a fixed-size header line, then a pickle (protocol 5) of the state::

    b"DRIVETRAIN-CHECKPOINT 1 sha256=<64 hex> bytes=<20 digits>\\n"   (128 bytes, space padded)
    <pickle payload>

Writing streams the payload into ``<name>.tmp`` while hashing it, then writes the
header, flushes, fsyncs, renames the file over its final name and fsyncs the folder.
A crash at any moment leaves either the old file or the new one, never a torn one; a
file that was damaged afterwards fails the checksum with a :class:`CheckpointError`
that names it. PyTorch tensors are pickled as NumPy arrays (dtype, shape and values exactly;
a CUDA tensor comes back on the CPU), which is many times faster than their own pickling.
Checkpoints are trusted local files (pickle runs code on load, as
``torch.load`` does): never load one from an untrusted source.

:class:`CheckpointDir` keeps ``ckpt-<step>.pkl`` files in a folder, finds the latest,
loads the newest intact one (with a :class:`CheckpointWarning` naming each damaged file
it passed over) and prunes old ones.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import sys
import warnings
from pathlib import Path
from typing import IO, Any, NamedTuple

__all__ = [
    "CheckpointDir",
    "CheckpointError",
    "CheckpointWarning",
    "LoadedCheckpoint",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_checkpoint",
    "save_checkpoint",
]

_MAGIC = b"DRIVETRAIN-CHECKPOINT 1"
_HEADER_SIZE = 128
_HEADER_RE = re.compile(rb"^DRIVETRAIN-CHECKPOINT 1 sha256=([0-9a-f]{64}) bytes=(\d{20}) *\n$")
_CHUNK = 1 << 20


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, not a checkpoint, truncated, or fails its checksum."""


class CheckpointWarning(UserWarning):
    """A damaged checkpoint was passed over for an older, intact one."""


class LoadedCheckpoint(NamedTuple):
    """The state of the newest intact checkpoint, and the newer damaged ones passed over."""

    path: Path
    step: int
    state: Any
    damaged: tuple[Path, ...]


class _HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, file: IO[bytes]):
        self._file = file
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += view.nbytes
        return self._file.write(view)


def tensor_from_numpy(array: Any, requires_grad: bool) -> Any:
    """Rebuilds a tensor pickled by :class:`_Pickler` (kept importable: checkpoints name it)."""
    import torch

    tensor = torch.from_numpy(array)
    return tensor.requires_grad_(True) if requires_grad else tensor


class _Pickler(pickle.Pickler):
    """Pickles plain PyTorch tensors of NumPy dtypes as NumPy arrays (see the module docstring)."""

    def __init__(self, file: Any):
        super().__init__(file, protocol=5)
        torch = sys.modules.get("torch")  # no tensor can be in the state unless torch is imported
        self._tensor = torch.Tensor if torch is not None else None
        self._strided = torch.strided if torch is not None else None

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is not self._tensor or obj.layout is not self._strided:
            return NotImplemented
        try:
            array = obj.detach().cpu().numpy()
        except (TypeError, RuntimeError):  # bfloat16 and other dtypes NumPy lacks, conjugate views
            return NotImplemented
        return tensor_from_numpy, (array, obj.requires_grad)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_atomically(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def save_checkpoint(state: Any, path: str | os.PathLike[str]) -> Path:
    """Pickles ``state`` into ``path`` atomically, with a sha256 checksum in the header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(b" " * _HEADER_SIZE)
            writer = _HashingWriter(f)
            _Pickler(writer).dump(state)
            header = _MAGIC + f" sha256={writer.sha.hexdigest()} bytes={writer.size:020d}".encode()
            assert len(header) < _HEADER_SIZE
            f.seek(0)
            f.write(header.ljust(_HEADER_SIZE - 1) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        _replace_atomically(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Any:
    """Verifies the checksum of ``path`` and unpickles its state; CheckpointError if it is damaged."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        header = f.read(_HEADER_SIZE)
        match = _HEADER_RE.match(header)
        if match is None:
            raise CheckpointError(f"{path} is not a drivetrain checkpoint (bad header {header[:40]!r})")
        expected, size = match.group(1).decode(), int(match.group(2))
        sha = hashlib.sha256()
        actual_size = 0
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            actual_size += len(chunk)
        if actual_size != size:
            raise CheckpointError(
                f"checkpoint {path} is truncated or padded: payload has {actual_size} bytes, "
                f"the header says {size}"
            )
        if sha.hexdigest() != expected:
            raise CheckpointError(
                f"checkpoint {path} is corrupted: sha256 {sha.hexdigest()} != {expected} recorded "
                "when it was written; delete it to resume from an earlier checkpoint"
            )
        f.seek(_HEADER_SIZE)
        return pickle.load(f)


def atomic_write_bytes(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Writes ``data`` to ``path`` through a temporary file, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _replace_atomically(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(text.encode("utf-8"), path)


class CheckpointDir:
    """A folder of ``ckpt-<step>.pkl`` checkpoints, the step being the environment step."""

    _NAME = re.compile(r"^ckpt-(\d+)\.pkl$")

    def __init__(self, folder: str | os.PathLike[str], keep: int = 2):
        if keep < 1:
            raise ValueError(f"CheckpointDir: keep must be >= 1, got {keep}")
        self.folder = Path(folder)
        self.keep = int(keep)

    def path(self, step: int) -> Path:
        return self.folder / f"ckpt-{step:012d}.pkl"

    def steps(self) -> list[int]:
        """Steps of the checkpoints present, oldest first (temporary files ignored)."""
        if not self.folder.is_dir():
            return []
        found = (self._NAME.match(p.name) for p in self.folder.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def latest(self) -> Path | None:
        """The newest checkpoint, or None."""
        steps = self.steps()
        return self.path(steps[-1]) if steps else None

    def load_latest(self) -> LoadedCheckpoint | None:
        """The newest checkpoint that loads, or None if there is none.

        A damaged newer one (truncated, failing its checksum, unreadable) is passed over
        with a :class:`CheckpointWarning` naming it and the one loaded instead; if every
        checkpoint is damaged, :class:`CheckpointError` names them all.
        """
        damaged: list[tuple[Path, str]] = []
        for step in reversed(self.steps()):
            path = self.path(step)
            try:
                state = load_checkpoint(path)
            except (CheckpointError, pickle.UnpicklingError, EOFError, OSError) as e:
                damaged.append((path, str(e)))
                continue
            for bad, why in damaged:
                said = why if str(bad) in why else f"checkpoint {bad} is damaged: {why}"
                warnings.warn(CheckpointWarning(f"{said}; loading {path} instead"), stacklevel=2)
            return LoadedCheckpoint(path, step, state, tuple(p for p, _ in damaged))
        if damaged:
            raise CheckpointError(
                "every checkpoint is damaged: " + "; ".join(f"{p} ({why})" for p, why in damaged)
            )
        return None

    def set_aside(self, paths: tuple[Path, ...]) -> None:
        """Renames damaged checkpoints to ``<name>.damaged`` so that they are no longer taken for one."""
        for path in paths:
            if path.exists():
                path.rename(path.with_name(path.name + ".damaged"))

    def save(self, state: Any, step: int) -> Path:
        """Writes the checkpoint of ``step`` atomically, then deletes all but the newest ``keep``."""
        try:
            return save_checkpoint(state, self.path(step))
        finally:  # also when a second signal stops the run right after the write
            for old in self.steps()[: -self.keep]:
                self.path(old).unlink(missing_ok=True)
