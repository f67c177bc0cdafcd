import numpy as np
import pytest

from drivetrain.core import types
from drivetrain.core.types import StepType


def test_restart_transition_termination_truncation():
    obs = np.zeros((3, 2), np.float32)
    first = types.restart(obs)
    assert first.step_type.tolist() == [0, 0, 0]
    assert first.reward.tolist() == [0, 0, 0] and first.discount.tolist() == [1, 1, 1]
    assert first.is_first().all() and first.batch_size == 3

    mid = types.transition(obs, reward=[1, 2, 3])
    assert mid.is_mid().all() and mid.reward.dtype == np.float32 and mid.discount.tolist() == [1, 1, 1]

    term = types.termination(obs, reward=1.5)
    assert term.is_last().all() and term.discount.tolist() == [0, 0, 0] and term.is_terminated().all()
    assert not term.is_truncated().any()

    trunc = types.truncation(obs, reward=[0, 1, 0])
    assert trunc.is_last().all() and trunc.discount.tolist() == [1, 1, 1] and trunc.is_truncated().all()


def test_scalar_needs_batch_size_for_empty_observation():
    with pytest.raises(ValueError, match="batch size"):
        types.restart(())
    assert types.restart((), batch_size=2).step_type.shape == (2,)


def test_trajectory_takes_reward_and_discount_from_next_step():
    obs = np.zeros((2, 1), np.float32)
    ts = types.transition(obs, reward=[5, 5])
    nxt = types.TimeStep(
        np.array([StepType.LAST, StepType.MID], np.int32),
        np.array([1.0, 2.0], np.float32),
        np.array([0.0, 1.0], np.float32),
        obs + 1,
    )
    traj = types.from_transition(ts, types.PolicyStep(np.array([0, 1])), nxt)
    assert traj.reward.tolist() == [1.0, 2.0] and traj.discount.tolist() == [0.0, 1.0]
    assert traj.is_last().tolist() == [True, False]
    assert traj.is_boundary().tolist() == [False, False]
    boundary = types.from_transition(nxt, types.PolicyStep(np.array([0, 1])), types.restart(obs))
    assert boundary.is_boundary().tolist() == [True, False]


def test_specs_of_time_steps_and_trajectories():
    from drivetrain.core import specs

    obs_spec = specs.ArraySpec((4,), np.float32)
    ts_spec = types.time_step_spec(obs_spec)
    assert ts_spec.discount.minimum == 0 and ts_spec.discount.maximum == 1
    traj_spec = types.trajectory_spec(ts_spec, specs.BoundedArraySpec((), np.int64, 0, 1), {})
    assert traj_spec.next_step_type == ts_spec.step_type and traj_spec.observation == obs_spec
