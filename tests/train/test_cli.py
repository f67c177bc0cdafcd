import json
import re
import subprocess
import sys

import pytest

from drivetrain.cli import _resolve_overrides, _split_train_args, main
from drivetrain.train import get_preset, preset_names

TINY = [
    "--total_env_steps", "600",
    "--learning_starts", "200",
    "--update_period", "100",
    "--gradient_steps", "5",
    "--agent.fc_layers", "16,16",
    "--eval_interval=0",
    "--stop_at_return", "none",
    "--final_eval_episodes", "2",
    "--checkpoint_interval", "300",
    "--tensorboard", "false",
]  # fmt: skip


def test_split_separates_own_arguments_from_overrides():
    own, overrides = _split_train_args(
        ["cartpole-dqn", "--run-dir", "x", "--resume", "--seed=3", "--agent.fc_layers", "64,64", "--double",
         "--reward_clip", "-1", "--lr", "1e-3"]
    )  # fmt: skip
    assert own == ["cartpole-dqn", "--run-dir", "x", "--resume"]
    assert overrides == [
        ("seed", "3"),
        ("agent.fc_layers", "64,64"),
        ("double", None),
        ("reward_clip", "-1"),
        ("lr", "1e-3"),
    ]


def test_list_values_as_one_token_or_several():
    own, overrides = _split_train_args(
        ["--fc_layers", "64", "64", "cartpole-dqn", "--double", "--reward_clip", "-1", "--fc_layers=32,32",
         "--conv_layers", "(32,8,4)", "(64,4,2)", "--gamma", "0.9", "--epsilon_end", "-1e-3", "--seed", "2"]
    )  # fmt: skip
    assert own == ["cartpole-dqn"]
    assert overrides == [
        ("fc_layers", "64,64"),
        ("double", None),
        ("reward_clip", "-1"),
        ("fc_layers", "32,32"),
        ("conv_layers", "(32,8,4),(64,4,2)"),
        ("gamma", "0.9"),
        ("epsilon_end", "-1e-3"),
        ("seed", "2"),
    ]
    config = get_preset("cartpole-dqn").build()
    for argv in (["--fc_layers", "64", "64"], ["--fc_layers", "64,64"], ["--agent.fc_layers", "(64, 64)"]):
        _, overrides = _split_train_args(argv)
        assert _resolve_overrides(config, overrides).agent.fc_layers == (64, 64), argv
    _, overrides = _split_train_args(["--conv_layers", "(32,8,4)", "(64,4,2)"])
    assert _resolve_overrides(config, overrides).agent.conv_layers == ((32, 8, 4), (64, 4, 2))


def test_several_values_for_a_one_value_field_are_an_error(capsys, tmp_path):
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--total_env_steps", "2000", "64"]) == 2
    assert "loop.total_env_steps: expected int, got '2000,64'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_presets_lists_one_line_each_default_first(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("cartpole-dqn ") and lines[0].endswith("(default)")
    assert all(len(line.split()) > 2 for line in lines)


