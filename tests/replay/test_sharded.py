"""ShardedReplay: several buffers sampled exactly as one buffer holding all of them."""

import copy
import statistics

import numpy as np
import pytest
from replay_data import FIRST, LAST, MID, Stream, check_window, data_spec

from drivetrain.core import types
from drivetrain.core.schedules import LinearDecay
from drivetrain.replay import PrioritizedReplay, UniformReplay
from drivetrain.replay.sharded import ShardedReplay


def chi2_below_critical(counts, expected_probabilities, p=0.001):
    total = counts.sum()
    expected = expected_probabilities * total
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    dof = len(counts) - 1
    z = statistics.NormalDist().inv_cdf(1 - p)  # Wilson-Hilferty approximation of the quantile
    critical = dof * (1 - 2 / (9 * dof) + z * np.sqrt(2 / (9 * dof))) ** 3
    return chi2 < critical, chi2, critical


def columns(trajectory, lo, hi):
    """Environments ``lo .. hi - 1`` of a batched trajectory."""
    return types.Trajectory(*(x[lo:hi] if isinstance(x, np.ndarray) else x for x in trajectory))


def eligible(stream, per_env, num_steps):
    """(env, t) of every eligible window of a buffer that got all of ``stream`` (no seams)."""
    return [
        (env, t)
        for env in range(stream.num_envs)
        for t in range(max(0, stream.t - per_env), stream.t - num_steps + 1)
        if stream.item(env, t).step_type != LAST
    ]


def uniform_setup(seed=0):
    """Three shards of 1, 2 and 3 environments, different capacities and numbers of adds."""
    shapes = [(1, 12, 20), (2, 16, 9), (3, 30, 14)]  # (num_envs, capacity, adds)
    streams, shards = [], []
    for k, (envs, capacity, _) in enumerate(shapes):
        stream = Stream(envs, lengths=(1, 5), seed=10 + k)
        shards.append(UniformReplay(data_spec(), capacity, envs, seed=seed + k))
        streams.append(stream)
    replay = ShardedReplay(shards, seed=seed)
    for k, (_, _, adds) in enumerate(shapes):
        for _ in range(adds):
            replay.add_batch(k, streams[k].next())
    return streams, replay


