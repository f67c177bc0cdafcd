"""Preset files: full and partial YAML/JSON presets for `drivetrain train FILE`, `presets --show`
printing any preset as a file that loads back to the same config, and one-line errors naming
the file and the key."""

import json

import pytest

from drivetrain.cli import main
from drivetrain.train import get_preset, preset_names
from drivetrain.train.preset_files import (
    PresetFileError,
    find_preset,
    load_preset_file,
    show_preset,
    write_preset_file,
)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("name", preset_names())
def test_show_prints_a_file_that_loads_back_to_the_same_config(name, fmt, tmp_path, capsys):
    assert main(["presets", "--show", name, "--format", fmt]) == 0
    text = capsys.readouterr().out
    path = tmp_path / f"p.{fmt}"
    path.write_text(text)
    loaded = load_preset_file(path)
    preset = get_preset(name)
    assert loaded.config == preset.build()
    assert (loaded.name, loaded.doc) == (preset.name, preset.doc)
    assert show_preset(str(path), fmt) == text  # and prints the same again


def test_a_full_yaml_file_takes_defaults_for_what_it_leaves_out(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: my-cartpole\ndoc: smaller\nagent_kind: dqn\nenv: {name: CartPole-v1}\n"
        "agent: {learning_rate: 3e-4, fc_layers: [64, 64]}\nloop: {total_env_steps: 1e4}\nseed: 7\n"
    )
    preset = load_preset_file(path)
    config = preset.config
    assert (preset.name, preset.doc, config.preset, config.seed) == (
        "my-cartpole",
        "smaller",
        "my-cartpole",
        7,
    )
    assert config.agent.learning_rate == 3e-4 and config.agent.fc_layers == (64, 64)
    assert config.loop.total_env_steps == 10_000 and isinstance(config.loop.total_env_steps, int)
    assert config.loop.batch_size == type(config.loop)().batch_size  # a default


def test_a_partial_file_changes_its_base(tmp_path):
    path = tmp_path / "fast.yml"
    path.write_text("base: cartpole-dqn\nagent:\n  learning_rate: 3e-4\nloop: {total_env_steps: 20000}\n")
    config = load_preset_file(path).config
    base = get_preset("cartpole-dqn").build()
    assert config.agent.learning_rate == 3e-4 and config.loop.total_env_steps == 20_000
    assert (
        config.agent.fc_layers == base.agent.fc_layers
        and config.loop.eval_interval == base.loop.eval_interval
    )
    assert config.preset == "fast"  # the file's stem: no name key
    # a partial file on another partial file (relative to it), in JSON
    (tmp_path / "faster.json").write_text(json.dumps({"base": "fast.yml", "name": "faster", "seed": 3}))
    faster = load_preset_file(tmp_path / "faster.json").config
    assert (faster.agent.learning_rate, faster.seed, faster.preset) == (3e-4, 3, "faster")
    # another agent kind starts its agent section from that agent's defaults
    (tmp_path / "ppo.yaml").write_text("base: cartpole-dqn\nagent_kind: ppo\nagent: {learning_rate: 1e-3}\n")
    ppo = load_preset_file(tmp_path / "ppo.yaml").config
    assert type(ppo.agent).__name__ == "PPOConfig" and ppo.agent.learning_rate == 1e-3


