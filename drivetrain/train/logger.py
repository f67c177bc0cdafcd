"""Training logs: ``progress.csv``, ``progress.jsonl`` and TensorBoard event files.

One row per log event, keyed by the environment step (the x axis of every curve)::

    logger = RunLogger(run_dir, keep_until=0)     # a fresh run: empty logs
    logger.log({"env_steps": 1000, "average_return": 21.5, "loss": 0.3})
    logger.close()

Columns: ``env_steps`` and the other training columns of :data:`COLUMNS` first, then every
other key in the order it first appears (an agent's losses and diagnostics: whatever its
``LossInfo.extra`` and its collect policy report), then the timing and evaluation columns
of :data:`TAIL`. A row with a key the file has no column for yet widens the file (it is
rewritten once, atomically, with the new header; earlier rows get empty cells). A value
that is missing from a row, NaN or infinite is written as an empty CSV cell and left out of
JSONL (which stays standard JSON) and TensorBoard (tag ``train/<key>`` unless :data:`COLUMNS` names another). A resumed run passes the
environment step of its checkpoint as ``keep_until``: rows written after it (by the
run that stopped) are dropped from the CSV and JSONL files, and TensorBoard purges its
events after that step, so every curve continues where the checkpoint left it. A run
that starts at step 0 (``keep_until=0``) starts with empty logs: the event files of an
earlier attempt are deleted, so no point is shown twice.

With ``learning_curve`` set, :meth:`RunLogger.close` draws the learning-curve PNG from
``progress.csv`` (:func:`~drivetrain.train.plotting.plot_learning_curve`): once, when the
run ends, whichever way it ends (the budget, a stop signal, a diverged loss, an error), so
drawing costs the training loop nothing while it runs and matplotlib is imported only
then. Curves to watch during a run are TensorBoard's (written every row).

With ``tracker`` set (``loop.track``: :mod:`~drivetrain.train.tracking`), every row is also
mirrored to the tracker as it is written (the columns that have a value, at step ``env_steps``),
:meth:`RunLogger.log_video` hands it the run's videos, and :meth:`RunLogger.close` closes it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from drivetrain.train.checkpoint import atomic_write_text

if TYPE_CHECKING:
    from drivetrain.train.tracking import RunOutcome, Tracker

__all__ = ["COLUMNS", "TAIL", "RunLogger", "read_progress"]

COLUMNS: tuple[str, ...] = (
    "env_steps",
    "train_steps",
    "episodes",
    "average_return",
    "average_episode_length",
)
"""The first columns of ``progress.csv``, in this order; ``env_steps`` first."""

TAIL: tuple[str, ...] = ("steps_per_second", "eval_mean_return", "eval_std_return", "wall_seconds")
"""The last columns of ``progress.csv``, after the agent's own."""

_TB_TAGS = {
    "env_steps": None,
    "wall_seconds": None,
    "average_return": "train/average_return",
    "average_episode_length": "train/average_episode_length",
    "episodes": "train/episodes",
    "train_steps": "train/train_steps",
    "steps_per_second": "perf/steps_per_second",
    "eval_mean_return": "eval/mean_return",
    "eval_std_return": "eval/std_return",
}


def _ordered(columns: list[str]) -> list[str]:
    head = [c for c in COLUMNS if c in columns or c == "env_steps"]
    tail = [c for c in TAIL if c in columns]
    middle = [c for c in columns if c not in COLUMNS and c not in TAIL]
    return head + middle + tail


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)  # a NumPy integer too: an env step stays "100", not "100.0"
    v = float(value)
    return v if math.isfinite(v) else None


