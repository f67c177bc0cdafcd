"""Experiment tracking (``loop.track``): a run's config, its logged rows and its videos mirrored
to Weights & Biases or MLflow.

The :class:`Tracker` protocol, in the order a run calls it:

1. ``start(config, run_dir, resumed)`` once, before the first row: ``config`` is the run's config
   as a flat dict (dotted keys, :func:`flat_config`); ``resumed`` is True when the run continues
   from a checkpoint, and then the tracker continues the tracked run whose id it stored in
   ``run_dir/tracking.json`` (a new one when there is none);
2. ``log(scalars, step)`` with every row of ``progress.csv`` (the columns that have a value;
   ``step`` is ``env_steps``), called by :class:`~drivetrain.train.logger.RunLogger` as it writes
   the row; rows after a resumed checkpoint's step that the run had logged before it stopped are
   logged again (the backends' histories are append-only);
3. ``log_video(path, step)`` with each video of ``loop.video_every`` (``videos/step-<step>.mp4``);
4. ``close()`` once, as the run ends.

One class per backend, found by name in a registry (:func:`register_tracker`, :func:`tracker_for`):

- ``wandb`` (:class:`WandbTracker`): ``wandb.init(mode="offline")`` unless ``WANDB_MODE`` says
  otherwise, writing under ``run_dir/wandb`` (``wandb sync run_dir/wandb/offline-run-*`` uploads
  it later); every scalar is plotted against ``env_steps``;
- ``mlflow`` (:class:`MlflowTracker`): the store of ``MLFLOW_TRACKING_URI``, or a SQLite store
  ``run_dir/mlflow.db`` with artifacts in ``run_dir/mlartifacts`` (``mlflow ui --backend-store-uri
  sqlite:///RUN_DIR/mlflow.db``); the config as params, rows as metrics at step ``env_steps``,
  videos as artifacts under ``videos/``.

Both packages are optional extras, imported when a tracker starts (``pip install
"drivetrain[wandb]"``, ``"drivetrain[mlflow]"``); :func:`check_tracker` names the missing one
before a run begins. :func:`open_tracker` makes the run's tracker wrapped in
:class:`GuardedTracker`: a tracker that fails warns once, and the run continues untracked.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from drivetrain.train.checkpoint import atomic_write_text
from drivetrain.train.fields import ConfigError

if TYPE_CHECKING:
    from drivetrain.train.config import ExperimentConfig

__all__ = [
    "TRACKING_FILES",
    "TRACKING_JSON",
    "GuardedTracker",
    "MlflowTracker",
    "RunOutcome",
    "Tracker",
    "WandbTracker",
    "check_tracker",
    "flat_config",
    "open_tracker",
    "register_tracker",
    "tracker_for",
]

TRACKING_JSON = "tracking.json"
"""The file of the run directory that holds the tracked runs' ids: ``{backend name: run id}``."""

TRACKING_FILES = (TRACKING_JSON, "wandb", "mlflow.db", "mlartifacts")
"""What the trackers write into a run directory (a new run in the folder deletes them)."""

DEFAULT_PROJECT = "drivetrain"

RunOutcome = Literal["finished", "failed", "killed"]
"""How a run ended: at its end, by an error, or stopped by a signal (a tracker's status of the run)."""


class Tracker(Protocol):
    """Mirrors one training run to an experiment tracker (see the module docstring for the calls)."""

    def start(self, config: Mapping[str, Any], run_dir: Path, resumed: bool) -> None: ...

    def log(self, scalars: Mapping[str, float], step: int) -> None: ...

    def log_video(self, path: Path, step: int) -> None: ...

    def close(self, outcome: RunOutcome = "finished") -> None: ...


_REGISTRY: dict[str, Any] = {}


def register_tracker(cls: type) -> type:
    """Adds a tracker class to the registry under its ``name`` (a class decorator).

    The class has the class attributes ``name`` (the value of ``loop.track``), ``package``
    (the module it imports) and ``extra`` (the drivetrain extra that installs it), is made as
    ``cls(project)`` and implements :class:`Tracker`.
    """
    _REGISTRY[cls.name] = cls  # type: ignore[attr-defined]
    return cls


