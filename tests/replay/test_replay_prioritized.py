"""PrioritizedReplay and its sum tree: distribution, importance weights, priorities, state."""

import statistics

import numpy as np
import pytest
from replay_data import LAST, Stream, check_window, data_spec

from drivetrain.replay import PrioritizedReplay, SumTree


def filled(capacity=24, num_envs=2, adds=30, seed=0, **kwargs):
    stream = Stream(num_envs, seed=seed)
    replay = PrioritizedReplay(data_spec(), capacity, num_envs, seed=seed, **kwargs)
    for _ in range(adds):
        replay.add_batch(stream.next())
    return stream, replay


def eligible_ids(stream, replay, num_steps):
    per_env = replay.capacity // replay.num_envs
    e = replay.num_envs
    return sorted(
        t * e + env
        for env in range(e)
        for t in range(max(0, stream.t - per_env), stream.t - num_steps + 1)
        if stream.item(env, t).step_type != LAST
    )


def chi2_below_critical(counts, expected_probabilities, p=0.001):
    total = counts.sum()
    expected = expected_probabilities * total
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    dof = len(counts) - 1
    z = statistics.NormalDist().inv_cdf(1 - p)  # Wilson-Hilferty approximation of the chi-square quantile
    critical = dof * (1 - 2 / (9 * dof) + z * np.sqrt(2 / (9 * dof))) ** 3
    return chi2 < critical, chi2, critical


# ---------------------------------------------------------------------- sum tree
@pytest.mark.parametrize("branching", [2, 3, 32])
def test_sum_tree_sums_and_finds_like_a_cumulative_sum(branching):
    rng = np.random.default_rng(0)
    tree = SumTree(37, branching)
    values = rng.random(37) * (rng.random(37) > 0.3)
    tree.set(np.arange(37), values)
    assert tree.total == pytest.approx(values.sum())
    targets = rng.random(2000) * values.sum()
    expected = np.searchsorted(np.cumsum(values), targets, side="right")
    np.testing.assert_array_equal(tree.find(targets), expected)
    tree.set_range(30, np.array([5.0, 0.0, 1.0]))
    values[30:33] = [5.0, 0.0, 1.0]
    assert tree.total == pytest.approx(values.sum())
    np.testing.assert_array_equal(tree.values, values)
    tree.set(np.array([3, 4, 3]), np.array([2.0, 2.0, 2.0]))  # shared ancestors
    values[[3, 4]] = 2.0
    assert tree.total == pytest.approx(values.sum())
    fresh = SumTree(37, branching)
    fresh.load_values(values)
    assert fresh.total == pytest.approx(values.sum())


@pytest.mark.parametrize("branching", [2, 32])
def test_sum_tree_never_finds_zero_leaves_for_targets_inside_the_total(branching):
    tree = SumTree(8, branching)
    tree.set(np.arange(8), np.array([0, 1, 0, 0, 2, 0, 0, 0], float))
    found = tree.find(np.array([0.0, 0.999, 1.0, 2.999]))
    np.testing.assert_array_equal(found, [1, 1, 4, 4])
    big = SumTree(5000, branching)  # several levels; only the last leaf is positive
    big.set(np.array([4999]), np.array([2.0]))
    np.testing.assert_array_equal(big.find(np.array([0.0, 1.0, 1.999999])), [4999, 4999, 4999])


# ---------------------------------------------------------------------- sampling
def test_sampling_distribution_matches_priorities():
    stream, replay = filled(capacity=60, num_envs=3, adds=30, seed=1, alpha=0.7, epsilon=0.0)
    ids = np.array(eligible_ids(stream, replay, 2))
    priorities = np.random.default_rng(5).uniform(0.1, 3.0, ids.size)
    replay.update_priorities(ids, priorities)
    expected = priorities**0.7 / np.sum(priorities**0.7)
    counts = np.zeros(ids.size)
    for _ in range(10):
        _, info = replay.sample(4000, 2)
        index = np.searchsorted(ids, info.ids)
        assert np.all(ids[index] == info.ids)  # only eligible windows
        np.testing.assert_allclose(info.probabilities, expected[index], rtol=1e-9)
        counts += np.bincount(index, minlength=ids.size)
    ok, chi2, critical = chi2_below_critical(counts, expected)
    assert ok, (chi2, critical)


