"""Fixed costs: the commands that do not train import no PyTorch, matplotlib or TensorBoard;
the learning curve is drawn once, as a run ends, however it ends."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from run_dirs import TINY_CLI

HEAVY = ("torch", "matplotlib", "tensorboard", "gymnasium", "ale_py", "ray")

PROBE = """
import contextlib, io, json, sys
import drivetrain.cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        status = drivetrain.cli.main(sys.argv[1:])
    except SystemExit as e:  # argparse's --help
        status = e.code
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(%r)))
print(json.dumps({"status": status, "heavy": heavy, "out": out.getvalue()}))
"""


def _probe(*argv: str) -> dict:
    import json

    code = PROBE % json.dumps(HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_drivetrain_and_its_command_line_imports_nothing_heavy():
    code = f"import sys, drivetrain, drivetrain.cli; print(sorted(set({HEAVY!r}) & {{m.split('.')[0] for m in sys.modules}}))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("presets",), ("train", "--help"), ("train", "pendulum-sac", "--help")],
    ids=["help", "presets", "train-help", "preset-help"],
)
def test_commands_that_do_not_train_import_no_torch_matplotlib_tensorboard_or_gymnasium(argv):
    result = _probe(*argv)
    assert result["status"] == 0
    assert result["heavy"] == [], result["heavy"]


def test_the_help_still_lists_the_commands_and_the_presets_and_config_fields():
    out = _probe("--help")["out"]
    for command in ("train", "eval", "play", "presets", "export"):
        assert f"    {command}" in out, out
    presets = _probe("presets")["out"]
    assert "cartpole-dqn" in presets and "(default)" in presets and "pendulum-sac" in presets
    fields = _probe("train", "pendulum-sac", "--help")["out"]
    assert "--agent." in fields
    assert "--loop.torch_threads" in fields


def test_a_user_error_is_still_one_line_without_torch(capsys):
    from drivetrain.cli import main

    assert main(["train", "no-such-preset"]) == 2
    assert "unknown preset" in capsys.readouterr().err.lower()


def _complete_png(path: os.PathLike[str]) -> bool:
    data = Path(path).read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82") and len(data) > 5000


@pytest.fixture
def drawings(monkeypatch):
    """Counts the learning curves drawn (the real drawing still happens)."""
    from drivetrain.train import plotting

    real, calls = plotting.plot_learning_curve, []

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(plotting, "plot_learning_curve", counting)
    return calls


def test_a_run_draws_its_learning_curve_once_at_the_end_not_at_each_checkpoint(tmp_path, drawings):
    from drivetrain.cli import main

    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 0  # checkpoints at 300, 600
    assert len(drawings) == 1
    assert _complete_png(run / "learning_curve.png")


def test_a_run_stopped_by_sigint_has_a_complete_learning_curve(tmp_path, monkeypatch, drawings):
    from drivetrain.cli import main
    from drivetrain.train import loop as loop_lib

    real, calls = loop_lib._train_phase, {"n": 0}

    def phase(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_lib, "_train_phase", phase)
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 130
    assert len(drawings) == 1
    assert _complete_png(run / "learning_curve.png")


def test_a_diverged_run_has_a_complete_learning_curve(tmp_path, monkeypatch, drawings):
    from drivetrain.agents import DQN
    from drivetrain.cli import main

    real = DQN.train

    def poisoned(self, batch, weights=None):
        if self.train_step == 11:
            with torch.no_grad():
                next(self.q_network.parameters()).fill_(math.nan)
        return real(self, batch, weights)

    monkeypatch.setattr(DQN, "train", poisoned)
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY_CLI]) == 2
    assert len(drawings) == 1
    assert _complete_png(run / "learning_curve.png")


def test_a_learning_curve_that_cannot_be_drawn_is_a_warning_not_the_end_of_the_run(tmp_path, monkeypatch):
    from drivetrain.train import plotting
    from drivetrain.train.logger import RunLogger

    def broken(*args, **kwargs):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(plotting, "plot_learning_curve", broken)
    logger = RunLogger(tmp_path, tensorboard=False, learning_curve=tmp_path / "curve.png")
    logger.log({"env_steps": 1, "average_return": 1.0})
    with pytest.warns(UserWarning, match="no learning curve drawn"):
        logger.close()
    assert not (tmp_path / "curve.png").exists()
