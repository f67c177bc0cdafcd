"""``drivetrain check-env``: a preset's or a Gymnasium id's environment against the protocol."""

import sys
import textwrap

import pytest

from drivetrain.cli import main


def test_a_gymnasium_id_and_a_preset_pass(capsys):
    assert main(["check-env", "CartPole-v1", "--steps", "300", "--num-envs", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CartPole-v1: no problems in 300 steps of 3 environments (")
    assert main(["check-env", "cartpole-masked-rdqn", "--steps", "50"]) == 0
    assert capsys.readouterr().out.startswith("preset cartpole-masked-rdqn (CartPole-v1): no problems")


def test_a_broken_custom_environment_lists_its_problems_with_status_1(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_envs.py").write_text(
        textwrap.dedent(
            """
            import gymnasium as gym
            import numpy as np

            class Broken(gym.Env):
                observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
                action_space = gym.spaces.Discrete(2)

                def reset(self, seed=None, options=None):
                    super().reset(seed=seed)
                    self.t = 0
                    return np.zeros(2, np.float32), {}

                def step(self, action):
                    self.t += 1
                    obs = np.full(2, 5.0 if self.t == 3 else 0.0, np.float32)
                    return obs, 1.0, self.t >= 6, False, {}

            gym.register("BrokenForCheck-v0", entry_point=Broken)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_envs", raising=False)
    assert main(["check-env", "broken_envs:BrokenForCheck-v0", "--steps", "20"]) == 1
    out = capsys.readouterr().out
    assert "check_env found 1 problem(s)" in out and "outside the spec's inclusive bounds" in out


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("NoSuchEnv-v0", "'NoSuchEnv-v0' is neither a preset nor a Gymnasium id"),
        ("no_such_module_here:X-v0", "cannot import 'no_such_module_here'"),
    ],
)
def test_an_unknown_environment_is_one_line(env, message, capsys):
    assert main(["check-env", env]) == 2
    assert message in capsys.readouterr().err
