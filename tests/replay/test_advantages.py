"""GAE(λ) and Monte-Carlo returns against values worked out by hand."""

import numpy as np
import pytest

from drivetrain.replay.advantages import gae, monte_carlo_returns

F, M, L = 0, 1, 2  # step types
GAMMA, LAM = 0.9, 0.8


def rows(*arrays):
    return [np.asarray([a]) for a in arrays]


def test_gae_within_one_episode():
    st, nst, r, d, v = rows([F, M, M, M], [M, M, M, M], [1, 2, 3, 4], [1, 1, 1, 1], [0.5, 1.0, 1.5, 2.0])
    out = gae(st, nst, r, d, v, GAMMA, LAM)
    a2 = 3 + 0.9 * 2.0 - 1.5
    a1 = (2 + 0.9 * 1.5 - 1.0) + 0.9 * 0.8 * a2
    a0 = (1 + 0.9 * 1.0 - 0.5) + 0.9 * 0.8 * a1
    np.testing.assert_allclose(out.advantages[0], [a0, a1, a2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(out.returns[0], [a0 + 0.5, a1 + 1.0, a2 + 1.5, 0.0], rtol=1e-6)
    # The newest item only bootstraps the one before it.
    assert out.valid.tolist() == [[True, True, True, False]]


@pytest.mark.parametrize("terminated", [False, True])
def test_gae_across_an_episode_end(terminated):
    # Item 2 is the boundary: it holds V(final observation) = 10, read only by a truncation.
    d1 = 0.0 if terminated else 1.0
    st, nst, r, d, v = rows(
        [F, M, L, F, M], [M, L, F, M, M], [1, 1, 0, 5, 7], [1, d1, 1, 1, 1], [0.1, 0.2, 10.0, 0.3, 0.4]
    )
    out = gae(st, nst, r, d, v, GAMMA, LAM)
    a3 = 5 + 0.9 * 0.4 - 0.3  # the next episode: nothing flows back across the boundary
    a1 = 1 + 0.9 * d1 * 10.0 - 0.2
    a0 = (1 + 0.9 * 0.2 - 0.1) + 0.9 * 0.8 * a1
    np.testing.assert_allclose(out.advantages[0], [a0, a1, 0.0, a3, 0.0], rtol=1e-6)
    assert out.valid.tolist() == [[True, True, False, True, False]]
    np.testing.assert_allclose(out.returns[0, 1], a1 + 0.2, rtol=1e-6)


def test_gae_a_restart_mid_episode_is_a_seam():
    # Item 2 is a FIRST that follows no LAST: item 1 has no next observation.
    st, nst, r, d, v = rows([F, M, F, M], [M, M, M, M], [1, 2, 3, 4], [1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4])
    out = gae(st, nst, r, d, v, GAMMA, LAM)
    assert out.valid.tolist() == [[True, False, True, False]]
    a2 = 3 + 0.9 * 0.4 - 0.3
    a0 = 1 + 0.9 * 0.2 - 0.1  # item 1's advantage is unknown: the estimate stops there
    np.testing.assert_allclose(out.advantages[0], [a0, 0.0, a2, 0.0], rtol=1e-6)


def test_gae_batches_are_independent_and_shapes_are_checked():
    one = rows([F, M, M], [M, M, L], [1, 2, 3], [1, 1, 0], [0.0, 0.5, 1.0])
    two = rows([M, M, M], [M, M, M], [3, 2, 1], [1, 1, 1], [1.0, 0.5, 0.0])
    both = [np.concatenate(pair) for pair in zip(one, two, strict=True)]
    out = gae(*both, GAMMA, LAM)
    np.testing.assert_allclose(out.advantages[0], gae(*one, GAMMA, LAM).advantages[0])
    np.testing.assert_allclose(out.advantages[1], gae(*two, GAMMA, LAM).advantages[0])
    with pytest.raises(ValueError, match="value has shape"):
        gae(*both[:4], np.zeros((2, 2)), GAMMA, LAM)


def test_monte_carlo_returns_of_finished_episodes_only():
    st, nst, r, d = rows([F, M, M, L, F, M], [M, M, L, F, M, M], [1, 2, 3, 0, 4, 5], [1, 1, 0, 1, 1, 1])
    out = monte_carlo_returns(st, nst, r, d, 0.5)
    np.testing.assert_allclose(out.returns[0], [1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3, 0, 0, 0])
    assert out.valid.tolist() == [[True, True, True, False, False, False]]


def test_monte_carlo_returns_of_a_truncated_episode():
    st, nst, r, d = rows([F, M, M, L], [M, M, L, F], [1, 2, 3, 0], [1, 1, 1, 1])
    stopped = monte_carlo_returns(st, nst, r, d, 0.5)
    np.testing.assert_allclose(stopped.returns[0], [2.75, 3.5, 3.0, 0.0])
    values = np.array([[0.5, 0.25, 0.125, 8.0]])  # the boundary holds V(final observation)
    boot = monte_carlo_returns(st, nst, r, d, 0.5, bootstrap_value=values)
    g2 = 3 + 0.5 * 8.0
    g1 = 2 + 0.5 * g2
    g0 = 1 + 0.5 * g1
    np.testing.assert_allclose(boot.returns[0], [g0, g1, g2, 0.0])
    np.testing.assert_allclose(boot.advantages[0], [g0 - 0.5, g1 - 0.25, g2 - 0.125, 0.0])


def test_monte_carlo_returns_when_the_rollout_ends_with_the_episode():
    st, nst, r = rows([F, M], [M, L], [1, 2])
    terminated = monte_carlo_returns(st, nst, r, np.array([[1, 0]]), 0.5, bootstrap_value=np.zeros((1, 2)))
    assert terminated.valid.tolist() == [[True, True]]
    np.testing.assert_allclose(terminated.returns[0], [2.0, 2.0])
    # A truncation whose final observation is not in the rollout has no known return yet.
    truncated = monte_carlo_returns(st, nst, r, np.array([[1, 1]]), 0.5, bootstrap_value=np.zeros((1, 2)))
    assert truncated.valid.tolist() == [[False, False]]


def test_a_bootstrap_is_discounted_once_as_in_gae():
    # An environment whose LAST carries a discount in (0, 1): G = r + γ·d·V(final), as GAE's
    # delta bootstraps (the discount used to be applied twice, γ·d²·V).
    st, nst, r, d = rows([F, L], [L, F], [1.0, 0.0], [0.5, 1.0])
    values = np.array([[0.0, 8.0]])
    mc = monte_carlo_returns(st, nst, r, d, 0.9, bootstrap_value=values)
    td = gae(st, nst, r, d, values, 0.9, 1.0)
    np.testing.assert_allclose(mc.returns[0, 0], 1 + 0.9 * 0.5 * 8.0, rtol=1e-6)
    np.testing.assert_allclose(mc.returns[0, 0], td.returns[0, 0], rtol=1e-6)
