"""The DQN loss against values worked out by hand on a tabular Q-network (see dqn_tables.TABLE)."""

import numpy as np
import pytest
import torch
from dqn_tables import FIRST, LAST, MID, TABLE, make_agent, table, windows

from drivetrain.core import specs

GAMMA = 0.9

# Row A: s0 --a1--> s1 (MID), r = 1.        q = Q(s0, 1) = 2;   target = 1 + 0.9 * max(3, 0.5) = 3.7
ROW_A = [(MID, 0, 1, MID, 1.0, 1.0), (MID, 1, 0, MID, 0.0, 1.0)]
# Row B: s2 --a0--> s3 terminated, r = -0.5. q = Q(s2, 0) = -1;  target = -0.5 (no bootstrap)
ROW_B = [(MID, 2, 0, LAST, -0.5, 0.0), (LAST, 3, 0, FIRST, 0.0, 1.0)]
TD_A = 2.0 - (1.0 + GAMMA * 3.0)  # -1.7
TD_B = -1.0 - (-0.5)  # -0.5
# A boundary window (starts at LAST): must never contribute, whatever its numbers.
BOUNDARY = [(LAST, 2, 1, FIRST, 100.0, 1.0), (FIRST, 3, 0, MID, 100.0, 1.0)]


def test_single_step_mse_by_hand():
    agent = make_agent(loss="mse", gamma=GAMMA)
    info = agent.train(windows(ROW_A, ROW_B))
    assert info.loss == pytest.approx((TD_A**2 + TD_B**2) / 2)
    np.testing.assert_allclose(info.extra["td_error"], [1.7, 0.5], rtol=1e-6)
    assert info.extra["td_error"].dtype == np.float32 and info.extra["td_error"].shape == (2,)
    assert info.extra["q_values"] == pytest.approx((2.0 + -1.0) / 2)
    assert info.extra["target"] == pytest.approx((3.7 + -0.5) / 2)
    assert info.extra["num_valid"] == 2
    # dL/dtable[s0, 1] = 2 * TD_A / 2 and dL/dtable[s2, 0] = 2 * TD_B / 2: the global norm
    assert info.extra["grad_norm"] == pytest.approx((TD_A**2 + TD_B**2) ** 0.5, rel=1e-6)
    assert agent.train_step == 1


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (1.0, (1.0 * (1.7 - 0.5 * 1.0) + 0.5 * 0.5**2) / 2),  # |TD_A| > δ: linear part
        (2.0, (0.5 * 1.7**2 + 0.5 * 0.5**2) / 2),  # both quadratic
        (0.25, (0.25 * (1.7 - 0.125) + 0.25 * (0.5 - 0.125)) / 2),  # both linear
    ],
)
def test_huber_loss_by_hand(delta, expected):
    agent = make_agent(loss="huber", huber_delta=delta, gamma=GAMMA)
    assert agent.train(windows(ROW_A, ROW_B)).loss == pytest.approx(expected)


def test_the_optimizer_descends_this_loss():
    agent = make_agent(loss="mse", gamma=GAMMA, lr=0.1)
    agent.train(windows(ROW_A, ROW_B))
    expected = np.array(TABLE, np.float32)
    expected[0, 1] -= 0.1 * (2 * TD_A / 2)  # 2.17
    expected[2, 0] -= 0.1 * (2 * TD_B / 2)  # -0.95
    np.testing.assert_allclose(table(agent), expected, rtol=1e-6)  # targets (s1, s3) get no gradient


@pytest.mark.parametrize(
    ("n", "expected_target"),
    [
        (2, 1.0 + GAMMA * 2.0 + GAMMA**2 * max(TABLE[2])),  # 1 + 1.8 + 0.81 * 4 = 6.04
        (3, 1.0 + GAMMA * 2.0 + GAMMA**2 * 3.0 + GAMMA**3 * max(TABLE[3])),  # 5.23 + 0.729 * 5 = 8.875
    ],
)
def test_n_step_target_by_hand(n, expected_target):
    # s0 -a1-> s1 -> s2 -> s3, rewards 1, 2, 3; the reward of the last step of the window is not used
    steps = [
        (MID, 0, 1, MID, 1.0, 1.0),
        (MID, 1, 0, MID, 2.0, 1.0),
        (MID, 2, 0, MID, 3.0, 1.0),
        (MID, 3, 0, MID, 9.0, 1.0),
    ]
    agent = make_agent(loss="mse", gamma=GAMMA, n_step=n)
    assert agent.train_sequence_length == n + 1
    info = agent.train(windows(steps[: n + 1]))
    assert info.extra["target"] == pytest.approx(expected_target, rel=1e-6)
    assert info.loss == pytest.approx((2.0 - expected_target) ** 2, rel=1e-6)


