"""R2D2 loss pieces by hand: n-step targets over sequences, masked loss, priorities, burn-in without gradient."""

from __future__ import annotations

import pytest
import torch

from drivetrain.agents.r2d2.loss import masked_loss, n_step_targets, sequence_priorities, unroll
from drivetrain.core import specs
from drivetrain.networks.recurrent import RecurrentQNetwork


def test_n_step_targets_gather_the_bootstrap_step_by_hand() -> None:
    q_target = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [0.0, 5.0], [4.0, 4.0]]])  # [1, T + n = 4, A = 2]
    reward = torch.tensor([[1.0, 0.5]])
    discount = torch.tensor([[0.25, 0.0]])
    steps = torch.tensor([[2, 1]])
    # t = 0: 1 + 0.25 * max(q[2]) = 1 + 0.25 * 5; t = 1: 0.5 + 0 * max(q[2])
    torch.testing.assert_close(n_step_targets(reward, discount, steps, q_target), torch.tensor([[2.25, 0.5]]))
    # Double DQN: the online network picks action 0 at step 2, the target network's q[2, 0] = 0 is used.
    q_online = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [9.0, 1.0], [0.0, 0.0]]])
    torch.testing.assert_close(
        n_step_targets(reward, torch.tensor([[0.5, 1.0]]), steps, q_target, q_online),
        torch.tensor([[1.0, 0.5]]),
    )
    with pytest.raises(ValueError, match="bootstrap index 4 beyond the 4 unrolled steps"):
        n_step_targets(reward, discount, torch.tensor([[2, 3]]), q_target)


def test_masked_loss_by_hand() -> None:
    q = torch.tensor([[1.0, 2.0, 3.0]])
    target = torch.zeros(1, 3)
    mask = torch.tensor([[True, False, True]])
    # squared errors 1 and 9 over the 2 valid steps
    assert masked_loss(q, target, mask, kind="mse").item() == pytest.approx(5.0)
    # Huber (δ = 1): 0.5 * 1² = 0.5 and 1 * (3 - 0.5) = 2.5
    assert masked_loss(q, target, mask, kind="huber").item() == pytest.approx(1.5)
    # weights per sequence: (2 * (1 + 9) + 3 * (1 + 1 + 1)) / 5 valid steps
    q2 = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    mask2 = torch.tensor([[True, False, True], [True, True, True]])
    loss = masked_loss(q2, torch.zeros(2, 3), mask2, torch.tensor([2.0, 3.0]), kind="mse")
    assert loss.item() == pytest.approx(29.0 / 5.0)
    # nothing valid: 0, not NaN
    assert masked_loss(q, target, torch.zeros(1, 3, dtype=torch.bool), kind="mse").item() == 0.0


def test_sequence_priorities_by_hand() -> None:
    td = torch.tensor([[1.0, 3.0, 100.0], [4.0, 4.0, 4.0]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    # 0.9 * max(1, 3) + 0.1 * mean(1, 3); a sequence without valid steps gets 0
    torch.testing.assert_close(sequence_priorities(td, mask, 0.9), torch.tensor([2.9, 0.0]))


def test_burn_in_steps_get_no_gradient() -> None:
    obs_spec = specs.ArraySpec((3,), "float32", "observation")
    act_spec = specs.BoundedArraySpec((), "int64", 0, 1, "action")
    net = RecurrentQNetwork(obs_spec, act_spec, core="lstm", hidden_size=5, fc_layers=(4,), seed=0)
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 6, 3, generator=gen).requires_grad_(True)
    first = torch.zeros(2, 6, dtype=torch.bool)
    state = tuple(torch.randn(2, 5, generator=gen).requires_grad_(True) for _ in range(2))

    q, _ = unroll(net, obs, first, state, burn_in=2)
    assert q.shape == (2, 4, 2)
    q.sum().backward()
    assert obs.grad is not None
    assert torch.count_nonzero(obs.grad[:, :2]) == 0  # burn-in: no gradient
    assert torch.all(obs.grad[:, 2:].abs().sum(-1) > 0)  # training steps: gradient
    assert all(s.grad is None for s in state)  # nor to the stored state

    # The burn-in still warms the state up: the q-values are those of the full unroll.
    with torch.no_grad():
        full, _ = net(obs, first, state)
    torch.testing.assert_close(q.detach(), full[:, 2:])

    # Without the burn-in (burn_in=0) the same early steps do get gradients: the test can fail.
    obs.grad = None
    q0, _ = unroll(net, obs, first, state, burn_in=0)
    q0[:, 2:].sum().backward()
    assert torch.count_nonzero(obs.grad[:, :2]) > 0
