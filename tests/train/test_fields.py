import dataclasses
import enum
import json
from typing import Literal

import pytest

from drivetrain.train.fields import (
    ConfigError,
    apply_overrides,
    field_docs,
    fields_of,
    from_dict,
    parse_value,
    resolve_key,
    to_dict,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Inner:
    learning_rate: float = 1e-3
    """Step size of the optimizer."""
    layers: tuple[int, ...] = (64, 64)
    """Units of the hidden layers."""
    conv: tuple[tuple[int, int, int], ...] = ()
    """(filters, kernel, stride) per convolution."""
    clip: float | None = None
    """Gradient norm clip; None disables it."""
    loss: Literal["huber", "mse"] = "huber"
    color: Color = Color.RED
    seed: int = 1


@dataclasses.dataclass(frozen=True)
class Loop:
    steps: int = 100
    """Environment steps in all."""
    progress: bool = True
    seed: int = 2


@dataclasses.dataclass(frozen=True)
class Outer:
    inner: Inner = dataclasses.field(default_factory=Inner)
    loop: Loop = dataclasses.field(default_factory=Loop)
    name: str = "x"
    """A name."""


def test_field_docs_come_from_the_string_under_each_field():
    docs = field_docs(Inner)
    assert docs["learning_rate"] == "Step size of the optimizer."
    assert docs["clip"] == "Gradient norm clip; None disables it."
    assert "loss" not in docs  # no docstring under it


def test_fields_of_walks_nested_configs_in_order():
    keys = [f.key for f in fields_of(Outer())]
    assert keys[:3] == ["inner.learning_rate", "inner.layers", "inner.conv"]
    assert keys[-1] == "name"
    assert "loop.steps" in keys


@pytest.mark.parametrize(
    ("text", "tp", "expected"),
    [
        ("3", int, 3),
        ("1e6", int, 1_000_000),
        ("50_000", int, 50_000),
        ("2.5e-3", float, 0.0025),
        ("7", float, 7.0),
        ("true", bool, True),
        ("No", bool, False),
        ("0", bool, False),
        ("none", float | None, None),
        ("0.5", float | None, 0.5),
        ("256,256", tuple[int, ...], (256, 256)),
        ("(32, 32, 16)", tuple[int, ...], (32, 32, 16)),
        ("[8]", tuple[int, ...], (8,)),
        ("8", tuple[int, ...], (8,)),
        ("()", tuple[int, ...], ()),
        ("((32,8,4),(64,4,2))", tuple[tuple[int, int, int], ...], ((32, 8, 4), (64, 4, 2))),
        ("mse", Literal["huber", "mse"], "mse"),
        ("blue", Color, Color.BLUE),
        ("hello world", str, "hello world"),
    ],
)
def test_parse_value_by_type(text, tp, expected):
    value = parse_value(text, tp, "k")
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "tp", "fragment"),
    [
        ("2.5", int, "expected int"),
        ("abc", float, "expected float"),
        ("maybe", bool, "expected a bool"),
        ("none", int, "expected int"),
        ("((1, 2),)", tuple[tuple[int, int, int], ...], "expected 3 items"),
        ("(1, 2)", tuple[tuple[int, int, int], ...], "expected 3 items (tuple[int, int, int]), got (1, 2)"),
        ("sse", Literal["huber", "mse"], "expected one of ['huber', 'mse']"),
        ("1,x", tuple[int, ...], "expected tuple[int, ...]"),
    ],
)
def test_parse_value_errors_name_key_and_expected_type(text, tp, fragment):
    with pytest.raises(ConfigError, match=r"the\.key") as e:
        parse_value(text, tp, "the.key")
    assert fragment in str(e.value)


def test_overrides_nested_dotted_and_unique_shorthand():
    cfg = apply_overrides(
        Outer(),
        [("inner.learning_rate", "2.3e-3"), ("layers", "256,256"), ("--progress", "false"), ("name", "run")],
    )
    assert cfg.inner.learning_rate == 0.0023
    assert cfg.inner.layers == (256, 256)
    assert cfg.loop.progress is False
    assert cfg.name == "run"
    assert Outer().inner.learning_rate == 1e-3  # the original is untouched


def test_dashes_are_underscores_and_typed_values_pass_through():
    cfg = apply_overrides(Outer(), [("inner.learning-rate", 0.5), ("loop.steps", 7)])
    assert cfg.inner.learning_rate == 0.5 and cfg.loop.steps == 7


def test_unknown_key_names_it_and_the_closest_keys():
    with pytest.raises(ConfigError) as e:
        apply_overrides(Outer(), [("inner.learning_rat", "1")])
    msg = str(e.value)
    assert "unknown config key 'inner.learning_rat'" in msg
    assert "inner.learning_rate" in msg


