"""R2D2(compile=True): the eager updates and LossInfo, checkpoints that resume bit for bit.

Tolerances as in ``test_dqn_compiled.py``: the compiler fuses float32 arithmetic differently
from the eager kernels (~1e-7 relative after one update), and Adam's divisions let the
differences grow slowly, so the weights are compared at ``rtol=1e-4, atol=1e-5`` after 30
updates, far below what one update moves them. Each case compiles once (its unrolled window
takes ~10 s with an empty cache), so the cases are few and each covers several options.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents.r2d2 import R2D2, R2D2Config, make_r2d2

CASES = {
    # LSTM, stored state, burn-in, Double DQN, 2-step, clipping, importance weights,
    # Polyak averaging after every step
    "lstm-double-weights-polyak": dict(
        core="lstm", burn_in=2, n_step=2, double=True, gradient_clipping=0.5,
        target_update_period=1, target_update_tau=0.3,
    ),
    # GRU, zero state, no burn-in, 1-step, MSE, no clipping, hard copies every 3 steps
    "gru-zeros-mse-hard-copies": dict(
        core="gru", initial_state="zeros", burn_in=0, n_step=1, loss="mse", target_update_period=3,
    ),
}  # fmt: skip
TOLERANCE = dict(rtol=1e-4, atol=1e-5)
UPDATES = 30


def config(case: str, compile: bool) -> R2D2Config:
    return R2D2Config(
        hidden_size=8, fc_layers=(8,), sequence_length=3, learning_rate=1e-2, compile=compile, **CASES[case]
    )


def make(case: str, compile: bool) -> R2D2:
    env = dt.envs.CountingEnv(episode_lengths=(5, 3), truncate=(True, False))
    return make_r2d2(config(case, compile), env.time_step_spec(), env.action_spec(), seed=1)


@functools.cache
def windows(case: str) -> tuple:
    """``UPDATES`` sampled batches of a collect run, with importance weights (ends of episodes,
    truncations and resets inside the windows)."""
    env = dt.envs.CountingEnv(episode_lengths=(5, 3), truncate=(True, False))
    agent = make(case, False)
    replay = dt.replay.UniformReplay(agent.collect_data_spec, 400, env.batch_size, seed=0)
    dt.StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=120).run()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(UPDATES):
        batch, _ = replay.sample(8, agent.train_sequence_length)
        out.append((batch, rng.uniform(0.2, 1.0, 8).astype(np.float32)))
    return tuple(out)


def train(agent: R2D2, case: str, start: int = 0, stop: int = UPDATES) -> list:
    return [agent.train(batch, weights) for batch, weights in windows(case)[start:stop]]


def assert_same_info(a, b, **tolerance) -> None:
    np.testing.assert_allclose(b.loss, a.loss, **tolerance)
    for key in ("q_values", "target", "grad_norm", "td_error", "num_valid"):
        np.testing.assert_allclose(b.extra[key], a.extra[key], err_msg=key, **tolerance)


def assert_same_networks(a: R2D2, b: R2D2, **tolerance) -> None:
    for network in ("q_network", "target_network"):
        for (name, x), y in zip(
            getattr(a, network).state_dict().items(), getattr(b, network).state_dict().values(), strict=True
        ):
            np.testing.assert_allclose(y.numpy(), x.numpy(), err_msg=f"{network}.{name}", **tolerance)


def saved(agent: R2D2) -> bytes:
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    return buffer.getvalue()


def loaded(agent: R2D2, data: bytes) -> R2D2:
    agent.load_state_dict(torch.load(io.BytesIO(data), weights_only=False))
    return agent


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_updates_match_eager_ones(case):
    eager, compiled = make(case, False), make(case, True)
    assert compiled.compiled and not eager.compiled
    with torch._dynamo.config.patch(error_on_recompile=True):  # one graph for every batch
        for a, b in zip(train(eager, case), train(compiled, case), strict=True):
            assert_same_info(a, b, rtol=1e-3, atol=1e-5)
    assert compiled.train_step == eager.train_step == UPDATES
    assert_same_networks(eager, compiled, **TOLERANCE)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_restored_compiled_agent_continues_bit_for_bit_and_either_path_continues_the_other(case):
    half = UPDATES // 2
    original = make(case, True)
    train(original, case, 0, half)
    checkpoint = saved(original)
    rest = train(original, case, half)
    restored = loaded(make(case, True), checkpoint)
    for a, b in zip(rest, train(restored, case, half), strict=True):
        assert_same_info(a, b, rtol=0, atol=0)
    assert_same_networks(original, restored, rtol=0, atol=0)
    assert saved(original) == saved(restored)
    eager = loaded(make(case, False), checkpoint)  # the same checkpoint format: eager continues it
    for a, b in zip(rest, train(eager, case, half), strict=True):
        assert_same_info(a, b, rtol=1e-3, atol=1e-5)


def test_a_batch_without_valid_steps_leaves_the_weights_and_takes_the_eager_path():
    case = "gru-zeros-mse-hard-copies"
    agent = make(case, True)
    batch, weights = windows(case)[0]
    boundary = batch._replace(step_type=np.full_like(batch.step_type, int(dt.StepType.LAST)))
    before = saved(agent)
    info = agent.train(boundary, weights)
    assert info.extra["num_valid"] == 0 and agent.train_step == 1
    assert agent.state_dict()["optimizer"]["state"] == {}  # no optimizer step was taken, nor counted
    assert_same_networks(loaded(make(case, False), before), agent, rtol=0, atol=0)


def test_a_copy_of_a_compiled_agent_trains_its_own_network_as_the_original_does():
    case = "lstm-double-weights-polyak"
    original = make(case, True)
    train(original, case, 0, 2)
    duplicate = copy.deepcopy(original)
    a, b = train(original, case, 2, 4), train(duplicate, case, 2, 4)
    for x, y in zip(a, b, strict=True):
        assert_same_info(x, y, rtol=0, atol=0)
    assert_same_networks(original, duplicate, rtol=0, atol=0)
    assert all(
        p.data_ptr() != q.data_ptr()
        for p, q in zip(original.q_network.parameters(), duplicate.q_network.parameters(), strict=True)
    )


def test_the_config_takes_compile_true():
    assert dataclasses.replace(config("gru-zeros-mse-hard-copies", False), compile=True).compile is True
