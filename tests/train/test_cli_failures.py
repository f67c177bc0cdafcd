"""Failures end with one line from the command line, and never leave a run directory in the way."""

import errno
import importlib.util
import json
import math
import subprocess
import sys

import pytest
import torch
from run_dirs import TINY_CLI

from drivetrain.cli import main
from drivetrain.train import checkpoint as checkpoint_lib
from drivetrain.train import load_checkpoint
from drivetrain.train.logger import read_progress


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("drivetrain: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("override", "said"),
    [
        (["--env.name", "NoSuchEnv-v0"], "NoSuchEnv"),
        (["--replay.capacity", str(10**13)], "replay: capacity"),
    ],
)
def test_a_run_that_cannot_be_built_is_one_line_and_does_not_block_the_retry(
    tmp_path, capsys, override, said
):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI, *override]) == 2
    assert said in one_error_line(capsys.readouterr().err)
    assert not run.exists()  # nothing written
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 0


def test_a_full_disk_is_one_line_and_does_not_block_the_retry(tmp_path, capsys, monkeypatch):
    def full(state, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint_lib, "save_checkpoint", full)
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI, "--log_interval", "1000"]) == 2
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    monkeypatch.undo()
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 0


def test_a_run_directory_that_cannot_be_created_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "--run-dir", str(tmp_path / "file" / "run"), "--quiet", *TINY_CLI]) == 2
    one_error_line(capsys.readouterr().err)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 0
    return run


def test_eval_play_and_export_use_the_latest_checkpoint_without_agent_pkl(finished, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "agent.pkl").unlink()
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((run / "eval.json").read_text())
    assert main(["export", str(run), str(tmp_path / "policy.pt2")]) == 0
    if importlib.util.find_spec("pygame") is not None:  # CartPole renders with pygame
        assert main(["play", str(run), "--video", str(tmp_path / "a.gif"), "--max-frames", "20"]) == 0


class CrashError(Exception):
    pass


def test_eval_json_always_evaluates_the_final_checkpoint(finished, tmp_path, monkeypatch, capsys):
    # A run killed while it writes its final checkpoint: eval.json must not speak of an agent
    # that no checkpoint holds.
    real = checkpoint_lib.CheckpointDir.save

    def save(self, state, step):
        if step == 600:
            raise CrashError
        return real(self, state, step)

    monkeypatch.setattr(checkpoint_lib.CheckpointDir, "save", save)
    run = tmp_path / "run"
    with pytest.raises(CrashError):
        main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI])
    monkeypatch.undo()
    if (run / "eval.json").exists():
        latest = max((run / "checkpoints").glob("ckpt-*.pkl"))
        assert (
            json.loads((run / "eval.json").read_text())["env_steps"] == load_checkpoint(latest)["env_steps"]
        )
    assert main(["train", "--run-dir", str(run), "--resume", "--quiet"]) == 0
    assert (run / "eval.json").read_text() == (finished / "eval.json").read_text()


def test_a_kill_after_the_final_checkpoint_writes_eval_json_on_resume(finished, tmp_path, monkeypatch):
    from drivetrain.train.session import Session

    def killed(self, result, env_steps):
        raise CrashError

    monkeypatch.setattr(Session, "write_eval", killed)
    run = tmp_path / "run"
    with pytest.raises(CrashError):
        main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI])
    monkeypatch.undo()
    assert not (run / "eval.json").exists() and (run / "checkpoints/ckpt-000000000600.pkl").exists()
    assert main(["train", "--run-dir", str(run), "--resume", "--quiet"]) == 0
    assert (run / "eval.json").read_text() == (finished / "eval.json").read_text()


@pytest.mark.parametrize("command", [["presets"], ["train", "cartpole-dqn", "--help"]])
def test_output_into_a_closed_pipe_ends_quietly(command):
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivetrain", *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # the reader is gone before anything is written, as `| head -1` may be
    err = proc.stderr.read().decode()
    proc.wait(60)
    assert "BrokenPipeError" not in err and "Traceback" not in err, err


