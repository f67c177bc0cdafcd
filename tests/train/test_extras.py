"""Each preset's extras come from its environment, and the README's preset table says the same."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import tomllib

import pytest

from drivetrain.train import get_preset, preset_names
from drivetrain.train.extras import BASE_EXTRA, env_extras, required_extras

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_extras_follow_the_environment_and_the_execution():
    assert required_extras(get_preset("cartpole-dqn").build()) == ("torch",)
    assert required_extras(get_preset("breakout-dqn").build()) == ("torch", "atari")
    assert required_extras(get_preset("lunarlander-ppo").build()) == ("torch", "box2d")
    assert required_extras(get_preset("hopper-sac").build()) == ("torch", "mujoco")
    config = get_preset("breakout-dqn").build()
    config = dataclasses.replace(
        config,
        env=dataclasses.replace(config.env, backend="envpool"),
        execution=dataclasses.replace(config.execution, backend="ray"),
        loop=dataclasses.replace(config.loop, track="wandb"),
    )
    assert required_extras(config) == ("torch", "atari", "envpool", "ray", "wandb")
    assert env_extras("NoSuchEnv-v0") == ()  # unknown to Gymnasium: nothing to say


def test_an_ale_id_needs_the_atari_extra():
    assert env_extras("ALE/Pong-v5") == ("atari",)


@pytest.mark.parametrize("name", preset_names())
def test_the_entry_points_read_without_gymnasium_are_gymnasiums(name):
    import gymnasium

    from drivetrain.train.extras import _gymnasium_entry_points

    env = get_preset(name).build().env
    if env.suite == "gymnasium":
        assert _gymnasium_entry_points()[env.name] == gymnasium.spec(env.name).entry_point


def test_every_extra_named_is_one_of_pyprojects():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name in preset_names():
        assert set(required_extras(get_preset(name).build())) <= set(declared), name


def test_the_readme_preset_table_names_each_presets_extras():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| preset | what | source | extras |", 1)[1].split("\n\n", 1)[0]
    listed = {}
    for row in table.strip().splitlines()[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        for name in re.findall(r"`([a-z0-9-]+)`", cells[0]):
            listed[name] = set(re.findall(r"`([a-z0-9]+)`", cells[-1]))
    assert set(listed) == set(preset_names())
    for name, extras in listed.items():
        assert extras == set(required_extras(get_preset(name).build())) - {BASE_EXTRA}, name


def test_drivetrain_presets_names_the_extras_beyond_torch(capsys):
    from drivetrain.cli import main

    assert main(["presets"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["breakout-dqn"].endswith("[needs drivetrain[atari]]")
    assert lines["hopper-sac"].endswith("[needs drivetrain[mujoco]]")
    assert lines["cartpole-dqn"].endswith("(default)") and "needs" not in lines["cartpole-dqn"]
    assert not any("``" in line for line in lines.values())
