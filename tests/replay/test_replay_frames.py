"""Frame de-duplication: rebuilt stacks equal the added stacks bit for bit; memory per item."""

import numpy as np
import pytest
from replay_data import Stream, check_window, data_spec, same_bits, stacked_spec

from drivetrain.core import specs, types
from drivetrain.replay import PrioritizedReplay, UniformReplay


def run(stream, replay, adds):
    for _ in range(adds):
        replay.add_batch(stream.next())


def check_all_live(stream, replay):
    everything = replay.gather_all()
    n = everything.step_type.shape[1]
    for e in range(replay.num_envs):
        for j in range(n):
            truth = stream.item(e, stream.t - n + j).observation
            assert same_bits(everything.observation[e, j], truth), (e, j)


@pytest.mark.parametrize("padding", ["zeros", "repeat", "random"])
@pytest.mark.parametrize("num_envs", [1, 3])
def test_stacks_come_back_bit_for_bit_across_episodes_and_wrap(padding, num_envs):
    spec = stacked_spec((3, 5), 4, np.uint8)
    stream = Stream(num_envs, lengths=(1, 7), seed=num_envs, frames=spec, first_padding=padding)
    replay = UniformReplay(data_spec(spec), 15 * num_envs, num_envs, seed=0, frame_reserve=3.0)
    assert replay.frame_deduplicated
    run(stream, replay, 52)  # the rings wrap three times
    assert len(replay) == 15 * num_envs
    check_all_live(stream, replay)
    batch, info = replay.sample(300, 4)
    for row in range(300):
        check_window(stream, batch, row, int(info.ids[row] % num_envs), int(info.ids[row] // num_envs))


@pytest.mark.parametrize(
    ("dtype", "k"), [(np.uint8, 3), (np.float32, 2), (np.float32, 4), (np.uint16, 4), (np.uint8, 2)]
)
def test_other_dtypes_and_stack_sizes_and_stacks_that_jump(dtype, k):
    spec = stacked_spec((4, 2), k, dtype)
    stream = Stream(2, lengths=(2, 9), seed=7, frames=spec, p_jump=0.2)
    replay = UniformReplay(data_spec(spec), 20, 2, seed=1, frame_reserve=float(k))
    run(stream, replay, 37)
    check_all_live(stream, replay)
    batch, info = replay.sample(100, 3)
    for row in range(100):
        check_window(stream, batch, row, int(info.ids[row] % 2), int(info.ids[row] // 2))


def test_comparison_is_bitwise_for_floats():
    spec = stacked_spec((2,), 2, np.float32)
    replay = UniformReplay(data_spec(spec), 8, 1, frame_reserve=2.0)
    stacks = [
        np.array([[[1.0, 0.0], [7.0, 2.0]]], np.float32),
        np.array([[[-0.0, 3.0], [2.0, 7.0]]], np.float32),  # -0.0 is not the 0.0 of before
        np.array([[[3.0, 4.0], [7.0, 5.0]]], np.float32),  # continues (same bits)
    ]
    for i, obs in enumerate(stacks):
        replay.add_batch(
            types.Trajectory(
                np.array([0 if i == 0 else 1], np.int32),
                obs,
                np.zeros(1, np.int64),
                {},
                np.ones(1, np.int32),
                np.zeros(1, np.float32),
                np.ones(1, np.float32),
            )
        )
    got = replay.gather_all().observation[0]
    for i, obs in enumerate(stacks):
        assert same_bits(got[i], obs[0]), i


def test_samples_are_views_that_give_frames_first_without_a_copy():
    spec = stacked_spec((6, 6), 4, np.uint8)
    stream = Stream(1, frames=spec, lengths=(5, 9))
    replay = UniformReplay(data_spec(spec), 30, 1, seed=0)
    run(stream, replay, 30)
    batch, _ = replay.sample(8, 2)
    assert batch.observation.shape == (8, 2, 6, 6, 4) and batch.observation.dtype == np.uint8
    assert np.moveaxis(batch.observation, -1, 2).flags.c_contiguous  # [B, L, K, H, W]: NCHW for free


def test_memory_of_one_million_atari_transitions():
    atari = specs.StackedFramesSpec((84, 84, 4), np.uint8, 0, 255, "observation")
    spec = data_spec(atari)
    deduplicated = UniformReplay.estimate_nbytes(spec, 1_000_000, 1)
    floor = 1_000_000 * 84 * 84
    assert floor == 7_056_000_000
    assert floor < deduplicated <= 7_500_000_000
    plain = UniformReplay.estimate_nbytes(spec, 1_000_000, 1, dedup_frames=False)
    assert plain > 4 * floor  # every stack stored whole: 28 GB
    small = UniformReplay(spec, 1000, 2)
    assert small.nbytes == UniformReplay.estimate_nbytes(spec, 1000, 2)
    plain_small = UniformReplay(spec, 1000, 2, dedup_frames=False)
    assert not plain_small.frame_deduplicated
    assert plain_small.nbytes == 1000 * (84 * 84 * 4 + 4 + 4 + 8 + 4 + 4 + 8)


def test_dedup_off_and_plain_specs_store_whole_observations():
    spec = stacked_spec((3, 3), 4, np.uint8)
    stream = Stream(2, frames=spec, seed=3)
    replay = UniformReplay(data_spec(spec), 10, 2, dedup_frames=False)
    run(stream, replay, 12)
    check_all_live(stream, replay)
    assert not UniformReplay(data_spec(), 10, 2).frame_deduplicated


def test_a_full_frame_reserve_evicts_the_oldest_items_with_a_warning():
    spec = stacked_spec((3, 5), 4, np.uint8)
    stream = Stream(2, lengths=(2, 5), seed=11, frames=spec, first_padding="random")
    # 20 items per env, extra frames for 4 episode starts (12 frames): episodes of 2-5 steps evict
    replay = UniformReplay(data_spec(spec), 40, 2, seed=0, frame_reserve=0.6)
    with pytest.warns(RuntimeWarning, match="frame_reserve"):
        run(stream, replay, 60)
        n = len(replay)
    assert n < 40  # frames of the oldest items were overwritten: those items are gone
    check_all_live(stream, replay)
    batch, info = replay.sample(200, 2)
    for row in range(200):
        check_window(stream, batch, row, int(info.ids[row] % 2), int(info.ids[row] // 2))


def test_prioritized_never_draws_evicted_items():
    spec = stacked_spec((2, 2), 4, np.uint8)
    stream = Stream(1, lengths=(2, 4), seed=2, frames=spec)
    replay = PrioritizedReplay(data_spec(spec), 30, 1, seed=0, frame_reserve=0.5)
    with pytest.warns(RuntimeWarning):
        run(stream, replay, 45)
        live = len(replay)
    assert live < 30
    batch, info = replay.sample(500, 2)
    assert np.all(info.ids >= stream.t - live)
    for row in range(0, 500, 7):
        check_window(stream, batch, row, 0, int(info.ids[row]))


def test_save_load_with_frames_continues_identically(tmp_path):
    spec = stacked_spec((3, 4), 4, np.uint8)
    stream = Stream(2, seed=5, frames=spec)
    a = UniformReplay(data_spec(spec), 16, 2, seed=2)
    run(stream, a, 21)
    a.save(tmp_path / "a.npz")
    b = UniformReplay.load(tmp_path / "a.npz")
    for _ in range(6):
        traj = stream.next()
        a.add_batch(traj)
        b.add_batch(traj)
        (ba, ia), (bb, ib) = a.sample(16, 3), b.sample(16, 3)
        np.testing.assert_array_equal(ia, ib)
        assert same_bits(ba.observation, bb.observation)
    check_all_live(stream, b)


def test_stacks_of_256_frames_come_back_while_another_environment_restarts():
    """The depth counters are uint8 (at most K - 1 = 255): one environment's stays there while
    another's refills after its episode starts."""
    spec = stacked_spec((1, 1), 256, np.uint8)
    stream = Stream(2, lengths=(280, 420), seed=3, frames=spec, first_padding="random")
    replay = UniformReplay(data_spec(spec), 2 * 900, 2, seed=0)
    run(stream, replay, 900)
    check_all_live(stream, replay)


@pytest.mark.parametrize("reserve", [1.0, None])
def test_a_state_loads_only_with_its_frame_reserve(tmp_path, reserve):
    spec = stacked_spec((3, 4), 4, np.uint8)
    stream = Stream(1, lengths=(1, 3), seed=5, frames=spec)
    a = UniformReplay(data_spec(spec), 16, 1, seed=2, frame_reserve=0.25)
    run(stream, a, 100)  # its extra frames wrapped
    a.save(tmp_path / "a.npz")
    with pytest.raises(ValueError, match=r"frame_reserve is 0.25 in the state and .* here"):
        UniformReplay.load(tmp_path / "a.npz", frame_reserve=reserve)
    with pytest.raises(ValueError, match="frame_reserve"):
        UniformReplay(data_spec(spec), 16, 1, frame_reserve=reserve).load_state_dict(a.state_dict())
    check_all_live(stream, UniformReplay.load(tmp_path / "a.npz"))
