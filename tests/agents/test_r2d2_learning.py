"""R2D2 learns a task that needs memory, which no feed-forward policy can solve (bounded learning test)."""

from __future__ import annotations

import numpy as np
import pytest

from drivetrain.agents.r2d2 import R2D2, R2D2Config, make_r2d2
from drivetrain.core import EpisodeDriver, StepDriver, specs, types
from drivetrain.core.environment import Environment
from drivetrain.core.metrics import AverageReturn
from drivetrain.replay import UniformReplay


class CueRecall(Environment):
    """Remember a cue across a delay.

    Observation ``[cue, query]``: at the first step ``cue`` is -1 or +1 (random) and
    ``query`` 0; then ``delay`` steps of ``[0, 0]``; then the query step ``[0, 1]``, where
    action 1 if the cue was +1 (action 0 if it was -1) earns +1, the other action -1,
    and the episode terminates. Other steps pay 0. The best return is 1; any policy of
    the current observation alone gets 0 on average.
    """

    def __init__(self, num_envs: int = 8, delay: int = 3, seed: int = 0):
        self._rng = np.random.default_rng(seed)
        self._delay = delay
        self._t = np.zeros(num_envs, np.int64)
        self._cue = np.ones(num_envs, np.float32)
        self._last = np.zeros(num_envs, bool)

    @property
    def batch_size(self) -> int:
        return len(self._t)

    def observation_spec(self) -> specs.ArraySpec:
        return specs.ArraySpec((2,), np.float32, "observation")

    def action_spec(self) -> specs.BoundedArraySpec:
        return specs.BoundedArraySpec((), np.int64, 0, 1, "action")

    def _new_cues(self, where: np.ndarray) -> None:
        self._cue = np.where(where, self._rng.choice([-1.0, 1.0], self.batch_size), self._cue).astype(
            np.float32
        )

    def _obs(self) -> np.ndarray:
        cue = np.where(self._t == 0, self._cue, 0.0)
        query = (self._t == self._delay + 1).astype(np.float32)
        return np.stack([cue, query], axis=1).astype(np.float32)

    def _reset(self) -> types.TimeStep:
        self._t[:] = 0
        self._last[:] = False
        self._new_cues(np.ones(self.batch_size, bool))
        return types.restart(self._obs())

    def _step(self, action: np.ndarray) -> types.TimeStep:
        restart = self._last.copy()
        answered = ~restart & (self._t == self._delay + 1)
        right = (np.asarray(action) == 1) == (self._cue > 0)
        reward = np.where(answered, np.where(right, 1.0, -1.0), 0.0).astype(np.float32)
        self._new_cues(restart)
        self._t = np.where(restart, 0, self._t + 1)
        self._last = answered
        step_type = np.where(
            restart, types.StepType.FIRST, np.where(answered, types.StepType.LAST, types.StepType.MID)
        )
        discount = np.where(answered, 0.0, 1.0).astype(np.float32)
        return types.TimeStep(step_type.astype(np.int32), reward, discount, self._obs())


def _greedy_return(agent: R2D2, episodes: int = 40) -> float:
    env = CueRecall(num_envs=8, seed=123)
    average = AverageReturn(window=episodes)
    EpisodeDriver(env, agent.policy, [average], num_episodes=episodes).run()
    return float(average.result())


@pytest.mark.learning
def test_r2d2_learns_to_recall_a_cue() -> None:
    env = CueRecall(num_envs=8, seed=0)
    config = R2D2Config(
        hidden_size=16,
        fc_layers=(16,),
        sequence_length=8,
        burn_in=2,
        n_step=1,
        gamma=0.9,
        learning_rate=3e-3,
        target_update_period=50,
        epsilon_start=1.0,
        epsilon_end=0.05,
        epsilon_decay_steps=300,
    )
    agent = make_r2d2(config, env.time_step_spec(), env.action_spec(), seed=0)
    before = _greedy_return(agent)
    replay = UniformReplay(agent.collect_data_spec, 20_000, env.batch_size, seed=0)
    time_step, state = StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=400).run()
    driver = StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=8)
    returns = []
    for i in range(600):
        time_step, state = driver.run(time_step, state)
        batch, _ = replay.sample(16, agent.train_sequence_length)
        agent.train(batch)
        if i % 100 == 99:
            returns.append(_greedy_return(agent))
            if returns[-1] >= 0.95:
                break
    assert before < 0.5
    assert returns[-1] >= 0.95, f"greedy returns along training: {returns}"