def test_a_run_config_json_is_a_full_preset_file(tmp_path):
    config = get_preset("cartpole-ppo").build()
    from drivetrain.train import save_config

    save_config(config, tmp_path / "config.json")
    assert load_preset_file(tmp_path / "config.json").config == config
    write_preset_file(config, tmp_path / "again.yaml", name="other")
    assert load_preset_file(tmp_path / "again.yaml").config.preset == "other"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.yaml", "agent: {learnin_rate: 1e-3}\n", "a.yaml: unknown config key 'agent.learnin_rate'"),
        ("b.yaml", "loop: {batch_size: many}\n", "b.yaml: loop.batch_size: expected int, got 'many'"),
        ("c.json", '{"base": "cartpole-dqn", "envs": {}}', "c.json: unknown config key 'envs'"),
        (
            "d.yaml",
            "base: cartpole-dq\n",
            "d.yaml: base: unknown preset 'cartpole-dq'; did you mean cartpole-dqn",
        ),
        ("e.yaml", "agent_kind: dqm\n", "e.yaml: agent_kind:"),
        ("f.yaml", "- 1\n- 2\n", "f.yaml: a preset file holds a mapping of config keys, got list"),
        ("g.yaml", "agent: {learning_rate: [1\n", "g.yaml: not valid YAML"),
        ("h.json", "{", "h.json: not valid JSON"),
        ("i.yaml", "name: 3\n", "i.yaml: name: expected a string, got 3"),
        ("j.yaml", "base: j.yaml\n", "j.yaml: base: j.yaml leads back to itself"),
        ("k.yaml", "agent: {gamma: 1.5}\n", "k.yaml: "),
        (
            "l.yaml",
            "base: cartpole-dqn\nagent:\n",
            "l.yaml: agent: expected a mapping of DQNConfig's keys, got None",
        ),
        ("m.yaml", "agent: [1, 2]\n", "m.yaml: agent: expected a mapping of DQNConfig's keys, got [1, 2]"),
        ("n.json", '{"agent": 5}', "n.json: agent: expected a mapping"),
        ("o.yaml", "loop:\n", "o.yaml: loop: expected"),
        (
            "p.yaml",
            "agent:\n  gamma: 0.9\n  gamma: 0.8\n",
            "p.yaml: key 'gamma' appears twice in one mapping (line 3)",
        ),
        (
            "q.json",
            '{"agent": {"gamma": 0.9, "gamma": 0.8}}',
            "q.json: key 'gamma' appears twice in one object",
        ),
        ("r.yaml", "base: missing.yaml\n", "r.yaml: base: no such preset file"),
    ],
)
def test_errors_name_the_file_and_the_key(name, text, message, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PresetFileError, match="^" + str(path).replace("\\", "\\\\")):
        load_preset_file(path)
    assert main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("drivetrain: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_missing_files_and_bad_suffixes_are_refused(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert f"{tmp_path / 'nope.yaml'}: no such preset file" in capsys.readouterr().err
    (tmp_path / "p.toml").write_text("x = 1\n")
    assert main(["train", str(tmp_path / "p.toml")]) == 2
    assert "p.toml: a preset file ends in .yaml, .yml, .json, not '.toml'" in capsys.readouterr().err
    assert main(["presets", "--show", "cartpole-dq"]) == 2
    assert "unknown preset 'cartpole-dq'" in capsys.readouterr().err
    assert type(find_preset("cartpole-dqn")).__name__ == "Preset"  # names first


TINY = [
    "--total_env_steps", "600", "--learning_starts", "200", "--update_period", "100",
    "--gradient_steps", "2", "--agent.fc_layers", "16", "--eval_interval=0", "--stop_at_return", "none",
    "--final_eval_episodes", "2", "--checkpoint_interval", "0", "--tensorboard", "false",
]  # fmt: skip


def test_train_a_file_with_overrides_on_top_and_resume_it(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text("base: cartpole-dqn\nagent: {learning_rate: 3e-4}\nseed: 5\n")
    assert main(["train", str(path), "--help"]) == 0
    assert "preset mine:" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", str(path), "--run-dir", str(run), "--quiet", "--seed", "4", *TINY]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["preset"] == "mine" and saved["seed"] == 4 and saved["agent"]["learning_rate"] == 3e-4
    assert saved["loop"]["total_env_steps"] == 600
    assert main(["train", str(path), "--run-dir", str(run), "--resume", "--quiet", "--seed", "4", *TINY]) == 0
    assert main(["train", "cartpole-dqn", "--run-dir", str(run), "--resume", "--quiet"]) == 2
    assert "holds a run of preset 'mine', not 'cartpole-dqn'" in capsys.readouterr().err


def test_none_in_a_file_is_none_as_on_the_command_line(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        "base: cartpole-dqn\nagent: {gradient_clipping: none}\nexecution: {ray_address: None}\n"
        "loop: {stop_at_return: null, track: none}\n"
    )
    config = load_preset_file(path).config
    assert config.agent.gradient_clipping is None and config.execution.ray_address is None
    assert config.loop.stop_at_return is None and config.loop.track == "none"  # a literal of its own


def test_a_string_that_reads_like_a_float_survives_a_file(tmp_path):
    from drivetrain.train import apply_overrides
    from drivetrain.train.preset_files import preset_text

    config = apply_overrides(get_preset("cartpole-dqn").build(), [("track_project", "1e5")])
    (tmp_path / "s.yaml").write_text(preset_text(config, "s"))
    assert load_preset_file(tmp_path / "s.yaml").build().loop.track_project == "1e5"


def test_imports_beside_the_file_and_on_the_command_line_are_imported(tmp_path, monkeypatch, capsys):
    import sys

    folder = tmp_path / "presets"
    folder.mkdir()
    registers = "import gymnasium\ngymnasium.register('BesideCart-v0', entry_point='gymnasium.envs.classic_control:CartPoleEnv')\n"
    (folder / "beside_envs.py").write_text(registers)
    (folder / "b.yaml").write_text("base: cartpole-dqn\nimports: [beside_envs]\nenv: {name: BesideCart-v0}\n")
    monkeypatch.chdir(tmp_path)  # not the file's folder
    monkeypatch.setattr(sys, "path", list(sys.path))
    (kept,) = load_preset_file(folder / "b.yaml").build().imports
    assert kept == str((folder / "beside_envs.py").resolve())  # a path, so a resume from elsewhere finds it
    assert "beside_envs" in sys.modules
    from drivetrain.train.imports import import_modules

    del sys.modules["beside_envs"]
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(folder.resolve())])
    import_modules([kept])  # as config.json's reader does
    assert "beside_envs" in sys.modules
    (tmp_path / "cli_envs.py").write_text(registers.replace("BesideCart", "CliCart"))
    tiny = ["--total_env_steps", "300", "--learning_starts", "200", "--eval_interval", "0", "--quiet"]
    tiny += ["--stop_at_return", "none", "--final_eval_episodes", "1", "--tensorboard", "false"]
    run = str(tmp_path / "run")
    assert main(["train", "--imports", "cli_envs,", "--env.name", "CliCart-v0", "--run-dir", run, *tiny]) == 0
    assert "cli_envs" in sys.modules


def test_a_module_beside_the_file_wins_over_a_namesake_and_dotted_names_beside_it_import(
    tmp_path, monkeypatch
):
    import sys

    folder, work = tmp_path / "presets", tmp_path / "work"
    (folder / "pkg_beside").mkdir(parents=True)
    work.mkdir()
    (folder / "namesake_envs.py").write_text("WHERE = 'beside'\n")
    (work / "namesake_envs.py").write_text("WHERE = 'cwd'\n")
    (folder / "pkg_beside" / "__init__.py").write_text("")
    (folder / "pkg_beside" / "envs.py").write_text("WHERE = 'dotted'\n")
    (folder / "n.yaml").write_text("base: cartpole-dqn\nimports: [namesake_envs, pkg_beside.envs]\n")
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    for name in ("namesake_envs", "pkg_beside", "pkg_beside.envs"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    load_preset_file(folder / "n.yaml")
    assert sys.modules["namesake_envs"].WHERE == "beside" and sys.modules["pkg_beside.envs"].WHERE == "dotted"
