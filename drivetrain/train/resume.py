"""Where a call of :func:`~drivetrain.train.train` starts, found and checked before anything is written.

A new run starts at env step 0. A resumed run starts from the newest intact checkpoint
(a damaged newer one is passed over with a warning, see
:meth:`~drivetrain.train.checkpoint.CheckpointDir.load_latest`), or from env step 0 when
the run has none yet. Either way the new config is checked against the run's own (the
checkpoint's, else ``config.json``) by :func:`~drivetrain.train.config_resume.check_resume`:
a change to a field that is fixed on resume is refused here, before the run directory
is touched.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from drivetrain.train.checkpoint import CheckpointDir, CheckpointError
from drivetrain.train.config import ExperimentConfig, config_from_dict, load_config
from drivetrain.train.config_resume import check_resume
from drivetrain.train.fields import ConfigError
from drivetrain.train.loop_state import check_format
from drivetrain.train.rundir import RunDir

__all__ = ["StartPoint", "find_start"]


@dataclasses.dataclass(frozen=True)
class StartPoint:
    """The checkpoint a run continues from (None: env step 0) and what it passed over."""

    resume: bool = False
    """The run is a resumed one (it may still start at env step 0, having no checkpoint)."""
    checkpoint: Path | None = None
    snapshot: dict[str, Any] | None = None
    damaged: tuple[Path, ...] = ()
    """Newer checkpoints that failed to load (set aside once the run goes ahead)."""
    changes: tuple[str, ...] = ()
    """The config changes the resumed run applies, as ``"key: old -> new"``."""

    @property
    def env_steps(self) -> int:
        return 0 if self.snapshot is None else int(self.snapshot["env_steps"])


def find_start(run: RunDir, config: ExperimentConfig, resume: bool) -> StartPoint:
    """The :class:`StartPoint` of a run; ConfigError for a refused config change. Writes nothing."""
    if not resume:
        return StartPoint()
    loaded = CheckpointDir(run.checkpoints).load_latest()
    if loaded is None:
        return StartPoint(True, changes=tuple(check_resume(load_config(run.config), config, run.path)))
    check_format(loaded.state, loaded.path)
    try:
        saved = config_from_dict(loaded.state["config"])
    except ConfigError as e:
        raise CheckpointError(f"{loaded.path} holds a config this version cannot read: {e}") from None
    changes = check_resume(saved, config, run.path)
    return StartPoint(True, loaded.path, loaded.state, loaded.damaged, tuple(changes))
