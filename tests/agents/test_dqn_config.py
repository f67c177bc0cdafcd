"""DQNConfig: a docstring under every field (command-line help), clear validation errors."""

import ast
import dataclasses
import inspect

import pytest

from drivetrain.agents import DQNConfig
from drivetrain.agents.dqn import config as config_module


def field_docstrings():
    tree = ast.parse(inspect.getsource(config_module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "DQNConfig")
    docs = {}
    for stmt, following in zip(cls.body, cls.body[1:], strict=False):
        if isinstance(stmt, ast.AnnAssign) and isinstance(following, ast.Expr):
            docs[stmt.target.id] = following.value.value
    return docs


def test_every_field_has_a_docstring():
    docs = field_docstrings()
    names = [f.name for f in dataclasses.fields(DQNConfig)]
    assert [n for n in names if not docs.get(n, "").strip()] == []
    for expected in [
        "learning_rate",
        "optimizer",
        "adam_eps",
        "rmsprop_alpha",
        "rmsprop_momentum",
        "rmsprop_eps",
        "rmsprop_centered",
        "gamma",
        "n_step",
        "double",
        "dueling",
        "target_update_period",
        "target_update_tau",
        "loss",
        "huber_delta",
        "gradient_clipping",
        "reward_scale",
        "reward_clip",
        "epsilon_start",
        "epsilon_end",
        "epsilon_decay_steps",
        "epsilon_power",
        "fc_layers",
        "conv_layers",
        "device",
    ]:
        assert expected in names


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("learning_rate", 0.0, "a positive number"),
        ("optimizer", "sgd", "'adam', 'rmsprop' or 'rmsprop_tf'"),
        ("gamma", 1.01, "[0, 1]"),
        ("n_step", 0, ">= 1"),
        ("target_update_tau", 0.0, "(0, 1]"),
        ("loss", "l1", "'huber' or 'mse'"),
        ("epsilon_end", -0.1, "[0, 1]"),
        ("epsilon_decay_steps", 0, ">= 1"),
        ("fc_layers", (64, 0), "positive widths"),
        ("conv_layers", ((32, 8, 0),), "stride 0 is not a positive int"),
        ("reward_clip", 0.0, "None or > 0"),
    ],
)
def test_invalid_values_name_the_field(field, value, expected):
    with pytest.raises(ValueError) as error:
        DQNConfig(**{field: value})
    message = str(error.value)
    assert message.startswith(f"DQNConfig.{field}: expected ")
    assert expected in message and message.endswith(f"got {value!r}")


def test_conv_layers_take_the_books_form():
    config = DQNConfig(conv_layers=((32, (8, 8), 4), (64, (4, 4), 2), (64, (3, 3), 1)))
    assert config.conv_layers[0] == (32, (8, 8), 4)