def test_uniform_windows_are_equally_likely_over_all_shards():
    streams, replay = uniform_setup()
    num_steps = 2
    windows = [
        (k, env, t)
        for k, (stream, shard) in enumerate(zip(streams, replay.shards, strict=True))
        for env, t in eligible(stream, shard.capacity // shard.num_envs, num_steps)
    ]
    sizes = [sum(1 for w in windows if w[0] == k) for k in range(3)]
    assert len(set(sizes)) == 3  # the shards hold different numbers of windows
    assert replay.num_windows(num_steps) == len(windows)
    index = {w: i for i, w in enumerate(windows)}
    counts = np.zeros(len(windows))
    offsets = [0, 1, 3]
    for _ in range(60):
        batch, info = replay.sample(256, num_steps)
        np.testing.assert_array_equal(info.probabilities, 1 / len(windows))
        np.testing.assert_array_equal(info.weights, np.ones(256, np.float32))
        shard, local = replay.decode_ids(info.ids)
        for row in range(256):
            k = int(shard[row])
            envs = replay.shards[k].num_envs
            t, env = divmod(int(local[row]), envs)
            assert info.ids[row] == t * 6 + offsets[k] + env  # the documented encoding
            counts[index[(k, env, t)]] += 1
            if row % 16 == 0:
                check_window(streams[k], batch, row, env, t)
    ok, chi2, critical = chi2_below_critical(counts, np.full(len(windows), 1 / len(windows)))
    assert ok, (chi2, critical)


def test_shard_order_does_not_leak_into_the_batch():
    _, replay = uniform_setup()
    _, info = replay.sample(512, 2)
    shard, _ = replay.decode_ids(info.ids)
    assert set(shard.tolist()) == {0, 1, 2}
    assert np.any(np.diff(shard) < 0)  # not grouped by shard in order


def test_same_seed_same_batches_and_another_seed_others():
    runs = []
    for seed in (3, 3, 4):
        _, replay = uniform_setup(seed)
        runs.append([replay.sample(32, 3) for _ in range(4)])
    for (b1, i1), (b2, i2) in zip(runs[0], runs[1], strict=True):
        np.testing.assert_array_equal(i1.ids, i2.ids)
        np.testing.assert_array_equal(b1.observation, b2.observation)
        np.testing.assert_array_equal(b1.reward, b2.reward)
    assert any(not np.array_equal(a[1].ids, b[1].ids) for a, b in zip(runs[0], runs[2], strict=True))


def make_items(step_types):
    """Batched trajectories from step types ``[T][E]`` (observation ``[env, t]``)."""
    step_types = np.asarray(step_types, np.int32)
    out = []
    for t, row in enumerate(step_types):
        e = row.size
        nxt = step_types[t + 1] if t + 1 < len(step_types) else np.full(e, MID, np.int32)
        obs = np.stack([np.arange(e), np.full(e, t)], 1).astype(np.float32)
        reward = np.where(row == LAST, 0.0, 1.0).astype(np.float32)
        out.append(types.Trajectory(row, obs, np.zeros(e, np.int64), {}, nxt, reward, np.ones(e, np.float32)))
    return out


def test_prioritized_global_probabilities_and_weights_by_hand():
    # shard 0, one env: FIRST MID LAST(boundary) FIRST -> windows of 2 start at t = 0, 1
    # shard 1, two envs: FIRST MID MID / FIRST MID MID -> windows start at t = 0, 1 in each env
    a = PrioritizedReplay(data_spec(), 10, 1, alpha=0.5, beta=0.5, epsilon=0.0, seed=1)
    b = PrioritizedReplay(data_spec(), 10, 2, alpha=0.5, beta=0.5, epsilon=0.0, seed=2)
    replay = ShardedReplay([a, b], seed=0)
    for item in make_items([[FIRST], [MID], [LAST], [FIRST]]):
        replay.add_batch(0, item)
    for item in make_items([[FIRST, FIRST], [MID, MID], [MID, MID]]):
        replay.add_batch(1, item)
    assert replay.num_windows(2) == 6
    # ids: t * 3 + offset + env, offsets [0, 1]
    ids = {("a", 0): 0, ("a", 1): 3, ("b", 0, 0): 1, ("b", 0, 1): 4, ("b", 1, 0): 2, ("b", 1, 1): 5}
    p = {0: 1.0, 3: 4.0, 1: 9.0, 4: 16.0, 2: 1.0, 5: 4.0}  # (p + 0)^0.5 = 1, 2, 3, 4, 1, 2
    replay.update_priorities(list(p), list(p.values()))
    assert set(ids.values()) == set(p)
    # the newest items (t = 3 of shard 0, t = 2 of shard 1) got max priority but start no window
    assert a.priority_mass(2) == pytest.approx(1 + 2)
    assert b.priority_mass(2) == pytest.approx(3 + 4 + 1 + 2)
    total = 13.0
    prob = {i: np.sqrt(v) / total for i, v in p.items()}
    counts = dict.fromkeys(p, 0)
    for _ in range(40):
        batch, info = replay.sample(500, 2)
        smallest = min(prob[int(i)] for i in info.ids)
        for row, (i, q, w) in enumerate(zip(info.ids, info.probabilities, info.weights, strict=True)):
            i = int(i)
            counts[i] += 1
            assert q == pytest.approx(prob[i], rel=1e-12)
            assert w == pytest.approx((6 * prob[i]) ** -0.5 / (6 * smallest) ** -0.5, rel=1e-6)
            assert batch.observation[row, 0, 1] == i // 3  # t
    ok, chi2, critical = chi2_below_critical(
        np.array(list(counts.values()), float), np.array(list(prob.values()))
    )
    assert ok, (chi2, critical)


def split_setup(beta):
    """One 3-env buffer and two shards (envs 0 | envs 1, 2) fed the same stream."""
    kwargs = {"alpha": 0.7, "beta": beta, "epsilon": 0.01}
    single = PrioritizedReplay(data_spec(), 30, 3, seed=0, **kwargs)
    shards = [
        PrioritizedReplay(data_spec(), 10, 1, seed=1, **kwargs),
        PrioritizedReplay(data_spec(), 20, 2, seed=2, **kwargs),
    ]
    replay = ShardedReplay(shards, seed=3)
    stream = Stream(3, lengths=(2, 7), seed=5)

    def add(n):
        for _ in range(n):
            traj = stream.next()
            single.add_batch(traj)
            replay.add_batch(0, columns(traj, 0, 1))
            replay.add_batch(1, columns(traj, 1, 3))

    return single, replay, stream, add


def by_id(info):
    return {
        int(i): (float(q), float(w))
        for i, q, w in zip(info.ids, info.probabilities, info.weights, strict=True)
    }


def test_prioritized_weights_equal_those_of_one_buffer_holding_the_same_windows():
    single, replay, stream, add = split_setup(beta=LinearDecay(0.4, 1.0, 4))
    add(25)  # past the capacity of 10 items per env: the rings wrapped
    windows = eligible(stream, 10, 3)
    assert replay.num_windows(3) == single.num_windows(3) == len(windows)
    ids = np.array([t * 3 + env for env, t in windows])  # one buffer's ids; the sharded ones are the same
    priorities = np.random.default_rng(0).uniform(0.5, 3.0, ids.size)
    single.update_priorities(ids, priorities)
    replay.update_priorities(ids, priorities)
    add(2)  # new items get the largest priority seen, in every shard
    for call in range(3):
        assert replay.current_beta == single.current_beta == pytest.approx(0.4 + 0.15 * call)
        one, many = by_id(single.sample(6000, 3)[1]), by_id(replay.sample(6000, 3)[1])
        assert set(many) == set(one)  # every window drawn by both
        assert min(w for _, w in one.values()) < 0.9
        for i, (q, w) in one.items():
            assert many[i][0] == pytest.approx(q, rel=1e-9), i
            assert many[i][1] == pytest.approx(w, rel=1e-5), i


def test_update_priorities_routes_to_the_right_shard():
    _, replay, stream, add = split_setup(beta=0.4)
    add(12)
    a, b = replay.shards
    before = (a.priority_mass(2), b.priority_mass(2))
    _, info = replay.sample(64, 2)
    row = int(np.flatnonzero(replay.decode_ids(info.ids)[0] == 1)[0])  # a window of shard 1
    target = int(info.ids[row])
    replay.update_priorities([target], [1000.0])
    assert a.priority_mass(2) == pytest.approx(before[0])
    assert b.priority_mass(2) > before[1] + 100
    assert a.max_priority == b.max_priority == pytest.approx(1000.01)  # shared
    batch, info = replay.sample(200, 2)
    assert np.mean(info.ids == target) > 0.5
    t, column = divmod(target, 3)
    check_window(stream, batch, int(np.flatnonzero(info.ids == target)[0]), column, t)
    with pytest.raises(ValueError, match="name no item"):
        replay.update_priorities([10_000], [1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        replay.update_priorities([target], [-1.0])
    _, uniform = uniform_setup()
    with pytest.raises(TypeError, match="uniform"):
        uniform.update_priorities([0], [1.0])


@pytest.mark.parametrize("prioritized", [False, True])
def test_state_round_trip_continues_identically(prioritized):
    def build(seed):
        if prioritized:
            shards = [
                PrioritizedReplay(data_spec(), 12, 1, seed=seed),
                PrioritizedReplay(data_spec(), 20, 2, seed=seed + 1),
            ]
        else:
            shards = [
                UniformReplay(data_spec(), 12, 1, seed=seed),
                UniformReplay(data_spec(), 20, 2, seed=seed + 1),
            ]
        return ShardedReplay(shards, seed=seed)

    a, b = build(0), build(50)
    streams = [Stream(1, seed=1), Stream(2, seed=2)]
    for _ in range(15):
        for k in (0, 1):
            a.add_batch(k, streams[k].next())
    _, info = a.sample(8, 2)
    if prioritized:
        a.update_priorities(info.ids, np.arange(8) + 0.5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert len(b) == len(a)
    for _ in range(4):
        for k in (0, 1):
            traj = streams[k].next()
            a.add_batch(k, traj)
            b.add_batch(k, traj)
        (ba, ia), (bb, ib) = a.sample(16, 3), b.sample(16, 3)
        np.testing.assert_array_equal(ia.ids, ib.ids)
        np.testing.assert_array_equal(ia.weights, ib.weights)
        np.testing.assert_array_equal(ba.observation, bb.observation)
        if prioritized:
            for r in (a, b):
                r.update_priorities(ia.ids, ba.reward[:, 0] % 5 + 1)
    with pytest.raises(ValueError, match="2 shards"):
        ShardedReplay([UniformReplay(data_spec(), 12, 1)]).load_state_dict(a.state_dict())


def test_priority_mass_and_raise_max_priority():
    replay = PrioritizedReplay(data_spec(), 20, 1, alpha=1.0, epsilon=0.0, seed=0)
    assert replay.priority_mass(2) == 0.0
    for item in make_items([[FIRST], [MID], [MID], [LAST], [FIRST], [MID]]):
        replay.add_batch(item)
    # windows of 2 start at 0, 1, 2, 4 (3 is the boundary, 5 the newest): all at priority 1
    assert replay.priority_mass(2) == pytest.approx(4.0)
    assert replay.priority_mass(1) == pytest.approx(5.0)
    replay.update_priorities([0, 1], [3.0, 0.5])
    assert replay.priority_mass(2) == pytest.approx(3.0 + 0.5 + 1.0 + 1.0)
    replay.raise_max_priority(2.0)
    assert replay.max_priority == 3.0  # only ever raised
    replay.raise_max_priority(7.0)
    assert replay.max_priority == 7.0
    # item 6 is new: it gets priority 7; item 5 (synced before, at 1) now starts a window of 2
    replay.add_batch(make_items([[MID]])[0])
    assert replay.priority_mass(2) == pytest.approx(3.0 + 0.5 + 1.0 + 1.0 + 1.0)
    assert replay.priority_mass(1) == pytest.approx(3.0 + 0.5 + 1.0 + 1.0 + 1.0 + 7.0)
    with pytest.raises(ValueError, match="finite"):
        replay.raise_max_priority(float("nan"))


def test_nothing_eligible_names_the_shard_sizes_and_bad_shards_are_refused():
    replay = ShardedReplay([UniformReplay(data_spec(), 10, 1), UniformReplay(data_spec(), 10, 2)], seed=0)
    replay.add_batch(1, make_items([[FIRST, FIRST]])[0])
    with pytest.raises(ValueError, match=r"no window of 2 steps .* hold \[0, 2\] items"):
        replay.sample(4, 2)
    with pytest.raises(ValueError, match="shard must be an int in"):
        replay.add_batch(2, make_items([[FIRST]])[0])
    with pytest.raises(ValueError, match="at least one"):
        ShardedReplay([])
    with pytest.raises(TypeError, match="one kind"):
        ShardedReplay([UniformReplay(data_spec(), 10, 1), PrioritizedReplay(data_spec(), 10, 1)])
    with pytest.raises(ValueError, match="alpha"):
        ShardedReplay(
            [PrioritizedReplay(data_spec(), 10, 1), PrioritizedReplay(data_spec(), 10, 1, alpha=0.5)]
        )
    other_spec = data_spec()._replace(reward=data_spec().discount)
    with pytest.raises(ValueError, match="data_spec"):
        ShardedReplay([UniformReplay(data_spec(), 10, 1), UniformReplay(other_spec, 10, 1)])


def test_a_sharded_beta_outside_zero_one_is_refused():
    a = PrioritizedReplay(data_spec(), 10, 1, seed=1)
    b = PrioritizedReplay(data_spec(), 10, 2, seed=2)
    replay = ShardedReplay([a, b], seed=0)
    for item in make_items([[FIRST], [MID], [MID]]):
        replay.add_batch(0, item)
    replay.beta = 1.5
    with pytest.raises(ValueError, match=r"ShardedReplay: beta must be in \[0, 1\], got 1.5"):
        replay.sample(2, 2)
