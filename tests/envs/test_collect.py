"""Drivers over real CartPole: the metrics agree with episodes recomputed from the trajectories."""

import numpy as np

import drivetrain as dt
from drivetrain.core import metrics
from drivetrain.policies import RandomPolicy


class Recorder:
    """Keeps every trajectory a driver emits (copies of its arrays)."""

    def __init__(self):
        self.trajectories = []

    def __call__(self, traj):
        self.trajectories.append(dt.core.nest.map_structure(np.copy, traj))


def episodes_by_hand(trajectories, num_envs):
    """(returns, lengths) of the finished episodes, in order of completion, summed per env."""
    returns, lengths = [0.0] * num_envs, [0] * num_envs
    done = []
    for traj in trajectories:
        for i in range(num_envs):
            if traj.step_type[i] == dt.StepType.LAST:  # a boundary: LAST -> FIRST
                continue
            returns[i] += float(traj.reward[i])
            lengths[i] += 1
            if traj.next_step_type[i] == dt.StepType.LAST:
                done.append((returns[i], lengths[i]))
                returns[i], lengths[i] = 0.0, 0
    return done


def make_observers():
    return {
        "episodes": metrics.NumberOfEpisodes(),
        "steps": metrics.EnvironmentSteps(),
        "return": metrics.AverageReturn(window=1000),
        "length": metrics.AverageEpisodeLength(window=1000),
        "max": metrics.MaxReturn(),
        "min": metrics.MinReturn(),
        "actions": metrics.ChosenActionHistogram(),
    }


def test_step_driver_with_random_policy_on_cartpole():
    env = dt.envs.make("CartPole-v1", num_envs=4, seed=0)
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    m, recorder = make_observers(), Recorder()
    driver = dt.StepDriver(env, policy, [*m.values(), recorder], num_steps=1000)
    time_step, state = driver.run()
    time_step, state = driver.run(time_step, state)  # continues seamlessly
    done = episodes_by_hand(recorder.trajectories, 4)
    boundaries = sum(int(np.sum(t.step_type == dt.StepType.LAST)) for t in recorder.trajectories)
    assert 2000 <= m["steps"].result() < 2000 + 4
    assert m["steps"].result() + boundaries == 4 * len(recorder.trajectories)
    assert m["episodes"].result() == len(done) >= 50  # random CartPole: ~22 steps per episode
    assert m["return"].result() == np.mean([r for r, _ in done])
    # CartPole pays 1 per step, so returns equal lengths; a random policy stays far below 500
    assert m["length"].result() == m["return"].result()
    assert 10 < m["return"].result() < 40
    assert m["max"].result() == max(r for r, _ in done) and m["min"].result() == min(r for r, _ in done)
    assert m["min"].result() >= 8  # CartPole cannot fall in fewer steps from its initial state
    counts = m["actions"].result()
    assert set(counts) == {0, 1} and sum(counts.values()) == m["steps"].result()
    assert abs(counts[0] - counts[1]) < 0.1 * m["steps"].result()
    # Each trajectory's reward and discount come from the next time step; boundaries end with FIRST.
    for traj in recorder.trajectories:
        boundary = traj.step_type == dt.StepType.LAST
        assert np.all(traj.next_step_type[boundary] == dt.StepType.FIRST)
        assert np.all(traj.reward[boundary] == 0) and np.all(traj.discount[boundary] == 1)
        terminated = (traj.next_step_type == dt.StepType.LAST) & (traj.discount == 0)
        assert np.all(traj.reward[terminated] == 1)


def test_episode_driver_and_truncation_on_cartpole():
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=1, max_episode_steps=15)
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=1)
    m, recorder = make_observers(), Recorder()
    dt.EpisodeDriver(env, policy, [*m.values(), recorder], num_episodes=20).run()
    done = episodes_by_hand(recorder.trajectories, 2)
    assert m["episodes"].result() == len(done) >= 20
    assert m["max"].result() <= 15  # the time limit
    last = [t for t in recorder.trajectories if np.any(t.next_step_type == dt.StepType.LAST)]
    truncated = sum(int(np.sum((t.next_step_type == dt.StepType.LAST) & (t.discount == 1))) for t in last)
    terminated = sum(int(np.sum((t.next_step_type == dt.StepType.LAST) & (t.discount == 0))) for t in last)
    assert truncated + terminated == len(done) and truncated > 0 and terminated > 0
    assert sum(n for _, n in done if n == 15) == 15 * truncated  # every truncation is at the limit


def test_collection_into_the_replay_buffer():
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=2)
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=2)
    replay = dt.replay.UniformReplay(policy.trajectory_spec, 1000, 2)
    dt.StepDriver(env, policy, [replay.add_batch], num_steps=200).run()
    assert 200 <= len(replay) <= 1000
    batch, _ = replay.sample(batch_size=16, num_steps=2)
    assert batch.observation.shape == (16, 2, 4) and batch.action.dtype == np.int64
