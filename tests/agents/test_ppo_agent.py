"""PPO's policies, log-probabilities (discrete and continuous), recurrent replay and updates."""

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents.ppo import PPOConfig, make_ppo
from drivetrain.replay.rollout import RolloutBuffer, minibatches


def collect(agent, env, steps):
    rollout = RolloutBuffer(agent.collect_data_spec, env.batch_size)
    dt.StepDriver(env, agent.collect_policy, [rollout.add_batch], num_steps=steps).run()
    return rollout


def test_discrete_log_probs_and_sampling_match_the_logits():
    env = dt.envs.make("CartPole-v1", num_envs=4, seed=0)
    agent = make_ppo(PPOConfig(), env.time_step_spec(), env.action_spec(), seed=0)
    ts = env.reset()
    step = agent.collect_policy.action(ts)
    with torch.no_grad():
        logits = agent.network(torch.as_tensor(ts.observation)).logits
    expected = torch.log_softmax(logits, -1).gather(1, torch.as_tensor(step.action)[:, None])[:, 0]
    np.testing.assert_allclose(step.info["log_prob"], expected.numpy(), rtol=1e-5)
    # Sampling frequencies follow the probabilities (one observation, many draws).
    one = ts._replace(
        step_type=ts.step_type[:1].repeat(4000),
        reward=ts.reward[:1].repeat(4000),
        discount=ts.discount[:1].repeat(4000),
        observation=np.repeat(ts.observation[:1], 4000, axis=0),
    )
    actions = agent.collect_policy.action(one).action
    p1 = torch.softmax(logits[0], -1)[1].item()
    assert abs(actions.mean() - p1) < 4 * np.sqrt(p1 * (1 - p1) / 4000)
    assert agent.policy.action(ts).action.tolist() == logits.argmax(-1).tolist()


def test_continuous_actions_respect_the_bounds_and_log_probs_are_the_gaussians():
    env = dt.envs.make("Pendulum-v1", num_envs=3, seed=0)
    spec = env.action_spec()
    agent = make_ppo(
        PPOConfig(initial_log_std=1.0), env.time_step_spec(), spec, seed=0
    )  # std e: often clipped
    ts = env.reset()
    step = agent.collect_policy.action(ts)
    assert step.action.dtype == spec.dtype and step.action.shape == (3, 1)
    assert np.all(step.action >= spec.minimum) and np.all(step.action <= spec.maximum)
    raw = step.info["raw_action"]
    np.testing.assert_array_equal(step.action, np.clip(raw, spec.minimum, spec.maximum))
    with torch.no_grad():
        mean = agent.network(torch.as_tensor(ts.observation)).mean
        normal = torch.distributions.Normal(mean, torch.exp(agent.network.log_std))
        expected = normal.log_prob(torch.as_tensor(raw)).sum(-1)
    np.testing.assert_allclose(step.info["log_prob"], expected.numpy(), rtol=1e-5)
    greedy = agent.policy.action(ts).action
    np.testing.assert_allclose(greedy, np.clip(mean.numpy(), spec.minimum, spec.maximum), rtol=1e-6)


def test_recurrent_training_replays_the_states_the_policy_acted_from():
    env = dt.envs.make("CartPole-v1", num_envs=3, seed=0, mask_velocity=True)
    agent = make_ppo(PPOConfig(core="gru", hidden_size=16), env.time_step_spec(), env.action_spec(), seed=0)
    rollout = collect(agent, env, 3 * 40)
    trajectory, _ = rollout.gather()
    assert "state" in trajectory.policy_info
    with torch.no_grad():
        out = agent._evaluate(trajectory)
    # The values the training pass computes are those the policy reported while acting.
    np.testing.assert_allclose(out.value.numpy(), trajectory.policy_info["value"], atol=1e-5)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_a_train_step_updates_the_network_and_reports_its_terms(env_id):
    env = dt.envs.make(env_id, num_envs=2, seed=0)
    agent = make_ppo(PPOConfig(), env.time_step_spec(), env.action_spec(), seed=0)
    data = agent.prepare(*collect(agent, env, 2 * 30).gather())
    batch = next(minibatches(data, 1, 2, np.random.default_rng(0), sequences=False))
    before = [p.detach().clone() for p in agent.network.parameters()]
    info = agent.train(batch)
    assert agent.train_step == 1
    assert np.isfinite(info.loss)
    assert set(info.extra) >= {
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_fraction",
        "grad_norm",
    }
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.network.parameters(), strict=True))
    with pytest.raises(ValueError, match="no item to train on"):
        agent.train(batch._replace(mask=np.zeros_like(batch.mask)))


def test_same_seed_same_updates_and_state_round_trip():
    def run():
        env = dt.envs.make("CartPole-v1", num_envs=2, seed=1)
        agent = make_ppo(PPOConfig(), env.time_step_spec(), env.action_spec(), seed=1)
        data = agent.prepare(*collect(agent, env, 2 * 20).gather())
        for batch in minibatches(data, 2, 2, agent.minibatch_rng, sequences=False):
            agent.train(batch)
        return agent

    a, b = run(), run()
    for x, y in zip(a.network.parameters(), b.network.parameters(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=1)
    c = make_ppo(PPOConfig(), env.time_step_spec(), env.action_spec(), seed=99)
    c.load_state_dict(a.state_dict())
    ts = env.reset()
    np.testing.assert_array_equal(c.collect_policy.action(ts).action, a.collect_policy.action(ts).action)
    assert c.train_step == a.train_step
