"""n-step transitions against values worked out by hand."""

import numpy as np
import pytest

from drivetrain.core import nest, types
from drivetrain.replay import n_step_sequence, n_step_transitions

F, M, L = 0, 1, 2


def window(step_type, next_step_type, reward, discount, observation=None):
    """One [1, len] window; observations default to 10, 11, 12, ... (one per item)."""
    n = len(step_type)
    obs = (
        np.arange(10, 10 + n, dtype=np.float32)
        if observation is None
        else np.asarray(observation, np.float32)
    )
    return types.Trajectory(
        step_type=np.array([step_type], np.int32),
        observation=obs[None],
        action=np.arange(n, dtype=np.int64)[None],
        policy_info={},
        next_step_type=np.array([next_step_type], np.int32),
        reward=np.array([reward], np.float32),
        discount=np.array([discount], np.float32),
    )


def stack(*windows):
    return types.Trajectory(
        *(np.concatenate(xs) if not isinstance(xs[0], dict) else {} for xs in zip(*windows, strict=True))
    )


def test_three_mid_steps_no_episode_end():
    w = window([M, M, M, M], [M, M, M, M], [1, 2, 3, 4], [1, 1, 1, 1])
    out = n_step_transitions(w, gamma=0.9)
    # 1 + 0.9*2 + 0.81*3 = 5.23; discount 0.9^3 = 0.729; bootstrap from item 3
    assert out.reward[0] == pytest.approx(5.23)
    assert out.discount[0] == pytest.approx(0.729)
    assert out.next_observation[0] == 13 and out.steps[0] == 3 and out.valid[0]
    assert out.observation[0] == 10 and out.action[0] == 0


def test_mid_to_last_terminated_at_the_window_end():
    # items: MID, MID, MID(-> LAST, terminated), boundary LAST -> FIRST
    w = window([M, M, M, L], [M, M, L, F], [1, 2, 3, 0], [1, 1, 0, 1])
    out = n_step_transitions(w, gamma=0.9, n=3)
    assert out.reward[0] == pytest.approx(1 + 0.9 * 2 + 0.81 * 3)
    assert out.discount[0] == 0.0  # terminated: nothing to bootstrap
    assert out.next_observation[0] == 13  # the final observation (the boundary item's)
    assert out.steps[0] == 3


def test_terminated_inside_the_window_stops_the_sum():
    # MID(-> LAST, terminated, r=1), boundary (r=0), FIRST (r=5), MID (r=7)
    w = window([M, L, F, M], [L, F, M, M], [1, 0, 5, 7], [0, 1, 1, 1])
    out = n_step_transitions(w, gamma=0.9)
    assert out.reward[0] == pytest.approx(1.0)  # 5 and 7 belong to the next episode
    assert out.discount[0] == 0.0
    assert out.next_observation[0] == 11 and out.steps[0] == 1


def test_truncated_inside_the_window_bootstraps_from_the_final_observation():
    # MID (r=1), MID(-> LAST truncated, r=2, discount 1), boundary, FIRST (r=4)
    w = window([M, M, L, F], [M, L, F, M], [1, 2, 0, 4], [1, 1, 1, 1])
    out = n_step_transitions(w, gamma=0.9)
    assert out.reward[0] == pytest.approx(1 + 0.9 * 2)  # 2.8; the 4 of the next episode is not added
    assert out.discount[0] == pytest.approx(0.81)  # gamma^2, bootstraps from ...
    assert out.next_observation[0] == 12  # ... the truncated episode's last observation, not item 3
    assert out.steps[0] == 2


def test_truncated_vs_terminated_differ_only_in_discount():
    term = window([M, M, L], [M, L, F], [1, 2, 0], [1, 0, 1])
    trunc = window([M, M, L], [M, L, F], [1, 2, 0], [1, 1, 1])
    a, b = n_step_transitions(term, 0.5), n_step_transitions(trunc, 0.5)
    assert a.reward[0] == b.reward[0] == pytest.approx(1 + 0.5 * 2)
    assert a.discount[0] == 0.0 and b.discount[0] == pytest.approx(0.25)
    assert a.next_observation[0] == b.next_observation[0] == 12


def test_window_starting_at_a_boundary_is_invalid():
    # boundary LAST -> FIRST, then FIRST -> MID
    w = window([L, F, M], [F, M, M], [0, 3, 4], [1, 1, 1])
    out = n_step_transitions(w, gamma=0.9)
    assert not out.valid[0]


def test_first_step_of_an_episode_is_valid():
    w = window([F, M, M], [M, M, L], [3, 4, 5], [1, 1, 0])
    out = n_step_transitions(w, gamma=0.5)
    assert out.valid[0]
    assert out.reward[0] == pytest.approx(3 + 0.5 * 4)
    assert out.discount[0] == pytest.approx(0.25)


