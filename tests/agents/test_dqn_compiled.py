"""DQN(compile=True): the same updates and LossInfo as the eager path, and checkpoints that resume bit for bit.

Tolerances: float32 arithmetic that the compiler fuses and contracts differently from
the eager kernels differs in the last bits (~1e-7 relative) after one update, hence
``rtol=1e-5, atol=1e-6`` there. Adam and RMSprop divide by running gradient magnitudes,
so these differences grow slowly over many updates (measured: ~1e-7 absolute on weights
of size ~0.3 after 300 updates); after 200 updates the check is ``rtol=1e-4, atol=1e-5``,
still far below what one update moves a weight (lr ~1e-3).

Each configuration compiles once (seconds), so the cases are few and each covers several
options at once.
"""

import io

import numpy as np
import pytest
import torch

from drivetrain.agents import DQN
from drivetrain.agents.optimizers import RMSpropTF
from drivetrain.core import specs, types
from drivetrain.networks import QNetwork

OBS_SPEC = specs.ArraySpec((3,), np.float32, "observation")
ACTION_SPEC = specs.BoundedArraySpec((), np.int64, 1, 3, "action")  # 3 actions, minimum 1
LAST, MID = int(types.StepType.LAST), int(types.StepType.MID)

OPTIMIZERS = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3, eps=1e-5),
    "rmsprop_tf": lambda ps: RMSpropTF(ps, lr=1e-3, rho=0.95, eps=0.01, centered=True),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.95, eps=1e-5, momentum=0.5),
}

CASES = {
    # huber, clipping on (and active), 1-step, no weights, hard target copies every 10 steps
    "adam-huber-clip": dict(optimizer="adam", loss="huber", gradient_clipping=0.5, target_update_period=10),
    # mse, no clipping, Double DQN, 3-step, prioritized weights, Polyak averaging after every step
    "rmsprop_tf-double-nstep-weights-polyak": dict(
        optimizer="rmsprop_tf",
        loss="mse",
        double=True,
        n_step=3,
        target_update_period=1,
        target_update_tau=0.05,
    ),
}
SLOW_CASES = {
    "rmsprop-momentum-hard-copy-every-step": dict(
        optimizer="rmsprop", loss="huber", gradient_clipping=1.0, n_step=2, target_update_period=1
    ),
}


def make_agent(compile, optimizer="adam", **kwargs):
    net = QNetwork(OBS_SPEC, ACTION_SPEC, fc_layers=(32, 32), seed=0)
    return DQN(
        types.time_step_spec(OBS_SPEC),
        ACTION_SPEC,
        net,
        OPTIMIZERS[optimizer](net.parameters()),
        epsilon_greedy=0.1,
        seed=0,
        compile=compile,
        **kwargs,
    )


def windows(seed, length, batch=24, all_boundary=False):
    """Random windows with episode ends (30%), some starting at a boundary (invalid)."""
    rng = np.random.default_rng(seed)
    ends = rng.random((batch, length)) < 0.3
    step_type = np.where(np.roll(ends, 1, axis=1), LAST, MID).astype(np.int32)
    if all_boundary:
        step_type[:, 0] = LAST
    return types.Trajectory(
        step_type=step_type,
        observation=rng.standard_normal((batch, length, 3)).astype(np.float32),
        action=rng.integers(1, 4, (batch, length)),
        policy_info={},
        next_step_type=np.where(ends, LAST, MID).astype(np.int32),
        reward=rng.standard_normal((batch, length)).astype(np.float32),
        discount=np.where(ends & (rng.random((batch, length)) < 0.5), 0.0, 1.0).astype(np.float32),
    )


def batches(n, length, weighted, start=0):
    for i in range(start, start + n):
        w = np.random.default_rng(1000 + i).uniform(0.2, 1.0, 24).astype(np.float32) if weighted else None
        yield windows(i, length, all_boundary=i == 5), w


def assert_same_loss_info(a, b, rtol, atol):
    assert a.extra.keys() == b.extra.keys()
    np.testing.assert_allclose(b.loss, a.loss, rtol=rtol, atol=atol)
    for key in ("q_values", "target", "grad_norm", "td_error"):
        np.testing.assert_allclose(b.extra[key], a.extra[key], rtol=rtol, atol=atol, err_msg=key)
    assert b.extra["num_valid"] == a.extra["num_valid"]
    assert np.asarray(b.extra["td_error"]).dtype == np.float32