def tracker_for(track: str) -> Any:
    """The tracker class registered as ``track``; ConfigError naming the known ones."""
    try:
        return _REGISTRY[track]
    except KeyError:
        raise ConfigError(
            f"loop.track: no tracker named {track!r} (known: 'none', {', '.join(map(repr, _REGISTRY))})"
        ) from None


def _install_hint(cls: Any) -> str:
    return f'loop.track={cls.name!r} needs the {cls.package} package: pip install "drivetrain[{cls.extra}]"'


def check_tracker(track: str) -> None:
    """ConfigError when ``track`` names no tracker, or one whose package is not installed."""
    if track == "none":
        return
    cls = tracker_for(track)
    if importlib.util.find_spec(cls.package) is None:
        raise ConfigError(_install_hint(cls))


def _require(cls: Any) -> Any:
    """The tracker's package, imported; ImportError naming the extra when it is missing."""
    try:
        return importlib.import_module(cls.package)
    except ImportError as e:
        raise ImportError(f"{_install_hint(cls)} ({e})") from e


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as one level with dotted keys (``{"loop.total_env_steps": 600, ...}``)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _stored_id(run_dir: Path, name: str) -> str | None:
    try:
        ids = json.loads((run_dir / TRACKING_JSON).read_text())
    except (OSError, ValueError):
        return None
    run_id = ids.get(name) if isinstance(ids, dict) else None
    return run_id if isinstance(run_id, str) else None


def _existing_run(client: Any, run_id: str | None) -> tuple[str, dict[str, str]] | None:
    """(run id, its params) of a run the MLflow store has; None when it has none of that id."""
    if run_id is None:
        return None
    try:
        return run_id, dict(client.get_run(run_id).data.params)
    except Exception:  # MlflowException: the store does not have it (another store, deleted)
        return None


def _store_id(run_dir: Path, name: str, run_id: str) -> None:
    path = run_dir / TRACKING_JSON
    try:
        ids = json.loads(path.read_text())
    except (OSError, ValueError):
        ids = {}
    ids = {**(ids if isinstance(ids, dict) else {}), name: run_id}
    atomic_write_text(json.dumps(ids, indent=2) + "\n", path)


@register_tracker
class WandbTracker:
    """Weights & Biases; offline unless ``WANDB_MODE`` says otherwise, under ``run_dir/wandb``."""

    name: ClassVar[str] = "wandb"
    package: ClassVar[str] = "wandb"
    extra: ClassVar[str] = "wandb"

    def __init__(self, project: str = ""):
        self.project = project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
        self._wandb: Any = None
        self._run: Any = None

    def start(self, config: Mapping[str, Any], run_dir: Path, resumed: bool) -> None:
        wandb = self._wandb = _require(type(self))
        run_id = _stored_id(run_dir, self.name) if resumed else None  # None: a new run
        self._run = wandb.init(
            project=self.project,
            name=run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            mode=os.environ.get("WANDB_MODE", "offline"),
            reinit="create_new",
            settings=wandb.Settings(console="off", silent=True),
        )
        _store_id(run_dir, self.name, self._run.id)
        self._run.config.update(dict(config), allow_val_change=True)
        self._run.define_metric("env_steps")
        self._run.define_metric("*", step_metric="env_steps")

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self._run.log({**scalars, "env_steps": step})

    def log_video(self, path: Path, step: int) -> None:
        self._run.log({"video": self._wandb.Video(str(path), format="mp4"), "env_steps": step})

    def close(self, outcome: RunOutcome = "finished") -> None:
        if self._run is not None:
            run, self._run = self._run, None
            run.finish(exit_code={"finished": 0, "failed": 1, "killed": 130}[outcome])


