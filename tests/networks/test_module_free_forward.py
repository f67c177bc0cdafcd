"""The networks' forward passes apply their layers without module calls: the values are those of
calling the modules, with the parameters live (reassigned, swapped by functional_call, copied)."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.core import specs
from drivetrain.networks import MLP, QNetwork, make_generator
from drivetrain.networks.continuous import QCritics, SquashedGaussianActor
from drivetrain.networks.mlp import apply_linear

VECTOR = specs.ArraySpec((4,), np.float32, "observation")
ACTIONS = specs.BoundedArraySpec((), np.int64, 0, 2, "action")
BOX = specs.BoundedArraySpec((2,), np.float32, -1.0, 1.0, "action")


def _by_module_calls(mlp: MLP, x: torch.Tensor) -> torch.Tensor:
    for module in mlp:  # nn.Sequential's own iteration: Linear, activation, ...
        x = module(x)
    return x


@pytest.mark.parametrize(("activation", "module_type"), [("relu", nn.ReLU), ("tanh", nn.Tanh)])
def test_mlp_forward_equals_calling_its_modules(activation, module_type):
    mlp = MLP(4, (8, 3), make_generator(0), activation=activation)
    assert [type(m) for m in mlp] == [nn.Linear, module_type, nn.Linear, module_type]
    x = torch.randn(5, 4)
    torch.testing.assert_close(mlp(x), _by_module_calls(mlp, x), rtol=0, atol=0)


def test_mlp_refuses_an_unknown_activation():
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(4, (8,), activation="gelu")  # type: ignore[arg-type]


def test_apply_linear_reads_the_live_parameters():
    layer = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    torch.testing.assert_close(apply_linear(layer, x), layer(x), rtol=0, atol=0)
    layer.weight = nn.Parameter(torch.zeros(2, 3))  # a reassigned parameter is the one applied
    torch.testing.assert_close(apply_linear(layer, x), layer.bias.expand(4, 2), rtol=0, atol=0)


def test_q_network_uses_swapped_and_copied_parameters():
    net = QNetwork(VECTOR, ACTIONS, fc_layers=(8, 8), seed=0)
    x = torch.randn(3, 4)
    zeros = {name: torch.zeros_like(p) for name, p in net.named_parameters()}
    swapped = torch.func.functional_call(net, zeros, (x,))
    torch.testing.assert_close(swapped, torch.zeros(3, 3), rtol=0, atol=0)
    copy_ = copy.deepcopy(net)
    with torch.no_grad():
        for p in copy_.parameters():
            p.add_(1.0)
    assert not torch.equal(copy_(x), net(x))  # the copy applies its own weights, not the original's
    by_calls = net.head.linear(_by_module_calls(net.torso, x))
    torch.testing.assert_close(net(x), by_calls, rtol=0, atol=0)


def test_continuous_networks_equal_their_module_calls():
    actor = SquashedGaussianActor(VECTOR, 2, (8, 8), seed=0)
    x, unit = torch.randn(3, 4), torch.rand(3, 2) * 2 - 1
    features = _by_module_calls(actor.torso, x)
    mean, log_std = actor(x)
    torch.testing.assert_close(mean, actor.mean_head(features), rtol=0, atol=0)
    torch.testing.assert_close(log_std, actor.log_std_head(features).clamp(-20.0, 2.0), rtol=0, atol=0)
    critics = QCritics(VECTOR, 2, (8, 8), seed=0)
    expected = torch.stack(
        [c.head(_by_module_calls(c.torso, torch.cat([x, unit], -1))).squeeze(-1) for c in critics.critics]
    )
    torch.testing.assert_close(critics(x, unit), expected, rtol=0, atol=0)


def test_actor_critic_network_keeps_its_parameter_names_and_values():
    net = ActorCriticNetwork(VECTOR, ACTIONS, (8, 8), seed=0)
    names = [name for name, _ in net.named_parameters()]
    assert names == [
        "actor_torso.0.weight",
        "actor_torso.0.bias",
        "actor_torso.2.weight",
        "actor_torso.2.bias",
        "critic_torso.0.weight",
        "critic_torso.0.bias",
        "critic_torso.2.weight",
        "critic_torso.2.bias",
        "policy_head.weight",
        "policy_head.bias",
        "value_head.weight",
        "value_head.bias",
    ]
    x = torch.randn(3, 4)
    out = net(x)
    torch.testing.assert_close(
        out.logits, net.policy_head(_by_module_calls(net.actor_torso, x)), rtol=0, atol=0
    )
    value = net.value_head(_by_module_calls(net.critic_torso, x)).squeeze(-1)
    torch.testing.assert_close(out.value, value, rtol=0, atol=0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_gradients_equal_those_of_calling_its_modules(activation):
    """The activations run in place on each layer's output: the backward pass is unchanged."""
    mlp = MLP(4, (8, 8), make_generator(0), activation=activation)
    x = torch.randn(5, 4, requires_grad=True)
    grads = torch.autograd.grad(mlp(x).square().sum(), [x, *mlp.parameters()])
    expected = torch.autograd.grad(_by_module_calls(mlp, x).square().sum(), [x, *mlp.parameters()])
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
