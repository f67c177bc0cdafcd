"""as_dataset: background sampling yields valid batches and stops cleanly."""

import gc
import threading
import time

import numpy as np
import pytest
from replay_data import Stream, check_window, data_spec, stacked_spec

from drivetrain.replay import PrioritizedReplay, UniformReplay


def dataset_threads():
    return [t for t in threading.enumerate() if t.name.endswith(".as_dataset")]


def wait_until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.mark.parametrize("cls", [UniformReplay, PrioritizedReplay])
def test_batches_are_valid_while_a_driver_keeps_adding(cls):
    spec = stacked_spec((4, 4), 4, np.uint8)
    stream = Stream(2, seed=0, frames=spec)
    replay = cls(data_spec(spec), 30, 2, seed=0)
    for _ in range(10):
        replay.add_batch(stream.next())
    with replay.as_dataset(batch_size=16, num_steps=3, prefetch=3) as dataset:
        for _ in range(40):
            replay.add_batch(stream.next())
            batch, info = next(dataset)
            assert batch.step_type.shape == (16, 3) and batch.observation.shape == (16, 3, 4, 4, 4)
            for row in range(0, 16, 5):
                check_window(stream, batch, row, int(info.ids[row] % 2), int(info.ids[row] // 2))
    assert dataset.closed
    with pytest.raises(StopIteration):
        next(dataset)
    assert wait_until(lambda: not dataset_threads())


def test_close_stops_the_thread_even_with_a_full_queue():
    stream = Stream(1)
    replay = UniformReplay(data_spec(), 20, 1)
    for _ in range(10):
        replay.add_batch(stream.next())
    dataset = replay.as_dataset(4, 2, prefetch=2)
    assert wait_until(lambda: dataset._queue.full())
    dataset.close()
    assert not dataset_threads()
    assert list(dataset) == []


def test_dropping_the_iterator_stops_the_thread():
    stream = Stream(1)
    replay = UniformReplay(data_spec(), 20, 1)
    for _ in range(10):
        replay.add_batch(stream.next())
    dataset = replay.as_dataset(4, 2, prefetch=2)
    next(dataset)
    del dataset
    gc.collect()
    assert wait_until(lambda: not dataset_threads())


def test_errors_reach_the_consumer():
    replay = UniformReplay(data_spec(), 20, 1)
    dataset = replay.as_dataset(4, 2, prefetch=1)
    with pytest.raises(ValueError, match="no window of 2 steps"):
        next(dataset)
    with pytest.raises(StopIteration):
        next(dataset)
    assert wait_until(lambda: not dataset_threads())


def test_prefetch_zero_samples_in_the_loop_like_sample():
    stream_a, stream_b = Stream(2, seed=3), Stream(2, seed=3)
    a = UniformReplay(data_spec(), 20, 2, seed=7)
    b = UniformReplay(data_spec(), 20, 2, seed=7)
    dataset = a.as_dataset(8, 2, prefetch=0)
    assert not dataset_threads()
    for _ in range(5):
        a.add_batch(stream_a.next())
    for _ in range(5):
        b.add_batch(stream_b.next())
    for _ in range(4):
        a.add_batch(stream_a.next())
        b.add_batch(stream_b.next())
        (ba, ia), (bb, ib) = next(dataset), b.sample(8, 2)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ba.observation, bb.observation)
    with pytest.raises(ValueError, match="prefetch must be >= 0"):
        a.as_dataset(8, 2, prefetch=-1)