def test_per_step_discounts_multiply_with_gamma():
    # an environment discount of 0.5 at the first step
    w = window([M, M, M], [M, M, M], [1, 2, 3], [0.5, 1, 1])
    out = n_step_transitions(w, gamma=0.9)
    assert out.reward[0] == pytest.approx(1 + 0.9 * 0.5 * 2)  # 1.9
    assert out.discount[0] == pytest.approx(0.81 * 0.5)  # 0.405


def test_n_shorter_than_the_window():
    w = window([M, M, M, M], [M, M, M, M], [1, 2, 3, 4], [1, 1, 1, 1])
    out = n_step_transitions(w, gamma=0.9, n=1)
    assert out.reward[0] == pytest.approx(1.0)
    assert out.discount[0] == pytest.approx(0.9)
    assert out.next_observation[0] == 11 and out.steps[0] == 1


def test_batch_rows_are_independent():
    w = stack(
        window([M, M, L], [M, L, F], [1, 2, 0], [1, 0, 1]),
        window([M, M, M], [M, M, M], [1, 2, 3], [1, 1, 1]),
        window([L, F, M], [F, M, M], [0, 1, 1], [1, 1, 1]),
    )
    out = n_step_transitions(w, gamma=0.5)
    np.testing.assert_allclose(out.reward, [2.0, 2.0, 0.5 * 1])
    np.testing.assert_allclose(out.discount, [0.0, 0.25, 0.25])
    np.testing.assert_array_equal(out.valid, [True, True, False])
    assert out.reward.dtype == np.float32 and out.discount.dtype == np.float32


def test_rejects_bad_n_and_shapes():
    w = window([M, M], [M, M], [1, 2], [1, 1])
    with pytest.raises(ValueError, match=r"n must be in 1\.\.1"):
        n_step_transitions(w, 0.9, n=2)
    with pytest.raises(ValueError, match=r"\[batch, n \+ 1\]"):
        n_step_transitions(w._replace(step_type=w.step_type[0]), 0.9)
    with pytest.raises(ValueError, match="n must be in"):
        n_step_sequence(w, 0.9, n=0)


def test_sequence_version_by_hand():
    # MID(r1) MID(r2, -> LAST truncated) boundary FIRST(r4) MID(r5); n = 2 -> 3 transitions
    w = window([M, M, L, F, M], [M, L, F, M, M], [1, 2, 0, 4, 5], [1, 1, 1, 1, 1])
    out = n_step_sequence(w, gamma=0.5, n=2)
    assert out.reward.shape == (1, 3)
    np.testing.assert_allclose(out.reward[0], [1 + 0.5 * 2, 2, 0 + 0.5 * 4])
    np.testing.assert_allclose(out.discount[0], [0.25, 0.5, 0.25])
    np.testing.assert_array_equal(out.next_observation[0], [12, 12, 14])
    np.testing.assert_array_equal(out.valid[0], [True, True, False])
    np.testing.assert_array_equal(out.steps[0], [2, 1, 2])


def test_sequence_version_matches_windows():
    rng = np.random.default_rng(0)
    st = rng.integers(0, 3, (6, 7)).astype(np.int32)
    nxt = rng.integers(0, 3, (6, 7)).astype(np.int32)
    w = types.Trajectory(
        st,
        rng.standard_normal((6, 7, 2)).astype(np.float32),
        np.zeros((6, 7), np.int64),
        {},
        nxt,
        rng.standard_normal((6, 7)).astype(np.float32),
        rng.integers(0, 2, (6, 7)).astype(np.float32),
    )
    seq = n_step_sequence(w, 0.9, 3)
    for s in range(4):
        sub = types.Trajectory(*(x[:, s : s + 4] if isinstance(x, np.ndarray) else x for x in w))
        one = n_step_transitions(sub, 0.9)
        np.testing.assert_array_equal(seq.reward[:, s], one.reward)
        np.testing.assert_array_equal(seq.discount[:, s], one.discount)
        np.testing.assert_array_equal(seq.next_observation[:, s], one.next_observation)


@pytest.mark.parametrize("length", [2, 4])
def test_one_step_transitions_equal_the_general_n_step_computation(length):
    from drivetrain.replay.nstep import _n_step

    rng = np.random.default_rng(length)
    b = 64
    step_type = rng.integers(0, 3, (b, length)).astype(np.int32)
    window = types.Trajectory(
        step_type=step_type,
        observation={"x": rng.normal(size=(b, length, 3)).astype(np.float32)},
        action=rng.integers(0, 4, (b, length)).astype(np.int64),
        policy_info={},
        next_step_type=rng.integers(0, 3, (b, length)).astype(np.int32),
        reward=rng.normal(size=(b, length)).astype(np.float32),
        discount=rng.choice([0.0, 1.0, 0.5], (b, length)).astype(np.float32),
    )
    fast = n_step_transitions(window, 0.97, 1)
    general = _n_step(window, 0.97, 1, 1)
    for got, want in zip(fast, general, strict=True):
        got_leaves, want_leaves = nest.flatten(got), nest.flatten(want)
        for g, w in zip(got_leaves, want_leaves, strict=True):
            np.testing.assert_array_equal(g, w[:, 0])
            assert g.dtype == w.dtype
