"""GreedyPolicy around an agent's collect policy: DQN's acts as the agent's greedy policy, and a
collect policy that samples (PPO's) is refused, pointing at ``agent.policy``."""

import numpy as np
import pytest

import drivetrain as dt
from drivetrain.agents import DQNConfig, PPOConfig, make_dqn, make_ppo
from drivetrain.core import specs, types
from drivetrain.policies import GreedyPolicy

TS_SPEC = types.time_step_spec(specs.ArraySpec((3,), np.float32))
ACTIONS = specs.BoundedArraySpec((), np.int64, -1, 2)  # 4 actions, minimum -1


def observations(n=200):
    rng = np.random.default_rng(0)
    return types.restart(rng.standard_normal((n, 3)).astype(np.float32))


def test_greedy_of_dqns_collect_policy_is_its_greedy_policy():
    agent = make_dqn(DQNConfig(fc_layers=(8,), epsilon_start=1.0), TS_SPEC, ACTIONS, seed=0)
    ts = observations()
    np.testing.assert_array_equal(
        GreedyPolicy(agent.collect_policy).action(ts).action, agent.policy.action(ts).action
    )


def test_greedy_of_ppos_collect_policy_is_refused_naming_agent_policy():
    agent = make_ppo(PPOConfig(layers=(8,)), TS_SPEC, ACTIONS, seed=0)
    with pytest.raises(TypeError, match=r"neither q_values nor logits.*agent\.policy"):
        GreedyPolicy(agent.collect_policy)
    assert dt.policies.GreedyPolicy is GreedyPolicy


def test_greedy_of_an_agents_greedy_policy_is_that_policy():
    agent = make_ppo(PPOConfig(layers=(8,)), TS_SPEC, ACTIONS, seed=0)
    ts = observations()
    assert agent.policy.greedy and not agent.collect_policy.greedy
    np.testing.assert_array_equal(
        GreedyPolicy(agent.policy).action(ts).action, agent.policy.action(ts).action
    )
