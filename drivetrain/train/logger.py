"""Training logs: ``progress.csv``, ``progress.jsonl`` and TensorBoard event files.

One row per log event, keyed by the environment step (the x axis of every curve)::

    logger = RunLogger(run_dir, keep_until=0)     # a fresh run: empty logs
    logger.log({"env_steps": 1000, "average_return": 21.5, "loss": 0.3})
    logger.close()

Columns are fixed (:data:`COLUMNS`); a value that is missing from a row is written as an
empty CSV cell and left out of JSONL and TensorBoard. A resumed run passes the
environment step of its checkpoint as ``keep_until``: rows written after it (by the
run that stopped) are dropped from the CSV and JSONL files, and TensorBoard purges its
events after that step, so every curve continues where the checkpoint left it. A run
that starts at step 0 (``keep_until=0``) starts with empty logs: the event files of an
earlier attempt are deleted, so no point is shown twice.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drivetrain.train.checkpoint import atomic_write_text

__all__ = ["COLUMNS", "RunLogger", "read_progress"]

COLUMNS: tuple[str, ...] = (
    "env_steps",
    "train_steps",
    "episodes",
    "average_return",
    "average_episode_length",
    "loss",
    "q_values",
    "td_error",
    "grad_norm",
    "epsilon",
    "steps_per_second",
    "eval_mean_return",
    "eval_std_return",
    "wall_seconds",
)
"""Columns of ``progress.csv``; ``env_steps`` first."""

_TB_TAGS = {
    "average_return": "train/average_return",
    "average_episode_length": "train/average_episode_length",
    "episodes": "train/episodes",
    "train_steps": "train/train_steps",
    "loss": "train/loss",
    "q_values": "train/q_values",
    "td_error": "train/td_error",
    "grad_norm": "train/grad_norm",
    "epsilon": "train/epsilon",
    "steps_per_second": "perf/steps_per_second",
    "eval_mean_return": "eval/mean_return",
    "eval_std_return": "eval/std_return",
}


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    v = float(value)
    return None if math.isnan(v) else v


def read_progress(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Rows of a ``progress.csv`` as dicts of floats (empty cells left out)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def _keep_csv(path: Path, keep_until: int) -> None:
    # Text-level, so kept rows stay byte for byte what was written.
    kept: list[str] = []
    if path.is_file() and keep_until > 0:
        for line in path.read_text().splitlines()[1:]:
            first = line.split(",", 1)[0]
            complete = line.count(",") == len(COLUMNS) - 1  # not a line torn by a crash
            if complete and first.isdigit() and int(first) <= keep_until:
                kept.append(line)
    header = ",".join(COLUMNS)
    atomic_write_text("".join(line + "\n" for line in [header, *kept]), path)


def _keep_jsonl(path: Path, keep_until: int) -> None:
    kept: list[str] = []
    if path.is_file() and keep_until > 0:
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line torn by a crash
                continue
            if record.get("env_steps", 0) <= keep_until:
                kept.append(line)
    atomic_write_text("".join(line + "\n" for line in kept), path)


class RunLogger:
    """Appends rows to ``progress.csv`` / ``progress.jsonl`` and TensorBoard events in ``folder/tb``.

    Args:
      folder: the run directory.
      keep_until: rows with ``env_steps`` above this are dropped from existing logs
        (0: start empty).
      tensorboard: also write TensorBoard event files (needs ``tensorboard``).
    """

    def __init__(self, folder: str | os.PathLike[str], *, keep_until: int = 0, tensorboard: bool = True):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.folder / "progress.csv"
        self.jsonl_path = self.folder / "progress.jsonl"
        _keep_csv(self.csv_path, keep_until)
        _keep_jsonl(self.jsonl_path, keep_until)
        if keep_until <= 0:  # a run from step 0: no events of an earlier attempt
            for events in (self.folder / "tb").glob("events.out.tfevents.*"):
                events.unlink()
        self._csv_file = open(self.csv_path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._csv = csv.DictWriter(self._csv_file, COLUMNS, lineterminator="\n")
        self._jsonl_file = open(self.jsonl_path, "a")  # noqa: SIM115 - closed in close()
        self._tb: Any = None
        if tensorboard:
            self._tb = _summary_writer(self.folder / "tb", keep_until)

    def log(self, row: Mapping[str, Any]) -> None:
        """Writes one row; ``row["env_steps"]`` is required, other keys must be in :data:`COLUMNS`."""
        unknown = [k for k in row if k not in COLUMNS]
        if unknown:
            raise ValueError(f"RunLogger.log: unknown columns {unknown}; known: {list(COLUMNS)}")
        if "env_steps" not in row:
            raise ValueError("RunLogger.log: every row needs 'env_steps'")
        numbers = {k: _number(v) for k, v in row.items()}
        values = {k: v for k, v in numbers.items() if v is not None}
        self._csv.writerow(values)
        self._csv_file.flush()
        self._jsonl_file.write(json.dumps(values) + "\n")
        self._jsonl_file.flush()
        if self._tb is not None:
            step = int(values["env_steps"])
            for key, value in values.items():
                tag = _TB_TAGS.get(key)
                if tag is not None:
                    self._tb.add_scalar(tag, value, step)

    def flush(self) -> None:
        """Pushes everything to disk (called before a checkpoint)."""
        for f in (self._csv_file, self._jsonl_file):
            f.flush()
            os.fsync(f.fileno())
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        """Flushes and closes the files. Idempotent."""
        if self._csv_file.closed:
            return
        self.flush()
        self._csv_file.close()
        self._jsonl_file.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _summary_writer(folder: Path, keep_until: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # tensorboard is an optional dependency
        warnings.warn(f"TensorBoard logging is off: {e}", stacklevel=3)
        return None
    purge = keep_until + 1 if keep_until > 0 else None
    return SummaryWriter(log_dir=str(folder), purge_step=purge, flush_secs=30)
