"""UniformReplay: adding, window eligibility, wrap-around, errors, state and files."""

import os
import statistics

import numpy as np
import pytest
from replay_data import LAST, Stream, check_window, data_spec

import drivetrain as dt
from drivetrain.core import specs
from drivetrain.envs.testing import CountingEnv
from drivetrain.policies import RandomPolicy
from drivetrain.replay import SampleInfo, UniformReplay


def filled(capacity=24, num_envs=2, adds=30, seed=0, **kwargs):
    stream = Stream(num_envs, seed=seed)
    replay = UniformReplay(data_spec(), capacity, num_envs, seed=seed, **kwargs)
    for _ in range(adds):
        replay.add_batch(stream.next())
    return stream, replay


def eligible(stream, replay, num_steps):
    """Brute force: (env, t) of every eligible window start."""
    per_env = replay.capacity // replay.num_envs
    out = set()
    for e in range(replay.num_envs):
        for t in range(max(0, stream.t - per_env), stream.t - num_steps + 1):
            if stream.item(e, t).step_type != LAST:
                out.add((e, t))
    return out


def test_driver_fills_it_and_windows_are_consecutive_steps_of_one_env():
    env = CountingEnv([3, 5], truncate=[False, True])
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    replay = UniformReplay(policy.trajectory_spec, capacity=40, num_envs=2, seed=0)
    dt.StepDriver(env, policy, [replay.add_batch], num_steps=50).run()
    batch, info = replay.sample(batch_size=64, num_steps=3)
    assert batch.observation.shape == (64, 3, 3) and batch.action.shape == (64, 3)
    assert isinstance(info, SampleInfo) and info.ids.dtype == np.int64
    obs = batch.observation
    assert np.all(obs[:, :, 0] == obs[:, :1, 0])  # one environment per window
    assert np.all(batch.step_type[:, 0] != LAST)  # never starts at a boundary
    for j in range(2):  # within an episode t increases by one; after a boundary it restarts at 0
        boundary = batch.step_type[:, j + 1] == 0
        np.testing.assert_array_equal(obs[~boundary, j + 1, 1], obs[~boundary, j, 1] + 1)
        np.testing.assert_array_equal(obs[boundary, j + 1, 1], 0)
    # reward = action + 1 in CountingEnv (0 after a boundary)
    mid = batch.step_type != LAST
    np.testing.assert_array_equal(batch.reward[mid], batch.action[mid] + 1)
    np.testing.assert_array_equal(info.ids % 2, obs[:, 0, 0])