def test_a_nan_loss_stops_the_run_naming_the_step_and_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    from drivetrain.agents import DQN

    real = DQN.train

    def poisoned(self, batch, weights=None):
        if self.train_step == 11:  # the 12th train step, after the checkpoint at env step 300
            with torch.no_grad():
                next(self.q_network.parameters()).fill_(math.nan)
        return real(self, batch, weights)

    monkeypatch.setattr(DQN, "train", poisoned)
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "train step 12" in line and "checkpoints/ckpt-000000000300.pkl" in line, line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["ckpt-000000000300.pkl"]
    agent = load_checkpoint(run / "agent.pkl")["agent"]
    assert all(torch.isfinite(t).all() for t in agent["q_network"].values())
    assert not (run / "eval.json").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["eval", "{run}", "--episodes", "0"], "argument --episodes: must be >= 1, got 0"),
        (["eval", "{run}", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
        (["play", "{run}", "--video", "{tmp}/v.gif", "--episodes", "0"], "argument --episodes: must be >= 1"),
        (
            ["play", "{run}", "--video", "{tmp}/v.gif", "--max-frames", "0"],
            "argument --max-frames: must be >= 1",
        ),
        (["play", "{run}", "--video", "{tmp}/v.gif", "--fps", "-3"], "argument --fps: must be >= 1, got -3"),
    ],
)
def test_a_runs_commands_refuse_numbers_out_of_range_by_name(finished, tmp_path, capsys, args, said):
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(run=finished, tmp=tmp_path) for a in args])
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "v.gif").exists()


def test_export_into_a_missing_folder_is_one_line(finished, tmp_path, capsys):
    assert main(["export", str(finished), str(tmp_path / "no" / "policy.pt2")]) == 2
    assert "does not exist" in one_error_line(capsys.readouterr().err)


def test_export_onto_a_folder_is_one_line(finished, tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    assert main(["export", str(finished), str(tmp_path / "adir")]) == 2
    assert "is a folder; name a file in it" in one_error_line(capsys.readouterr().err)


def test_export_that_torch_cannot_write_is_one_line_and_leaves_no_file(
    finished, tmp_path, capsys, monkeypatch
):
    def refuse(program, f, **kwargs):  # what torch's writer raises in a read-only folder
        raise RuntimeError(
            "[enforce fail at inline_container.cc:747] . open file failed, strerror: Read-only file system"
        )

    monkeypatch.setattr(torch.export, "save", refuse)
    target = tmp_path / "policy.pt2"
    assert main(["export", str(finished), str(target)]) == 2
    assert f"cannot write {target}" in one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("override", "said"),
    [
        (["--seed", "-1"], "seed must be >= 0, got -1"),
        (["--torch_threads", "0"], "loop.torch_threads must be >= 1"),
    ],
)
def test_train_refuses_a_negative_seed_and_no_threads_by_name(tmp_path, capsys, override, said):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI, *override]) == 2
    assert said in one_error_line(capsys.readouterr().err)
    assert not run.exists()


def test_a_warm_up_that_takes_the_whole_budget_leaves_a_whole_run(tmp_path, capsys):
    """Every step a random one: the final evaluation, a row, a checkpoint, the agent, eval.json."""
    run = tmp_path / "run"
    args = ["train", "--run-dir", str(run), "--quiet", *TINY_CLI, "--learning_starts", "600"]
    assert main(args) == 0
    assert (run / "agent.pkl").is_file() and (run / "eval.json").is_file()
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-000000000600.pkl"]
    assert [r["env_steps"] for r in read_progress(run / "progress.csv")] == [600]
    assert main(["eval", str(run)]) == 0
    assert "over 2 episodes" in capsys.readouterr().out


def test_force_deletes_the_earlier_runs_videos_too(finished, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    (run / "videos").mkdir()
    (run / "videos" / "step-999999.mp4").write_bytes(b"an earlier run's film")
    assert main(["train", "--run-dir", str(run), "--quiet", "--force", *TINY_CLI]) == 0
    assert not (run / "videos").exists()


def test_train_refuses_resume_and_force_together(finished):
    from drivetrain.train import load_config, train
    from drivetrain.train.rundir import RunDirError

    with pytest.raises(RunDirError, match="resume and force together"):
        train(load_config(finished / "config.json"), finished, resume=True, force=True, verbose=False)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["breakout-dqn", "--env.max_episode_steps", "5"],
            "an Atari run's time limit is env.atari.max_episode_steps",
        ),
        (["breakout-dqn", "--env.mask_velocity", "true"], "env.mask_velocity applies to suite 'gymnasium'"),
        (
            ["cartpole-dqn", "--env.atari.frame_skip", "2"],
            "env.atari (env.atari.frame_skip) applies to suite 'atari'",
        ),
    ],
)
def test_env_fields_that_the_suite_would_ignore_are_refused_by_name(tmp_path, capsys, args, said):
    run = tmp_path / "run"
    assert main(["train", *args, "--run-dir", str(run), "--quiet"]) == 2
    assert said in one_error_line(capsys.readouterr().err)
    assert not run.exists()