def test_ambiguous_shorthand_lists_the_full_keys():
    with pytest.raises(ConfigError, match="ambiguous") as e:
        resolve_key(Outer(), "seed")
    assert "inner.seed" in str(e.value) and "loop.seed" in str(e.value)


def test_bad_value_names_the_full_key():
    with pytest.raises(ConfigError, match=r"loop\.steps: expected int, got 'many'"):
        apply_overrides(Outer(), [("steps", "many")])


def test_json_round_trip_restores_tuples_enums_and_nesting():
    cfg = apply_overrides(Outer(), [("conv", "((32,8,4),)"), ("color", "blue"), ("clip", "10")])
    data = json.loads(json.dumps(to_dict(cfg)))
    assert data["inner"]["conv"] == [[32, 8, 4]]
    back = from_dict(Outer, data)
    assert back == cfg
    assert isinstance(back.inner.conv[0], tuple)


def test_from_dict_rejects_unknown_and_ill_typed_keys():
    with pytest.raises(ConfigError, match=r"unknown config key 'inner\.learnin_rate'.*inner\.learning_rate"):
        from_dict(Outer, {"inner": {"learnin_rate": 1.0}})
    with pytest.raises(ConfigError, match=r"loop\.steps: expected int"):
        from_dict(Outer, {"loop": {"steps": "ten"}})


def test_a_mapping_field_is_coerced_by_its_key_and_value_types():
    from drivetrain.train.fields import coerce

    assert coerce({"a": 1, "b": 2.5}, dict[str, float], "agent.w") == {"a": 1.0, "b": 2.5}
    assert coerce({}, dict[str, int], "agent.w") == {}
    with pytest.raises(ConfigError, match=r"agent.w\['a'\]: expected float, got 'x'"):
        coerce({"a": "x"}, dict[str, float], "agent.w")
    with pytest.raises(ConfigError, match=r"agent.w: expected dict\[str, float\], got \[1\]"):
        coerce([1], dict[str, float], "agent.w")


def test_a_path_field_goes_to_json_as_text_and_comes_back_a_path():
    import pathlib

    from drivetrain.train.fields import coerce, to_dict

    @dataclasses.dataclass(frozen=True)
    class WithPath:
        data: pathlib.Path = pathlib.Path("data/x.npz")
        weights: dict[str, float] = dataclasses.field(default_factory=lambda: {"a": 1.0})

    text = json.dumps(to_dict(WithPath()))
    assert json.loads(text) == {"data": "data/x.npz", "weights": {"a": 1.0}}
    assert coerce("data/y.npz", pathlib.Path, "data") == pathlib.Path("data/y.npz")


def test_overrides_are_checked_together_whatever_their_order():
    from drivetrain.train import get_preset

    base = get_preset("cartpole-dqn").build()
    pairs = [("execution.samples_per_insert", "8"), ("execution.rate_error_buffer", "2")]
    a = apply_overrides(base, pairs)
    b = apply_overrides(base, pairs[::-1])  # the buffer first: alone it would be refused
    assert a == b and (b.execution.samples_per_insert, b.execution.rate_error_buffer) == (8.0, 2.0)
    assert apply_overrides(base, [("batch_size", "8"), ("batch_size", "16")]).loop.batch_size == 16


def test_one_conv_layer_needs_no_outer_tuple():
    from drivetrain.train import get_preset

    base = get_preset("breakout-dqn").build()
    for text in ("(32,8,4)", "((32,8,4),)", "32,8,4"):
        assert apply_overrides(base, [("conv_layers", text)]).agent.conv_layers == ((32, 8, 4),)
    two = apply_overrides(base, [("conv_layers", "(32,8,4),(64,(4,3),2)")]).agent.conv_layers
    assert two == ((32, 8, 4), (64, (4, 3), 2))


def test_a_mapping_with_int_keys_survives_json():
    from drivetrain.train.fields import coerce

    assert coerce(json.loads(json.dumps({0: 1.0, 1: 2})), dict[int, float], "w") == {0: 1.0, 1: 2.0}


def test_numpy_scalars_and_enum_keys_go_to_json():
    import numpy as np

    from drivetrain.train.fields import to_dict

    class Color(enum.Enum):
        RED = "red"

    @dataclasses.dataclass(frozen=True)
    class WithNumpy:
        seed: int = 0
        weights: dict = dataclasses.field(default_factory=dict)

    text = json.dumps(to_dict(WithNumpy(np.int64(3), {Color.RED: np.float32(0.5)})))
    assert json.loads(text) == {"seed": 3, "weights": {"red": 0.5}}