def test_sampled_windows_are_exactly_what_was_added():
    stream, replay = filled(capacity=24, num_envs=2, adds=30)
    batch, info = replay.sample(200, 3)
    for row, i in enumerate(info.ids):
        check_window(stream, batch, row, int(i % 2), int(i // 2))


@pytest.mark.parametrize("num_steps", [1, 2, 4])
def test_exactly_the_eligible_windows_are_sampled(num_steps):
    stream, replay = filled(capacity=24, num_envs=2, adds=30, seed=num_steps)
    expected = eligible(stream, replay, num_steps)
    assert replay.num_windows(num_steps) == len(expected)
    _, info = replay.sample(4000, num_steps)
    got = {(int(i % 2), int(i // 2)) for i in info.ids}
    assert got == expected  # never an ineligible one, and (with 4000 draws) every eligible one
    np.testing.assert_allclose(info.probabilities, 1 / len(expected))
    np.testing.assert_array_equal(info.weights, 1.0)


def test_draws_are_uniform_over_eligible_windows():
    stream, replay = filled(capacity=40, num_envs=3, adds=50, seed=3)
    expected = sorted(eligible(stream, replay, 2))
    _, info = replay.sample(20_000, 2)
    counts = np.array([np.sum(info.ids == t * 3 + e) for e, t in expected])
    mean = 20_000 / len(expected)
    chi2 = float(np.sum((counts - mean) ** 2 / mean))
    dof = len(expected) - 1
    z = statistics.NormalDist().inv_cdf(0.999)  # Wilson-Hilferty critical value at p = 0.001
    critical = dof * (1 - 2 / (9 * dof) + z * np.sqrt(2 / (9 * dof))) ** 3
    assert chi2 < critical


def test_wrap_around_never_crosses_the_overwrite_point():
    stream, replay = filled(capacity=10, num_envs=2, adds=23)
    assert len(replay) == 10  # 5 per env
    batch, info = replay.sample(500, 5)  # only windows of the 5 live items qualify
    t = info.ids // 2
    assert np.all(t == 23 - 5)
    for row in range(0, 500, 50):
        check_window(stream, batch, row, int(info.ids[row] % 2), int(t[row]))


def test_too_few_items_raises_a_clear_error():
    _, replay = filled(capacity=10, num_envs=2, adds=2)
    with pytest.raises(ValueError, match="no window of 3 steps"):
        replay.sample(4, 3)
    empty = UniformReplay(data_spec(), 10, 2)
    with pytest.raises(ValueError, match="holds \\[0, 0\\] items"):
        empty.sample(1, 1)


def test_a_buffer_of_only_boundaries_and_rare_starts_still_samples_uniformly():
    # episodes of length 1: FIRST, boundary, FIRST, boundary, ... half the starts are boundaries
    stream = Stream(1, lengths=(1, 1), seed=0)
    replay = UniformReplay(data_spec(), 64, 1, seed=0)
    for _ in range(64):
        replay.add_batch(stream.next())
    _, info = replay.sample(1000, 2)
    assert {int(i) for i in info.ids} == set(range(0, 63, 2))


def test_bad_trajectories_are_refused_and_nothing_is_written():
    stream, replay = filled(capacity=10, num_envs=2, adds=3)
    before = replay.gather_all()
    good = stream.next()
    with pytest.raises(
        specs.SpecError, match=r"observation: expected float32 \(2, 2\).*got float32 \(2, 3\)"
    ):
        replay.add_batch(good._replace(observation=np.zeros((2, 3), np.float32)))
    with pytest.raises(specs.SpecError, match="reward: expected float32"):
        replay.add_batch(good._replace(reward=good.reward.astype(np.float64)))
    with pytest.raises(specs.SpecError):
        replay.add_batch(good._replace(policy_info={"extra": np.zeros(2)}))
    after = replay.gather_all()
    assert len(replay) == 6
    for a, b in zip(before, after, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)


def test_wrong_num_envs_is_named():
    replay = UniformReplay(data_spec(), 10, 2)
    with pytest.raises(specs.SpecError, match="num_envs=2, got a batch of 3"):
        replay.add_batch(Stream(3).next())


def test_capacity_that_cannot_fit_is_refused_with_the_bytes_needed():
    with pytest.raises(MemoryError, match=r"needs [\d.]+ GB \(\d+ bytes"):
        UniformReplay(data_spec(), 10**14, 1)
    with pytest.raises(ValueError, match="at least num_envs"):
        UniformReplay(data_spec(), 3, 4)


def test_gather_all_len_and_clear():
    stream, replay = filled(capacity=12, num_envs=3, adds=7)
    assert len(replay) == 12 and replay.capacity == 12
    everything = replay.gather_all()
    assert everything.step_type.shape == (3, 4)
    np.testing.assert_array_equal(everything.observation[:, :, 1], np.tile(np.arange(3, 7), (3, 1)))
    np.testing.assert_array_equal(everything.observation[:, 0, 0], [0, 1, 2])
    replay.clear()
    assert len(replay) == 0 and replay.gather_all().step_type.shape == (3, 0)
    for _ in range(3):
        replay.add_batch(stream.next())
    assert len(replay) == 9
    np.testing.assert_array_equal(replay.gather_all().observation[0, :, 1], [7, 8, 9])


def _continue(stream, replay, rounds=5):
    out = []
    for _ in range(rounds):
        replay.add_batch(stream.next())
        batch, info = replay.sample(8, 3)
        out.append((batch.observation.copy(), info.ids.copy()))
    return out


def test_state_dict_round_trip_continues_identically():
    stream_a, a = filled(capacity=20, num_envs=2, adds=25, seed=1)
    a.sample(5, 2)
    state = a.state_dict()
    _, b = filled(capacity=20, num_envs=2, adds=3, seed=9)  # different content and RNG
    b.load_state_dict(state)
    stream_b = Stream(2, seed=1)
    for _ in range(25):
        stream_b.next()
    for (oa, ia), (ob, ib) in zip(_continue(stream_a, a), _continue(stream_b, b), strict=True):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ia, ib)


def test_state_dict_of_another_shape_is_refused():
    _, a = filled(capacity=20, num_envs=2)
    b = UniformReplay(data_spec(), 10, 2)
    with pytest.raises(ValueError, match="capacity is 20 in the state and 10 here"):
        b.load_state_dict(a.state_dict())


def test_save_and_load_a_file(tmp_path):
    stream, a = filled(capacity=20, num_envs=2, adds=13, seed=4)
    path = tmp_path / "replay.npz"
    a.save(path)
    b = UniformReplay.load(path)
    assert b.capacity == 20 and b.num_envs == 2 and b.data_spec == a.data_spec and len(b) == len(a)
    copy = Stream(2, seed=4)
    for _ in range(13):
        copy.next()
    for (oa, ia), (ob, ib) in zip(_continue(stream, a), _continue(copy, b), strict=True):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ia, ib)
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]  # no temporary files left
    from drivetrain.replay import PrioritizedReplay

    with pytest.raises(ValueError, match="holds a UniformReplay"):
        PrioritizedReplay.load(path)


def test_memmap_storage_matches_memory_storage(tmp_path):
    stream_a, a = filled(capacity=16, num_envs=2, adds=20, seed=5)
    stream_b, b = filled(capacity=16, num_envs=2, adds=20, seed=5, storage_dir=tmp_path)
    assert os.listdir(tmp_path) == []  # the memmapped files are unlinked right away
    for (oa, ia), (ob, ib) in zip(_continue(stream_a, a), _continue(stream_b, b), strict=True):
        np.testing.assert_array_equal(oa, ob)
        np.testing.assert_array_equal(ia, ib)
    path = tmp_path / "b.npz"
    b.save(path)
    c = UniformReplay.load(path, storage_dir=tmp_path)
    np.testing.assert_array_equal(c.gather_all().observation, b.gather_all().observation)


def test_sample_many_gives_batches_of_exactly_what_was_added():
    stream, replay = filled(capacity=24, num_envs=2, adds=30)
    batches = replay.sample_many(5, 16, 3)
    assert len(batches) == 5
    for batch, info in batches:
        assert batch.observation.shape == (16, 3, 2) and info.ids.shape == (16,)
        np.testing.assert_array_equal(info.weights, 1.0)
        for row, i in enumerate(info.ids):
            check_window(stream, batch, row, int(i % 2), int(i // 2))


def test_sample_many_draws_what_as_many_sample_calls_draw_when_no_window_is_redrawn():
    # One environment, one long episode: no start is a boundary, so no draw is redrawn and the
    # one draw of 4 x 8 windows takes the random numbers of four draws of 8, in order.
    spec = data_spec()
    twins = [UniformReplay(spec, 64, 1, seed=3) for _ in range(2)]
    for t in range(50):
        item = (
            Stream(1)
            .next()
            ._replace(
                observation=np.array([[0.0, t]], np.float32),
                step_type=np.array([0 if t == 0 else 1], np.int32),
            )
        )
        for replay in twins:
            replay.add_batch(item)
    together = twins[0].sample_many(4, 8, 2)
    one_by_one = [twins[1].sample(8, 2) for _ in range(4)]
    for (a, info_a), (b, info_b) in zip(together, one_by_one, strict=True):
        np.testing.assert_array_equal(info_a.ids, info_b.ids)
        np.testing.assert_array_equal(a.observation, b.observation)


def test_sample_many_refuses_a_count_below_one():
    _, replay = filled()
    with pytest.raises(ValueError, match="count must be >= 1"):
        replay.sample_many(0, 4, 2)


def test_a_window_longer_than_an_environments_share_is_named_as_never_fitting():
    _, replay = filled(capacity=9, num_envs=3, adds=20)  # 3 items per environment
    with pytest.raises(
        ValueError, match="a window of 4 steps never fits: each of the 3 environments keeps at most 3"
    ):
        replay.sample(2, 4)
    from drivetrain.replay.sources import ReplaySource

    with pytest.raises(ValueError, match=r"raise replay.capacity to at least 12"):
        ReplaySource(replay, batch_size=2, num_steps=4, update_period=1, gradient_steps=1).check_capacity()


@pytest.mark.parametrize(("batch_size", "num_steps", "arg"), [(4, 2.5, "num_steps"), (2.5, 2, "batch_size")])
def test_sample_sizes_that_are_not_ints_are_named(batch_size, num_steps, arg):
    _, replay = filled()
    with pytest.raises(TypeError, match=f"sample: {arg} must be an int"):
        replay.sample(batch_size, num_steps)
