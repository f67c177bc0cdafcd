"""RMSpropTF (ε inside the root) against updates worked out by hand, and the presets' optimizers."""

import copy
import dataclasses
import io
import math

import pytest
import torch

from drivetrain.agents import make_optimizer
from drivetrain.agents.optimizers import RMSpropTF, adam
from drivetrain.train.atari_presets import breakout_dqn, breakout_dqn_nature

GRADS = [0.3, -2.0, 1e-4, 0.0]  # a small gradient shows where ε goes


def param(values: list[float], grad: list[float]) -> torch.nn.Parameter:
    p = torch.nn.Parameter(torch.tensor(values, dtype=torch.float64))
    p.grad = torch.tensor(grad, dtype=torch.float64)
    return p


def test_first_centered_step_has_eps_inside_the_root():
    lr, rho, eps = 2.5e-4, 0.95, 0.01
    p = param([1.0, 1.0, 1.0, 1.0], GRADS)
    RMSpropTF([p], lr=lr, rho=rho, eps=eps, centered=True).step()
    for got, g in zip(p.detach().tolist(), GRADS, strict=True):
        ms, mg = 0.05 * g * g, 0.05 * g  # from 0: (1 - rho) g², (1 - rho) g
        expected = 1.0 - lr * g / math.sqrt(ms - mg * mg + eps)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_two_uncentered_steps_with_momentum_and_tf1_initial_mean_square():
    lr, rho, eps, momentum = 0.1, 0.9, 1e-3, 0.5
    g1, g2 = 0.2, -0.4
    p = param([0.0], [g1])
    opt = RMSpropTF([p], lr=lr, rho=rho, eps=eps, momentum=momentum, initial_mean_square=1.0)
    opt.step()
    p.grad = torch.tensor([g2], dtype=torch.float64)
    opt.step()
    ms1 = rho * 1.0 + (1 - rho) * g1 * g1
    mom1 = lr * g1 / math.sqrt(ms1 + eps)
    ms2 = rho * ms1 + (1 - rho) * g2 * g2
    mom2 = momentum * mom1 + lr * g2 / math.sqrt(ms2 + eps)
    assert p.item() == pytest.approx(-mom1 - mom2, rel=1e-12)
    assert opt.state[p]["step"].item() == 2


