"""The training config's sections refuse a value of the wrong type by name."""

import dataclasses

import pytest

from drivetrain.core.config_checks import ConfigTypeError
from drivetrain.train.config import EnvConfig, ExperimentConfig, LoopConfig, ReplayConfig
from drivetrain.train.fields import apply_overrides


@pytest.mark.parametrize("cls", [EnvConfig, ReplayConfig, LoopConfig, ExperimentConfig])
def test_every_field_refuses_a_value_of_the_wrong_type(cls):
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        wrong = 3 if isinstance(default, str) else "3"
        with pytest.raises(ConfigTypeError, match=rf"^{cls.__name__}\.{f.name}: expected .*, got "):
            cls(**{f.name: wrong})


def test_messages_name_field_expected_and_got():
    with pytest.raises(ConfigTypeError, match=r"^LoopConfig.batch_size: expected int, got '64' \(str\)$"):
        LoopConfig(batch_size="64")
    with pytest.raises(
        ConfigTypeError,
        match=r"^ExperimentConfig.agent: expected an agent config \(DQNConfig, .*\), got 'dqn' \(str\)$",
    ):
        ExperimentConfig(agent="dqn")
    with pytest.raises(
        ConfigTypeError, match=r"^EnvConfig.backend: expected 'sync', .* or 'envpool', got 'fast'$"
    ):
        EnvConfig(backend="fast")


def test_command_line_overrides_still_parse_into_the_declared_types():
    config = apply_overrides(ExperimentConfig(), [("learning_rate", "0.001"), ("loop.batch_size", "32")])
    assert config.agent.learning_rate == 0.001 and config.loop.batch_size == 32
