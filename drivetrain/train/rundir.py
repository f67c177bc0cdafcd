"""The run directory: where a training run keeps everything it writes.

::

    runs/cartpole-dqn-0/
      config.json           the resolved config (reload with load_config)
      progress.csv          one row per log event (env_steps first)
      progress.jsonl        the same rows as JSON lines
      tb/                   TensorBoard event files
      checkpoints/          ckpt-<env step>.pkl, written atomically with a checksum
      agent.pkl             the newest agent alone (for eval, play, export)
      learning_curve.png    returns and loss against env steps
      eval.json             the final evaluation: mean_return, std_return, episodes, env_steps
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

__all__ = ["RunDir", "RunDirError"]


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (it exists, or there is nothing to resume)."""


@dataclasses.dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]):
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def progress_csv(self) -> Path:
        return self.path / "progress.csv"

    @property
    def progress_jsonl(self) -> Path:
        return self.path / "progress.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tb"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def learning_curve(self) -> Path:
        return self.path / "learning_curve.png"

    @property
    def eval_json(self) -> Path:
        return self.path / "eval.json"

    def _artifacts(self) -> list[Path]:
        return [
            self.config,
            self.progress_csv,
            self.progress_jsonl,
            self.tensorboard,
            self.checkpoints,
            self.learning_curve,
            self.eval_json,
            self.path / "agent.pkl",
        ]

    def has_run(self) -> bool:
        """True if a run already wrote here."""
        return any(p.exists() for p in self._artifacts())

    def prepare(self, *, resume: bool = False, force: bool = False) -> None:
        """Makes the folder ready for a new run, or checks that there is a run to resume.

        A folder holding a run is never overwritten unless ``force`` (which deletes that
        run's files, and only those); ``resume`` needs its ``config.json``.
        """
        if resume:
            if not self.config.is_file():
                raise RunDirError(
                    f"nothing to resume in {self.path}: it has no config.json; "
                    "start the run without --resume (or check --run-dir)"
                )
            return
        if self.has_run():
            if not force:
                raise RunDirError(
                    f"run directory {self.path} already holds a run; pass --resume to continue it, "
                    "--force to delete it and start over, or --run-dir to choose another folder"
                )
            for p in self._artifacts():
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
        self.path.mkdir(parents=True, exist_ok=True)
