"""The run directory: where a training run keeps everything it writes, and its lock.

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
      videos/               step-<env step>.mp4, filmed evaluations (loop.video_every)
      tracking.json         the ids of the runs of loop.track's tracker (wandb/, mlflow.db, mlartifacts/)
      .lock                 while a process trains here: its PID (see RunDir.lock)

A folder *holds a run* once a run left something to continue: a checkpoint, the agent,
the final evaluation or a row of progress. A folder with only a ``config.json`` (a run
that failed before it logged anything) is empty: a new run replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from drivetrain.train.tracking import TRACKING_FILES

__all__ = ["VIDEO_DIR", "RunDir", "RunDirError", "RunDirLockedError"]

VIDEO_DIR = "videos"
"""The run directory's folder of filmed evaluations."""


# A video writer's temporary file (drivetrain.train.video): .step-<N>.<ext>.<pid>-<8 hex>.<ext>
_VIDEO_TMP = re.compile(r"^\.step-\d+\.(mp4|gif)\.\d+-[0-9a-f]{8}\.(mp4|gif)$")


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (it exists, or there is nothing to resume)."""


class RunDirLockedError(RunDirError):
    """Another process trains in the run directory (the message names its PID)."""


@dataclasses.dataclass(frozen=True)
class RunDir:
    """Paths inside a run directory, the checks before a run starts, and the writer's lock."""

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

    @property
    def agent(self) -> Path:
        return self.path / "agent.pkl"

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def _artifacts(self) -> list[Path]:
        return [
            self.config,
            self.progress_csv,
            self.progress_jsonl,
            self.tensorboard,
            self.checkpoints,
            self.learning_curve,
            self.eval_json,
            self.agent,
            self.path / VIDEO_DIR,
            *(self.path / name for name in TRACKING_FILES),
        ]

    def has_run(self) -> bool:
        """True if a run left something to continue here (see the module docstring)."""
        if self.eval_json.exists() or self.agent.exists():
            return True
        if self.checkpoints.is_dir() and any(self.checkpoints.glob("ckpt-*.pkl")):
            return True
        return self.has_progress()

    def has_progress(self) -> bool:
        """True if ``progress.csv`` holds a row (beyond its header)."""
        if not self.progress_csv.is_file():
            return False
        with open(self.progress_csv) as f:
            return sum(1 for line in f if line.strip()) > 1

    def check(self, *, resume: bool = False, force: bool = False) -> None:
        """Raises :class:`RunDirError` if a run may not start here as asked; writes nothing.

        ``resume`` needs a ``config.json``; without ``resume`` or ``force`` the folder must
        not hold a run.
        """
        if resume and force:
            raise RunDirError(
                f"resume and force together for {self.path}: resume continues the run there, force "
                "deletes it and starts over; choose one"
            )
        if resume:
            if not self.config.is_file():
                raise RunDirError(
                    f"nothing to resume in {self.path}: it has no config.json; "
                    "start the run without --resume (or check --run-dir)"
                )
        elif self.has_run() and not force:
            raise RunDirError(
                f"run directory {self.path} already holds a run; pass --resume to continue it, "
                "--force to delete it and start over, or --run-dir to choose another folder"
            )

    def prepare(self, *, resume: bool = False) -> None:
        """Makes the folder ready (with the lock held): a new run deletes what an earlier one wrote
        (only its files); a resumed one the temporary files of a writer that was killed."""
        if not resume:
            for p in self._artifacts():
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
        else:  # what a killed writer left half-written (its own names only): a checkpoint can be gigabytes
            for leftover in (
                *(p.with_name(p.name + ".tmp") for p in self._artifacts()),
                *self.checkpoints.glob("ckpt-*.pkl.tmp"),
                *(p for p in (self.path / VIDEO_DIR).glob(".step-*") if _VIDEO_TMP.match(p.name)),
            ):
                if leftover.is_file():
                    leftover.unlink()
        self.path.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Holds the run directory's lock: one writer at a time.

        Protocol: ``.lock`` is locked with ``fcntl.flock`` (released by the kernel when the
        holder exits, so a dead process never blocks) and holds the holder's PID. A second
        process gets :class:`RunDirLockedError` naming that PID. The holder deletes the file
        before it unlocks, and a process that locked a file that was deleted meanwhile
        tries again, so a folder is never held twice. A folder created for the lock is
        removed again if nothing else was written into it.
        """
        created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            fd = self._acquire()
        except BaseException:
            if created:
                _remove_if_empty(self.path)
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            self.lock_file.unlink(missing_ok=True)
            os.close(fd)
            if created:
                _remove_if_empty(self.path)

    def _acquire(self) -> int:
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip()
                os.close(fd)
                who = f"process {holder}" if holder.isdigit() else "another process"
                raise RunDirLockedError(
                    f"run directory {self.path} is in use by {who} (lock {self.lock_file}); "
                    "wait for it to end, stop it, or choose another --run-dir"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_file))
            except FileNotFoundError:
                same = False
            if same:
                return fd
            os.close(fd)  # the holder deleted the file while we locked it: lock the new one


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()
