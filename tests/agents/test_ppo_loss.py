"""The PPO loss against values worked out by hand."""

import math

import pytest
import torch

from drivetrain.agents.ppo.loss import ppo_loss


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


KW = {"clip_ratio": 0.2, "value_clip": None, "vf_coef": 0.5, "ent_coef": 0.01, "normalize_advantages": False}


def test_clipping_inactive_and_active():
    # Item 0: ratio e^0.1 = 1.105 inside [0.8, 1.2], A = 2 -> -2 * 1.105.
    # Item 1: ratio e^0.5 = 1.649 > 1.2 with A = 1 > 0 -> clipped: -1 * 1.2.
    # Item 2: ratio e^-0.5 = 0.607 < 0.8 with A = -1 < 0 -> clipped: -(-1) * 0.8 = 0.8.
    # Item 3: ratio e^0.5 with A = -1 < 0 -> not clipped (pessimistic): 1 * 1.649.
    new = t(0.1, 0.5, -0.5, 0.5)
    old = t(0.0, 0.0, 0.0, 0.0)
    adv = t(2.0, 1.0, -1.0, -1.0)
    value, old_value, returns = t(1.0, 2.0, 0.0, 0.5), t(0, 0, 0, 0), t(2.0, 2.0, 1.0, 0.0)
    entropy = t(0.5, 0.7, 0.9, 1.1)
    mask = torch.ones(4, dtype=torch.bool)
    out = ppo_loss(new, old, adv, value, old_value, returns, entropy, mask, **KW)
    r = [math.exp(0.1), math.exp(0.5), math.exp(-0.5), math.exp(0.5)]
    policy = (-2 * r[0] - 1.2 + 0.8 + r[3]) / 4
    value_loss = 0.5 * (1.0 + 0.0 + 1.0 + 0.25) / 4
    ent = (0.5 + 0.7 + 0.9 + 1.1) / 4
    assert out.policy_loss.item() == pytest.approx(policy)
    assert out.value_loss.item() == pytest.approx(value_loss)
    assert out.entropy.item() == pytest.approx(ent)
    assert out.loss.item() == pytest.approx(policy + 0.5 * value_loss - 0.01 * ent)
    assert out.clip_fraction.item() == pytest.approx(3 / 4)  # |r - 1| > 0.2 for items 1, 2, 3
    kl = sum((x - 1) - math.log(x) for x in r) / 4
    assert out.approx_kl.item() == pytest.approx(kl)


def test_value_clipping_and_the_mask():
    # Item 0: V moved 1.0 from V_old = 0 with c = 0.2: clipped 0.2, (0.2 - 2)^2 = 3.24 > (1 - 2)^2 = 1.
    # Item 1: V moved 0.1 (inside): (0.1 - 0)^2 both ways. Item 2 is masked out.
    z = t(0.0, 0.0, 0.0)
    value, old_value, returns = t(1.0, 0.1, 50.0), t(0.0, 0.0, 0.0), t(2.0, 0.0, 0.0)
    mask = torch.tensor([True, True, False])
    kw = {**KW, "value_clip": 0.2}
    out = ppo_loss(z, z, z, value, old_value, returns, z, mask, **kw)
    assert out.value_loss.item() == pytest.approx(0.5 * (3.24 + 0.01) / 2)
    assert out.policy_loss.item() == 0.0


def test_advantage_normalization_and_gradients():
    adv = t(1.0, 2.0, 3.0, 100.0)
    mask = torch.tensor([True, True, True, False])
    new = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    z = torch.zeros(4, dtype=torch.float64)
    out = ppo_loss(new, z, adv, z, z, z, z, mask, **{**KW, "normalize_advantages": True})
    # Over the 3 masked-in items: mean 2, sample std 1 -> normalized (-1, 0, 1); ratio 1 -> loss 0.
    assert out.policy_loss.item() == pytest.approx(0.0, abs=1e-9)
    out.loss.backward()
    # d/dlogp of -A·r at r = 1 is -A / count: (1, 0, -1) / 3; the masked item gets none.
    torch.testing.assert_close(new.grad, t(1 / 3, 0.0, -1 / 3, 0.0), atol=1e-6, rtol=0)


def test_no_mask_is_the_same_as_a_mask_of_all_items():
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(6, generator=g, dtype=torch.float64) for _ in range(7)]
    kw = {**KW, "normalize_advantages": True, "value_clip": 0.3}
    everything = ppo_loss(*args, torch.ones(6, dtype=torch.bool), **kw)
    unmasked = ppo_loss(*args, None, **kw)
    for a, b in zip(everything, unmasked, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("value", [1.0, 3.3, -7.1])
def test_equal_advantages_normalize_to_zero_not_to_rounding(value):
    from drivetrain.agents.reinforce.loss import normalized

    x = torch.full((7,), value, dtype=torch.float32)  # float32's mean of seven 3.3s is not 3.3
    assert torch.equal(normalized(x, torch.ones(7, dtype=torch.bool)), torch.zeros(7))
    log_prob = torch.zeros(7, requires_grad=True)
    terms = ppo_loss(
        log_prob, torch.zeros(7), x, torch.zeros(7), torch.zeros(7), torch.zeros(7), torch.zeros(7), None,
        clip_ratio=0.2, value_clip=None, vf_coef=0.0, ent_coef=0.0, normalize_advantages=True,
    )  # fmt: skip
    terms.loss.backward()
    assert terms.policy_loss.item() == 0.0 and torch.equal(log_prob.grad, torch.zeros(7))
