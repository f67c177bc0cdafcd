"""train(..., on_evaluation=hook): the hook sees every periodic evaluation and can end the run,
which then leaves a complete run directory (final evaluation, row, checkpoint, eval.json)."""

import csv
import json

import pytest

from drivetrain.train import ConfigError, apply_overrides, get_preset, train
from drivetrain.train.checkpoint import CheckpointDir

TINY = [
    ("total_env_steps", "1000"),
    ("learning_starts", "200"),
    ("update_period", "100"),
    ("gradient_steps", "2"),
    ("agent.fc_layers", "16"),
    ("eval_interval", "200"),
    ("eval_episodes", "1"),
    ("eval_num_envs", "1"),
    ("stop_at_return", "none"),
    ("final_eval_episodes", "2"),
    ("checkpoint_interval", "0"),
    ("tensorboard", "false"),
    ("progress_bar", "false"),
]


def tiny_config():
    return apply_overrides(get_preset("cartpole-dqn").build(), TINY)


def test_a_hook_that_never_stops_sees_every_evaluation(tmp_path):
    seen = []

    def hook(evaluation, steps):
        seen.append(steps)
        return False

    result = train(tiny_config(), tmp_path / "run", verbose=False, on_evaluation=hook)
    assert seen == [300, 400, 600, 800]  # at 1000 the final evaluation, not the hook's
    assert result.env_steps == 1000


def test_a_hook_that_stops_ends_the_run_with_a_complete_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    seen = []

    def hook(evaluation, steps):
        seen.append((evaluation.mean_return, steps))
        return steps >= 400

    result = train(tiny_config(), run, verbose=True, on_evaluation=hook)
    assert [s for _, s in seen] == [300, 400]
    assert result.env_steps == 400
    assert "the evaluation hook asked to stop at env step 400" in capsys.readouterr().out
    evaluation = json.loads((run / "eval.json").read_text())
    assert evaluation["env_steps"] == 400 and evaluation["episodes"] == 2
    assert CheckpointDir(run / "checkpoints").steps() == [400]
    assert (run / "agent.pkl").is_file()
    rows = list(csv.DictReader((run / "progress.csv").read_text().splitlines()))
    # the last row holds the final evaluation, eval.json's (not the periodic one the hook saw)
    assert (
        int(rows[-1]["env_steps"]) == 400 and float(rows[-1]["eval_mean_return"]) == evaluation["mean_return"]
    )
    # the run is over: a resume finds it finished and trains no further
    again = train(tiny_config(), run, resume=True, verbose=False)
    assert again.env_steps == 400 and again.evaluation.returns == result.evaluation.returns


def test_the_hook_needs_local_execution(tmp_path):
    config = apply_overrides(tiny_config(), [("execution.backend", "ray")])
    with pytest.raises(ConfigError, match="on_evaluation"):
        train(config, tmp_path / "run", on_evaluation=lambda ev, steps: False)
    assert not (tmp_path / "run").exists()