def test_a_beta_final_outside_zero_one_is_refused_by_name(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--run-dir", str(run), "--quiet", *TINY_CLI, "--replay.prioritized", "true"]
    assert main([*args, "--replay.beta_final", "1.5"]) == 2
    assert "replay.beta_final must be in [0, 1] or None, got 1.5" in one_error_line(capsys.readouterr().err)
    assert not run.exists()


@pytest.mark.parametrize("command", ["eval", "play", "export"])
def test_a_run_whose_environment_cannot_be_built_here_is_one_line(finished, tmp_path, capsys, command):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    config = json.loads((run / "config.json").read_text())
    config["env"]["name"] = "not_installed_envs:Corridor-v0"  # registered by a module missing here
    (run / "config.json").write_text(json.dumps(config))
    args = {"eval": [], "play": ["--video", str(tmp_path / "v.gif")], "export": [str(tmp_path / "p.pt2")]}
    assert main([command, str(run), *args[command]]) == 2
    said = one_error_line(capsys.readouterr().err)
    assert f"cannot build the environment of {run} (not_installed_envs:Corridor-v0)" in said


def test_with_device_leaves_a_config_without_a_device_field_alone():
    import dataclasses

    from drivetrain.agents import DQNConfig
    from drivetrain.agents.protocol import with_device

    @dataclasses.dataclass(frozen=True)
    class Tabular:
        epsilon: float = 0.1

    assert with_device(Tabular(), "cpu") == Tabular()
    assert with_device(DQNConfig(), "cuda").device == "cuda"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["cartpole-dqn", "--learning_starts", "0", "--update_period", "1"],
            "raise loop.learning_starts to at least 1",
        ),
        (
            ["cartpole-masked-rdqn", "--learning_starts", "20", "--update_period", "8"],
            "fewer than one window of 33",
        ),
    ],
)
def test_a_warm_up_too_short_for_one_window_is_refused_by_name(tmp_path, capsys, args, said):
    run = tmp_path / "run"
    assert main(["train", *args, "--total_env_steps", "500", "--run-dir", str(run), "--quiet"]) == 2
    assert said in one_error_line(capsys.readouterr().err)
    assert not run.exists()


def test_a_warm_up_counts_the_steps_each_environment_of_a_batch_takes():
    from drivetrain.train import apply_overrides, get_preset
    from drivetrain.train.config import check_config

    # 10 warm-up steps step the 16 environments once each, the first collect once more: a window of 2
    config = get_preset("cartpole-dqn").build()
    check_config(apply_overrides(config, [("num_envs", 16), ("learning_starts", 10), ("update_period", 16)]))


def _clear_compiler_searches():
    from torch._inductor.cpp_builder import cpp_compiler_search

    from drivetrain.agents import compiling

    cpp_compiler_search.cache_clear()
    compiling._compiler_missing.cache_clear()
    compiling._warn_eager_once.cache_clear()


def test_a_run_without_a_compiler_is_one_line_and_a_compiled_run_evaluates_without_one(tmp_path, capsys):
    from torch._inductor import config as inductor_config

    run = tmp_path / "run"
    _clear_compiler_searches()
    try:
        with inductor_config.patch({"cpp.cxx": ("drivetrain-no-such-c++-compiler",)}):
            assert (
                main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI, "--agent.compile", "true"]) == 2
            )
            assert "DQN: compile=True needs a C++ compiler" in one_error_line(capsys.readouterr().err)
            assert (
                main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI, "--agent.compile", "false"]) == 0
            )
            config = json.loads((run / "config.json").read_text())
            config["agent"]["compile"] = True  # as a run trained compiled on a machine with a compiler
            (run / "config.json").write_text(json.dumps(config))
            assert main(["eval", str(run), "--episodes", "1"]) == 0  # it only acts: no compiled update
    finally:
        _clear_compiler_searches()


def test_the_window_check_counts_a_distributed_runs_environments_and_a_short_budget(tmp_path, capsys):
    from drivetrain.train import apply_overrides, get_preset
    from drivetrain.train.config import check_config

    base = get_preset("cartpole-dqn").build()
    spread = [
        ("execution.backend", "threads"),
        ("execution.collectors", 2),
        ("execution.envs_per_collector", 1),
    ]
    check_config(
        apply_overrides(
            base, [*spread, ("num_envs", 16), ("learning_starts", 32), ("update_period", 16), ("n_step", 3)]
        )
    )
    short = [
        "--total_env_steps",
        "2",
        "--learning_starts",
        "1",
        "--update_period",
        "4",
        "--agent.n_step",
        "3",
    ]
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--quiet", *short]) == 2
    assert "fewer than one window of 4" in one_error_line(capsys.readouterr().err)