@pytest.mark.parametrize(
    ("discount", "expected_target"),
    [
        (0.0, 1.0 + GAMMA * 2.0),  # terminated: no bootstrap, 2.8
        (
            1.0,
            1.0 + GAMMA * 2.0 + GAMMA**2 * max(TABLE[2]),
        ),  # truncated: bootstrap from the LAST obs s2, 6.04
    ],
)
def test_episode_end_inside_an_n_step_window(discount, expected_target):
    # s0 -> s1 -> s2 (LAST) | boundary s2 -> s3 (FIRST of the next episode): rewards 50, 70 must not count
    window = [
        (MID, 0, 1, MID, 1.0, 1.0),
        (MID, 1, 0, LAST, 2.0, discount),
        (LAST, 2, 0, FIRST, 50.0, 1.0),
        (FIRST, 3, 0, MID, 70.0, 1.0),
    ]
    agent = make_agent(loss="mse", gamma=GAMMA, n_step=3)
    info = agent.train(windows(window))
    assert info.extra["target"] == pytest.approx(expected_target, rel=1e-6)
    assert info.extra["num_valid"] == 1


def test_window_crossing_last_to_first_at_its_first_step():
    # s0 terminates at once; the window then crosses into the next episode (s1 LAST -> s2 FIRST)
    window = [(MID, 0, 1, LAST, 1.0, 0.0), (LAST, 1, 0, FIRST, 40.0, 1.0), (FIRST, 2, 0, MID, 60.0, 1.0)]
    agent = make_agent(loss="mse", gamma=GAMMA, n_step=2)
    info = agent.train(windows(window))
    assert info.extra["target"] == pytest.approx(1.0)
    assert info.loss == pytest.approx((2.0 - 1.0) ** 2)


def test_boundary_windows_contribute_nothing():
    alone = make_agent(loss="mse", gamma=GAMMA, lr=0.1)
    mixed = make_agent(loss="mse", gamma=GAMMA, lr=0.1)
    info_alone = alone.train(windows(ROW_A))
    info_mixed = mixed.train(windows(BOUNDARY, ROW_A, BOUNDARY))
    assert info_mixed.loss == pytest.approx(TD_A**2)  # the mean over the one valid window
    assert info_mixed.loss == pytest.approx(info_alone.loss)
    np.testing.assert_allclose(info_mixed.extra["td_error"], [0.0, 1.7, 0.0], rtol=1e-6)
    assert info_mixed.extra["num_valid"] == 1
    assert info_mixed.extra["q_values"] == pytest.approx(2.0)
    np.testing.assert_array_equal(table(mixed), table(alone))  # same update; s2 (boundary) untouched
    assert table(mixed)[2, 1] == TABLE[2][1]


def test_an_all_boundary_batch_skips_the_optimizer_step():
    agent = make_agent(loss="mse", gamma=GAMMA, lr=0.1, optimizer=torch.optim.Adam)
    agent.train(windows(ROW_A))  # Adam now has momentum: a step with zero gradients would still move
    before = table(agent)
    info = agent.train(windows(BOUNDARY, BOUNDARY))
    assert info.loss == 0.0 and info.extra["num_valid"] == 0
    np.testing.assert_array_equal(info.extra["td_error"], [0.0, 0.0])
    np.testing.assert_array_equal(table(agent), before)
    assert agent.train_step == 2


def test_double_dqn_target_by_hand():
    batch = windows(ROW_A)  # s0 --a1--> s1, r = 1
    for double, expected in [
        (False, 1.0 + GAMMA * 7.0),  # max_a Q_target(s1, a) = 7
        (True, 1.0 + GAMMA * 1.0),  # argmax_a Q_online(s1, a) = 0 (3 > 0.5); Q_target(s1, 0) = 1
    ]:
        agent = make_agent(loss="mse", gamma=GAMMA, double=double)
        with torch.no_grad():
            agent.target_network.table[1] = torch.tensor([1.0, 7.0])
        info = agent.train(batch)
        assert info.extra["target"] == pytest.approx(expected)
        assert info.loss == pytest.approx((2.0 - expected) ** 2)


