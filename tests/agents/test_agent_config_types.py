"""Agent configs refuse a value of the wrong type by name, before any range check compares it."""

import dataclasses

import numpy as np
import pytest

from drivetrain.agents import DQNConfig, R2D2Config
from drivetrain.core.config_checks import ConfigTypeError


def test_a_string_learning_rate_is_named():
    with pytest.raises(ConfigTypeError) as error:
        DQNConfig(learning_rate="0.001")
    assert str(error.value) == "DQNConfig.learning_rate: expected float, got '0.001' (str)"


def _wrong(default):
    """A value of another type than the field's default."""
    return 3 if isinstance(default, str) else "3"


@pytest.mark.parametrize("cls", [DQNConfig, R2D2Config])
def test_every_field_refuses_a_value_of_the_wrong_type(cls):
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        with pytest.raises(ConfigTypeError, match=rf"^{cls.__name__}\.{f.name}: expected .*, got "):
            cls(**{f.name: _wrong(default)})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_step", True, r"DQNConfig.n_step: expected int, got True \(bool\)"),
        ("n_step", 2.0, r"DQNConfig.n_step: expected int, got 2.0 \(float\)"),
        ("fc_layers", 64, r"DQNConfig.fc_layers: expected tuple\[int, \.\.\.\], got 64 \(int\)"),
        (
            "conv_layers",
            ((32, 8),),
            r"DQNConfig.conv_layers: expected tuple\[tuple\[int, int \| tuple\[int, int\], int \| tuple\[int, int\]\], \.\.\.\] \| None",
        ),
        ("double", "yes", r"DQNConfig.double: expected bool, got 'yes' \(str\)"),
        ("gradient_clipping", "10", r"DQNConfig.gradient_clipping: expected float \| None, got '10' \(str\)"),
        ("optimizer", "sgd", r"DQNConfig.optimizer: expected 'adam', 'rmsprop' or 'rmsprop_tf', got 'sgd'$"),
    ],
)
def test_wrong_types_are_named(field, value, message):
    with pytest.raises(ConfigTypeError, match=message):
        DQNConfig(**{field: value})


def test_numbers_of_other_python_and_numpy_types_are_accepted():
    config = DQNConfig(learning_rate=1, gamma=np.float32(0.5), n_step=np.int64(2), fc_layers=[8, 8])
    assert config.learning_rate == 1 and config.n_step == 2
    assert R2D2Config(hidden_size=np.int32(4), priority_eta=1).hidden_size == 4