def assert_same_networks(a, b, rtol, atol):
    for net in ("q_network", "target_network"):
        for p, q in zip(getattr(a, net).parameters(), getattr(b, net).parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=rtol, atol=atol)


def check_against_eager(case, steps=200):
    weighted = case.get("n_step", 1) > 1
    eager, compiled = make_agent(False, **case), make_agent(True, **case)
    length = eager.train_sequence_length
    for i, (batch, w) in enumerate(batches(steps, length, weighted)):
        a, b = eager.train(batch, weights=w), compiled.train(batch, weights=w)
        tolerance = (1e-5, 1e-6) if i < 1 else (1e-4, 1e-5)
        assert_same_loss_info(a, b, *tolerance)
        if i == 0:
            assert_same_networks(eager, compiled, *tolerance)
    assert compiled.train_step == eager.train_step == steps
    assert_same_networks(eager, compiled, 1e-4, 1e-5)
    sa, sb = eager.optimizer.state_dict(), compiled.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for k, state in sa["state"].items():
        assert state.keys() == sb["state"][k].keys()
        assert torch.equal(state["step"], sb["state"][k]["step"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_updates_match_eager_ones(name):
    check_against_eager(CASES[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_CASES))
def test_compiled_updates_match_eager_ones_slow(name):
    check_against_eager(SLOW_CASES[name])


def train_recording(agent, start, n):
    out = []
    for batch, _ in batches(n, agent.train_sequence_length, False, start):
        info = agent.train(batch)
        out.append((info.loss, info.extra["td_error"].copy()))
    weights = [
        p.detach().clone() for p in (*agent.q_network.parameters(), *agent.target_network.parameters())
    ]
    return out, weights


def assert_bit_equal(run_a, run_b):
    for (loss_a, td_a), (loss_b, td_b) in zip(run_a[0], run_b[0], strict=True):
        assert loss_a == loss_b
        np.testing.assert_array_equal(td_a, td_b)
    for p, q in zip(run_a[1], run_b[1], strict=True):
        assert torch.equal(p, q)


def test_a_compiled_agent_resumes_bit_for_bit():
    case = CASES["adam-huber-clip"]
    agent = make_agent(True, **case)
    train_recording(agent, 0, 12)
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)  # what a checkpoint does
    first = train_recording(agent, 12, 15)

    buffer.seek(0)
    agent.load_state_dict(torch.load(buffer, weights_only=False))  # new optimizer state tensors
    assert_bit_equal(first, train_recording(agent, 12, 15))

    buffer.seek(0)
    restored = make_agent(True, **{**case, "gradient_clipping": 0.5})
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert restored.train_step == 12
    assert_bit_equal(first, train_recording(restored, 12, 15))

    buffer.seek(0)
    eager = make_agent(False, **case)  # the same checkpoint format: the eager path continues it
    eager.load_state_dict(torch.load(buffer, weights_only=False))
    for (loss_a, _), (loss_b, _) in zip(first[0], train_recording(eager, 12, 15)[0], strict=True):
        np.testing.assert_allclose(loss_b, loss_a, rtol=1e-4, atol=1e-5)


def test_unsupported_optimizers_are_refused_by_name():
    net = QNetwork(OBS_SPEC, ACTION_SPEC, fc_layers=(8,), seed=0)
    with pytest.raises(ValueError, match=r"DQN: compile=True supports .* got SGD"):
        DQN(
            types.time_step_spec(OBS_SPEC),
            ACTION_SPEC,
            net,
            torch.optim.SGD(net.parameters(), lr=0.1),
            compile=True,
        )


def test_a_copy_of_a_compiled_agent_trains_its_own_network_as_the_original_does():
    import copy

    agent = make_agent(True, **CASES["adam-huber-clip"])
    agent.train(windows(0, 2))
    twin = copy.deepcopy(agent)
    before = {k: v.clone() for k, v in agent.state_dict()["q_network"].items()}
    for seed in (1, 2):
        info = twin.train(windows(seed, 2))
        assert np.isfinite(info.loss)
    after_original = agent.state_dict()["q_network"]
    for key, value in before.items():  # the original is left alone
        assert torch.equal(after_original[key], value)
    for seed in (1, 2):
        agent.train(windows(seed, 2))
    for key, value in agent.state_dict()["q_network"].items():  # the copy moved as the original then did
        assert not torch.equal(value, before[key]) or key.endswith("bias")
        torch.testing.assert_close(twin.state_dict()["q_network"][key], value, rtol=0, atol=0)
