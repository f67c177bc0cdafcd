"""The book's warm-up: a RandomPolicy made with (time_step_spec, action_spec) feeds the agent's replay."""

import numpy as np
import torch

import drivetrain as dt
from drivetrain.agents import DQN, DQNConfig, make_dqn
from drivetrain.core.schedules import PolynomialDecay


def test_random_policy_with_the_books_arguments_feeds_the_agents_replay():
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0)
    agent = make_dqn(DQNConfig(fc_layers=(8,)), env.time_step_spec(), env.action_spec(), seed=0)
    replay = dt.replay.UniformReplay(agent.collect_data_spec, capacity=1_000, num_envs=2, seed=0)
    initial_collect_policy = dt.policies.RandomPolicy(env.time_step_spec(), env.action_spec())
    dt.StepDriver(env, initial_collect_policy, [replay.add_batch], num_steps=50).run()
    dt.StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=50).run()
    batch, _ = replay.sample(8, num_steps=agent.train_sequence_length)
    assert np.isfinite(agent.train(batch).loss)
    assert agent.collect_data_spec.policy_info == {}
    assert "q_values" in agent.policy.action(env.current_time_step()).info  # the greedy policy keeps them
    env.close()


def test_the_books_zero_argument_epsilon_on_the_agent():
    env = dt.envs.make("CartPole-v1", num_envs=1, seed=0)
    q_net = dt.networks.QNetwork(env.observation_spec(), env.action_spec(), fc_layers=(8,), seed=0)
    epsilon_fn = PolynomialDecay(start=1.0, end=0.01, steps=100)
    agent: DQN = DQN(
        env.time_step_spec(),
        env.action_spec(),
        q_network=q_net,
        optimizer=torch.optim.SGD(q_net.parameters(), lr=0.0),
        epsilon_greedy=lambda: epsilon_fn(agent.train_step),
    )
    dt.StepDriver(env, agent.collect_policy, [], num_steps=5).run()
    assert agent.collect_policy.epsilon == 1.0
    agent._train_step = 50  # as after 50 train calls
    assert agent.collect_policy.epsilon == epsilon_fn(50)
    env.close()