def test_unknown_preset_names_close_ones(capsys):
    assert main(["train", "cartpole-dq"]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'cartpole-dq'" in err and "did you mean cartpole-dqn," in err


def test_train_help_lists_fields_with_types_values_and_docs(capsys):
    assert main(["train", "cartpole-dqn", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--agent.learning_rate float = 0.0023" in out
    assert "Learning rate of the optimizer." in out
    assert "--loop.total_env_steps int = 50000" in out
    assert "rl-baselines3-zoo" in out  # the preset's docstring with its source
    assert "--env.atari." not in out  # Atari preprocessing only for Atari presets


def test_unknown_key_and_bad_values_are_clear_errors(capsys, tmp_path):
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--learning_rat", "1"]) == 2
    assert "unknown config key 'learning_rat'; did you mean agent.learning_rate" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--agent.fc_layers"]) == 2
    assert "--agent.fc_layers needs a value" in capsys.readouterr().err
    assert main(["train", "--run-dir", str(tmp_path / "r"), "--batch_size", "many"]) == 2
    assert "loop.batch_size: expected int, got 'many'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written


def test_train_eval_refuse_overwrite_force_and_resume(capsys, tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", "--seed", "3", *TINY]) == 0
    assert "done: 600 env steps" in capsys.readouterr().out
    saved = json.loads((run / "config.json").read_text())
    assert (
        saved["seed"] == 3 and saved["agent"]["fc_layers"] == [16, 16] and saved["preset"] == "cartpole-dqn"
    )
    for name in ("progress.csv", "progress.jsonl", "eval.json", "learning_curve.png", "agent.pkl"):
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("ckpt-*.pkl"))

    assert main(["eval", str(run), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    recorded = json.loads((run / "eval.json").read_text())
    assert evaluated == recorded  # same agent, same evaluation seed
    assert set(recorded) >= {"mean_return", "std_return", "episodes", "env_steps"}
    assert recorded["env_steps"] == 600 and recorded["episodes"] == 2

    assert main(["train", "--run-dir", str(run), "--quiet", *TINY]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--force" in err

    assert main(["train", "--run-dir", str(run), "--resume", "--quiet"]) == 0  # finished: nothing to do
    assert "done: 600 env steps" in capsys.readouterr().out
    assert main(["train", "--run-dir", str(run), "--resume", "--quiet", "--total_env_steps", "700"]) == 0
    out = capsys.readouterr().out
    assert "config change on resume: loop.total_env_steps: 600 -> 700" in out and "done: 700 env steps" in out

    assert main(["train", "--run-dir", str(run), "--force", "--quiet", *TINY]) == 0
    assert json.loads((run / "eval.json").read_text())["env_steps"] == 600


def test_train_prints_one_line_of_config_and_no_bar_without_a_terminal(capsys, tmp_path):
    assert main(["train", "--run-dir", str(tmp_path / "a"), *TINY]) == 0
    out, err = capsys.readouterr()
    assert "config:" not in out and "loop.total_env_steps =" not in out  # no dump
    summary = out.splitlines()[0]
    assert summary.startswith("cartpole-dqn: DQN on CartPole-v1 (gymnasium, 1 env), 600 env steps, seed 0")
    assert str(tmp_path / "a") in summary and "--verbose" in summary
    assert "\r" not in err and "%|" not in err and "█" not in err  # no bar: plain lines
    assert "cartpole-dqn: 600/600 env steps (100%)" in err

    assert main(["train", "--run-dir", str(tmp_path / "b"), "--verbose", *TINY]) == 0
    out = capsys.readouterr().out
    assert (
        "config:" in out and "  loop.total_env_steps = 600" in out and "  agent.fc_layers = (16, 16)" in out
    )
    assert main(["train", "--run-dir", str(tmp_path / "c"), "--verbose", "--quiet", *TINY]) == 2
    assert "--quiet and --verbose contradict each other" in capsys.readouterr().err


def test_resume_of_a_missing_run_is_an_error(capsys, tmp_path):
    assert main(["train", "--run-dir", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_play_writes_a_gif(capsys, tmp_path):
    pytest.importorskip("pygame", reason="CartPole renders with pygame")
    run = tmp_path / "run"
    assert main(["train", "--run-dir", str(run), "--quiet", *TINY]) == 0
    assert main(["play", str(run), "--video", str(tmp_path / "cartpole.gif")]) == 0
    assert "wrote" in capsys.readouterr().out
    data = (tmp_path / "cartpole.gif").read_bytes()
    assert data[:6] in (b"GIF87a", b"GIF89a")


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "drivetrain", "presets"], capture_output=True, text=True, check=True
    ).stdout
    assert "cartpole-dqn" in out


def test_train_seeds_then_compare_from_the_command_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "cartpole-dqn", "--seeds", "0-1", "--run-dir", str(runs), "--quiet", *TINY]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["seed-0", "seed-1"]
    returns = [json.loads((runs / f"seed-{k}/eval.json").read_text())["mean_return"] for k in (0, 1)]
    assert json.loads((runs / "seed-1/config.json").read_text())["seed"] == 1
    capsys.readouterr()
    assert main(["compare", str(runs), "--out", str(tmp_path / "cmp.png")]) == 0
    table = (tmp_path / "cmp.md").read_text()
    assert (tmp_path / "cmp.png").stat().st_size > 0
    assert f"0: {returns[0]:.1f}, 1: {returns[1]:.1f}" in table and "cartpole-dqn" in capsys.readouterr().out


@pytest.mark.parametrize("preset", preset_names())
def test_train_help_is_plain_text_without_restructuredtext(preset, capsys):
    assert main(["train", preset, "--help"]) == 0
    out = capsys.readouterr().out
    for markup in (":class:", ":func:", ":meth:", ":data:", ":mod:", ":attr:", "``", "::\n"):
        assert markup not in out, (preset, markup)
    assert not re.search(r"(?<![\w*])\*[^\s*][^*\n]*\*(?![\w*])", out), preset  # *emphasis*


def test_export_help_says_how_to_load_the_file_without_drivetrain(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert 'torch.export.load("policy.pt2").module()' in out
    assert "float32" in out and "[B, *shape]" in out and "uint8" in out


def test_resume_without_a_preset_takes_the_runs_own_keys(capsys, tmp_path):
    run = str(tmp_path / "ppo")
    tiny = ["--total_env_steps", "256", "--eval_interval=0", "--stop_at_return", "none"]
    tiny += ["--final_eval_episodes", "1", "--tensorboard", "false", "--num_envs", "4"]
    assert main(["train", "cartpole-ppo", "--run-dir", run, "--quiet", *tiny]) == 0
    # num_epochs is a PPO field: it resolves against the run's config, not the default preset's
    assert (
        main(
            [
                "train",
                "--run-dir",
                run,
                "--resume",
                "--quiet",
                "--num_epochs",
                "2",
                "--total_env_steps",
                "512",
            ]
        )
        == 0
    )
    assert "config change on resume: agent.num_epochs" in capsys.readouterr().out
    assert main(["train", "cartpole-dqn", "--run-dir", run, "--resume", "--num_epochs", "2"]) == 2
    assert "holds a run of preset 'cartpole-ppo', not 'cartpole-dqn'" in capsys.readouterr().err


def test_an_epsilon_greedy_evaluation_is_not_called_greedy(capsys, tmp_path):
    from run_dirs import TINY_CLI

    assert main(["train", "--run-dir", str(tmp_path / "r"), *TINY_CLI, "--eval_epsilon", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "final evaluation at env step 600: return (ε = 0.2)" in out
    assert "done: 600 env steps" in out and "; return (ε = 0.2)" in out and "greedy return" not in out
