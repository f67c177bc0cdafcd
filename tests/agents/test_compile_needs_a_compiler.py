"""compile=True without a C++ compiler: a clear error when the agent is built, not deep in the first update."""

import numpy as np
import pytest
import torch
from torch._inductor import config as inductor_config
from torch._inductor.cpp_builder import cpp_compiler_search

from drivetrain.agents import DQN
from drivetrain.agents.ppo import PPOConfig, make_ppo
from drivetrain.agents.sac import SACConfig, make_sac
from drivetrain.agents.td3 import TD3Config, make_td3
from drivetrain.core import specs, types
from drivetrain.networks import QNetwork

OBS = specs.ArraySpec((3,), np.float32, "observation")
DISCRETE = specs.BoundedArraySpec((), np.int64, 0, 1, "action")
CONTINUOUS = specs.BoundedArraySpec((1,), np.float32, -2.0, 2.0, "action")


@pytest.fixture
def no_compiler():
    cpp_compiler_search.cache_clear()  # the search is cached per process
    with inductor_config.patch({"cpp.cxx": ("drivetrain-no-such-c++-compiler",)}):
        yield
    cpp_compiler_search.cache_clear()


def dqn():
    net = QNetwork(OBS, DISCRETE, fc_layers=(8,), seed=0)
    return DQN(types.time_step_spec(OBS), DISCRETE, net, torch.optim.Adam(net.parameters()), compile=True)


def ppo():
    return make_ppo(PPOConfig(compile=True), types.time_step_spec(OBS), DISCRETE, seed=0)


def sac():
    return make_sac(SACConfig(compile=True), types.time_step_spec(OBS), CONTINUOUS, seed=0)


def td3():
    return make_td3(TD3Config(compile=True), types.time_step_spec(OBS), CONTINUOUS, seed=0)


@pytest.mark.parametrize("build,name", [(dqn, "DQN"), (ppo, "PPO"), (sac, "SAC"), (td3, "TD3")])
def test_a_missing_compiler_is_named_when_the_agent_is_built(no_compiler, build, name):
    with pytest.raises(RuntimeError, match=rf"{name}: compile=True needs a C\+\+ compiler .* compile=False"):
        build()


def test_with_the_compiler_the_agents_build():
    cpp_compiler_search.cache_clear()
    for build in (dqn, ppo, sac, td3):
        build()
