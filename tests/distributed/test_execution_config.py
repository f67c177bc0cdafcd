"""The ``execution`` section: parsed from the command line, checked by field, saved and loaded."""

import dataclasses
import json

import pytest

from drivetrain.cli import _resolve_overrides, _split_train_args, main
from drivetrain.core.config_checks import ConfigTypeError
from drivetrain.distributed.config import ExecutionConfig, apex_epsilon
from drivetrain.train import ExperimentConfig, get_preset, load_config, save_config
from drivetrain.train.config import config_to_dict
from drivetrain.train.config_resume import changeable_on_resume, check_resume
from drivetrain.train.fields import ConfigError, apply_overrides


def test_the_scale_out_command_line_parses_into_the_section():
    own, overrides = _split_train_args(
        ["cartpole-dqn", "--execution.backend", "ray", "--execution.collectors", "4",
         "--execution.samples_per_insert=8", "--execution.ray_address", "auto", "--apex_epsilons"]
    )  # fmt: skip
    assert own == ["cartpole-dqn"]
    config = _resolve_overrides(get_preset("cartpole-dqn").build(), overrides)
    assert config.execution == ExecutionConfig(
        backend="ray", collectors=4, samples_per_insert=8.0, ray_address="auto", apex_epsilons=True
    )
    assert config.loop == get_preset("cartpole-dqn").build().loop  # nothing else changed


def test_defaults_are_the_local_loop():
    config = get_preset("cartpole-dqn").build()
    assert config.execution == ExecutionConfig()
    assert config.execution.backend == "local"
    assert config.execution.num_envs(3) == 3
    assert dataclasses.replace(config.execution, envs_per_collector=5).num_envs(3) == 5


def test_train_help_documents_every_execution_field(capsys):
    assert main(["train", "cartpole-dqn", "--help"]) == 0
    out = capsys.readouterr().out
    assert "[execution]" in out
    assert "--execution.backend {local,ray,threads} = 'local'" in out
    assert "--execution.collectors int = 2" in out
    for f in dataclasses.fields(ExecutionConfig):
        assert f"--execution.{f.name} " in out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"collectors": 0}, r"^ExecutionConfig\.collectors: expected >= 1, got 0$"),
        ({"envs_per_collector": 0}, r"^ExecutionConfig\.envs_per_collector: expected None or >= 1, got 0$"),
        ({"samples_per_insert": 0.0}, r"^ExecutionConfig\.samples_per_insert: expected .*> 0, got 0\.0$"),
        (
            {"samples_per_insert": float("inf")},
            r"^ExecutionConfig\.samples_per_insert: expected .*, got inf$",
        ),
        (
            {"samples_per_insert": 4.0, "rate_error_buffer": -1.0},
            r"^ExecutionConfig\.rate_error_buffer: expected None or a finite number > 0, got -1\.0$",
        ),
        (
            {"rate_error_buffer": 10.0},
            r"^ExecutionConfig\.rate_error_buffer: expected None when samples_per_insert is None",
        ),
        ({"weight_publish_period": 0}, r"^ExecutionConfig\.weight_publish_period: expected >= 1, got 0$"),
        ({"batches_per_sample": 0}, r"^ExecutionConfig\.batches_per_sample: expected >= 1, got 0$"),
        ({"ray_address": " "}, r"^ExecutionConfig\.ray_address: expected None \(start a local Ray\)"),
    ],
)
def test_each_bad_value_is_refused_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        ExecutionConfig(**overrides)


def test_wrong_types_are_refused_by_name():
    with pytest.raises(
        ConfigTypeError, match=r"^ExecutionConfig\.backend: expected 'local', 'ray' or 'threads', got 'dask'$"
    ):
        ExecutionConfig(backend="dask")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigTypeError, match=r"^ExecutionConfig\.collectors: expected int, got '4' \(str\)$"
    ):
        ExecutionConfig(collectors="4")  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match=r"^ExperimentConfig\.execution: expected ExecutionConfig"):
        ExperimentConfig(execution={"backend": "ray"})


