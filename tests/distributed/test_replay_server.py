"""ReplayServer: the replay of a distributed run (shards, rate limiter, idempotent inserts, restarts)."""

import copy
import random

import numpy as np
import pytest

from drivetrain.core import specs, types
from drivetrain.core.types import StepType
from drivetrain.distributed import InsertStatus, ReplayServer
from drivetrain.replay import SequenceGapError

FIRST, MID, LAST = int(StepType.FIRST), int(StepType.MID), int(StepType.LAST)
STORED, DUPLICATE, RATE_LIMITED = InsertStatus.STORED, InsertStatus.DUPLICATE, InsertStatus.RATE_LIMITED

# observation: [writer, incarnation, episode, t in the episode]
SPEC = types.trajectory_spec(
    types.time_step_spec(specs.ArraySpec((4,), np.float32, "observation")),
    specs.BoundedArraySpec((), np.int64, 0, 3, "action"),
    {},
)


class Collector:
    """Batched time steps of ``envs`` environments whose episodes last ``length`` transitions.

    Env ``e`` starts at position ``(e + offset) % (length + 1)`` of its episode (0 FIRST, ..., then
    ``length``, the boundary); ``offset=None``: every env starts with FIRST (a fresh collector)."""

    def __init__(self, writer, envs, length=5, incarnation=0, offset=0):
        self.writer, self.envs, self.length, self.incarnation = writer, envs, length, incarnation
        start = np.zeros(envs, np.int64) if offset is None else np.arange(envs) + offset
        self.pos = start % (length + 1)
        self.episode = np.zeros(envs, np.int64)
        self.sequence_number = 0

    def step(self):
        pos = self.pos
        step_type = np.where(pos == 0, FIRST, np.where(pos == self.length, LAST, MID)).astype(np.int32)
        next_type = np.where(pos == self.length, FIRST, np.where(pos == self.length - 1, LAST, MID)).astype(
            np.int32
        )
        obs = np.stack(
            [np.full(self.envs, self.writer), np.full(self.envs, self.incarnation), self.episode, pos], 1
        ).astype(np.float32)
        reward = np.where(step_type == LAST, 0.0, 1.0).astype(np.float32)
        traj = types.Trajectory(
            step_type,
            obs,
            np.zeros(self.envs, np.int64),
            {},
            next_type,
            reward,
            np.ones(self.envs, np.float32),
        )
        self.episode += pos == self.length
        self.pos = (pos + 1) % (self.length + 1)
        return traj

    def fragment(self, steps):
        return [self.step() for _ in range(steps)]

    def send(self, server, steps=2):
        """One insert; the next number only once it is stored or was a duplicate."""
        status = server.insert(self.writer, self.sequence_number, self.fragment(steps))
        if status is not RATE_LIMITED:
            self.sequence_number += 1
        return status


def server(**kwargs):
    settings = {"capacity": 60, "num_shards": 2, "envs_per_shard": 3, "seed": 0, **kwargs}
    return ReplayServer(SPEC, **settings)


def test_rate_limiter_refuses_then_allows_and_counts_items_and_windows():
    s = server(
        samples_per_insert=2.0,
        min_size_to_sample=12,
        error_buffer=20.0,
        max_insert_steps=2,
        max_sample_windows=8,
    )
    a = Collector(0, 3)
    assert a.send(s) is STORED  # 6 items
    assert s.sample(1, 8, 2) is None  # below min_size_to_sample
    assert a.send(s) is STORED  # 12 items: diff = 24, band [4, 44]
    assert s.counters()["items_inserted"] == 12
    assert a.send(s) is STORED  # diff 36
    fragment = a.fragment(2)
    assert s.insert(0, a.sequence_number, fragment) is RATE_LIMITED  # 36 + 12 > 44
    assert len(s) == 18 and s.next_sequence_number(0) == 3  # nothing stored, same number next
    batches = s.sample(1, 8, 2)
    assert batches is not None  # diff 28
    assert s.insert(0, a.sequence_number, fragment) is STORED  # the retry: 28 + 12 <= 44
    a.sequence_number += 1
    assert s.sample(1, 8, 2) is not None and s.sample(1, 8, 2) is not None  # diff 24
    assert s.sample(1, 8, 2) is not None  # 16
    assert s.sample(1, 8, 2) is not None  # 8
    assert s.sample(1, 8, 2) is None  # 0 < 4
    c = s.counters()
    assert (c["items_inserted"], c["windows_sampled"], c["rate_limited"], c["samples_refused"]) == (
        24,
        40,
        1,
        2,
    )


