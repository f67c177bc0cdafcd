"""Running statistics and the discounted returns that reward scaling divides by."""

import numpy as np
import torch

from drivetrain.agents.actor_critic.normalization import RunningMeanStd, discounted_returns


def test_running_mean_std_equals_the_statistics_of_everything_seen():
    rng = np.random.default_rng(0)
    parts = [rng.normal(3.0, 2.0, (n, 2)) for n in (1, 7, 50)]
    rms = RunningMeanStd((2,))
    for part in parts:
        rms.update(part)
    everything = np.concatenate(parts)
    np.testing.assert_allclose(rms.mean.numpy(), everything.mean(0))
    np.testing.assert_allclose(rms.var.numpy(), everything.var(0))
    x = torch.tensor([[3.0, 3.0]])
    expected = (3.0 - everything.mean(0)) / np.sqrt(everything.var(0) + 1e-8)
    np.testing.assert_allclose(rms(x).numpy()[0], expected, rtol=1e-5)


def test_discounted_returns_carry_over_rollouts_and_restart_at_first():
    # Env 0: F(r=1) M(r=2) | next rollout: M(r=4) -- carried across; env 1: M(r=1) F(r=3) (restart).
    step_type = np.array([[0, 1], [1, 0]])
    reward = np.array([[1.0, 2.0], [1.0, 3.0]])
    include = np.ones((2, 2), bool)
    returns, carry = discounted_returns(step_type, reward, 0.5, include, np.array([0.0, 10.0]))
    # env 0: 1, then 0.5*1 + 2 = 2.5; env 1: 0.5*10 + 1 = 6, then restart: 3.
    np.testing.assert_allclose(returns, [1.0, 2.5, 6.0, 3.0])
    np.testing.assert_allclose(carry, [2.5, 3.0])
    later, carry = discounted_returns(
        np.array([[1], [1]]), np.array([[4.0], [0.0]]), 0.5, np.array([[True], [False]]), carry
    )
    np.testing.assert_allclose(later, [0.5 * 2.5 + 4.0])  # only the included item is folded in
    np.testing.assert_allclose(carry, [5.25, 3.0])