def test_a_bad_value_on_the_command_line_is_an_error_naming_the_field(capsys, tmp_path):
    status = main(["train", "cartpole-dqn", "--run-dir", str(tmp_path / "r"), "--execution.collectors", "0"])
    assert status == 2
    assert "ExecutionConfig.collectors: expected >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["train", "--execution.backend", "dask", "--run-dir", str(tmp_path / "r")]) == 2
    assert "execution.backend" in capsys.readouterr().err


def test_backend_alone_is_ambiguous_between_the_env_and_the_execution():
    with pytest.raises(ConfigError, match=r"ambiguous: use one of env\.backend, execution\.backend"):
        apply_overrides(get_preset("cartpole-dqn").build(), [("backend", "ray")])


def test_config_json_round_trips_the_section(tmp_path):
    execution = ExecutionConfig(
        backend="ray",
        collectors=3,
        envs_per_collector=4,
        samples_per_insert=0.5,
        rate_error_buffer=100.0,
        weight_publish_period=5,
        batches_per_sample=2,
        ray_address="ray://head:10001",
        apex_epsilons=True,
    )
    config = dataclasses.replace(get_preset("cartpole-dqn").build(), execution=execution)
    save_config(config, tmp_path / "config.json")
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["execution"]["collectors"] == 3 and saved["execution"]["ray_address"] == "ray://head:10001"
    assert load_config(tmp_path / "config.json") == config


def test_an_old_config_without_the_section_loads_with_the_defaults(tmp_path):
    config = get_preset("cartpole-dqn").build()
    data = config_to_dict(config)
    del data["execution"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    loaded = load_config(tmp_path / "config.json")
    assert loaded.execution == ExecutionConfig()
    assert loaded == config
    assert check_resume(loaded, config, tmp_path) == []  # resuming an old run changes nothing


def test_an_unknown_key_in_the_section_is_named(tmp_path):
    data = config_to_dict(get_preset("cartpole-dqn").build())
    data["execution"]["colectors"] = 2
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(
        ConfigError, match=r"unknown config key 'execution\.colectors'.*execution\.collectors"
    ):
        load_config(tmp_path / "config.json")


def test_resume_may_change_publishing_address_and_exploration_not_the_topology():
    saved = dataclasses.replace(get_preset("cartpole-dqn").build(), execution=ExecutionConfig(backend="ray"))
    keys = changeable_on_resume(saved)
    assert {"execution.weight_publish_period", "execution.ray_address", "execution.apex_epsilons"} <= keys
    changed = dataclasses.replace(
        saved,
        execution=dataclasses.replace(saved.execution, weight_publish_period=10, ray_address="auto"),
    )
    assert check_resume(saved, changed, "run") == [
        "execution.weight_publish_period: 1 -> 10",
        "execution.ray_address: None -> 'auto'",
    ]
    for name, value in [
        ("backend", "local"),
        ("collectors", 3),
        ("envs_per_collector", 2),
        ("samples_per_insert", 2.0),
        ("batches_per_sample", 1),
    ]:
        refused = dataclasses.replace(saved, execution=dataclasses.replace(saved.execution, **{name: value}))
        with pytest.raises(ConfigError, match=rf"cannot resume run with these changes: execution\.{name}: "):
            check_resume(saved, refused, "run")


def test_apex_epsilons_span_0_4_to_0_4_to_the_8th():
    assert apex_epsilon(0, 1) == pytest.approx(0.4)
    assert [apex_epsilon(i, 3) for i in range(3)] == pytest.approx([0.4, 0.4**4.5, 0.4**8])
    assert apex_epsilon(7, 8) == pytest.approx(0.4**8)
    with pytest.raises(ValueError, match=r"index must be in \[0, 2\), got 2"):
        apex_epsilon(2, 2)
