"""MaskVelocity: CartPole without velocities, through make(mask_velocity=True) and directly."""

import gymnasium
import numpy as np
import pytest

import drivetrain as dt
from drivetrain.envs.testing import ScriptedGymEnv
from drivetrain.envs.wrappers import MaskVelocity


def test_cartpole_keeps_cart_position_and_pole_angle():
    masked = dt.envs.make("CartPole-v1", num_envs=2, seed=0, mask_velocity=True)
    full = dt.envs.make("CartPole-v1", num_envs=2, seed=0)
    spec = masked.observation_spec()
    assert spec.shape == (2,)
    np.testing.assert_allclose(spec.maximum, [4.8, 0.41887903], rtol=1e-6)
    ts_m, ts_f = masked.reset(), full.reset()
    rng = np.random.default_rng(0)
    for _ in range(50):
        np.testing.assert_array_equal(ts_m.observation, ts_f.observation[:, [0, 2]])
        np.testing.assert_array_equal(ts_m.step_type, ts_f.step_type)
        a = rng.integers(0, 2, 2)
        ts_m, ts_f = masked.step(a), full.step(a)


def test_mask_velocity_works_on_the_gymnasium_backend_too():
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0, mask_velocity=True, backend="gymnasium")
    assert env.reset().observation.shape == (2, 2)


def test_other_known_environments():
    env = MaskVelocity(gymnasium.make("Pendulum-v1"))
    obs, _ = env.reset(seed=0)
    full, _ = gymnasium.make("Pendulum-v1").reset(seed=0)
    np.testing.assert_array_equal(obs, full[:2])
    assert env.observation_space.shape == (2,)


def test_unknown_environments_get_a_clear_error_and_keep_overrides_it():
    with pytest.raises(ValueError, match=r"does not know which observation entries of ScriptedGymEnv"):
        dt.envs.make(lambda: ScriptedGymEnv(), mask_velocity=True)
    with pytest.raises(ValueError, match=r"known environments: \['Acrobot-v1', 'CartPole-v0'"):
        MaskVelocity(ScriptedGymEnv())
    env = MaskVelocity(ScriptedGymEnv(), keep=[0, 3])
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,) and obs[0] == 0.0
    with pytest.raises(ValueError, match=r"keep=\[4\] is not a non-empty set of indices"):
        MaskVelocity(ScriptedGymEnv(), keep=[4])
