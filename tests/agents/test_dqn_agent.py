"""DQN agent: target updates, policies, exploration schedule, checkpoints, construction errors."""

import dataclasses
import io

import numpy as np
import pytest
import torch
from dqn_tables import ACTIONS, LAST, MID, TABLE, TS_SPEC, TableQ, make_agent, table, windows

from drivetrain.agents import DQN, DQNConfig, QPolicy, make_dqn
from drivetrain.core import specs, types
from drivetrain.core.schedules import PolynomialDecay
from drivetrain.envs import CountingEnv
from drivetrain.policies import EpsilonGreedyPolicy

ROW_A = [(MID, 0, 1, MID, 1.0, 1.0), (MID, 1, 0, MID, 0.0, 1.0)]


def target_table(agent):
    return agent.target_network.table.detach().numpy().copy()


def test_hard_target_update_every_period():
    agent = make_agent(loss="mse", lr=0.1, target_update_period=3)
    for step in (1, 2):
        agent.train(windows(ROW_A))
        assert agent.train_step == step
        np.testing.assert_array_equal(target_table(agent), np.array(TABLE, np.float32))  # still stale
    assert not np.array_equal(table(agent), np.array(TABLE, np.float32))
    agent.train(windows(ROW_A))
    np.testing.assert_array_equal(target_table(agent), table(agent))  # copied after the 3rd step


@pytest.mark.parametrize(("tau", "period"), [(0.25, 1), (0.5, 2)])
def test_soft_target_update_by_hand(tau, period):
    agent = make_agent(loss="mse", lr=0.1, target_update_tau=tau, target_update_period=period)
    expected = np.array(TABLE, np.float32)
    for step in range(1, 5):
        agent.train(windows(ROW_A))
        if step % period == 0:
            expected = tau * table(agent) + (1 - tau) * expected
        np.testing.assert_allclose(target_table(agent), expected, rtol=1e-6)
    assert not np.allclose(target_table(agent), table(agent))


def test_the_target_network_gets_no_gradient():
    agent = make_agent()
    assert all(not p.requires_grad for p in agent.target_network.parameters())
    assert agent.target_network is not agent.q_network


def time_step(states):
    return types.transition(np.array(states, np.float32).reshape(-1, 1), 0.0)


def test_greedy_policy_argmax_plus_minimum_with_q_values():
    actions = specs.BoundedArraySpec((), np.int32, 3, 4)
    agent = make_agent(action_spec=actions)
    policy = agent.policy
    assert isinstance(policy, QPolicy)
    step = policy.action(time_step([0, 1, 2, 3]))
    np.testing.assert_array_equal(step.action, [4, 3, 4, 3])  # argmax of TABLE rows + 3
    assert step.action.dtype == np.int32 and step.state == ()
    np.testing.assert_array_equal(step.info["q_values"], np.array(TABLE, np.float32))
    assert step.info["q_values"].dtype == np.float32
    assert policy.info_spec == {"q_values": specs.ArraySpec((2,), np.float32, "q_values")}
    specs.validate(policy.info_spec, step.info)
    one = policy.action(time_step([2]))  # batch size 1 (the collection hot path)
    assert one.action.shape == (1,) and one.info["q_values"].shape == (1, 2)


def test_policies_act_with_the_current_weights():
    agent = make_agent(loss="mse", lr=1.0)
    assert agent.policy.action(time_step([0])).action[0] == 1  # q(s0) = [1, 2]
    with torch.no_grad():
        agent.q_network.table[0, 0] = 10.0
    assert agent.policy.action(time_step([0])).action[0] == 0
    assert agent.policy.q_network is agent.q_network


def test_collect_policy_is_epsilon_greedy_on_the_train_step_schedule():
    agent = make_agent(loss="mse", epsilon_greedy=PolynomialDecay(1.0, 0.0, 4))
    collect = agent.collect_policy
    assert isinstance(collect, EpsilonGreedyPolicy) and collect.wrapped is agent.policy
    assert collect.epsilon == 1.0
    states = np.arange(4).repeat(500)
    explored = collect.action(time_step(states)).action
    greedy = agent.policy.action(time_step(states)).action
    assert 0.35 < np.mean(explored != greedy) < 0.65  # epsilon 1: uniform over 2 actions, half differ
    for _ in range(2):
        agent.train(windows(ROW_A))
    assert collect.epsilon == pytest.approx(0.5)
    for _ in range(2):
        agent.train(windows(ROW_A))
    assert collect.epsilon == 0.0
    np.testing.assert_array_equal(
        collect.action(time_step(states)).action, agent.policy.action(time_step(states)).action
    )


def test_collect_data_spec_is_the_collect_policy_trajectory_spec():
    agent = make_agent()
    spec = agent.collect_data_spec
    assert spec == agent.collect_policy.trajectory_spec
    assert spec.observation == TS_SPEC.observation and spec.action == ACTIONS
    assert spec.policy_info == {}  # only what train reads: a RandomPolicy warm-up fits it


# ---------------------------------------------------------------------- checkpoints
CONFIG = DQNConfig(
    fc_layers=(32, 32),
    learning_rate=1e-2,
    n_step=2,
    double=True,
    target_update_period=3,
    epsilon_start=0.5,
    epsilon_end=0.1,
    epsilon_decay_steps=20,
)