def test_measured_ratio_stays_within_the_error_buffer():
    s = server(
        capacity=30,
        samples_per_insert=4.0,
        min_size_to_sample=20,
        error_buffer=30.0,
        max_insert_steps=2,
        max_sample_windows=16,
    )
    writers = [Collector(0, 3), Collector(1, 3, offset=2)]
    rng = random.Random(0)
    for _ in range(600):
        if rng.random() < 0.5:
            rng.choice(writers).send(s, rng.choice([1, 2]))
        else:
            s.sample(rng.choice([1, 2]), 8, 2)
        limiter = s.limiter
        if limiter.inserts >= 20:
            assert limiter.min_diff - 16 <= limiter.diff <= limiter.max_diff
        assert limiter.size == len(s)  # evictions are counted as deletes
    c = s.counters()
    assert c["items_deleted"] > 0 and c["windows_sampled"] > 100
    assert abs(c["items_inserted"] * 4.0 - c["windows_sampled"]) <= 4.0 * 20 + 30.0


def test_no_eligible_window_waits_for_inserts_or_names_the_deadlock():
    s = server(min_size_to_sample=3)  # MinSize: inserts never wait
    Collector(0, 3, offset=None).send(s, 2)
    assert s.sample(1, 8, 4) is None  # 2 steps: no window of 4 yet
    Collector(1, 3, offset=None).send(s, 4)
    assert s.sample(1, 8, 4) is not None
    s = server(
        samples_per_insert=1.0,
        min_size_to_sample=3,
        error_buffer=5.5,
        max_insert_steps=1,
        max_sample_windows=8,
    )
    a = Collector(0, 3, offset=None)
    assert a.send(s, 1) is STORED and a.send(s, 1) is STORED
    assert a.send(s, 1) is RATE_LIMITED
    with pytest.raises(RuntimeError, match="min_size_to_sample=3 is too small"):
        s.sample(1, 8, 4)


def test_a_retried_insert_is_stored_once():
    s = server()
    a = Collector(0, 3)
    fragment = a.fragment(3)
    assert s.insert(0, 0, fragment) is STORED
    assert s.insert(0, 0, fragment) is DUPLICATE
    assert len(s) == 9
    assert s.insert(1, 0, Collector(1, 3).fragment(1)) is STORED  # numbers are per writer
    with pytest.raises(SequenceGapError, match="expected is 1"):
        s.insert(0, 2, a.fragment(1))
    c = s.counters()
    assert (c["items_inserted"], c["stored"], c["duplicate"], c["last_sequence_numbers"]) == (
        12,
        2,
        1,
        {0: 0, 1: 0},
    )


def test_sample_returns_num_batches_batches():
    s = server(min_size_to_sample=10)
    Collector(0, 3).send(s, 4)
    Collector(1, 3).send(s, 4)
    batches = s.sample(5, 7, 3)
    assert len(batches) == 5
    for batch, info in batches:
        assert batch.observation.shape == (7, 3, 4) and info.ids.shape == (7,)
    assert s.counters()["windows_sampled"] == 35
    assert len({b[1].ids.tobytes() for b in batches}) > 1  # independent draws


def test_a_writer_restart_never_yields_a_window_across_it():
    s = server(capacity=90, min_size_to_sample=1)
    dead = Collector(0, 3, length=6, offset=1)
    for _ in range(4):
        dead.send(s, 2)  # 8 steps: every env is mid-episode at the end
    assert np.all(dead.pos != 0)
    number = s.restart_writer(0)
    assert number == s.next_sequence_number(0) == 4
    fresh = Collector(0, 3, length=6, incarnation=1, offset=None)
    with pytest.raises(ValueError, match="first item must be FIRST"):
        s.insert(0, number, Collector(0, 3, length=6, offset=1, incarnation=1).fragment(2))
    assert s.insert(0, 0, Collector(0, 3, incarnation=1).fragment(1)) is DUPLICATE  # 0 is a retry
    fresh.sequence_number = number
    for _ in range(5):
        assert fresh.send(s, 2) is STORED
    seen = set()
    for _ in range(20):
        ((batch, _),) = s.sample(1, 64, 4)
        incarnation = batch.observation[:, :, 1]
        assert np.all(incarnation == incarnation[:, :1])  # never both collectors in one window
        seen.update(incarnation[:, 0].tolist())
    assert seen == {0.0, 1.0}
    assert s.counters()["restarts"] == [1, 0]


