"""SAC and TD3 with compile=True: the eager updates' results, the same noise, checkpoints that resume
bit for bit in either path, and non-finite losses refused with the weights intact.

Tolerances: float32 arithmetic that the compiler fuses and contracts differently from the
eager kernels differs in the last bits (~1e-7 relative) after one update, hence
``rtol=1e-5, atol=1e-6`` there; Adam divides by running gradient magnitudes, so the
differences grow slowly (measured: ~6e-8 absolute on weights after 200 updates), and after
200 updates the check is ``rtol=1e-4, atol=1e-5``, far below what one update moves a weight.

Each configuration compiles once (10-20 s on two shared cores; TD3 twice: with and without the
delayed actor update), so the module shares one compiled agent per algorithm, reset to its
initial state with ``load_state_dict`` where a test needs it, and each case covers several
options at once.
"""

import copy
import io

import numpy as np
import pytest
import torch
from test_continuous_agents import ACTION, FIRST, LAST, MID, SMALL, TS_SPEC, windows

from drivetrain.agents import SACConfig, TD3Config, make_sac, make_td3
from drivetrain.agents.loss_info import NonFiniteLossError


class Fraction:
    """A learning-rate schedule that decays over the first 400 train steps; ``override`` replaces it."""

    def __init__(self):
        self.override = None

    def __call__(self, train_step):
        return self.override if self.override is not None else max(0.2, 1.0 - train_step / 400)


# SAC: learned temperature, clipping (active on the critics), Polyak targets every step, a schedule
SAC_CASE = dict(max_grad_norm=1.0, initial_alpha=0.5, tau=0.01)
# TD3: delayed actor and targets, target policy smoothing, no clipping, a schedule
TD3_CASE = dict(policy_delay=2, target_policy_noise=0.3, target_noise_clip=0.4, tau=0.02)
SLOW_CASES = {
    "sac-fixed-alpha-targets-every-3": ("sac", dict(autotune_alpha=False, target_update_period=3)),
    "sac-clipped-temperature-3-critics": ("sac", dict(max_grad_norm=0.05, num_critics=3)),
    "ddpg": ("td3", dict(num_critics=1, target_policy_noise=0.0, policy_delay=1, max_grad_norm=0.5)),
}


def make(kind, compile, case, fraction=None):
    config_type, make_agent = (SACConfig, make_sac) if kind == "sac" else (TD3Config, make_td3)
    config = config_type(**SMALL, **case, compile=compile)
    return make_agent(config, TS_SPEC, ACTION, seed=0, learning_rate_fraction=fraction)


class Pair:
    """An eager and a compiled agent of one configuration, their schedules and initial states."""

    def __init__(self, kind, case):
        self.kind, self.case = kind, case
        self.fractions = {False: Fraction(), True: Fraction()}
        self.agents = {c: make(kind, c, case, self.fractions[c]) for c in (False, True)}
        self.initial = {c: copy.deepcopy(a.state_dict()) for c, a in self.agents.items()}

    def reset(self):
        for c, agent in self.agents.items():
            self.fractions[c].override = None
            agent.load_state_dict(copy.deepcopy(self.initial[c]))
        return self.agents[False], self.agents[True]


@pytest.fixture(scope="module")
def sac_pair():
    return Pair("sac", SAC_CASE)


@pytest.fixture(scope="module")
def td3_pair():
    return Pair("td3", TD3_CASE)


@pytest.fixture(params=["sac", "td3"])
def pair(request):
    return request.getfixturevalue(f"{request.param}_pair")


def batch(i, size=24):
    """Windows with truncations, terminations and boundary windows (all of them at i == 5)."""
    rng = np.random.default_rng(i)
    first = np.where(rng.random(size) < 0.15, LAST, MID)
    if i == 5:
        first[:] = LAST
    last = rng.random(size) < 0.2
    following = np.where(first == LAST, FIRST, np.where(last, LAST, MID))
    discount = np.where(last & (rng.random(size) < 0.5), 0.0, 1.0)  # terminations and truncations
    b = windows(first, following, discount, seed=i)
    b.reward[:, 0] = rng.normal(size=size).astype(np.float32)
    return b


def assert_same_info(a, b, rtol, atol):
    assert a.extra.keys() == b.extra.keys()
    np.testing.assert_allclose(b.loss, a.loss, rtol=rtol, atol=atol)
    for key, value in a.extra.items():
        np.testing.assert_allclose(b.extra[key], value, rtol=rtol, atol=atol, err_msg=key)


