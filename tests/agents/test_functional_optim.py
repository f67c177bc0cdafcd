"""FunctionalOptimizer.update (run eagerly here: no compilation) follows optimizer.step()."""

import copy
import io

import pytest
import torch

from drivetrain.agents.functional_optim import FunctionalOptimizer
from drivetrain.agents.optimizers import RMSpropTF

CASES = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=2e-2, eps=1e-5),
    "adam-betas": lambda ps: torch.optim.Adam(ps, lr=1e-3, betas=(0.8, 0.9), eps=1e-8),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-2, alpha=0.95, eps=1e-5),
    "rmsprop-centered-momentum": lambda ps: torch.optim.RMSprop(
        ps, lr=1e-2, alpha=0.95, eps=1e-5, centered=True, momentum=0.9
    ),
    "rmsprop_tf": lambda ps: RMSpropTF(ps, lr=1e-2, rho=0.95, eps=0.01, centered=True),
    "rmsprop_tf-momentum": lambda ps: RMSpropTF(ps, lr=1e-2, rho=0.9, eps=1e-3, momentum=0.5),
}


def params(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in ((7, 3), (3,), (5,))]


def grads_at(i, ps):
    g = torch.Generator().manual_seed(100 + i)
    return [torch.randn(p.shape, generator=g) * 0.1 for p in ps]


@pytest.mark.parametrize("name", sorted(CASES))
def test_update_follows_the_optimizer_and_keeps_its_state_dict(name):
    eager_params, functional_params = params(0), params(0)
    eager, functional = CASES[name](eager_params), CASES[name](functional_params)
    fopt = FunctionalOptimizer(functional, functional_params, owner="test")
    for i in range(20):
        for p, g in zip(eager_params, grads_at(i, eager_params), strict=True):
            p.grad = g
        eager.step()
        with torch.no_grad():
            views = [p.detach() for p in functional_params]
            fopt.update(views, grads_at(i, functional_params), fopt.state(), fopt.scalars())
    for a, b in zip(eager_params, functional_params, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    sa, sb = eager.state_dict(), functional.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for k, state in sa["state"].items():
        assert state.keys() == sb["state"][k].keys()
        for key, value in state.items():
            torch.testing.assert_close(sb["state"][k][key], value, rtol=1e-6, atol=1e-7)
            assert sb["state"][k][key].dtype == value.dtype


def test_state_follows_load_state_dict_and_a_new_learning_rate():
    ps = params(0)
    opt = torch.optim.Adam(ps, lr=1e-2)
    fopt = FunctionalOptimizer(opt, ps, owner="test")
    views = [p.detach() for p in ps]
    with torch.no_grad():
        fopt.update(views, grads_at(0, ps), fopt.state(), fopt.scalars())
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    before = [p.detach().clone() for p in ps]
    buffer.seek(0)
    opt.load_state_dict(torch.load(buffer))
    assert fopt.state()["exp_avg"][0] is opt.state[ps[0]]["exp_avg"]  # the loaded tensors, not the old
    opt.param_groups[0]["lr"] = 0.0
    with torch.no_grad():
        fopt.update(views, grads_at(1, ps), fopt.state(), fopt.scalars())
    for p, b in zip(ps, before, strict=True):
        assert torch.equal(p, b)
    assert float(opt.state[ps[0]]["step"]) == 2.0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ps: torch.optim.Adam(ps, amsgrad=True), "Adam with amsgrad"),
        (lambda ps: torch.optim.Adam(ps, weight_decay=1e-4), "Adam with weight_decay"),
        (lambda ps: torch.optim.AdamW(ps), "AdamW with weight_decay"),
        (lambda ps: torch.optim.SGD(ps, lr=0.1), "got SGD"),
        (lambda ps: torch.optim.Adam([{"params": ps[:1]}, {"params": ps[1:]}]), "one parameter group"),
    ],
)
def test_refuses_what_it_cannot_follow_by_name(make, match):
    ps = params(0)
    with pytest.raises(ValueError, match=match):
        FunctionalOptimizer(make(ps), ps, owner="DQN")


def test_a_changed_structure_is_refused():
    ps = params(0)
    opt = RMSpropTF(copy.copy(ps), momentum=0.0)
    fopt = FunctionalOptimizer(opt, ps, owner="DQN")
    opt.param_groups[0]["momentum"] = 0.9
    with pytest.raises(ValueError, match=r"settings changed .*\(centered/momentum\)"):
        fopt.scalars()


