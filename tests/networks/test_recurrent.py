"""RecurrentCore / RecurrentQNetwork: shapes, state spec, resets at FIRST inside sequences, chunked unrolls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivetrain.core import specs
from drivetrain.networks.recurrent import RecurrentCore, RecurrentQNetwork

OBS = specs.ArraySpec((3,), np.float32, "observation")
ACT = specs.BoundedArraySpec((), np.int64, 0, 2, "action")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net(core: str, seed: int = 0) -> RecurrentQNetwork:
    return RecurrentQNetwork(OBS, ACT, core=core, hidden_size=8, fc_layers=(6,), seed=seed)  # type: ignore[arg-type]


def _random_state(net: RecurrentQNetwork, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn(batch, 8, generator=gen) for _ in net.initial_state(batch))


@pytest.mark.parametrize(("core", "n_state"), [("lstm", 2), ("gru", 1)])
def test_shapes_and_state_spec(core: str, n_state: int) -> None:
    net = _net(core)
    state = net.initial_state(4)
    assert len(state) == n_state and all(s.shape == (4, 8) and not s.any() for s in state)
    assert net.state_spec == tuple(specs.ArraySpec((8,), np.float32, n) for n in ("h", "c")[:n_state])
    q, new_state = net(torch.randn(4, 5, 3), torch.zeros(4, 5, dtype=torch.bool), state)
    assert q.shape == (4, 5, 3) and q.dtype == torch.float32
    assert len(new_state) == n_state and all(s.shape == (4, 8) for s in new_state)


@pytest.mark.parametrize("core", ["lstm", "gru"])
def test_state_resets_at_first_inside_a_sequence(core: str) -> None:
    net = _net(core)
    gen = torch.Generator().manual_seed(1)
    obs = torch.randn(2, 6, 3, generator=gen)
    first = torch.zeros(2, 6, dtype=torch.bool)
    first[0, 3] = True  # sequence 0: an episode starts at t = 3; sequence 1: none does
    state = _random_state(net, 2, gen)
    q, _ = net(obs, first, state)
    # After the reset, sequence 0 is the new episode run from zeros, whatever came before.
    fresh_first = torch.tensor([[True, False, False]])
    fresh, _ = net(obs[:1, 3:], fresh_first, _random_state(net, 1, gen))
    torch.testing.assert_close(q[0, 3:], fresh[0])
    # Before the reset, and without any, the given state matters (no spurious reset).
    unreset, _ = net(obs[:1, 3:], torch.zeros(1, 3, dtype=torch.bool), net.initial_state(1))
    assert not torch.allclose(q[1, 3:], unreset[0])
    zero_start, _ = net(obs, first, net.initial_state(2))
    assert not torch.allclose(q[:, :3], zero_start[:, :3])
    torch.testing.assert_close(q[0, 3:], zero_start[0, 3:])


@pytest.mark.parametrize("core", ["lstm", "gru"])
@pytest.mark.parametrize("resets", ["few", "many"])  # fused unroll cut at resets / one cell step at a time
def test_unrolling_in_chunks_equals_one_unroll(core: str, resets: str) -> None:
    net = _net(core)
    gen = torch.Generator().manual_seed(2)
    obs = torch.randn(3, 12, 3, generator=gen)
    first = (
        torch.rand(3, 12, generator=gen) < 0.5 if resets == "many" else torch.zeros(3, 12, dtype=torch.bool)
    )
    first[1, 0] = first[2, 5] = True  # resets at the start and inside
    state = _random_state(net, 3, gen)
    q, final = net(obs, first, state)
    parts, s = [], state
    for lo, hi in [(0, 1), (1, 4), (4, 12)]:
        part, s = net(obs[:, lo:hi], first[:, lo:hi], s)
        parts.append(part)
    torch.testing.assert_close(torch.cat(parts, dim=1), q)
    for a, b in zip(s, final, strict=True):
        torch.testing.assert_close(a, b)
    # One step at a time, as a policy acts: the same q-values as the fused, cut-at-resets unroll.
    steps, s = [], state
    for t in range(12):
        step, s = net(obs[:, t : t + 1], first[:, t : t + 1], s)
        steps.append(step)
    torch.testing.assert_close(torch.cat(steps, dim=1), q)


def test_lstm_step_matches_torch_lstm_cell_by_hand() -> None:
    core = RecurrentCore(3, 4, "lstm", torch.Generator().manual_seed(0))
    x = torch.randn(2, 1, 3)
    h0, c0 = torch.randn(2, 4), torch.randn(2, 4)
    out, (h, c) = core(x, torch.zeros(2, 1, dtype=torch.bool), (h0, c0))
    w_ih, w_hh, b = core.rnn.weight_ih_l0, core.rnn.weight_hh_l0, core.rnn.bias_ih_l0 + core.rnn.bias_hh_l0
    gates = x[:, 0] @ w_ih.T + h0 @ w_hh.T + b
    i, f, g, o = gates.chunk(4, dim=1)
    c_hand = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
    h_hand = torch.sigmoid(o) * torch.tanh(c_hand)
    torch.testing.assert_close(c, c_hand)
    torch.testing.assert_close(h, h_hand)
    torch.testing.assert_close(out[:, 0], h_hand)
    assert torch.equal(core.rnn.bias_ih_l0[4:8], torch.ones(4))  # forget-gate bias 1


def test_seeded_initialization_is_reproducible() -> None:
    a, b, c = _net("lstm", 3), _net("lstm", 3), _net("lstm", 4)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.core.rnn.weight_hh_l0, c.core.rnn.weight_hh_l0)


def test_errors_name_what_is_wrong() -> None:
    net = _net("lstm")
    obs, first = torch.zeros(2, 1, 3), torch.zeros(2, 1, dtype=torch.bool)
    with pytest.raises(ValueError, match="tuple of 2 tensors"):
        net(obs, first, (torch.zeros(2, 8),))
    with pytest.raises(ValueError, match=r"state\[1\] must have shape \(2, 8\), got \(2, 5\)"):
        net(obs, first, (torch.zeros(2, 8), torch.zeros(2, 5)))
    with pytest.raises(ValueError, match="'lstm' or 'gru'"):
        RecurrentCore(3, 4, "rnn")  # type: ignore[arg-type]