def assert_same_state(a, b, rtol, atol):
    sa, sb = a.state_dict(), b.state_dict()
    for name, value in sa["network"].items():
        torch.testing.assert_close(sb["network"][name], value, rtol=rtol, atol=atol, msg=name)
    for part, state in sa["optimizers"].items():
        other = sb["optimizers"][part]
        assert other["param_groups"] == state["param_groups"], part
        for k, tensors in state["state"].items():
            assert tensors.keys() == other["state"][k].keys()
            assert torch.equal(tensors["step"], other["state"][k]["step"])
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(other["state"][k][key], tensors[key], rtol=rtol, atol=atol)
    assert sb["train_step"] == sa["train_step"]
    assert sb["train_rng"] == sa["train_rng"]  # the same noise drawn


@pytest.mark.parametrize("kind", ["sac", "td3"])
def test_compiled_updates_match_eager_ones(kind, request):
    eager, compiled = request.getfixturevalue(f"{kind}_pair").reset()
    a, b = eager.train(batch(0)), compiled.train(batch(0))
    assert_same_info(a, b, 1e-5, 1e-6)
    assert_same_state(eager, compiled, 1e-5, 1e-6)
    # the learning rates change every step: tensors, not constants that would recompile
    with torch._dynamo.config.patch(error_on_recompile=True):
        for i in range(1, 200):
            a, b = eager.train(batch(i)), compiled.train(batch(i))
            assert_same_info(a, b, 1e-4, 1e-5)
    assert compiled.train_step == 200
    assert compiled.optimizers["critic"].param_groups[0]["lr"] == pytest.approx(3e-4 * (1 - 199 / 400))
    assert_same_state(eager, compiled, 1e-4, 1e-5)
    if kind == "sac":
        assert abs(compiled.alpha - 0.5) > 1e-3  # the temperature learned


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_CASES))
def test_compiled_updates_match_eager_ones_slow(name):
    kind, case = SLOW_CASES[name]
    eager, compiled = Pair(kind, case).reset()
    for i in range(150):
        assert_same_info(eager.train(batch(i)), compiled.train(batch(i)), 1e-4, 1e-5)
    assert_same_state(eager, compiled, 1e-4, 1e-5)


def train_recording(agent, start, n):
    infos = [agent.train(batch(i)) for i in range(start, start + n)]
    return infos, [t.clone() for t in agent.state_dict()["network"].values()]


def assert_bit_equal(run_a, run_b):
    assert run_a[0] == run_b[0]  # every LossInfo value, exactly
    for p, q in zip(run_a[1], run_b[1], strict=True):
        assert torch.equal(p, q)


def assert_same_bits(a, b):
    """Two states (nested dicts, lists, tensors, values) are equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same_bits(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_bits(x, y)
    else:
        assert a == b


def saved(agent):
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)  # what a checkpoint does
    return buffer.getvalue()


def loaded(data):
    return torch.load(io.BytesIO(data), weights_only=False)


def test_compiled_agents_repeat_and_resume_bit_for_bit_and_switch_with_eager_ones(pair):
    eager, compiled = pair.reset()
    train_recording(compiled, 0, 7)
    checkpoint = saved(compiled)
    first = train_recording(compiled, 7, 12)

    compiled.load_state_dict(loaded(checkpoint))  # new optimizer state tensors
    assert_bit_equal(first, train_recording(compiled, 7, 12))
    pair.reset()
    train_recording(compiled, 0, 7)  # the same seed, from the start: the same bits
    assert_same_bits(compiled.state_dict(), loaded(checkpoint))

    restored = make(pair.kind, True, pair.case, Fraction())  # a new agent compiles its own update
    restored.load_state_dict(loaded(checkpoint))
    assert restored.train_step == 7
    assert_bit_equal(first, train_recording(restored, 7, 12))

    eager.load_state_dict(loaded(checkpoint))  # the same format: the eager path continues it
    for a, b in zip(first[0], train_recording(eager, 7, 12)[0], strict=True):
        assert_same_info(a, b, 1e-4, 1e-5)

    pair.reset()
    train_recording(eager, 0, 7)
    compiled.load_state_dict(loaded(saved(eager)))  # and the compiled path an eager checkpoint
    for i in range(7, 19):
        assert_same_info(eager.train(batch(i)), compiled.train(batch(i)), 1e-4, 1e-5)
    assert_same_state(eager, compiled, 1e-4, 1e-5)


def refusal(agent, data):
    with pytest.raises(NonFiniteLossError) as error:
        agent.train(data)
    return error.value


def steps(state):
    """Adam's step count per optimizer (0 before its first step)."""
    counts = {"temperature": 0}
    for part, optimizer in state["optimizers"].items():
        counts[part] = int(max((float(s["step"]) for s in optimizer["state"].values()), default=0))
    return counts


