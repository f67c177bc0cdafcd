"""Experiment tracking (``loop.track``): wandb and MLflow mirror the config, every row of progress.csv
and the videos, offline; a resumed run continues the same tracked run; a tracker never stops a run."""

from __future__ import annotations

import importlib.machinery
import json
import os
import signal
import struct
import sys
import types
import typing
import warnings
from pathlib import Path
from typing import Any

import pytest

from drivetrain.cli import main
from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.config import LoopConfig, check_config, config_to_dict
from drivetrain.train.fields import ConfigError
from drivetrain.train.logger import read_progress
from drivetrain.train.tracking import TRACKING_JSON, GuardedTracker, check_tracker, flat_config, tracker_for

_TINY = [
    ("total_env_steps", 600),
    ("learning_starts", 200),
    ("update_period", 100),
    ("gradient_steps", 5),
    ("agent.fc_layers", (16, 16)),
    ("eval_interval", 300),
    ("eval_episodes", 2),
    ("stop_at_return", None),
    ("final_eval_episodes", 2),
    ("checkpoint_interval", 300),
    ("log_interval", 100),
    ("progress_bar", False),
    ("tensorboard", False),
]
"""A 600-step cartpole-dqn run: rows at env steps 300 to 600, an evaluation at 300, checkpoints."""


def _config(*overrides: tuple[str, object]):
    return apply_overrides(get_preset("cartpole-dqn").build(), [*_TINY, *overrides])


def _ids(run: Path) -> dict[str, str]:
    return json.loads((run / TRACKING_JSON).read_text())


def _can_film() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
        import pygame  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No tracking server or account of the machine's environment reaches a test."""
    for name in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_DIR", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))


# ---------------------------------------------------------------------- the registry and the config
def test_every_value_of_loop_track_has_a_tracker():
    names = typing.get_args(typing.get_type_hints(LoopConfig)["track"])
    assert names[0] == "none"
    assert [tracker_for(name).name for name in names[1:]] == list(names[1:])
    with pytest.raises(ConfigError, match="no tracker named 'neptune'"):
        tracker_for("neptune")


def test_the_command_line_sets_loop_track_by_its_last_name():
    config = apply_overrides(get_preset("cartpole-dqn").build(), [("track", "mlflow")])
    assert config.loop.track == "mlflow" and config.loop.track_project == ""
    with pytest.raises(ConfigError, match="track"):
        apply_overrides(config, [("track", "neptune")])


def test_flat_config_has_dotted_keys_of_every_leaf():
    flat = flat_config(config_to_dict(_config(("track", "wandb"))))
    assert flat["loop.track"] == "wandb" and flat["loop.total_env_steps"] == 600
    assert flat["agent.fc_layers"] == [16, 16] and flat["agent_kind"] == "dqn"
    assert not any(isinstance(value, dict) for value in flat.values())