@pytest.mark.parametrize(
    ("make", "setting", "value"),
    [
        (lambda ps: torch.optim.Adam(ps), "weight_decay", 0.1),
        (lambda ps: torch.optim.Adam(ps), "maximize", True),
        (lambda ps: torch.optim.Adam(ps), "amsgrad", True),
        (lambda ps: torch.optim.RMSprop(ps), "weight_decay", 0.1),
        (lambda ps: torch.optim.RMSprop(ps), "maximize", True),
    ],
)
def test_a_refused_setting_switched_on_later_is_refused_by_name(make, setting, value):
    """optimizer.step() would follow it and the compiled step would not: refused, not ignored."""
    ps = params(0)
    opt = make(ps)
    fopt = FunctionalOptimizer(opt, ps, owner="PPO")
    fopt.scalars()
    opt.param_groups[0][setting] = value
    with pytest.raises(ValueError, match=rf"^PPO: the optimizer's settings changed .*\({setting}\)"):
        fopt.scalars()


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_disabled_step_changes_nothing_and_an_enabled_one_is_the_step(name):
    gated_params, plain_params = params(0), params(0)
    gated, plain = CASES[name](gated_params), CASES[name](plain_params)
    fgated = FunctionalOptimizer(gated, gated_params, owner="test")
    fplain = FunctionalOptimizer(plain, plain_params, owner="test")
    gated_views = [p.detach() for p in gated_params]
    plain_views = [p.detach() for p in plain_params]
    with torch.no_grad():
        for i in range(6):
            grads = grads_at(i, gated_params)
            if i in (0, 3):  # refused (the first one before any step: the lazily created state stays zero)
                before = copy.deepcopy(gated.state_dict())
                snapshot = [p.clone() for p in gated_views]
                nan = [g * float("nan") for g in grads]
                fgated.update(gated_views, nan, fgated.state(), fgated.scalars(), enabled=torch.tensor(False))
                for p, q in zip(gated_views, snapshot, strict=True):
                    assert torch.equal(p, q)
                after = gated.state_dict()
                for k, state in before["state"].items():
                    for key, value in state.items():
                        assert torch.equal(after["state"][k][key], value), (k, key)
                continue
            fgated.update(gated_views, grads, fgated.state(), fgated.scalars(), enabled=torch.tensor(True))
            fplain.update(plain_views, grads, fplain.state(), fplain.scalars())
    for a, b in zip(plain_params, gated_params, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    assert float(gated.state[gated_params[0]]["step"]) == float(plain.state[plain_params[0]]["step"]) == 4.0


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")],
        ),
    ],
)
def test_a_fused_adam_is_followed_with_its_state_where_it_keeps_it(device):
    eager_params = [torch.nn.Parameter(p.detach().to(device)) for p in params(0)]
    functional_params = [torch.nn.Parameter(p.detach().to(device)) for p in params(0)]
    eager = torch.optim.Adam(eager_params, lr=1e-2, eps=1e-6, fused=True)
    functional = torch.optim.Adam(functional_params, lr=1e-2, eps=1e-6, fused=True)
    fopt = FunctionalOptimizer(functional, functional_params, owner="test")
    for i in range(10):
        for p, g in zip(eager_params, grads_at(i, eager_params), strict=True):
            p.grad = g.to(device)
        eager.step()
        with torch.no_grad():
            views = [p.detach() for p in functional_params]
            grads = [g.to(device) for g in grads_at(i, functional_params)]
            fopt.update(views, grads, fopt.state(), fopt.scalars())
    for a, b in zip(eager_params, functional_params, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    ea, fa = eager.state[eager_params[0]], functional.state[functional_params[0]]
    assert fa["step"].device == ea["step"].device and fa["step"].dtype == ea["step"].dtype
    assert float(fa["step"]) == float(ea["step"]) == 10.0


def test_a_parameter_the_eager_steps_skipped_is_named_as_the_cause():
    """optimizer.step() skips a parameter without a gradient, so its step count lags the others'."""
    ps = params(0)
    opt = torch.optim.Adam(ps)
    for p, g in zip(ps[:2], grads_at(0, ps)[:2], strict=True):
        p.grad = g
    opt.step()
    with pytest.raises(ValueError, match="without a gradient: a trainable parameter the loss does not use"):
        FunctionalOptimizer(opt, ps, owner="DQN").state()