@register_tracker
class MlflowTracker:
    """MLflow; the store of ``MLFLOW_TRACKING_URI``, else SQLite in ``run_dir/mlflow.db``."""

    name: ClassVar[str] = "mlflow"
    package: ClassVar[str] = "mlflow"
    extra: ClassVar[str] = "mlflow"
    _PARAMS_PER_CALL = 100  # MLflow's log_batch limit

    def __init__(self, project: str = ""):
        self.project = project or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_PROJECT
        self._client: Any = None
        self._entities: Any = None
        self.run_id: str | None = None

    def start(self, config: Mapping[str, Any], run_dir: Path, resumed: bool) -> None:
        _require(type(self))
        from mlflow.entities import Metric, Param, RunStatus
        from mlflow.tracking import MlflowClient

        self._entities = (Metric, Param)
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        with warnings.catch_warnings():  # the SQL store's deprecation notices are MLflow's, not ours
            warnings.simplefilter("ignore", DeprecationWarning)
            client = MlflowClient(tracking_uri=uri or f"sqlite:///{run_dir.resolve() / 'mlflow.db'}")
        experiment = client.get_experiment_by_name(self.project)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None if uri else (run_dir.resolve() / "mlartifacts").as_uri()
            experiment_id = client.create_experiment(self.project, artifact_location=location)
        found = _existing_run(client, _stored_id(run_dir, self.name)) if resumed else None
        if found is None:
            found = client.create_run(experiment_id, run_name=run_dir.name).info.run_id, {}
        else:
            client.update_run(found[0], status=RunStatus.to_string(RunStatus.RUNNING))
        run_id, logged = found
        self._client, self.run_id = client, run_id
        _store_id(run_dir, self.name, run_id)
        values = {key: str(value) for key, value in config.items()}
        new = [Param(k, v) for k, v in values.items() if k not in logged]
        for i in range(0, len(new), self._PARAMS_PER_CALL):
            client.log_batch(run_id, params=new[i : i + self._PARAMS_PER_CALL])
        for key, value in values.items():  # params are immutable: a resume's changes become tags
            if key in logged and logged[key] != value:
                client.set_tag(run_id, f"resumed.{key}", value)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        metric = self._entities[0]
        now = int(time.time() * 1000)
        metrics = [metric(key, float(value), now, step) for key, value in scalars.items()]
        self._client.log_batch(self.run_id, metrics=metrics)

    def log_video(self, path: Path, step: int) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path="videos")

    def close(self, outcome: RunOutcome = "finished") -> None:
        if self._client is not None and self.run_id is not None:
            client, self._client = self._client, None
            client.set_terminated(self.run_id, status=outcome.upper())  # FINISHED, FAILED or KILLED


class GuardedTracker:
    """A tracker whose errors never reach the run: the first one is a warning naming the
    backend and the error, the tracker is closed, and nothing more is tracked."""

    def __init__(self, tracker: Tracker, name: str):
        self.tracker: Tracker | None = tracker
        self.name = name
        self.failed: str | None = None
        """Why tracking stopped (None while it works)."""

    def _call(self, what: str, *args: Any) -> None:
        if self.tracker is None:
            return
        try:
            getattr(self.tracker, what)(*args)
        except Exception as e:  # tracking is never worth the run
            tracker, self.tracker = self.tracker, None
            self.failed = f"{type(e).__name__}: {e}"
            warnings.warn(
                f"loop.track={self.name!r}: {what} failed, tracking is off for the rest of this run "
                f"(progress.csv and TensorBoard are unaffected): {self.failed}",
                RuntimeWarning,
                stacklevel=3,
            )
            if what != "close":
                with contextlib.suppress(Exception):
                    tracker.close()

    def start(self, config: Mapping[str, Any], run_dir: Path, resumed: bool) -> None:
        self._call("start", config, run_dir, resumed)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self._call("log", scalars, step)

    def log_video(self, path: Path, step: int) -> None:
        self._call("log_video", path, step)

    def close(self, outcome: RunOutcome = "finished") -> None:
        close = getattr(self.tracker, "close", None)
        takes_outcome = close is not None and len(inspect.signature(close).parameters) > 0
        self._call("close", *((outcome,) if takes_outcome else ()))  # a tracker's close() may take none
        self.tracker = None


def open_tracker(config: ExperimentConfig, run_dir: Path, resumed: bool) -> GuardedTracker | None:
    """The started tracker of ``config.loop.track`` (None for 'none'), guarded (:class:`GuardedTracker`)."""
    track = config.loop.track
    if track == "none":
        return None
    from drivetrain.train.config import config_to_dict

    cls = tracker_for(track)
    tracker = GuardedTracker(cls(config.loop.track_project), track)
    tracker.start(flat_config(config_to_dict(config)), Path(run_dir), resumed)
    return tracker