@pytest.mark.parametrize("track", ["wandb", "mlflow"])
def test_a_missing_package_is_one_line_naming_the_extra(track, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, track, None)  # as if it were not installed
    with pytest.raises(ConfigError, match=rf'needs the {track} package: pip install "drivetrain\[{track}\]"'):
        check_tracker(track)
    with pytest.raises(ConfigError):
        check_config(_config(("track", track)))
    run = tmp_path / "run"
    assert (
        main(["train", "cartpole-dqn", "--run-dir", str(run), "--track", track, "--progress-bar", "false"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f'drivetrain: error: loop.track={track!r} needs the {track} package: pip install "drivetrain[{track}]"'
    ]
    assert not run.exists()


# ---------------------------------------------------------------------- a fake wandb that records calls
class _FakeRun:
    def __init__(self, calls: list[tuple[str, Any]], run_id: str, fail_log_after: int | None):
        self.calls, self.id, self.fail_log_after = calls, run_id, fail_log_after
        self.config = types.SimpleNamespace(
            update=lambda values, **kw: calls.append(("config", dict(values)))
        )

    def define_metric(self, name: str, **kw: Any) -> None:
        self.calls.append(("define_metric", (name, kw)))

    def log(self, values: dict[str, Any]) -> None:
        logged = sum(1 for kind, _ in self.calls if kind == "log")
        if self.fail_log_after is not None and logged >= self.fail_log_after:
            raise ConnectionError("the tracker went away")
        self.calls.append(("log", dict(values)))

    def finish(self, exit_code: int = 0) -> None:
        self.calls.append(("finish", exit_code))


@pytest.fixture
def fake_wandb(monkeypatch, offline):
    """A ``wandb`` module that records its calls (``module.calls``; ``module.fail_log_after``)."""
    module: Any = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    module.calls, module.fail_log_after, module.made = [], None, 0

    def init(**kwargs: Any) -> _FakeRun:
        module.calls.append(("init", kwargs))
        module.made += 1
        return _FakeRun(module.calls, kwargs["id"] or f"fake{module.made}", module.fail_log_after)

    module.init = init
    module.Settings = lambda **kw: kw
    module.Video = lambda path, format: ("video", Path(path).name, format)
    monkeypatch.setitem(sys.modules, "wandb", module)
    return module


def _calls(module: Any, kind: str) -> list[Any]:
    return [value for name, value in module.calls if name == kind]


def test_wandb_gets_the_config_every_row_and_a_resume_continues_its_run(fake_wandb, tmp_path):
    run = tmp_path / "run"
    train(_config(("track", "wandb")), run, verbose=False)
    (init,) = _calls(fake_wandb, "init")
    assert init["mode"] == "offline" and init["dir"] == str(run) and init["resume"] == "allow"
    assert init["id"] is None and init["project"] == "drivetrain" and init["name"] == "run"
    assert _calls(fake_wandb, "config")[0]["loop.total_env_steps"] == 600
    assert ("*", {"step_metric": "env_steps"}) in _calls(fake_wandb, "define_metric")
    rows = read_progress(run / "progress.csv")
    assert [row["env_steps"] for row in rows] == [300, 400, 500, 600]
    assert _calls(fake_wandb, "log") == rows
    assert _calls(fake_wandb, "finish") == [0]
    assert _ids(run) == {"wandb": "fake1"}

    fake_wandb.calls.clear()
    train(_config(("track", "wandb"), ("total_env_steps", 800)), run, resume=True, verbose=False)
    (init,) = _calls(fake_wandb, "init")
    assert init["id"] == "fake1"  # the same tracked run
    assert _calls(fake_wandb, "config")[0]["loop.total_env_steps"] == 800
    assert [row["env_steps"] for row in _calls(fake_wandb, "log")] == [700, 800]
    assert _calls(fake_wandb, "log") == read_progress(run / "progress.csv")[4:]
    assert _ids(run) == {"wandb": "fake1"}


def test_the_tracker_hears_how_a_run_ended(fake_wandb, tmp_path, monkeypatch):
    """Stopped by a signal: killed (exit code 130); an error: failed (1); W&B marks both so."""
    from drivetrain.train import loop as loop_lib
    from drivetrain.train.signals import RunInterruptedError

    real = loop_lib._train_phase
    calls = {"n": 0}

    def phase(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the loop checkpoints and stops at its next check
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_lib, "_train_phase", phase)
    with pytest.raises(RunInterruptedError):
        train(_config(("track", "wandb")), tmp_path / "stopped", verbose=False)
    assert _calls(fake_wandb, "finish") == [130]

    def broken(*args, **kwargs):
        raise OSError("the disk went away")

    monkeypatch.setattr(loop_lib, "_train_phase", broken)
    fake_wandb.calls.clear()
    with pytest.raises(OSError, match="the disk went away"):
        train(_config(("track", "wandb")), tmp_path / "broken", verbose=False)
    assert _calls(fake_wandb, "finish") == [1]


def test_wandb_mode_of_the_environment_wins(fake_wandb, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_PROJECT", "cartpoles")
    train(_config(("track", "wandb")), tmp_path / "run", verbose=False)
    (init,) = _calls(fake_wandb, "init")
    assert init["mode"] == "disabled" and init["project"] == "cartpoles"


def test_a_tracker_that_fails_warns_once_and_the_run_completes(fake_wandb, tmp_path):
    fake_wandb.fail_log_after = 1  # the second row fails
    plain = tmp_path / "plain"
    train(_config(), plain, verbose=False)
    with pytest.warns(RuntimeWarning, match="loop.track='wandb'") as caught:
        result = train(_config(("track", "wandb")), tmp_path / "run", verbose=False)
    ours = [str(w.message) for w in caught if "loop.track" in str(w.message)]
    assert len(ours) == 1
    assert "log failed, tracking is off" in ours[0] and "ConnectionError: the tracker went away" in ours[0]
    assert result.env_steps == 600 and (tmp_path / "run" / "eval.json").exists()
    assert len(_calls(fake_wandb, "log")) == 1 and _calls(fake_wandb, "finish") == [0]
    keys = ("env_steps", "train_steps", "average_return", "eval_mean_return")
    tracked, untracked = (
        read_progress(tmp_path / "run" / "progress.csv"),
        read_progress(plain / "progress.csv"),
    )
    assert [[r.get(k) for k in keys] for r in tracked] == [[r.get(k) for k in keys] for r in untracked]


def test_a_guarded_tracker_that_fails_to_start_tracks_nothing(tmp_path):
    class Broken:
        def __init__(self) -> None:
            self.closed = 0

        def start(self, *args: Any) -> None:
            raise RuntimeError("no disk")

        def log(self, *args: Any) -> None:
            raise AssertionError("not called after a failure")

        log_video = log

        def close(self) -> None:
            self.closed += 1

    inner = Broken()
    guarded = GuardedTracker(inner, "broken")
    with pytest.warns(RuntimeWarning, match="'broken': start failed.*RuntimeError: no disk"):
        guarded.start({}, tmp_path, False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guarded.log({"env_steps": 1}, 1)
        guarded.log_video(tmp_path / "v.mp4", 1)
        guarded.close()
    assert inner.closed == 1 and guarded.failed == "RuntimeError: no disk"


# ---------------------------------------------------------------------- real backends, offline
def _wandb_records(path: Path) -> list[Any]:
    """The records of a ``run-<id>.wandb`` file: a header, then LevelDB-log records in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, chunks, records = 7, b"", []
    while pos + 7 <= len(data):
        room = 32768 - pos % 32768
        if room < 7:  # a block's zero padding
            pos += room
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunks += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            records.append(record)
            chunks = b""
    return records


def _wandb_history(path: Path) -> list[dict[str, Any]]:
    rows = []
    for record in _wandb_records(path):
        if record.WhichOneof("record_type") == "history":
            items = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            rows.append({k: v for k, v in items.items() if not k.startswith("_")})
    return rows


def test_wandb_offline_writes_the_rows_and_a_resume_continues_the_run_id(offline, tmp_path):
    pytest.importorskip("wandb")
    run = tmp_path / "run"
    film = [("video_every", 1)] if _can_film() else []
    train(_config(("track", "wandb"), *film), run, verbose=False)
    (first,) = sorted((run / "wandb").glob("offline-run-*"))
    run_id = _ids(run)["wandb"]
    assert first.name.endswith(f"-{run_id}")
    history = _wandb_history(first / f"run-{run_id}.wandb")
    rows = [h for h in history if "video/_type" not in h]
    assert rows == read_progress(run / "progress.csv")
    if film:
        (video,) = [h for h in history if "video/_type" in h]
        assert video["env_steps"] == 300 and list((first / "files" / "media" / "videos").glob("*.mp4"))

    train(_config(("track", "wandb"), ("total_env_steps", 800)), run, resume=True, verbose=False)
    runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(r.name.endswith(f"-{run_id}") for r in runs)  # synced as one run
    second = next(r for r in runs if r != first)
    assert _wandb_history(second / f"run-{run_id}.wandb") == read_progress(run / "progress.csv")[4:]


def test_mlflow_holds_the_config_every_row_and_a_resume_continues_the_run(offline, tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from mlflow.tracking import MlflowClient

    run = tmp_path / "run"
    film = [("video_every", 1)] if _can_film() else []
    config = _config(("track", "mlflow"), *film)
    train(config, run, verbose=False)
    client = MlflowClient(tracking_uri=f"sqlite:///{run / 'mlflow.db'}")
    run_id = _ids(run)["mlflow"]
    tracked = client.get_run(run_id)
    assert tracked.info.status == "FINISHED" and tracked.info.run_name == "run"
    assert client.get_experiment(tracked.info.experiment_id).name == "drivetrain"
    assert tracked.data.params == {k: str(v) for k, v in flat_config(config_to_dict(config)).items()}

    def history() -> dict[str, list[tuple[int, float]]]:
        return {
            key: [
                (m.step, m.value)
                for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
            ]
            for key in client.get_run(run_id).data.metrics
        }

    def expected() -> dict[str, list[tuple[int, float]]]:
        rows = read_progress(run / "progress.csv")
        keys = {key for row in rows for key in row}
        return {key: [(int(r["env_steps"]), r[key]) for r in rows if key in r] for key in keys}

    assert history() == expected()
    if film:
        assert [a.path for a in client.list_artifacts(run_id, "videos")] == ["videos/step-300.mp4"]
        assert (run / "mlartifacts").is_dir()

    train(_config(("track", "mlflow"), ("total_env_steps", 800), *film), run, resume=True, verbose=False)
    assert _ids(run) == {"mlflow": run_id}
    assert [r.info.run_id for r in client.search_runs([tracked.info.experiment_id])] == [run_id]
    resumed = client.get_run(run_id)
    assert resumed.info.status == "FINISHED"
    assert resumed.data.params["loop.total_env_steps"] == "600"  # params are the start's
    assert resumed.data.tags["resumed.loop.total_env_steps"] == "800"
    assert history() == expected()


def test_a_new_run_in_the_folder_deletes_what_the_trackers_wrote(tmp_path):
    from drivetrain.train.rundir import RunDir
    from drivetrain.train.tracking import TRACKING_FILES

    (tmp_path / TRACKING_JSON).write_text('{"wandb": "old"}')
    (tmp_path / "wandb" / "offline-run-1-old").mkdir(parents=True)
    (tmp_path / "mlflow.db").write_bytes(b"")
    (tmp_path / "mlartifacts").mkdir()
    (tmp_path / "mine.txt").write_text("not the run's")
    RunDir(tmp_path).prepare(resume=True)
    assert all((tmp_path / name).exists() for name in TRACKING_FILES)
    RunDir(tmp_path).prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_a_tracker_whose_close_takes_no_outcome_is_still_closed():
    from drivetrain.train.tracking import GuardedTracker

    class Plain:
        closed = 0

        def close(self) -> None:
            Plain.closed += 1

    guarded = GuardedTracker(Plain(), "plain")  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        guarded.close("failed")
    assert Plain.closed == 1
