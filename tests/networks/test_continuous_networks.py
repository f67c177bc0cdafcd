"""The continuous-control networks: the squashed Gaussian's log-probability, the action scale, Polyak updates."""

import math

import numpy as np
import pytest
import torch

from drivetrain.agents.continuous import polyak_update
from drivetrain.core import specs
from drivetrain.networks.continuous import (
    ActionScale,
    DeterministicActor,
    QCritics,
    SquashedGaussianActor,
    continuous_action_dim,
    log1m_tanh_squared,
    squashed_gaussian_log_prob,
    squashed_sample,
)

SPEC = specs.BoundedArraySpec((2,), np.float32, np.array([-2.0, 0.0]), np.array([2.0, 1.0]), "action")


def test_squashed_gaussian_log_prob_matches_a_value_worked_out_by_hand():
    # u = 0.5, mean = 0.2, std = 0.5: z = 0.6
    # log N(u) = -z²/2 - log σ - ½ log 2π = -0.18 + 0.6931472 - 0.9189385 = -0.4057913
    # log(1 - tanh²(0.5)) = log(1 - 0.4621172²) = log(0.7864477) = -0.2402290
    # log π(tanh u) = -0.4057913 - (-0.2402290) = -0.1655623
    u, mean, log_std = torch.tensor([0.5]), torch.tensor([0.2]), torch.tensor([math.log(0.5)])
    assert squashed_gaussian_log_prob(u, mean, log_std).item() == pytest.approx(-0.1655623, abs=1e-6)
    # two dimensions sum; the second (u = 0 = mean, σ = 1) adds log N(0) = -0.9189385 and no Jacobian term
    two = squashed_gaussian_log_prob(
        torch.tensor([0.5, 0.0]), torch.tensor([0.2, 0.0]), torch.tensor([math.log(0.5), 0.0])
    )
    assert two.item() == pytest.approx(-0.1655623 - 0.9189385, abs=1e-6)


def test_squashed_gaussian_log_prob_agrees_with_torch_distributions_and_stays_finite():
    gen = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(5, 3, generator=gen), 0.3 * torch.randn(5, 3, generator=gen)
    noise = torch.randn(5, 3, generator=gen)
    action, log_prob = squashed_sample(mean, log_std, noise)
    base = torch.distributions.Normal(mean, log_std.exp())
    reference = torch.distributions.TransformedDistribution(base, [torch.distributions.TanhTransform()])
    u = mean + log_std.exp() * noise
    torch.testing.assert_close(action, torch.tanh(u))
    torch.testing.assert_close(log_prob, reference.log_prob(torch.tanh(u)).sum(-1), rtol=1e-4, atol=1e-4)
    # far in the tails tanh(u) rounds to 1: the naive log(1 - tanh²) is -inf, the stable form is not
    big = torch.tensor([20.0])
    assert torch.isinf(torch.log(1 - torch.tanh(big) ** 2)).all()
    assert log1m_tanh_squared(big).item() == pytest.approx(2 * (math.log(2) - 20.0), abs=1e-4)


def test_action_scale_maps_unit_actions_onto_the_bounds_and_back():
    scale = ActionScale(SPEC)
    unit = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-3.0, 7.0]])
    torch.testing.assert_close(
        scale.to_env(unit), torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, 0.5], [-2.0, 1.0]])
    )
    env = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [1.0, 0.25]])
    torch.testing.assert_close(scale.to_unit(env), torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.5, -0.5]]))
    x = torch.rand(100, 2) * 2 - 1
    torch.testing.assert_close(scale.to_unit(scale.to_env(x)), x, atol=1e-6, rtol=0)


def test_only_continuous_bounded_action_specs_are_accepted():
    with pytest.raises(TypeError, match="SAC: needs continuous actions"):
        continuous_action_dim(specs.BoundedArraySpec((), np.int64, 0, 1), "SAC")
    with pytest.raises(TypeError, match="finite bounds"):
        continuous_action_dim(specs.BoundedArraySpec((1,), np.float32, -np.inf, np.inf), "TD3")
    assert continuous_action_dim(SPEC, "SAC") == 2


def test_networks_have_the_documented_shapes():
    obs = specs.ArraySpec((3,), np.float32)
    x = torch.randn(4, 3)
    mean, log_std = SquashedGaussianActor(obs, 2, (8,), seed=0)(x)
    assert mean.shape == log_std.shape == (4, 2)
    assert DeterministicActor(obs, 2, (8,), seed=0)(x).shape == (4, 2)
    critics = QCritics(obs, 2, (8,), num_critics=3, seed=0)
    assert critics(x, torch.zeros(4, 2)).shape == (3, 4)
    assert critics.first(x, torch.zeros(4, 2)).shape == (4,)
    same = QCritics(obs, 2, (8,), num_critics=3, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(critics.parameters(), same.parameters(), strict=True))


def test_polyak_update_moves_the_target_by_tau_and_copies_integer_buffers():
    target = [torch.zeros(3), torch.tensor([1, 2])]
    online = [torch.full((3,), 4.0), torch.tensor([7, 8])]
    polyak_update(target, online, 0.25)
    torch.testing.assert_close(target[0], torch.full((3,), 1.0))  # 0.75 * 0 + 0.25 * 4
    assert target[1].tolist() == [7, 8]
    polyak_update(target, online, 0.25)
    torch.testing.assert_close(target[0], torch.full((3,), 1.75))  # 0.75 * 1 + 0.25 * 4
    polyak_update(target, online, 1.0)
    torch.testing.assert_close(target[0], online[0])


@pytest.mark.parametrize("num_critics", [1, 2, 3])
def test_the_critics_minimum_equals_the_minimum_over_the_stacked_critics(num_critics):
    spec = specs.ArraySpec((3,), np.float32, "observation")
    critics = QCritics(spec, 2, (8,), num_critics=num_critics, seed=0)
    obs, action = torch.randn(5, 3), torch.rand(5, 2) * 2 - 1
    assert torch.equal(critics.min(obs, action), critics(obs, action).min(0).values)
