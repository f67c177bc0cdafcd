"""Replay state dicts to and from one ``.npz`` file, written atomically.

A state dict is a nest of dicts whose leaves are NumPy arrays or JSON values (ints,
floats, strings, lists, the RNG state). :func:`write_state` stores every array as an
``.npz`` member named by its ``/``-joined path and everything else in one JSON member,
into a temporary file in the same directory that is fsynced and then renamed over
``path``: a crash leaves either the old file or the new one. The data spec travels
pickled (specs are dataclasses holding arrays), so load only files you trust, as with
``pickle`` or ``torch.load``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import tempfile
import zipfile
from typing import Any

import numpy as np

__all__ = ["read_state", "write_state"]

_META = "__meta__.json"
_SPEC = "__spec__.pickle"
FORMAT = "drivetrain.replay/1"


def _split(state: dict[str, Any], prefix: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    for key, value in state.items():
        if "/" in key:
            raise ValueError(f"replay state keys must not contain '/', got {key!r}")
        path = f"{prefix}/{key}" if prefix else key
        if isinstance(value, np.ndarray):
            arrays[path] = value
        elif isinstance(value, dict):
            meta_child: dict[str, Any] = {}
            meta[key] = meta_child
            _split(value, path, arrays, meta_child)
        else:
            meta[key] = value.item() if isinstance(value, np.generic) else value


def write_state(path: str | os.PathLike[str], state: dict[str, Any], data_spec: Any) -> None:
    """Writes ``state`` (and the pickled ``data_spec``) to ``path`` atomically."""
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    _split(state, "", arrays, meta)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".replay-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                zf.writestr(_META, json.dumps({"format": FORMAT, "state": meta}))
                zf.writestr(_SPEC, pickle.dumps(data_spec))
                for name, arr in arrays.items():
                    with zf.open(name + ".npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)


def read_state(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """The state dict and data spec written by :func:`write_state`."""
    with zipfile.ZipFile(os.fspath(path), "r") as zf:
        names = set(zf.namelist())
        if _META not in names:
            raise ValueError(f"{os.fspath(path)!r} is not a drivetrain replay file (no {_META})")
        header = json.loads(zf.read(_META))
        if header.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)!r}: unknown replay file format {header.get('format')!r}")
        state: dict[str, Any] = header["state"]
        data_spec = pickle.loads(zf.read(_SPEC))
        for name in sorted(names - {_META, _SPEC}):
            with zf.open(name) as member:
                arr = np.lib.format.read_array(member, allow_pickle=False)
            keys = name.removesuffix(".npy").split("/")
            node = state
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = arr
    return state, data_spec
