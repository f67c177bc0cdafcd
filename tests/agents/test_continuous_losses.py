"""The SAC and TD3 losses as pure functions, against values worked out by hand."""

import math

import pytest
import torch

from drivetrain.agents.continuous.loss import critic_loss
from drivetrain.agents.sac import loss as sac_loss
from drivetrain.agents.td3 import loss as td3_loss


def test_sac_critic_target_bootstraps_with_the_entropy_bonus_unless_terminated():
    reward, next_q, next_log_prob = (
        torch.tensor([1.0, 1.0]),
        torch.tensor([2.0, 2.0]),
        torch.tensor([-0.5, -0.5]),
    )
    discount = torch.tensor([0.99, 0.0])  # bootstrapping (a truncation too), then a termination
    y = sac_loss.critic_target(reward, discount, next_q, next_log_prob, 0.2)
    # 1 + 0.99 * (2 - 0.2 * -0.5) = 1 + 0.99 * 2.1 = 3.079; terminated: the reward alone
    torch.testing.assert_close(y, torch.tensor([3.079, 1.0]))


def test_critic_loss_is_half_the_sum_of_the_critics_mean_squared_errors_over_valid_items():
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # [critics, batch]
    target = torch.tensor([2.0, 1.0])
    # critic 1: errors -1, 1 -> mean 1; critic 2: errors 1, 3 -> mean 5; ½ (1 + 5) = 3
    assert critic_loss(q, target, torch.tensor([0.5, 0.5])).item() == pytest.approx(3.0)
    # only the first item valid: ½ (1 + 1) = 1
    assert critic_loss(q, target, torch.tensor([1.0, 0.0])).item() == pytest.approx(1.0)
    assert td3_loss.critic_loss is critic_loss


def test_sac_actor_loss_trades_q_against_the_entropy():
    q, log_prob = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.5])
    # mean(0.2 * log π - q) = ((-0.2 - 1) + (0.1 - 3)) / 2 = -2.05
    loss = sac_loss.actor_loss(q, log_prob, 0.2, torch.tensor([0.5, 0.5]))
    assert loss.item() == pytest.approx(-2.05)


def test_sac_temperature_loss_and_its_gradient_sign():
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    log_prob = torch.tensor([-1.0, 0.5], requires_grad=True)
    loss = sac_loss.temperature_loss(log_alpha, log_prob, -1.0, torch.tensor([0.5, 0.5]))
    # -log α · mean(log π + H) = -(-0.6931472)(-1.25) = -0.8664340
    assert loss.item() == pytest.approx(-0.8664340, abs=1e-6)
    loss.backward()
    # d/d log α = -mean(log π + H) = 1.25 > 0: the entropy (-mean log π = 0.25) is above the target (-1),
    # so gradient descent lowers α; no gradient reaches the policy
    assert log_alpha.grad.item() == pytest.approx(1.25)
    assert log_prob.grad is None


def test_td3_target_policy_smoothing_clips_the_noise_then_the_action():
    target_mean = torch.atanh(torch.tensor([0.5, 0.1, -0.2, 0.9]))
    noise = torch.tensor([1.0, 3.0, -5.0, 3.0])
    # σ ε = 0.2, 0.6, -1.0, 0.6 -> clipped to ±0.5: 0.2, 0.5, -0.5, 0.5
    # actions 0.7, 0.6, -0.7 and 1.4 -> clipped to 1
    action = td3_loss.smoothed_target_action(target_mean, noise, 0.2, 0.5)
    torch.testing.assert_close(action, torch.tensor([0.7, 0.6, -0.7, 1.0]))
    # no smoothing (DDPG): the target actor's action itself
    torch.testing.assert_close(
        td3_loss.smoothed_target_action(target_mean, noise, 0.0, 0.5), torch.tanh(target_mean)
    )


def test_td3_target_and_actor_loss():
    y = td3_loss.critic_target(
        torch.tensor([1.0, -1.0]), torch.tensor([0.98, 0.0]), torch.tensor([10.0, 10.0])
    )
    torch.testing.assert_close(y, torch.tensor([10.8, -1.0]))
    loss = td3_loss.actor_loss(torch.tensor([2.0, 4.0, 100.0]), torch.tensor([0.5, 0.5, 0.0]))
    assert loss.item() == pytest.approx(-3.0)  # the invalid third item does not count