def counting_windows(seed, batch=16, length=3):
    rng = np.random.default_rng(seed)
    ends = rng.random((batch, length)) < 0.3
    step_type = np.where(np.roll(ends, 1, axis=1), LAST, MID).astype(np.int32)
    return types.Trajectory(
        step_type=step_type,
        observation=rng.standard_normal((batch, length, 3)).astype(np.float32),
        action=rng.integers(0, 2, (batch, length)),
        policy_info={"q_values": np.zeros((batch, length, 2), np.float32)},
        next_step_type=np.where(ends, LAST, MID).astype(np.int32),
        reward=rng.standard_normal((batch, length)).astype(np.float32),
        discount=np.where(ends & (rng.random((batch, length)) < 0.5), 0.0, 1.0).astype(np.float32),
    )


def test_state_dict_round_trip_continues_bit_for_bit():
    env = CountingEnv((3, 5))
    original = make_dqn(CONFIG, env.time_step_spec(), env.action_spec(), seed=1)
    for i in range(5):
        original.train(counting_windows(i))
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)  # what a checkpoint does
    buffer.seek(0)
    restored = make_dqn(CONFIG, env.time_step_spec(), env.action_spec(), seed=99)  # other weights, other RNG
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert restored.train_step == original.train_step == 5
    time_step = env.reset()
    for i in range(5, 12):
        a, b = original.train(counting_windows(i)), restored.train(counting_windows(i))
        assert a.loss == b.loss
        np.testing.assert_array_equal(a.extra["td_error"], b.extra["td_error"])
        np.testing.assert_array_equal(
            original.collect_policy.action(time_step).action, restored.collect_policy.action(time_step).action
        )
    for net in ("q_network", "target_network"):
        for p, q in zip(
            getattr(original, net).parameters(), getattr(restored, net).parameters(), strict=True
        ):
            assert torch.equal(p, q)
    assert original.collect_policy.epsilon == restored.collect_policy.epsilon


def test_load_state_dict_names_missing_keys():
    agent = make_agent()
    state = agent.state_dict()
    del state["optimizer"]
    with pytest.raises(KeyError, match="optimizer"):
        agent.load_state_dict(state)


# ---------------------------------------------------------------------- construction
def test_make_dqn_builds_seeded_agents_with_the_configured_optimizer():
    env = CountingEnv((3,))
    a = make_dqn(CONFIG, env.time_step_spec(), env.action_spec(), seed=0)
    b = make_dqn(CONFIG, env.time_step_spec(), env.action_spec(), seed=0)
    c = make_dqn(CONFIG, env.time_step_spec(), env.action_spec(), seed=1)
    assert isinstance(a, DQN) and a.train_sequence_length == 3
    pa, pb, pc = (torch.cat([p.flatten() for p in x.q_network.parameters()]) for x in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert isinstance(a.optimizer, torch.optim.Adam)
    assert a.optimizer.param_groups[0]["lr"] == 1e-2
    rms = make_dqn(
        DQNConfig(
            optimizer="rmsprop", learning_rate=2.5e-4, rmsprop_alpha=0.9, rmsprop_eps=0.01, fc_layers=(8,)
        ),
        env.time_step_spec(),
        env.action_spec(),
        seed=0,
    )
    group = rms.optimizer.param_groups[0]
    assert isinstance(rms.optimizer, torch.optim.RMSprop)
    assert (group["lr"], group["alpha"], group["eps"], group["centered"]) == (2.5e-4, 0.9, 0.01, True)
    assert rms.collect_policy.epsilon == 1.0  # epsilon_start


def test_construction_errors_are_clear():
    net = TableQ()
    with pytest.raises(ValueError, match="not a parameter of q_network"):
        DQN(TS_SPEC, ACTIONS, net, torch.optim.SGD(TableQ().parameters(), lr=0.1))
    three_actions = specs.BoundedArraySpec((), np.int64, 0, 2)
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*got \(2, 2\)"):
        DQN(TS_SPEC, three_actions, net, torch.optim.SGD(net.parameters(), lr=0.1))
    for kwargs, match in [
        ({"gamma": 1.5}, "gamma"),
        ({"n_step": 0}, "n_step"),
        ({"target_update_tau": 0.0}, "target_update_tau"),
        ({"target_update_period": 0}, "target_update_period"),
        ({"loss": "l1"}, "loss"),
        ({"gradient_clipping": -1.0}, "gradient_clipping"),
    ]:
        with pytest.raises(ValueError, match=match):
            DQN(TS_SPEC, ACTIONS, net, torch.optim.SGD(net.parameters(), lr=0.1), **kwargs)


def test_train_ignores_policy_info():
    """Replays may drop policy_info (the q-values) to save memory: train needs none of it."""
    batch = windows(ROW_A)
    a, b = make_agent(loss="mse"), make_agent(loss="mse")
    assert a.train(batch).loss == b.train(batch._replace(policy_info={})).loss


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_agent_matches_cpu_agent():
    env = CountingEnv((3, 5))
    cpu = make_dqn(CONFIG, env.time_step_spec(), env.action_spec(), seed=1)
    gpu = make_dqn(
        dataclasses.replace(CONFIG, device="cuda"), env.time_step_spec(), env.action_spec(), seed=1
    )
    assert next(gpu.q_network.parameters()).is_cuda and gpu.policy.device.type == "cuda"
    for i in range(5):
        a, b = cpu.train(counting_windows(i)), gpu.train(counting_windows(i))
        assert a.loss == pytest.approx(b.loss, rel=1e-4, abs=1e-5)
        np.testing.assert_allclose(a.extra["td_error"], b.extra["td_error"], rtol=1e-3, atol=1e-4)
    obs = counting_windows(9).observation[:, 0]
    np.testing.assert_allclose(cpu.policy.q_values(obs), gpu.policy.q_values(obs), rtol=1e-3, atol=1e-4)
