"""The packages export their names lazily: every public name still resolves, and a name that
is also a submodule's (``drivetrain.envs.make``) stays the function when the submodule loads."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

LAZY_PACKAGES = [
    "drivetrain",
    "drivetrain.agents",
    "drivetrain.agents.dqn",
    "drivetrain.agents.ppo",
    "drivetrain.agents.r2d2",
    "drivetrain.agents.reinforce",
    "drivetrain.agents.sac",
    "drivetrain.agents.td3",
    "drivetrain.envs",
    "drivetrain.train",
]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves_and_is_listed(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_the_subpackages_are_attributes():
    import drivetrain as dt

    assert dt.envs.__name__ == "drivetrain.envs" and dt.metrics.__name__ == "drivetrain.core.metrics"
    assert dt.agents.dqn.DQNConfig is dt.agents.DQNConfig
    assert dt.train.presets.DEFAULT_PRESET == "cartpole-dqn"


SHADOW = """
import drivetrain as dt
import drivetrain.envs.atari_gymnasium  # imports drivetrain.envs.make inside a function, later
import drivetrain.envs.make
from drivetrain.envs import make
assert callable(dt.envs.make) and dt.envs.make is make and make.__module__ == "drivetrain.envs.make", dt.envs.make
env = dt.envs.make("CartPole-v1", num_envs=1, seed=0)
env.close()
print("ok")
"""


def test_envs_make_stays_the_function_when_its_module_is_imported_later():
    done = subprocess.run(
        [sys.executable, "-c", SHADOW], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_agent_configs_import_without_torch_and_find_their_builders_later():
    code = (
        "import sys\n"
        "from drivetrain.agents import DQNConfig, SACConfig\n"
        "from drivetrain.agents.protocol import is_agent_config\n"
        "from drivetrain.train.config import ExperimentConfig\n"
        "config = ExperimentConfig(agent=SACConfig())\n"
        "assert is_agent_config(config.agent) and not is_agent_config(object())\n"
        "assert 'torch' not in sys.modules\n"
        "from drivetrain.agents import builder_for, builder_named\n"
        "assert builder_for(DQNConfig()).kind == 'dqn' and builder_named('td3').kind == 'td3'\n"
        "assert 'torch' in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
