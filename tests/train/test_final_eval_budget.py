"""The final evaluation counts no new episodes after the run's budget of env steps: a smoke run
with a small budget evaluates briefly, and no preset's full budget is changed by that."""

from __future__ import annotations

import json

import gymnasium
import pytest

from drivetrain.cli import main
from drivetrain.envs.atari import AtariEval
from drivetrain.train import get_preset, preset_names


def eval_time_limit(config) -> int:
    """The evaluation environment's time limit, in env steps."""
    if config.env.suite == "atari":
        limit = AtariEval().env_config(config.env.atari).max_episode_steps
    else:
        limit = config.env.max_episode_steps or gymnasium.spec(config.env.name).max_episode_steps
    assert limit is not None, config.env
    return int(limit)


@pytest.mark.parametrize("name", preset_names())
def test_the_presets_full_budgets_hold_every_final_episode(name):
    config = get_preset(name).build()
    loop = config.loop
    assert loop.final_eval_episodes * eval_time_limit(config) <= loop.total_env_steps


@pytest.mark.atari
def test_a_tiny_atari_run_evaluates_within_its_budget(tmp_path, capsys):
    pytest.importorskip("ale_py")
    run = tmp_path / "smoke"
    args = ["train", "breakout-dqn", "--run-dir", str(run), "--total_env_steps", "600"]
    args += ["--learning_starts", "300", "--batch_size", "4", "--capacity", "1000", "--fc_layers", "16"]
    args += ["--conv_layers", "((4,8,8),)", "--tensorboard", "false", "--agent.compile", "false"]
    assert main(args) == 0
    out = capsys.readouterr().out
    recorded = json.loads((run / "eval.json").read_text())
    assert recorded["episodes"] < get_preset("breakout-dqn").build().loop.final_eval_episodes == 30
    assert sum(recorded["lengths"][:-1]) < 600  # the last episode started within the budget
    assert "not loop.final_eval_episodes = 30" in out and "after loop.total_env_steps = 600" in out
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == recorded  # `drivetrain eval` evaluates the same way
