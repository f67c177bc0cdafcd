"""A run directory is never corrupted: refused resumes, the lock, damaged checkpoints, logs."""

import multiprocessing
import os
import shutil
import signal

import pytest
from run_dirs import TINY_CLI, fingerprint

from drivetrain.cli import main
from drivetrain.train import ConfigError, get_preset, load_checkpoint, load_config, train
from drivetrain.train.fields import fields_of
from drivetrain.train.rundir import RunDir


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 0
    return run


@pytest.fixture
def run(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


@pytest.mark.parametrize(
    ("override", "field"),
    [
        (["--agent.fc_layers", "32,32"], "agent.fc_layers"),
        (["--replay.capacity", "5000"], "replay.capacity"),
        (["--env.num_envs", "2"], "env.num_envs"),
        (["--agent.optimizer", "rmsprop"], "agent.optimizer"),
    ],
)
def test_a_refused_resume_leaves_the_run_directory_byte_for_byte(run, capsys, override, field):
    before = fingerprint(run)
    status = main(
        ["train", "--run-dir", str(run), "--resume", "--quiet", "--total_env_steps", "700", *override]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("drivetrain: error: cannot resume") and err.count("\n") == 1
    assert field in err.split("Fixed on resume")[0]  # the field that was changed
    assert "Fixed on resume: env.*" in err and "replay.capacity" in err and "agent.fc_layers" in err
    assert fingerprint(run) == before


def test_train_refuses_a_changed_fixed_field_before_writing(run):
    import dataclasses

    before = fingerprint(run)
    config = load_config(run / "config.json")
    changed = dataclasses.replace(config, seed=config.seed + 1)
    with pytest.raises(ConfigError, match=r"seed: 0 -> 1"):
        train(changed, run, resume=True, verbose=False)
    assert fingerprint(run) == before


def test_resume_classification_names_real_fields():
    from drivetrain.agents import R2D2Config
    from drivetrain.train import ExperimentConfig
    from drivetrain.train.config_resume import CHANGEABLE_ON_RESUME, check_resume

    keys = {f.key for f in fields_of(ExperimentConfig(agent=R2D2Config()))}
    assert keys >= CHANGEABLE_ON_RESUME, sorted(CHANGEABLE_ON_RESUME - keys)
    plain = ExperimentConfig()
    assert check_resume(plain, plain, "r") == []


def test_a_changed_learning_rate_and_epsilon_take_effect_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    short = [*TINY_CLI, "--total_env_steps", "300"]
    assert main(["train", "--run-dir", str(run), "--quiet", *short]) == 0
    groups = load_checkpoint(run / "agent.pkl")["agent"]["optimizer"]["param_groups"]
    preset = get_preset("cartpole-dqn").build().agent
    assert (groups[0]["lr"], groups[0]["eps"]) == (preset.learning_rate, preset.adam_eps)
    assert (preset.learning_rate, preset.adam_eps) != (0.01, 1e-6)
    args = ["--total_env_steps", "400", "--learning_rate", "0.01", "--adam_eps", "1e-6"]
    assert main(["train", "--run-dir", str(run), "--resume", "--quiet", *args]) == 0
    assert (
        f"config change on resume: agent.learning_rate: {preset.learning_rate} -> 0.01"
        in capsys.readouterr().out
    )
    for name in ("agent.pkl", "checkpoints/ckpt-000000000400.pkl"):
        state = load_checkpoint(run / name)
        agent = state["agent"] if "agent" in state else state["experiment"]["agent"]
        group = agent["optimizer"]["param_groups"][0]
        assert (group["lr"], group["eps"]) == (0.01, 1e-6), name


def _hold(path, ready, release):
    with RunDir(path).lock():
        ready.set()
        release.wait(30)


def test_a_second_process_is_refused_naming_the_holder(run, capsys):
    from drivetrain.train.rundir import RunDirLockedError

    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(run, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        before = {k: v for k, v in fingerprint(run).items() if k != ".lock"}
        for extra in (["--force", *TINY_CLI], ["--resume", "--total_env_steps", "700"]):
            assert main(["train", "--run-dir", str(run), "--quiet", *extra]) == 2
            err = capsys.readouterr().err
            assert f"is in use by process {holder.pid}" in err, err
        assert {k: v for k, v in fingerprint(run).items() if k != ".lock"} == before
        with pytest.raises(RunDirLockedError, match=str(holder.pid)):
            train(load_config(run / "config.json"), run, resume=True, verbose=False)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock: a stale .lock is left
        holder.join()
    assert (run / ".lock").read_text().strip() == str(holder.pid)
    assert main(["train", "--run-dir", str(run), "--resume", "--quiet", "--total_env_steps", "700"]) == 0
    assert not (run / ".lock").exists()


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--run-dir", str(a), "--quiet", *TINY_CLI, "--checkpoint_interval", "200"]) == 0
    shutil.copytree(a, b)
    latest, previous = b / "checkpoints/ckpt-000000000600.pkl", b / "checkpoints/ckpt-000000000400.pkl"
    raw = bytearray(latest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    latest.write_bytes(bytes(raw))
    (b / "eval.json").unlink()
    assert main(["train", "--run-dir", str(b), "--resume", "--quiet"]) == 0
    warning = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("drivetrain: warning:")
    ]
    assert len(warning) == 1 and str(latest) in warning[0] and str(previous) in warning[0], warning
    assert "corrupted" in warning[0]
    assert (b / "checkpoints/ckpt-000000000600.pkl.damaged").exists()
    from resume_checks import assert_same_run

    assert_same_run(a, b)  # continued from 400 as if it had never stopped


def test_a_resume_deletes_what_a_killed_writer_left_half_written(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI, "--total_env_steps", "300"]) == 0
    leftovers = [
        run / "checkpoints" / "ckpt-000000000600.pkl.tmp",  # killed while writing a checkpoint
        run / "eval.json.tmp",
        run / "videos" / ".step-600.mp4.123-abcd0123.mp4",
    ]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half")
    assert main(["train", "--run-dir", str(run), "--quiet", "--resume", "--total_env_steps", "600"]) == 0
    assert not any(path.exists() for path in leftovers)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "ckpt-000000000300.pkl",
        "ckpt-000000000600.pkl",
    ]
    (run / "notes.tmp").write_text("mine")  # what a user put there stays
    (run / "videos" / ".gitignore").write_text("*")
    (run / "videos" / ".step-notes.a-b.txt").write_text("mine")
    assert main(["train", "--run-dir", str(run), "--quiet", "--resume", "--total_env_steps", "700"]) == 0
    assert (run / "notes.tmp").is_file() and (run / "videos" / ".gitignore").is_file()
    assert (run / "videos" / ".step-notes.a-b.txt").is_file()
