"""Sequences for recurrent agents: stored state of the first step, burn-in split, masks."""

import numpy as np
import pytest
from replay_data import FIRST, LAST, MID, Stream, data_spec

import drivetrain as dt
from drivetrain.core import types
from drivetrain.envs.testing import CountingEnv
from drivetrain.policies.testing import CountingPolicy
from drivetrain.replay import SampleInfo, UniformReplay, sample_sequences, split_sequence
from drivetrain.replay.sequences import episode_mask, initial_state


def collected(num_steps=120):
    env = CountingEnv([4, 7], truncate=[True, False])
    policy = CountingPolicy(env.time_step_spec(), env.action_spec())
    replay = UniformReplay(policy.trajectory_spec, 200, 2, seed=0)
    dt.StepDriver(env, policy, [replay.add_batch], num_steps=num_steps).run()
    return replay


def test_sequences_start_from_the_state_the_policy_acted_from():
    replay = collected()
    seq = sample_sequences(replay, batch_size=64, length=5, burn_in=3)
    assert seq.burn_in.observation.shape == (64, 3, 3) and seq.train.observation.shape == (64, 5, 3)
    # CountingPolicy's state counts the steps of the episode, so it equals CountingEnv's t.
    np.testing.assert_array_equal(seq.initial_state, seq.burn_in.observation[:, 0, 1])
    assert np.any(seq.initial_state > 0)  # sequences start mid-episode too
    assert seq.initial_state.dtype == np.int64
    np.testing.assert_array_equal(seq.mask, seq.train.step_type != LAST)
    # every stored state is the one the policy acted from (boundaries included)
    for part in (seq.burn_in, seq.train):
        np.testing.assert_array_equal(part.policy_info["state"], part.observation[..., 1])


def test_episode_mask_by_hand():
    w = types.Trajectory(
        np.array([[MID, MID, LAST, FIRST, MID], [FIRST, MID, MID, MID, MID]], np.int32),
        np.zeros((2, 5, 1), np.float32),
        np.zeros((2, 5), np.int64),
        {},
        np.array([[MID, LAST, FIRST, MID, MID], [MID, MID, MID, MID, LAST]], np.int32),
        np.zeros((2, 5), np.float32),
        np.ones((2, 5), np.float32),
    )
    np.testing.assert_array_equal(episode_mask(w), [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    info = SampleInfo(np.zeros(2, np.int64), np.ones(2), np.ones(2, np.float32))
    with pytest.raises(KeyError, match="no policy_info\\['state'\\]"):
        split_sequence(w, info, burn_in=2)
    with pytest.raises(KeyError, match="stateless"):
        initial_state(w)


def test_burn_in_must_leave_training_steps():
    stream = Stream(1, lengths=(20, 20))
    replay = UniformReplay(data_spec(), 30, 1)
    for _ in range(10):
        replay.add_batch(stream.next())
    window, info = replay.sample(2, 4)
    with pytest.raises(ValueError, match=r"burn_in must be in 0\.\.3"):
        split_sequence(window, info, burn_in=4)
    with pytest.raises(ValueError, match="length must be >= 1"):
        sample_sequences(replay, 2, 0)
