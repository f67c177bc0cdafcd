"""A small breakout-dqn run end to end: resumed bit for bit, evaluated again, filmed by `drivetrain play`."""

from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")


from resume_checks import CrashError, assert_same_run, crash_at_train_phase

from drivetrain.cli import main
from drivetrain.train import apply_overrides, get_preset, train

pytestmark = pytest.mark.atari

TINY = [
    ("total_env_steps", 900),
    ("learning_starts", 300),
    ("update_period", 4),
    ("batch_size", 4),
    ("capacity", 2_000),
    ("eval_interval", 0),
    ("final_eval_episodes", 1),
    ("log_interval", 100),
    ("checkpoint_interval", 400),
    ("progress_bar", False),
    ("tensorboard", False),
    ("conv_layers", ((4, 8, 8),)),
    ("fc_layers", (16,)),
    ("target_update_period", 20),
    ("epsilon_decay_steps", 100),
    ("terminal_on_life_loss", True),
    ("env.atari.max_episode_steps", 500),
    ("agent.compile", False),  # the preset's "auto" would compile: the loop is tested eagerly
]


def tiny_config():
    return apply_overrides(get_preset("breakout-dqn").build(), TINY)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("atari") / "a"
    return run_dir, train(tiny_config(), run_dir, verbose=False)


def test_a_resumed_atari_run_matches_the_uninterrupted_one(uninterrupted, tmp_path, monkeypatch) -> None:
    """With the games in the checkpoint, a resumed Atari run is bit-identical (no restarted games)."""
    a_dir, a = uninterrupted
    config = tiny_config()
    crash_at_train_phase(monkeypatch, 120)  # env step 780: after the checkpoint at 700
    with pytest.raises(CrashError):
        train(config, tmp_path, verbose=False)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "checkpoints do not hold the environments' state"
        b = train(config, tmp_path, resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps)
    assert b.evaluation == a.evaluation
    assert_same_run(a_dir, tmp_path)


def test_eval_reproduces_eval_json_and_play_films_the_game(uninterrupted, tmp_path, capsys) -> None:
    run_dir, result = uninterrupted
    assert main(["eval", str(run_dir), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["returns"] == json.loads((run_dir / "eval.json").read_text())["returns"]
    assert again["returns"] == list(result.evaluation.returns)
    video = tmp_path / "breakout.gif"
    assert main(["play", str(run_dir), "--video", str(video), "--max-frames", "40"]) == 0
    assert "wrote" in capsys.readouterr().out
    from PIL import Image

    with Image.open(video) as gif:
        assert gif.size == (160, 210)  # the full-size ALE screen, not the 84x84 observation
        assert gif.n_frames >= 2
