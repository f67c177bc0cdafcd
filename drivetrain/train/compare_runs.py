"""What ``drivetrain compare`` reads from run directories: :class:`RunRecord` and the configs' keys.

:func:`find_runs` takes run directories, or folders of ``seed-*`` run directories, and gives a
:class:`RunRecord` of each (:func:`read_run`): its ``config.json``, its final return
(``eval.json``) and its learning curves (``progress.csv``, or ``progress.jsonl`` when the CSV is
gone). :func:`config_key` is a run's config without its seed and bookkeeping fields
(:data:`BOOKKEEPING`): runs with the same key differ only in their seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # NumPy is imported where runs are read: `drivetrain --help` stays light
    import numpy as np

__all__ = ["BOOKKEEPING", "CompareError", "RunRecord", "config_key", "find_runs", "read_run"]

BOOKKEEPING = frozenset(
    {
        "seed",
        "loop.progress_bar",
        "loop.tensorboard",
        "loop.torch_threads",
        "loop.log_interval",
        "loop.checkpoint_interval",
        "loop.keep_checkpoints",
        "loop.checkpoint_replay",
    }
)
"""Config keys that do not set runs apart for ``--by config``."""


class CompareError(ValueError):
    """Runs that cannot be compared as asked (the message names the folder or option)."""


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What ``compare`` reads from one run directory."""

    path: Path
    config: dict[str, Any]
    """``config.json`` as JSON (``agent_kind`` names the agent)."""
    final_return: float | None
    """``mean_return`` of ``eval.json``; None when the run has none (it has not finished)."""
    evaluations: tuple[np.ndarray, np.ndarray]
    """Env steps and greedy returns of its evaluations (``eval.json`` last)."""
    training: tuple[np.ndarray, np.ndarray]
    """Env steps and ``average_return`` of its progress rows."""

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def env(self) -> str:
        return str(self.config.get("env", {}).get("name", "?"))

    @property
    def agent(self) -> str:
        return str(self.config.get("agent_kind", "dqn"))

    @property
    def preset(self) -> str:
        return str(self.config.get("preset") or f"{self.env} {self.agent}")


def _rows(folder: Path) -> list[dict[str, Any]]:
    from drivetrain.train.logger import read_progress

    rows = read_progress(folder / "progress.csv")
    if rows or not (folder / "progress.jsonl").is_file():
        return rows
    out = []
    for line in (folder / "progress.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line torn by a crash
            continue
    return out


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pairs = [(float(r["env_steps"]), float(r[key])) for r in rows if key in r and "env_steps" in r]
    pairs = [(x, y) for x, y in pairs if math.isfinite(y)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def read_run(folder: str | Path) -> RunRecord:
    """Reads one run directory; CompareError when it has no readable ``config.json``."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CompareError(f"{folder} is not a run directory: cannot read its config.json ({e})") from None
    final: float | None = None
    final_steps: float | None = None
    if (folder / "eval.json").is_file():
        try:
            result = json.loads((folder / "eval.json").read_text())
            final, final_steps = float(result["mean_return"]), float(result.get("env_steps", math.nan))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CompareError(f"{folder / 'eval.json'} cannot be read: {e}") from None
    import numpy as np

    rows = _rows(folder)
    ex, ey = _series(rows, "eval_mean_return")
    last_eval = ex[-1] if ex else -math.inf
    if (
        final is not None
        and final_steps is not None
        and math.isfinite(final_steps)
        and final_steps > last_eval
    ):
        ex, ey = [*ex, final_steps], [*ey, final]
    tx, ty = _series(rows, "average_return")
    return RunRecord(folder, config, final, (np.array(ex), np.array(ey)), (np.array(tx), np.array(ty)))


def _seed_number(folder: Path) -> tuple[int, str]:
    tail = folder.name.removeprefix("seed-")
    return (int(tail), "") if tail.isdigit() else (sys.maxsize, folder.name)


def find_runs(paths: Sequence[str | Path]) -> list[RunRecord]:
    """The runs of ``paths``: each a run directory or a folder of ``seed-*`` run directories."""
    if not paths:
        raise CompareError("compare: give at least one RUN_DIR")
    runs: list[RunRecord] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        if (p / "config.json").is_file():
            folders = [p]
        elif p.is_dir():
            folders = sorted((c for c in p.glob("seed-*") if (c / "config.json").is_file()), key=_seed_number)
            if not folders:
                raise CompareError(f"{p} holds no run: no config.json, and no seed-*/config.json inside it")
        else:
            raise CompareError(f"{p}: no such run directory")
        for folder in folders:
            if folder.resolve() not in seen:
                seen.add(folder.resolve())
                runs.append(read_run(folder))
    return runs


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_key(run: RunRecord) -> str:
    """The run's config as sorted JSON, without the seed and the :data:`BOOKKEEPING` fields."""
    flat = {k: v for k, v in _flat(run.config).items() if k not in BOOKKEEPING}
    return json.dumps(flat, sort_keys=True)
