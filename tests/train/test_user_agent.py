"""A user's own agent, registered in a module that a config's ``imports`` names: trained, resumed,
evaluated and refused for export from the command line, and run on collectors in threads."""

import itertools
import shutil
import sys
from pathlib import Path

import pytest

from drivetrain.cli import main
from drivetrain.train import train
from drivetrain.train.logger import read_progress
from drivetrain.train.preset_files import load_preset_file

_COUNT = itertools.count()
LOOP = """
loop:
  total_env_steps: 600
  learning_starts: 200
  update_period: 100
  gradient_steps: 4
  batch_size: 16
  eval_interval: 0
  stop_at_return: null
  final_eval_episodes: 2
  log_interval: 200
  checkpoint_interval: 300
  progress_bar: false
  tensorboard: false
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A fresh copy of linear_q_agent.py, importable and not yet imported."""
    name = f"user_linq_{next(_COUNT)}"
    shutil.copy(Path(__file__).with_name("linear_q_agent.py"), tmp_path / f"{name}.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert name not in sys.modules
    return name


def preset_file(tmp_path, module):
    path = tmp_path / "linq.yaml"
    path.write_text(f"imports: [{module}]\nagent_kind: linq-{module}\nagent:\n  epsilon: 0.2\n{LOOP}")
    return path


def test_the_command_line_trains_resumes_and_evaluates_an_agent_its_config_imports(
    tmp_path, user_module, capsys
):
    run = tmp_path / "run"
    assert main(["train", str(preset_file(tmp_path, user_module)), "--run-dir", str(run), "--quiet"]) == 0
    assert user_module in sys.modules
    rows = read_progress(run / "progress.csv")
    assert rows[-1]["env_steps"] == 600 and "td_abs" in rows[-1]  # its torch scalar is logged
    del sys.modules[user_module]  # a later command imports it from config.json
    assert main(["train", "--run-dir", str(run), "--resume", "--quiet", "--total_env_steps", "800"]) == 0
    assert read_progress(run / "progress.csv")[-1]["env_steps"] == 800
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert "mean return" in capsys.readouterr().out
    assert main(["export", str(run), str(tmp_path / "p.pt2")]) == 2  # no export_module: one line
    assert "drivetrain: error:" in capsys.readouterr().err


def test_an_agent_without_a_window_attribute_runs_on_collectors_in_threads(tmp_path, user_module):
    from drivetrain.train.fields import apply_overrides

    config = load_preset_file(preset_file(tmp_path, user_module)).build()
    threads = apply_overrides(config, [("execution.backend", "threads"), ("execution.collectors", "1")])
    result = train(threads, tmp_path / "run", verbose=False)
    assert result.env_steps >= 600 and result.train_steps > 0


def test_an_import_that_fails_is_named(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("imports: [no_such_module_for_drivetrain]\n")
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    assert "imports: cannot import 'no_such_module_for_drivetrain'" in capsys.readouterr().err