def test_importance_weights_by_hand():
    # 3 windows of 2 steps in one episode of 4 transitions: items FIRST, MID, MID, MID -> LAST, boundary
    stream = Stream(1, lengths=(4, 4), p_truncate=0.0)
    replay = PrioritizedReplay(data_spec(), 10, 1, alpha=1.0, beta=0.5, epsilon=0.0, seed=0)
    for _ in range(4):
        replay.add_batch(stream.next())
    assert replay.num_windows(2) == 3  # starts 0, 1, 2 (item 3 is the newest)
    replay.update_priorities([0, 1, 2], [1.0, 2.0, 5.0])
    _, info = replay.sample(200, 2)
    assert set(info.ids.tolist()) == {0, 1, 2}
    # P = p / 8; w = (N P)^-beta = (3 p / 8)^-0.5; the largest is that of p = 1
    prob = {0: 1 / 8, 1: 2 / 8, 2: 5 / 8}
    weight = {0: 1.0, 1: (2 / 1) ** -0.5, 2: (5 / 1) ** -0.5}
    for i, p, w in zip(info.ids, info.probabilities, info.weights, strict=True):
        assert p == pytest.approx(prob[int(i)])
        assert w == pytest.approx(weight[int(i)], rel=1e-6)


def test_new_items_get_the_largest_priority_seen():
    stream, replay = filled(capacity=40, num_envs=1, adds=6, epsilon=0.0, alpha=1.0)
    ids = eligible_ids(stream, replay, 1)
    replay.update_priorities(ids, np.full(len(ids), 0.5))
    replay.update_priorities(ids[:1], [4.0])
    assert replay.max_priority == 4.0
    traj = stream.next()
    replay.add_batch(traj)
    _, info = replay.sample(5000, 1)
    new = stream.t - 1
    total = 4.0 + 0.5 * (len(ids) - 1) + (4.0 if traj.step_type[0] != LAST else 0.0)
    if traj.step_type[0] != LAST:
        assert info.probabilities[info.ids == new] == pytest.approx(4.0 / total)
        assert np.any(info.ids == new)
    else:
        assert not np.any(info.ids == new)


def test_newest_items_are_left_out_of_the_draw_even_with_huge_priority():
    stream = Stream(1, lengths=(50, 50))
    replay = PrioritizedReplay(data_spec(), 40, 1, alpha=1.0, epsilon=0.0, seed=3)
    for _ in range(30):
        replay.add_batch(stream.next())
    replay.update_priorities(np.arange(27), np.full(27, 1e-6))
    replay.update_priorities([27, 28, 29], [1e9, 1e9, 1e9])  # too new to start a window of 4
    batch, info = replay.sample(64, 4)  # the rejection rounds fail; the fallback draws exactly
    assert np.all(info.ids <= 26)
    np.testing.assert_allclose(info.probabilities, 1 / 27)
    for row in range(0, 64, 9):
        check_window(stream, batch, row, 0, int(info.ids[row]))


def test_boundaries_keep_priority_zero():
    stream, replay = filled(capacity=30, num_envs=1, adds=30, seed=2)
    boundaries = [t for t in range(30) if stream.item(0, t).step_type == LAST]
    assert boundaries
    replay.update_priorities(boundaries, np.full(len(boundaries), 100.0))
    batch, _ = replay.sample(2000, 1)
    assert np.all(batch.step_type[:, 0] != LAST)


