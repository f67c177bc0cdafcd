"""compile="auto" in the presets whose runs pay for the compilation, and what a compiled run says."""

import types

import pytest

from drivetrain.agents import compiling
from drivetrain.train import apply_overrides, get_preset, preset_names, train
from drivetrain.train.experiment import build_experiment
from drivetrain.train.runs import compile_note


def auto_presets():
    return [
        name for name in preset_names() if getattr(get_preset(name).build().agent, "compile", False) == "auto"
    ]


def test_some_presets_compile_by_default_and_the_short_ones_do_not():
    auto = auto_presets()
    assert auto, "no preset sets agent.compile='auto'"
    # runs shorter than 1.5x the updates from which the compilation pays (bench/compile_pays.py)
    for short in ("cartpole-dqn", "cartpole-masked-dqn", "cartpole-ppo", "acrobot-ppo", "pendulum-td3"):
        assert short not in auto
    assert "cartpole-masked-rppo" not in auto  # recurrent PPO has no compiled update
    assert "cartpole-masked-rdqn" in auto  # R2D2's unrolled update pays over its 12k updates


@pytest.mark.parametrize("preset", auto_presets())
def test_an_auto_preset_builds_a_compiled_agent_where_a_compiler_is(preset):
    compiling._compiler_missing.cache_clear()
    config = apply_overrides(get_preset(preset).build(), [("replay.capacity", 1000)])  # not 1M for nothing
    exp = build_experiment(config)
    try:
        assert exp.agent.compiled
    finally:
        exp.close()


def test_a_run_says_when_its_updates_are_compiled():
    assert compile_note(types.SimpleNamespace(compiled=False)) is None
    assert compile_note(object()) is None  # agents without a compiled update (REINFORCE)
    note = compile_note(types.SimpleNamespace(compiled=True))
    assert note is not None and "updates are compiled (agent.compile)" in note


def test_a_compiled_run_prints_the_note_before_training(tmp_path, capsys):
    config = apply_overrides(
        get_preset("cartpole-dqn").build(),
        [
            ("compile", "auto"),
            ("total_env_steps", 300),
            ("learning_starts", 200),
            ("update_period", 100),
            ("gradient_steps", 1),
            ("fc_layers", (8,)),
            ("eval_interval", 0),
            ("stop_at_return", None),
            ("final_eval_episodes", 1),
            ("progress_bar", False),
            ("tensorboard", False),
        ],
    )
    compiling._compiler_missing.cache_clear()
    result = train(config, tmp_path, verbose=True)
    assert result.train_steps == 1
    assert "DQN's updates are compiled (agent.compile)" in capsys.readouterr().out