def learning_rates(agent):
    return {part: optimizer.param_groups[0]["lr"] for part, optimizer in agent.optimizers.items()}


def test_non_finite_losses_are_refused_before_their_step_with_the_weights_intact(pair):
    eager, compiled = pair.reset()
    before = loaded(saved(compiled))
    poisoned = batch(0)
    poisoned.reward[3, 0] = np.nan  # a NaN target: the critics' loss
    a, b = refusal(eager, poisoned), refusal(compiled, poisoned)
    assert str(b) == str(a) and b.train_step == a.train_step == 1
    assert f"{pair.kind.upper()}.train: the critic loss of train step 1 is nan" == str(b)
    after = compiled.state_dict()
    assert after["train_step"] == 0
    for name, value in before["network"].items():
        assert torch.equal(after["network"][name], value), name
    assert steps(after) == {"critic": 0, "actor": 0, "temperature": 0}  # no optimizer stepped

    # learning rates so large that the critics' step overflows them: the actor's loss is not finite
    for c in (False, True):
        pair.fractions[c].override = 1e30
    a, b = refusal(eager, batch(0)), refusal(compiled, batch(0))
    prefix = f"{pair.kind.upper()}.train: the actor loss of train step 1 is "
    assert str(a).startswith(prefix) and str(b).startswith(prefix) and b.train_step == 1
    assert learning_rates(compiled) == learning_rates(eager)  # set for the critics' step only
    assert learning_rates(compiled)["critic"] > 1.0 > learning_rates(compiled)["actor"]
    after = compiled.state_dict()
    assert after["train_step"] == 0
    for name, value in before["network"].items():
        changed = not torch.equal(after["network"][name], value)
        assert changed == name.startswith("critic."), name  # the critics stepped, nothing after them
    assert steps(after) == steps(eager.state_dict()) == {"critic": 1, "actor": 0, "temperature": 0}

    eager, compiled = pair.reset()  # and the compiled agent trains on as before
    for i in range(3):
        assert_same_info(eager.train(batch(i)), compiled.train(batch(i)), 1e-5, 1e-6)


def test_an_unsupported_optimizer_is_refused_by_name(pair):
    _, compiled = pair.reset()
    original = compiled.optimizers["actor"]
    compiled.optimizers["actor"] = torch.optim.SGD(compiled.networks["actor"].parameters(), lr=0.1)
    name = pair.kind.upper()
    with pytest.raises(ValueError, match=rf"^{name}: compile=True supports torch.optim.Adam, .* got SGD$"):
        compiled.train(batch(0))
    compiled.optimizers["actor"] = torch.optim.Adam(compiled.networks["actor"].parameters(), amsgrad=True)
    with pytest.raises(ValueError, match=rf"^{name}: compile=True supports .* got Adam with amsgrad$"):
        compiled.train(batch(0))
    compiled.optimizers["actor"] = original
    assert compiled.train(batch(0)).extra["num_valid"] > 0


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["sac", "td3"])
def test_compiled_updates_on_cuda_match_eager_ones(kind):
    case = {**(SAC_CASE if kind == "sac" else TD3_CASE), "device": "cuda"}
    eager, compiled = (make(kind, c, case, Fraction()) for c in (False, True))
    for i in range(40):
        assert_same_info(eager.train(batch(i)), compiled.train(batch(i)), 1e-4, 1e-5)
    assert_same_state(eager, compiled, 1e-4, 1e-5)
    before = loaded(saved(compiled))
    poisoned = batch(40)
    poisoned.reward[3, 0] = np.nan
    assert str(refusal(compiled, poisoned)) == str(refusal(eager, poisoned))
    after = compiled.state_dict()
    for key in ("network", "optimizers", "train_step"):  # (the refused step drew its noise)
        assert_same_bits(after[key], before[key])


@pytest.mark.parametrize("kind", ["sac", "td3"])
def test_a_copy_of_a_compiled_agent_trains_its_own_networks_as_the_original_does(kind):
    agent = make(kind, True, SAC_CASE if kind == "sac" else TD3_CASE)
    agent.train(batch(0))
    twin = copy.deepcopy(agent)
    before = copy.deepcopy(agent.state_dict()["network"])
    for i in (1, 2, 3):
        twin.train(batch(i))
    for key, value in agent.state_dict()["network"].items():  # the original is left alone
        assert torch.equal(value, before[key]), key
    for i in (1, 2, 3):
        agent.train(batch(i))
    moved = 0
    for key, value in agent.state_dict()["network"].items():  # the copy moved as the original then did
        moved += not torch.equal(value, before[key])
        assert torch.equal(twin.state_dict()["network"][key], value), key
    assert moved > len(before) // 2