@pytest.mark.parametrize("prioritized", [False, True])
def test_state_round_trip_restores_identical_sampling(prioritized):
    kwargs = {
        "samples_per_insert": 1.0,
        "min_size_to_sample": 6,
        "error_buffer": 40.0,
        "max_insert_steps": 2,
        "max_sample_windows": 16,
    }
    if prioritized:
        kwargs.update(prioritized=True, alpha=0.6, beta=0.5)
    a, b = server(seed=1, **kwargs), server(seed=2, **kwargs)
    writers = [Collector(0, 3), Collector(1, 3, offset=3)]
    for w in writers * 3:
        w.send(a, 2)
    ((batch, info),) = a.sample(1, 8, 2)
    if prioritized:
        a.update_priorities(info.ids, batch.reward[:, 0] + np.arange(8))
    a.restart_writer(1)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert b.counters() == a.counters()
    fragment = writers[0].fragment(2)
    for s in (a, b):
        assert s.insert(0, 2, fragment) is DUPLICATE
        with pytest.raises(ValueError, match="first item must be FIRST"):
            s.insert(1, 3, writers[1].fragment(1))
        assert s.insert(0, 3, fragment) is STORED
    for _ in range(3):
        out_a, out_b = a.sample(2, 8, 3), b.sample(2, 8, 3)
        for (ba, ia), (bb, ib) in zip(out_a, out_b, strict=True):
            np.testing.assert_array_equal(ia.ids, ib.ids)
            np.testing.assert_array_equal(ia.weights, ib.weights)
            np.testing.assert_array_equal(ba.observation, bb.observation)
            if prioritized:
                a.update_priorities(ia.ids, ba.reward[:, 0] + 2)
                b.update_priorities(ib.ids, bb.reward[:, 0] + 2)
    assert b.counters() == a.counters()
    assert a.limiter.state_dict() == b.limiter.state_dict()


def test_prioritized_server_takes_priorities_back():
    s = server(prioritized=True, alpha=1.0, epsilon=0.0, min_size_to_sample=1)
    Collector(0, 3).send(s, 4)
    Collector(1, 3).send(s, 4)
    ((_, info),) = s.sample(1, 16, 2)
    target = int(info.ids[0])
    s.update_priorities(info.ids, np.where(info.ids == target, 1e6, 1e-3))
    ((_, info),) = s.sample(1, 64, 2)
    assert np.mean(info.ids == target) > 0.9


def test_bad_settings_and_inserts_name_what_is_wrong():
    with pytest.raises(ValueError, match="num_shards"):
        server(num_shards=0)
    with pytest.raises(ValueError, match="capacity"):
        server(capacity=2)
    with pytest.raises(ValueError, match="min_size_to_sample=1000"):
        server(min_size_to_sample=1000)
    with pytest.raises(ValueError, match="max_insert_steps"):
        server(samples_per_insert=1.0)
    with pytest.raises(ValueError, match="error_buffer"):
        server(samples_per_insert=1.0, error_buffer=0.5, max_insert_steps=1, max_sample_windows=1)
    with pytest.raises(ValueError, match="alpha apply only with prioritized"):
        server(alpha=0.5)
    s = server()
    with pytest.raises(ValueError, match="writer_id"):
        s.insert(2, 0, Collector(0, 3).fragment(1))
    with pytest.raises(TypeError, match="list of Trajectories"):
        s.insert(0, 0, Collector(0, 3).step())
    with pytest.raises(specs.SpecError, match="num_envs=3"):
        s.insert(0, 0, Collector(0, 2).fragment(1))
    bad = Collector(0, 3).fragment(2)
    bad[1] = bad[1]._replace(reward=bad[1].reward.astype(np.float64))
    with pytest.raises(specs.SpecError, match=r"items\[1\]"):
        s.insert(0, 0, bad)
    assert len(s) == 0 and s.next_sequence_number(0) == 0  # nothing stored, nothing recorded
