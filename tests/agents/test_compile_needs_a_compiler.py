"""compile=True without a C++ compiler: a clear error when the agent is built, not deep in the first
update; compile="auto": compiled where a compiler is found on the CPU, eager (with a warning) elsewhere."""

import warnings

import numpy as np
import pytest
import torch
from torch._inductor import config as inductor_config
from torch._inductor.cpp_builder import cpp_compiler_search

from drivetrain.agents import DQN, compiling
from drivetrain.agents.compiling import CompilerMissingError
from drivetrain.agents.ppo import PPOConfig, make_ppo
from drivetrain.agents.sac import SACConfig, make_sac
from drivetrain.agents.td3 import TD3Config, make_td3
from drivetrain.core import specs, types
from drivetrain.networks import QNetwork

OBS = specs.ArraySpec((3,), np.float32, "observation")
DISCRETE = specs.BoundedArraySpec((), np.int64, 0, 1, "action")
CONTINUOUS = specs.BoundedArraySpec((1,), np.float32, -2.0, 2.0, "action")


def clear_searches():
    """The compiler search is cached per process, by torch and by drivetrain (and its warning)."""
    cpp_compiler_search.cache_clear()
    compiling._compiler_missing.cache_clear()
    compiling._warn_eager_once.cache_clear()


@pytest.fixture
def no_compiler():
    clear_searches()
    with inductor_config.patch({"cpp.cxx": ("drivetrain-no-such-c++-compiler",)}):
        yield
    clear_searches()


def dqn(compile=True):
    net = QNetwork(OBS, DISCRETE, fc_layers=(8,), seed=0)
    return DQN(types.time_step_spec(OBS), DISCRETE, net, torch.optim.Adam(net.parameters()), compile=compile)


def ppo(compile=True, **kwargs):
    return make_ppo(PPOConfig(compile=compile, **kwargs), types.time_step_spec(OBS), DISCRETE, seed=0)


def sac(compile=True):
    return make_sac(SACConfig(compile=compile), types.time_step_spec(OBS), CONTINUOUS, seed=0)


def td3(compile=True):
    return make_td3(TD3Config(compile=compile), types.time_step_spec(OBS), CONTINUOUS, seed=0)


BUILDS = [dqn, ppo, sac, td3]


@pytest.mark.parametrize("build,name", [(dqn, "DQN"), (ppo, "PPO"), (sac, "SAC"), (td3, "TD3")])
def test_a_missing_compiler_is_named_when_the_agent_is_built(no_compiler, build, name):
    with pytest.raises(
        CompilerMissingError, match=rf"{name}: compile=True needs a C\+\+ compiler .* compile=False"
    ):
        build()


def test_with_the_compiler_the_agents_build():
    clear_searches()
    for build in BUILDS:
        assert build().compiled


@pytest.mark.parametrize("build", BUILDS)
def test_auto_without_a_compiler_trains_eagerly_and_says_so_once(no_compiler, build):
    with pytest.warns(UserWarning, match=r"compile='auto' trains eagerly: no C\+\+ compiler was found"):
        agent = build("auto")
    assert not agent.compiled
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process: a second agent does not warn again
        assert not build("auto").compiled


@pytest.mark.parametrize("build", BUILDS)
def test_auto_with_a_compiler_on_the_cpu_compiles_without_a_warning(build):
    clear_searches()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build("auto").compiled
        assert not build(False).compiled


def test_auto_is_eager_off_the_cpu_and_other_settings_are_refused():
    clear_searches()
    assert compiling.resolve_compile("auto", "cpu", "X") is True
    assert compiling.resolve_compile("auto", torch.device("cuda"), "X") is False  # not measured there
    assert compiling.resolve_compile("auto", "meta", "X") is False
    assert compiling.resolve_compile("auto", "cpu", "X", supported=False) is False  # e.g. a recurrent core
    with pytest.raises(ValueError, match=r"X: compile must be True, False or 'auto', got 'yes'"):
        compiling.resolve_compile("yes", "cpu", "X")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"X: compile must be True, False or 'auto', got 1"):
        compiling.resolve_compile(1, "cpu", "X")  # a number is not a setting
    assert compiling.resolve_compile(np.bool_(True), "cpu", "X") is True


def test_auto_with_a_recurrent_ppo_core_trains_eagerly_and_true_is_refused():
    assert not ppo("auto", core="gru").compiled
    with pytest.raises(ValueError, match=r"PPOConfig.compile: .*False or 'auto' with a recurrent core"):
        PPOConfig(compile=True, core="gru")


def test_the_configs_take_auto_from_the_command_line_and_refuse_other_words():
    from drivetrain.agents.dqn import DQNConfig
    from drivetrain.agents.r2d2 import R2D2Config
    from drivetrain.core.config_checks import ConfigTypeError
    from drivetrain.train import apply_overrides, get_preset
    from drivetrain.train.fields import ConfigError

    config = get_preset("cartpole-dqn").build()
    assert apply_overrides(config, [("agent.compile", "auto")]).agent.compile == "auto"
    assert apply_overrides(config, [("agent.compile", "true")]).agent.compile is True
    with pytest.raises(ConfigError, match=r"agent\.compile"):
        apply_overrides(config, [("agent.compile", "sometimes")])
    for config_type in (DQNConfig, R2D2Config, PPOConfig, SACConfig, TD3Config):
        with pytest.raises(
            ConfigTypeError, match=rf"{config_type.__name__}\.compile: expected bool \| 'auto'"
        ):
            config_type(compile="yes")
    assert R2D2Config(compile="auto").compile == "auto" and R2D2Config(compile=True).compile is True


PROBE_CHECK = """
import threading, time
from torch._inductor import cpu_vec_isa
from drivetrain.agents.compiling import resolve_compile
assert resolve_compile({setting!r}, "cpu", "DQN") is {compiles}
for thread in threading.enumerate():
    if thread.name == "drivetrain-cpu-probe":
        thread.join(120)
print("PROBED", cpu_vec_isa.valid_vec_isa_list.cache_info().currsize)
"""


@pytest.mark.parametrize(("setting", "compiles"), [(True, True), ("auto", True), (False, False)])
def test_an_agent_that_compiles_on_the_cpu_probes_the_cpu_in_the_background(setting, compiles):
    # in a fresh interpreter: inductor caches the probe's answer per process
    import subprocess
    import sys

    code = PROBE_CHECK.format(setting=setting, compiles=compiles)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert f"PROBED {int(compiles)}" in out.stdout  # the main thread never probed: the thread did