def test_state_dict_round_trip_resumes_bit_for_bit():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    x = torch.randn(16, 3)

    def train(model: torch.nn.Module, opt: torch.optim.Optimizer, steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()

    opt = RMSpropTF(net.parameters(), lr=1e-2, rho=0.95, eps=1e-5, momentum=0.9, centered=True)
    train(net, opt, 3)
    buffer = io.BytesIO()
    torch.save({"net": net.state_dict(), "opt": opt.state_dict()}, buffer)
    train(net, opt, 3)

    buffer.seek(0)
    saved = torch.load(buffer)
    clone = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    clone.load_state_dict(saved["net"])
    resumed = RMSpropTF(clone.parameters(), lr=1e-2, rho=0.95, eps=1e-5, momentum=0.9, centered=True)
    resumed.load_state_dict(saved["opt"])
    train(clone, resumed, 3)
    for a, b in zip(net.state_dict().values(), clone.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lr": -1.0}, "lr must be >= 0"), ({"rho": 1.0}, r"rho must be in \[0, 1\)"), ({"eps": -1e-3}, "eps")],
)
def test_bad_hyperparameters_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RMSpropTF([torch.nn.Parameter(torch.zeros(1))], **kwargs)


def first_step(config_optimizer_of, grads: list[float]) -> list[float]:
    p = param([0.0] * len(grads), grads)
    make_optimizer(config_optimizer_of, [p]).step()
    return [-v for v in p.detach().tolist()]


def test_the_books_preset_steps_as_keras_rmsprop_without_momentum():
    # Keras 2 (TF 2.0-2.10) RMSprop with momentum 0: w -= lr g / (sqrt(ms - mg²) + ε)
    config = breakout_dqn().agent
    assert (config.learning_rate, config.rmsprop_alpha, config.rmsprop_eps) == (2.5e-4, 0.95, 1e-5)
    for step, g in zip(first_step(config, GRADS), GRADS, strict=True):
        ms, mg = 0.05 * g * g, 0.05 * g
        assert step == pytest.approx(2.5e-4 * g / (math.sqrt(ms - mg * mg) + 1e-5), rel=1e-6, abs=1e-15)


def test_the_nature_preset_steps_as_deepminds_rmsprop():
    # NeuralQLearner.lua: g2 = .95 g2 + .05 dw²; g = .95 g + .05 dw; w += lr dw / sqrt(g2 - g² + 0.01),
    # dw the gradient summed over the 32 transitions; drivetrain's loss is their mean: dw / 32
    config = breakout_dqn_nature().agent
    steps = first_step(config, [g / 32 for g in GRADS])
    for step, g in zip(steps, GRADS, strict=True):
        g2, g1 = 0.05 * g * g, 0.05 * g
        assert step == pytest.approx(2.5e-4 * g / math.sqrt(g2 - g1 * g1 + 0.01), rel=1e-5, abs=1e-15)


def test_where_eps_sits_changes_the_books_first_step_by_more_than_10x():
    book = breakout_dqn().agent  # ε = 1e-5
    outside = first_step(book, [1e-4])[0]
    inside = first_step(dataclasses.replace(book, optimizer="rmsprop_tf"), [1e-4])[0]
    assert inside == pytest.approx(2.5e-4 * 1e-4 / math.sqrt(0.0475 * 1e-8 + 1e-5), rel=1e-6)
    assert outside > 10 * inside


def test_adam_is_fused_on_the_cpu_and_steps_as_the_default_adam_does():
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(3)]
    fused_params = [p.clone().requires_grad_() for p in start]
    plain_params = [p.clone().requires_grad_() for p in start]
    fused = adam(fused_params, lr=1e-2, eps=1e-5)
    plain = torch.optim.Adam(plain_params, lr=1e-2, eps=1e-5)
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
    for _ in range(20):
        grads = [torch.randn_like(p) for p in start]
        for params, opt in ((fused_params, fused), (plain_params, plain)):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            opt.step()
    for a, b in zip(fused_params, plain_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert fused.state_dict()["state"].keys() == plain.state_dict()["state"].keys()


def test_adam_is_not_fused_for_a_parameter_that_cannot_be():
    assert not adam([torch.zeros(3, dtype=torch.int64)], lr=1e-3).defaults["fused"]


def test_dqn_adam_is_fused_except_when_the_update_is_compiled():
    from drivetrain.agents.dqn.config import DQNConfig

    params = [torch.nn.Parameter(torch.zeros(3))]
    assert make_optimizer(DQNConfig(), params).defaults["fused"] is True
    assert not make_optimizer(DQNConfig(compile=True), params).defaults["fused"]


# ---------------------------------------------------------------------- loading a checkpoint's state
def channels_last_adam(lr: float = 1e-2) -> tuple[torch.nn.Parameter, torch.optim.Optimizer]:
    weight = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5) / 100
    p = torch.nn.Parameter(weight.contiguous(memory_format=torch.channels_last))
    return p, adam([p], lr=lr)


def step_with(p: torch.nn.Parameter, optimizer: torch.optim.Optimizer, seed: int) -> None:
    grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(seed))
    p.grad = grad.contiguous(memory_format=torch.channels_last)  # as a convolution's backward gives it
    optimizer.step()


def test_loaded_state_takes_its_parameters_memory_layout_and_continues_bit_for_bit():
    from drivetrain.agents.optimizers import load_optimizer_state

    p, optimizer = channels_last_adam()
    for seed in range(3):
        step_with(p, optimizer, seed)
    assert optimizer.state[p]["exp_avg"].stride() == p.stride()  # a first step makes them like p
    # a checkpoint written while the weights were in the default format: contiguous moments
    saved = copy.deepcopy(optimizer.state_dict())
    for key in ("exp_avg", "exp_avg_sq"):
        saved["state"][0][key] = saved["state"][0][key].contiguous()

    q, restored = channels_last_adam()
    with torch.no_grad():
        q.copy_(p)
    load_optimizer_state(restored, saved)
    for key in ("exp_avg", "exp_avg_sq"):
        assert restored.state[q][key].stride() == q.stride(), key
        assert torch.equal(restored.state[q][key], optimizer.state[p][key])
    for seed in range(3, 6):
        step_with(p, optimizer, seed)
        step_with(q, restored, seed)
        assert torch.equal(p, q)


@pytest.mark.parametrize("keep", [True, False])
def test_loading_keeps_the_built_learning_rate_only_when_asked(keep):
    from drivetrain.agents.optimizers import load_optimizer_state

    p, optimizer = channels_last_adam(lr=1e-2)
    step_with(p, optimizer, 0)
    _, rebuilt = channels_last_adam(lr=5e-3)  # a resumed run with a new learning rate
    load_optimizer_state(rebuilt, optimizer.state_dict(), keep_hyperparameters=keep)
    assert rebuilt.param_groups[0]["lr"] == (5e-3 if keep else 1e-2)