def test_stale_ids_are_ignored_and_unknown_ids_refused():
    stream, replay = filled(capacity=10, num_envs=1, adds=10, seed=4, alpha=1.0, epsilon=0.0)
    _, info = replay.sample(4, 1)
    for _ in range(10):  # every sampled item is overwritten
        replay.add_batch(stream.next())
    before = replay.sample(1000, 1)[1]
    replay.update_priorities(info.ids, np.full(4, 1e6))
    after = replay.sample(1000, 1)[1]
    assert before.probabilities.max() == pytest.approx(after.probabilities.max())
    with pytest.raises(ValueError, match="name no item"):
        replay.update_priorities([20], [1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        replay.update_priorities([15, 16], [1.0, -1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        replay.update_priorities([15], [np.nan])
    with pytest.raises(ValueError, match="2 ids but 1 priorities"):
        replay.update_priorities([15, 16], [1.0])


def test_beta_float_schedule_and_attribute():
    _, replay = filled(capacity=20, num_envs=1, adds=10, beta=lambda n: min(1.0, 0.4 + 0.1 * n))
    assert replay.current_beta == pytest.approx(0.4)
    replay.sample(4, 1)
    replay.sample(4, 1)
    assert replay.current_beta == pytest.approx(0.6)
    replay.beta = 1.0
    assert replay.current_beta == 1.0
    with pytest.raises(ValueError, match="beta must be in"):
        PrioritizedReplay(data_spec(), 10, 1, beta=2.0)


def test_a_beta_outside_zero_one_from_a_schedule_or_the_attribute_is_refused():
    _, replay = filled(capacity=20, num_envs=1, adds=10, beta=lambda n: 0.9 + 0.2 * n)
    replay.sample(4, 1)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\], got 1.1 at sample call 1"):
        replay.sample(4, 1)
    replay.beta = 3.0
    with pytest.raises(ValueError, match=r"got 3\.0"):
        replay.sample(4, 1)


def test_state_round_trip_and_file_continue_identically(tmp_path):
    stream, a = filled(capacity=20, num_envs=2, adds=25, seed=6)
    _, info = a.sample(8, 2)
    a.update_priorities(info.ids, np.arange(8) + 0.5)
    b = PrioritizedReplay(data_spec(), 20, 2, seed=99)
    b.load_state_dict(a.state_dict())
    a.save(tmp_path / "p.npz")
    c = PrioritizedReplay.load(tmp_path / "p.npz")
    for _ in range(5):
        traj = stream.next()
        results = []
        for r in (a, b, c):
            r.add_batch(traj)
            batch, info = r.sample(16, 3)
            r.update_priorities(info.ids, batch.reward[:, 0] % 7 + 1)
            results.append((info.ids, info.probabilities, info.weights))
        for other in results[1:]:
            for x, y in zip(results[0], other, strict=True):
                np.testing.assert_array_equal(x, y)


def test_a_beta_schedule_is_not_saved(tmp_path):
    _, a = filled(capacity=20, num_envs=1, adds=5, beta=lambda n: 0.5)
    a.save(tmp_path / "p.npz")
    with pytest.raises(ValueError, match="beta=schedule"):
        PrioritizedReplay.load(tmp_path / "p.npz")
    b = PrioritizedReplay.load(tmp_path / "p.npz", beta=lambda n: 0.5)
    assert b.current_beta == 0.5


def test_clear_resets_priorities():
    stream, replay = filled(capacity=20, num_envs=1, adds=10, alpha=1.0, epsilon=0.0)
    replay.update_priorities(
        eligible_ids(stream, replay, 1), np.full(len(eligible_ids(stream, replay, 1)), 9.0)
    )
    replay.clear()
    assert replay.max_priority == 1.0 and len(replay) == 0
    for _ in range(6):
        replay.add_batch(stream.next())
    _, info = replay.sample(100, 1)
    n = replay.num_windows(1)
    np.testing.assert_allclose(info.probabilities, 1 / n)


def test_sample_many_is_count_calls_of_sample():
    """Each batch's weights normalized by its own largest weight, beta advancing per batch."""
    schedule = lambda n: min(1.0, 0.4 + 0.1 * n)  # noqa: E731
    _, a = filled(capacity=40, num_envs=1, adds=40, seed=3, alpha=1.0, beta=schedule)
    b = PrioritizedReplay(data_spec(), 40, 1, seed=3, alpha=1.0, beta=schedule)
    b.load_state_dict(a.state_dict())
    for r in (a, b):
        r.update_priorities(np.arange(30), np.linspace(0.01, 10, 30))
    many = a.sample_many(4, 6, 2)
    single = [b.sample(6, 2) for _ in range(4)]
    for (batch_a, info_a), (batch_b, info_b) in zip(many, single, strict=True):
        np.testing.assert_array_equal(batch_a.reward, batch_b.reward)
        for x, y in zip(info_a, info_b, strict=True):
            np.testing.assert_array_equal(x, y)
        assert info_a.weights.max() == 1.0
    assert a.current_beta == b.current_beta == pytest.approx(0.8)


def test_a_state_loads_only_with_its_alpha(tmp_path):
    _, a = filled(capacity=20, num_envs=1, adds=10, alpha=1.0)
    a.save(tmp_path / "p.npz")
    with pytest.raises(ValueError, match=r"alpha is 1.0 in the state and 0.5 here"):
        PrioritizedReplay.load(tmp_path / "p.npz", alpha=0.5)
    assert PrioritizedReplay.load(tmp_path / "p.npz").alpha == 1.0
