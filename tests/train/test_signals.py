"""SIGINT and SIGTERM stop a run at a safe point with a checkpoint; a resume continues bit for bit."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from resume_checks import assert_same_run
from run_dirs import TINY_CLI
from test_resume import tiny_config

from drivetrain.cli import main
from drivetrain.train import loop as loop_lib
from drivetrain.train import train

ENDLESS = [*TINY_CLI, "--total_env_steps", "1000000", "--checkpoint_interval", "0", "--update_period", "50"]


def test_sigterm_stops_drivetrain_train_with_a_checkpoint_and_resume_continues_bit_for_bit(tmp_path):
    run = tmp_path / "stopped"
    cmd = [
        sys.executable,
        "-m",
        "drivetrain",
        "train",
        "cartpole-dqn",
        "--run-dir",
        str(run),
        "--quiet",
        *ENDLESS,
    ]
    with open(tmp_path / "err", "w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 120
        while not _rows(run / "progress.csv") >= 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(60)
        err.seek(0)
        message = err.read()
    assert status == 143, message
    found = re.fullmatch(
        r"drivetrain: stopped by SIGTERM at env step (\d+); checkpoint (\S+) \(resume continues from it\)\n",
        message,
    )
    assert found, message
    steps, checkpoint = int(found.group(1)), found.group(2)
    assert os.path.basename(checkpoint) == f"ckpt-{steps:012d}.pkl" and os.path.isfile(checkpoint)
    assert not (run / ".lock").exists()

    total = ["--total_env_steps", str(steps + 150)]
    assert main(["train", "--run-dir", str(run), "--resume", "--quiet", *total]) == 0
    uninterrupted = tmp_path / "uninterrupted"
    assert main(["train", "--run-dir", str(uninterrupted), "--quiet", *ENDLESS, *total]) == 0
    assert_same_run(uninterrupted, run)


def _rows(path):
    try:
        return len(path.read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


def test_sigint_in_train_stops_at_the_next_iteration_and_restores_the_handlers(tmp_path, monkeypatch):
    from drivetrain.train.signals import RunInterruptedError

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    real, calls = loop_lib._train_phase, {"n": 0}

    def phase(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGINT)  # mid-iteration: the iteration still completes
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_lib, "_train_phase", phase)
    with pytest.raises(RunInterruptedError) as stopped:
        train(tiny_config(), tmp_path / "b", verbose=False)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert stopped.value.exit_status == 130 and calls["n"] == 4
    assert stopped.value.checkpoint.name == "ckpt-000000000900.pkl"  # 500 warm-up + 4 x 100
    monkeypatch.undo()
    train(tiny_config(), tmp_path / "b", resume=True, verbose=False)
    train(tiny_config(), tmp_path / "a", verbose=False)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert_same_run(tmp_path / "a", tmp_path / "b")