def test_importance_weights_by_hand():
    agent = make_agent(loss="mse", gamma=GAMMA)
    info = agent.train(windows(ROW_A, BOUNDARY, ROW_B), weights=np.array([0.5, 3.0, 2.0]))
    assert info.loss == pytest.approx((0.5 * TD_A**2 + 2.0 * TD_B**2) / 2)
    # td_error stays unweighted: it is the new priority
    np.testing.assert_allclose(info.extra["td_error"], [1.7, 0.0, 0.5], rtol=1e-6)


def test_reward_clip_then_scale_by_hand():
    agent = make_agent(loss="mse", gamma=GAMMA, reward_clip=1.0, reward_scale=0.5)
    row_a = [(MID, 0, 1, MID, 3.0, 1.0), (MID, 1, 0, MID, 0.0, 1.0)]  # 3 -> clip 1 -> scale 0.5
    info = agent.train(windows(row_a))
    assert info.extra["target"] == pytest.approx(0.5 + GAMMA * 3.0)
    two_step = make_agent(loss="mse", gamma=GAMMA, reward_clip=1.0, reward_scale=0.5, n_step=2)
    window = [(MID, 0, 1, MID, 3.0, 1.0), (MID, 1, 0, MID, -4.0, 1.0), (MID, 2, 0, MID, 0.0, 1.0)]
    info = two_step.train(windows(window))  # per step: 3 -> 0.5, -4 -> -0.5
    assert info.extra["target"] == pytest.approx(0.5 + GAMMA * -0.5 + GAMMA**2 * 4.0)


def test_actions_are_offset_by_the_action_spec_minimum():
    actions = specs.BoundedArraySpec((), np.int64, 3, 4)  # index = action - 3
    agent = make_agent(loss="mse", gamma=GAMMA, action_spec=actions)
    row = [(MID, 0, 4, MID, 1.0, 1.0), (MID, 1, 3, MID, 0.0, 1.0)]
    info = agent.train(windows(row))
    assert info.extra["q_values"] == pytest.approx(TABLE[0][1])


def test_gradient_clipping_by_global_norm():
    agent = make_agent(loss="mse", gamma=GAMMA, lr=1.0, gradient_clipping=1.0)
    info = agent.train(windows(ROW_A))
    grad = 2 * TD_A  # d(TD_A²)/dq = -3.4, the only non-zero gradient
    assert info.extra["grad_norm"] == pytest.approx(abs(grad), rel=1e-6)  # reported before clipping
    assert table(agent)[0, 1] == pytest.approx(2.0 + 1.0, rel=1e-5)  # the step is clipped to norm 1


def test_bad_batches_get_clear_errors():
    agent = make_agent(n_step=2)
    with pytest.raises(ValueError, match=r"train_sequence_length=3.*\(1, 2\)"):
        agent.train(windows(ROW_A))
    one_step = make_agent()
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\)"):
        one_step.train(windows(ROW_A, ROW_B), weights=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        one_step.train(windows(ROW_A, ROW_B), weights=np.array([1.0, -1.0]))
    bad = windows(ROW_A)
    bad = bad._replace(observation=bad.observation.astype(np.float64))
    with pytest.raises(specs.SpecError, match=r"batch\.observation: expected dtype float32, got float64"):
        make_agent().train(bad)


@pytest.mark.parametrize("loss", ["huber", "mse"])
def test_plain_mean_and_unit_weights_give_the_same_update(loss):
    plain = make_agent(loss=loss, gamma=GAMMA, lr=0.1)  # no weights, all valid: reduction="mean"
    weighted = make_agent(loss=loss, gamma=GAMMA, lr=0.1)  # the weighted sum over valid windows
    a = plain.train(windows(ROW_A, ROW_B))
    b = weighted.train(windows(ROW_A, ROW_B), weights=np.ones(2, np.float32))
    assert a.loss == pytest.approx(b.loss, rel=1e-6)
    assert a.extra["grad_norm"] == pytest.approx(b.extra["grad_norm"], rel=1e-6)
    np.testing.assert_allclose(table(plain), table(weighted), rtol=1e-6)