def read_progress(path: str | os.PathLike[str], *, raw: bool = False) -> list[dict[str, Any]]:
    """Rows of a ``progress.csv`` as dicts of floats (empty cells left out); ``raw``: the cells' text."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if raw:
        return [{k: v for k, v in row.items() if v not in ("", None)} for row in rows]
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]


def _keep_csv(path: Path, keep_until: int) -> list[str] | None:
    """Keeps the rows up to ``keep_until`` (text-level, so they stay byte for byte what was
    written); returns the file's columns, or None for a fresh file (no header yet)."""
    kept: list[str] = []
    header: list[str] | None = None
    if path.is_file() and keep_until > 0:
        lines = path.read_text().splitlines()
        if lines:
            header = lines[0].split(",")
            for line in lines[1:]:
                first = line.split(",", 1)[0]
                complete = line.count(",") == len(header) - 1  # not a line torn by a crash
                if complete and first.isdigit() and int(first) <= keep_until:
                    kept.append(line)
    text = "" if header is None else "".join(line + "\n" for line in [",".join(header), *kept])
    atomic_write_text(text, path)
    return header


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
      tensorboard: also write TensorBoard event files (needs ``tensorboard``, imported here).
      learning_curve: where :meth:`close` draws the learning curve (None: no plot).
      title: the plot's title.
      tracker: an experiment tracker, started, that gets every row and video and is closed with
        the logger (None: no tracking).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        keep_until: int = 0,
        tensorboard: bool = True,
        learning_curve: str | os.PathLike[str] | None = None,
        title: str = "",
        tracker: Tracker | None = None,
    ):
        self.folder = Path(folder)
        self.learning_curve = None if learning_curve is None else Path(learning_curve)
        self.title = title
        self.tracker = tracker
        self.folder.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.folder / "progress.csv"
        self.jsonl_path = self.folder / "progress.jsonl"
        self._columns = _keep_csv(self.csv_path, keep_until)
        _keep_jsonl(self.jsonl_path, keep_until)
        if keep_until <= 0:  # a run from step 0: no events of an earlier attempt
            for events in (self.folder / "tb").glob("events.out.tfevents.*"):
                events.unlink()
        self._csv_file = open(self.csv_path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._jsonl_file = open(self.jsonl_path, "a")  # noqa: SIM115 - closed in close()
        self._tb: Any = None
        if tensorboard:
            self._tb = _summary_writer(self.folder / "tb", keep_until)

    @property
    def columns(self) -> list[str]:
        """The columns of ``progress.csv`` so far (empty before the first row)."""
        return list(self._columns or [])

    def log(self, row: Mapping[str, Any]) -> None:
        """Writes one row; ``row["env_steps"]`` is required (see the module docstring for columns)."""
        if "env_steps" not in row:
            raise ValueError("RunLogger.log: every row needs 'env_steps'")
        numbers = {k: _number(v) for k, v in row.items()}
        values = {k: v for k, v in numbers.items() if v is not None}
        if self._columns is None or any(k not in self._columns for k in row):
            self._widen(list(row))
        assert self._columns is not None
        csv.DictWriter(self._csv_file, self._columns, lineterminator="\n").writerow(values)
        self._csv_file.flush()
        self._jsonl_file.write(json.dumps(values) + "\n")
        self._jsonl_file.flush()
        if self._tb is not None:
            step = int(values["env_steps"])
            for key, value in values.items():
                tag = _TB_TAGS.get(key, f"train/{key}")
                if tag is not None:
                    self._tb.add_scalar(tag, value, step)
        if self.tracker is not None:
            self.tracker.log(values, int(values["env_steps"]))

    def log_video(self, path: str | os.PathLike[str], env_steps: int) -> None:
        """Hands a video of the run, filmed at ``env_steps``, to the tracker (if any)."""
        if self.tracker is not None:
            self.tracker.log_video(Path(path), env_steps)

    def _widen(self, keys: list[str]) -> None:
        """Adds columns for ``keys``: rewrites the CSV with the new header (atomically)."""
        old = self._columns or []
        columns = _ordered([*old, *(k for k in keys if k not in old)])
        self._csv_file.close()
        rows = read_progress(self.csv_path, raw=True) if old else []
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out.getvalue(), self.csv_path)
        self._csv_file = open(self.csv_path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._columns = columns

    def flush(self) -> None:
        """Pushes everything to disk (called before a checkpoint)."""
        for f in (self._csv_file, self._jsonl_file):
            f.flush()
            os.fsync(f.fileno())
        if self._tb is not None:
            self._tb.flush()

    def close(self, outcome: RunOutcome = "finished") -> None:
        """Flushes and closes the files, tells the tracker how the run ended (``outcome``), then
        draws the learning curve (if asked). Idempotent.

        A plot that cannot be drawn (no matplotlib, a full disk, anything else) is a warning:
        ``close`` runs while a run ends, and must not hide why it ended.
        """
        if self._csv_file.closed:
            return
        self.flush()
        self._csv_file.close()
        self._jsonl_file.close()
        if self._tb is not None:
            self._tb.close()
        if self.tracker is not None:
            self.tracker.close(outcome)
        if self.learning_curve is not None:
            from drivetrain.train.plotting import plot_learning_curve

            try:
                plot_learning_curve(self.csv_path, self.learning_curve, title=self.title)
            except Exception as e:  # reported, never raised over the run's end
                warnings.warn(f"no learning curve drawn at {self.learning_curve}: {e}", stacklevel=2)

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
