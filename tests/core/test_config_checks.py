"""check_fields: each field's value against its annotation, with the field, the expected type and what came."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Literal, Optional

import numpy as np
import pytest

from drivetrain.core.config_checks import ConfigTypeError, check_fields


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 1

    def __post_init__(self) -> None:
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class Config:
    rate: float = 0.1
    steps: int = 1
    flag: bool = False
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    limit: int | None = None
    old_style: Optional[float] = None  # noqa: UP045 - the spelling under test
    widths: tuple[int, ...] = (1,)
    pair: tuple[int, str] = (1, "a")
    names: list[str] = dataclasses.field(default_factory=list)
    inner: Inner = dataclasses.field(default_factory=Inner)
    color: Color = Color.RED
    anything: Any = None

    def __post_init__(self) -> None:
        check_fields(self)


GOOD = [
    ("rate", 1),  # an int where a float is declared
    ("rate", np.float32(0.5)),
    ("steps", np.int64(3)),
    ("flag", np.bool_(True)),
    ("mode", "b"),
    ("limit", 3),
    ("old_style", 2),
    ("widths", [1, 2]),  # a list where a tuple is declared
    ("widths", ()),
    ("pair", (2, "b")),
    ("names", ["a"]),
    ("anything", object()),
]


@pytest.mark.parametrize(("field", "value"), GOOD)
def test_values_of_the_annotated_type_pass(field, value):
    assert getattr(Config(**{field: value}), field) is value


BAD = [
    ("rate", "0.001", "Config.rate: expected float, got '0.001' (str)"),
    ("rate", True, "Config.rate: expected float, got True (bool)"),
    ("rate", None, "Config.rate: expected float, got None (NoneType)"),
    ("steps", 2.0, "Config.steps: expected int, got 2.0 (float)"),
    ("steps", False, "Config.steps: expected int, got False (bool)"),
    ("flag", 1, "Config.flag: expected bool, got 1 (int)"),
    ("flag", "false", "Config.flag: expected bool, got 'false' (str)"),
    ("name", 3, "Config.name: expected str, got 3 (int)"),
    ("mode", "c", "Config.mode: expected 'a' or 'b', got 'c'"),
    ("mode", 1, "Config.mode: expected 'a' or 'b', got 1 (int)"),
    ("limit", "3", "Config.limit: expected int | None, got '3' (str)"),
    ("old_style", "2", "Config.old_style: expected float | None, got '2' (str)"),
    ("widths", 64, "Config.widths: expected tuple[int, ...], got 64 (int)"),
    ("widths", (64, "64"), "Config.widths: expected tuple[int, ...], got (64, '64') (tuple)"),
    ("pair", (1,), "Config.pair: expected tuple[int, str], got (1,) (tuple)"),
    ("pair", ("a", 1), "Config.pair: expected tuple[int, str], got ('a', 1) (tuple)"),
    ("names", ("a",), None),  # a tuple where a list is declared: fine
    ("inner", {"width": 2}, "Config.inner: expected Inner, got {'width': 2} (dict)"),
    ("color", "red", "Config.color: expected Color, got 'red' (str)"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD)
def test_a_wrong_type_names_the_field_the_expected_type_and_what_came(field, value, message):
    if message is None:
        Config(**{field: value})
        return
    with pytest.raises(ConfigTypeError) as error:
        Config(**{field: value})
    assert str(error.value) == message


def test_the_error_is_a_type_error_and_a_value_error():
    assert issubclass(ConfigTypeError, TypeError) and issubclass(ConfigTypeError, ValueError)


def test_nested_configs_check_their_own_fields():
    with pytest.raises(ConfigTypeError, match=r"^Inner.width: expected int, got '2' \(str\)$"):
        Config(inner=Inner(width="2"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_float_field_refuses_nan_and_infinity_by_name(bad):
    import dataclasses

    from drivetrain.agents import DQNConfig, PPOConfig

    @dataclasses.dataclass(frozen=True)
    class Rates:
        rate: float = 0.1

        def __post_init__(self):
            check_fields(self)

    with pytest.raises(ConfigTypeError, match=r"Rates.rate: expected a finite number"):
        Rates(bad)
    with pytest.raises(ConfigTypeError, match=r"DQNConfig.reward_scale: expected a finite number"):
        DQNConfig(reward_scale=bad)
    with pytest.raises(ConfigTypeError, match=r"PPOConfig.initial_log_std: expected a finite number"):
        PPOConfig(initial_log_std=bad)


def test_a_numpy_float_infinity_is_refused_too():
    from drivetrain.agents import DQNConfig

    with pytest.raises(ConfigTypeError, match=r"DQNConfig\.learning_rate: expected a finite number"):
        DQNConfig(learning_rate=np.float32("inf"))
