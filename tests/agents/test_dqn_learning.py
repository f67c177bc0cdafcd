"""DQN learns the optimal policy of a small deceptive chain (bounded, fast learning tests)."""

import numpy as np
import pytest

from drivetrain.agents import DQNConfig, make_dqn
from drivetrain.core import EpisodeDriver, StepDriver, specs, types
from drivetrain.core.environment import Environment
from drivetrain.core.metrics import AverageReturn
from drivetrain.replay import UniformReplay

GAMMA = 0.9


class DeceptiveChain(Environment):
    """Positions 0..n-1, start at 0, one-hot observations.

    Action 0 ("take") ends the episode with reward 0.2 at once; action 1 ("advance")
    moves right with reward 0, and reaching position n - 1 ends the episode with reward
    1. With γ = 0.9 and n = 5, advancing is optimal everywhere (0.9³ = 0.73 > 0.2)
    although taking pays more immediately: the agent has to bootstrap through the chain.
    The best return is 1; an episode lasts at most n - 1 steps.
    """

    def __init__(self, num_envs=4, n=5):
        self._n = n
        self._pos = np.zeros(num_envs, np.int64)
        self._last = np.zeros(num_envs, bool)

    @property
    def batch_size(self):
        return len(self._pos)

    def observation_spec(self):
        return specs.ArraySpec((self._n,), np.float32, "observation")

    def action_spec(self):
        return specs.BoundedArraySpec((), np.int64, 0, 1, "action")

    def _obs(self):
        return np.eye(self._n, dtype=np.float32)[self._pos]

    def _reset(self):
        self._pos[:] = 0
        self._last[:] = False
        return types.restart(self._obs())

    def _step(self, action):
        restart = self._last.copy()
        take = (np.asarray(action) == 0) & ~restart
        advance = ~take & ~restart
        self._pos = np.where(restart, 0, np.where(advance, self._pos + 1, self._pos))
        goal = advance & (self._pos == self._n - 1)
        self._last = take | goal
        reward = np.where(take, 0.2, np.where(goal, 1.0, 0.0)).astype(np.float32)
        step_type = np.where(
            restart, types.StepType.FIRST, np.where(self._last, types.StepType.LAST, types.StepType.MID)
        )
        discount = np.where(self._last, 0.0, 1.0).astype(np.float32)
        return types.TimeStep(step_type.astype(np.int32), reward, discount, self._obs())


def greedy_return(agent, episodes=8):
    env = DeceptiveChain()
    metric = AverageReturn(window=episodes)
    EpisodeDriver(env, agent.policy, [metric], num_episodes=episodes).run()
    return metric.result()


@pytest.mark.learning
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"n_step": 3, "double": True, "dueling": True, "loss": "mse"},
    ],
    ids=["dqn", "n3-double-dueling-mse"],
)
def test_dqn_learns_the_deceptive_chain(overrides):
    config = DQNConfig(
        fc_layers=(32,),
        learning_rate=3e-3,
        gamma=GAMMA,
        target_update_period=20,
        epsilon_start=1.0,
        epsilon_end=0.1,
        epsilon_decay_steps=300,
        **overrides,
    )
    env = DeceptiveChain()
    agent = make_dqn(config, env.time_step_spec(), env.action_spec(), seed=0)
    assert greedy_return(agent) < 0.99  # not solved by chance at initialization
    replay = UniformReplay(agent.collect_data_spec, capacity=5_000, num_envs=env.batch_size, seed=0)
    driver = StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=8)
    time_step, state = driver.run()
    for _ in range(150):
        time_step, state = driver.run(time_step, state)
        for _ in range(4):
            batch, _ = replay.sample(32, num_steps=agent.train_sequence_length)
            agent.train(batch)
    assert greedy_return(agent) >= 0.99  # advances all the way: return 1
    q = agent.policy.q_values(np.eye(5, dtype=np.float32)[:4])
    assert (q[:, 1] > q[:, 0]).all()
    if config.n_step == 1:  # n-step targets follow the epsilon-greedy behaviour, and so sit lower
        np.testing.assert_allclose(
            q[:, 1], GAMMA ** np.arange(3, -1, -1), atol=0.1
        )  # q*(s, advance) = 0.9^(3-s)
