"""REINFORCE: the loss against values worked out by hand, and the agent on whole episodes."""

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents.reinforce import ReinforceConfig, make_reinforce
from drivetrain.agents.reinforce.loss import reinforce_loss
from drivetrain.replay.rollout import RolloutBuffer, minibatches


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_loss_without_baseline_normalizes_the_returns_as_the_book():
    log_prob = torch.tensor([-0.1, -0.2, -0.3, -9.0], dtype=torch.float64, requires_grad=True)
    returns = t(1.0, 2.0, 3.0, 100.0)
    mask = torch.tensor([True, True, True, False])
    out = reinforce_loss(
        log_prob, returns, None, t(0.5, 0.5, 0.5, 0.5), mask, normalize=True, vf_coef=0.5, ent_coef=0.0
    )
    # Population std of (1, 2, 3) is sqrt(2/3): advantages (-1, 0, 1) / sqrt(2/3).
    a = np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3)
    expected = -np.mean(np.array([-0.1, -0.2, -0.3]) * a)
    assert out.policy_loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.value_loss.item() == 0.0
    out.loss.backward()
    np.testing.assert_allclose(log_prob.grad.numpy(), [*(-a / 3), 0.0], rtol=1e-6)


def test_loss_with_a_baseline():
    log_prob, returns, value = t(-1.0, -2.0), t(3.0, 1.0), t(1.0, 2.0)
    mask = torch.tensor([True, True])
    out = reinforce_loss(
        log_prob, returns, value, t(0.2, 0.4), mask, normalize=False, vf_coef=0.5, ent_coef=0.1
    )
    policy = -((-1.0) * (3 - 1) + (-2.0) * (1 - 2)) / 2
    value_loss = 0.5 * ((1 - 3) ** 2 + (2 - 1) ** 2) / 2
    assert out.policy_loss.item() == pytest.approx(policy)
    assert out.value_loss.item() == pytest.approx(value_loss)
    assert out.loss.item() == pytest.approx(policy + 0.5 * value_loss - 0.1 * 0.3)


@pytest.mark.parametrize("baseline", [False, True])
def test_trains_on_finished_episodes_only(baseline):
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0)
    agent = make_reinforce(
        ReinforceConfig(baseline=baseline), env.time_step_spec(), env.action_spec(), seed=0
    )
    rollout = RolloutBuffer(agent.collect_data_spec, env.batch_size)
    dt.StepDriver(env, agent.collect_policy, [rollout.add_batch], num_steps=2 * 60).run()
    data = agent.prepare(*rollout.gather())
    ended = data.trajectory.next_step_type == 2
    assert data.mask.any() and ended.any()
    # The newest item of each environment belongs to an unfinished episode.
    assert not data.mask[:, -1].any()
    info = agent.train(next(minibatches(data, 1, 1, agent.minibatch_rng, sequences=False)))
    assert info.extra["episode_steps"] == int(data.mask.sum())
    assert np.isfinite(info.loss) and agent.train_step == 1


def test_the_unsplit_rollout_is_refused_with_the_call_that_splits_it():
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0)
    agent = make_reinforce(ReinforceConfig(), env.time_step_spec(), env.action_spec(), seed=0)
    rollout = RolloutBuffer(agent.collect_data_spec, env.batch_size)
    dt.StepDriver(env, agent.collect_policy, [rollout.add_batch], num_steps=2 * 60).run()
    data = agent.prepare(*rollout.gather())
    with pytest.raises(
        ValueError, match=r"trains on flat items \[N\], got a batch whose mask has shape \(2, 6"
    ):
        agent.train(data)
    assert agent.train_step == 0
