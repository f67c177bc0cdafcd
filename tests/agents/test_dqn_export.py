"""Exported greedy policies act like agent.policy, without the training code."""

import subprocess
import sys

import numpy as np
import pytest

from drivetrain.agents import DQNConfig, make_dqn
from drivetrain.core import specs, types
from drivetrain.export import export_policy, load_exported_policy

VECTOR = specs.ArraySpec((4,), np.float32, "observation")
IMAGE = specs.StackedFramesSpec((36, 36, 2), np.uint8, 0, 255, "observation")


@pytest.mark.parametrize(
    ("obs_spec", "config", "minimum"),
    [
        (VECTOR, DQNConfig(fc_layers=(64, 64)), 0),
        (IMAGE, DQNConfig(conv_layers=((8, 4, 2), (16, 3, 2)), fc_layers=(32,), dueling=True), 2),
    ],
    ids=["mlp", "cnn-dueling"],
)
def test_exported_policy_picks_the_same_actions(tmp_path, obs_spec, config, minimum):
    actions = specs.BoundedArraySpec((), np.int32, minimum, minimum + 5, "action")
    agent = make_dqn(config, types.time_step_spec(obs_spec), actions, seed=0)
    path = tmp_path / "policy.pt2"
    assert export_policy(agent, path) == path
    exported = load_exported_policy(path)
    rng = np.random.default_rng(0)
    for batch_size in (1, 7, 64):
        obs = specs.sample(obs_spec, rng, (batch_size,))
        expected = agent.policy.action(types.restart(obs))
        got = exported.action(obs)
        np.testing.assert_array_equal(got, expected.action)
        assert got.dtype == np.int32 and got.shape == (batch_size,)
        np.testing.assert_allclose(exported.q_values(obs), expected.info["q_values"], rtol=1e-5, atol=1e-6)
    assert exported.num_actions == 6 and exported.observation_shape == obs_spec.shape


def test_export_accepts_policies_and_rejects_others(tmp_path):
    agent = make_dqn(
        DQNConfig(fc_layers=(8,)), types.time_step_spec(VECTOR), specs.BoundedArraySpec((), np.int64, 0, 1), 0
    )
    export_policy(agent.collect_policy, tmp_path / "from_collect.pt2")  # the greedy part of it
    obs = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        load_exported_policy(tmp_path / "from_collect.pt2").action(obs),
        agent.policy.action(types.restart(obs)).action,
    )
    with pytest.raises(TypeError, match="expected an agent or a policy with export_module"):
        export_policy(object(), tmp_path / "x.pt2")
    exported = load_exported_policy(tmp_path / "from_collect.pt2")
    with pytest.raises(ValueError, match=r"expected observations of shape \[B, 4\], got \(4,\)"):
        exported.action(obs[0])
    with pytest.raises(ValueError, match="expected observation dtype float32, got float64"):
        exported.action(obs.astype(np.float64))


def test_exported_policy_loads_without_the_training_code(tmp_path):
    agent = make_dqn(
        DQNConfig(fc_layers=(8,)), types.time_step_spec(VECTOR), specs.BoundedArraySpec((), np.int64, 0, 2), 0
    )
    path = tmp_path / "policy.pt2"
    export_policy(agent, path)
    obs = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    expected = agent.policy.action(types.restart(obs)).action
    script = f"""
import sys
import numpy as np
from drivetrain.export import load_exported_policy
policy = load_exported_policy({str(path)!r})
print(policy.action(np.array({obs.tolist()!r}, np.float32)).tolist())
loaded = [m for m in sys.modules if m.startswith(("drivetrain.agents", "drivetrain.networks", "drivetrain.train"))]
assert not loaded, loaded
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(expected.tolist())


def test_loading_a_file_that_export_policy_did_not_write_says_so(tmp_path):
    from drivetrain.export import load_exported_policy

    (tmp_path / "agent.pkl").write_bytes(b"\x80\x04not a zip archive")
    with pytest.raises(ValueError, match=r"agent.pkl is not an exported program \(.pt2\) of export_policy"):
        load_exported_policy(tmp_path / "agent.pkl")
    with pytest.raises(FileNotFoundError, match=r"no file .*missing\.pt2"):
        load_exported_policy(tmp_path / "missing.pt2")


def test_a_bare_loaded_program_gives_plain_tensors_and_a_cnn_exports_without_warnings(tmp_path):
    import warnings

    import torch

    agent = make_dqn(
        DQNConfig(conv_layers=((8, 4, 2),), fc_layers=(16,)), types.time_step_spec(IMAGE), ACTIONS3, seed=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "No complete tensor found in the group!"
        export_policy(agent, tmp_path / "cnn.pt2")
    program = torch.export.load(str(tmp_path / "cnn.pt2")).module()
    actions, q = program(torch.zeros((2, 36, 36, 2), dtype=torch.uint8))
    assert not actions.requires_grad and not q.requires_grad
    assert q.numpy().shape == (2, 3)  # what the docs show, outside no_grad
    assert all(p.requires_grad for p in agent.q_network.parameters())  # the agent's own are untouched


ACTIONS3 = specs.BoundedArraySpec((), np.int64, 0, 2)


def test_a_users_wrapper_that_changes_actions_is_not_exported_as_its_inner_policy(tmp_path):
    from drivetrain.core.policy import Policy

    class Masked(Policy):
        def __init__(self, policy):
            super().__init__(policy.time_step_spec, policy.action_spec, info_spec=policy.info_spec)
            self.wrapped = policy

        def _action(self, time_step, policy_state):
            return self.wrapped.action(time_step)._replace(
                action=np.zeros(len(time_step.step_type), np.int64)
            )

    agent = make_dqn(DQNConfig(fc_layers=(8,)), types.time_step_spec(VECTOR), ACTIONS3, seed=0)
    with pytest.raises(
        TypeError, match="got Masked: a wrapper that changes actions has to export them itself"
    ):
        export_policy(Masked(agent.policy), tmp_path / "p.pt2")
    assert not (tmp_path / "p.pt2").exists()
