"""The NumPy side of a DQN update: the one-step fast path equals n_step_transitions."""

import numpy as np
import pytest
from dqn_tables import FIRST, LAST, MID

from drivetrain.agents.dqn.batch import make_inputs
from drivetrain.core import types
from drivetrain.replay.nstep import n_step_transitions


def random_windows(seed, batch=256, length=2):
    rng = np.random.default_rng(seed)
    step_type = rng.choice([FIRST, MID, LAST], size=(batch, length)).astype(np.int32)
    return types.Trajectory(
        step_type=step_type,
        observation=rng.standard_normal((batch, length, 3)).astype(np.float32),
        action=rng.integers(2, 6, (batch, length)),
        policy_info={},
        next_step_type=rng.choice([FIRST, MID, LAST], size=(batch, length)).astype(np.int32),
        reward=rng.standard_normal((batch, length)).astype(np.float32) * 3,
        discount=rng.choice([0.0, 1.0], size=(batch, length)).astype(np.float32),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("clip", "scale"), [(None, 1.0), (1.0, 0.1)])
def test_one_step_fast_path_matches_n_step_transitions(seed, clip, scale):
    window = random_windows(seed)
    weights = np.random.default_rng(seed).random(256)
    fast = make_inputs(window, 0.97, 1, 2, scale, clip, weights)
    reward = window.reward if clip is None else np.clip(window.reward, -clip, clip)
    ref = n_step_transitions(window._replace(reward=reward * np.float32(scale)), 0.97, 1)
    np.testing.assert_array_equal(fast.observation, ref.observation)
    np.testing.assert_array_equal(fast.next_observation, ref.next_observation)
    np.testing.assert_array_equal(fast.action, ref.action - 2)
    np.testing.assert_allclose(fast.scalars[0], ref.reward, rtol=1e-6)
    np.testing.assert_allclose(fast.scalars[1], ref.discount, rtol=1e-6)
    np.testing.assert_allclose(fast.scalars[2], ref.valid * weights.astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(fast.valid, ref.valid)
    assert fast.num_valid == int(ref.valid.sum()) > 0


def test_n_step_inputs_come_from_n_step_transitions():
    window = random_windows(5, length=4)
    inputs = make_inputs(window, 0.9, 3, 2)
    ref = n_step_transitions(window, 0.9, 3)
    np.testing.assert_array_equal(inputs.next_observation, ref.next_observation)
    np.testing.assert_allclose(inputs.scalars[0], ref.reward)
    np.testing.assert_allclose(inputs.scalars[1], ref.discount)
    np.testing.assert_array_equal(inputs.scalars[2], ref.valid.astype(np.float32))
