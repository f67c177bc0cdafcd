import numpy as np
import pytest

import drivetrain as dt
from drivetrain.core import metrics
from drivetrain.envs.testing import CountingEnv
from drivetrain.policies import ScriptedPolicy


def all_metrics():
    return [
        metrics.NumberOfEpisodes(),
        metrics.EnvironmentSteps(),
        metrics.AverageReturn(window=3),
        metrics.AverageEpisodeLength(window=3),
        metrics.MaxReturn(),
        metrics.MinReturn(),
        metrics.ChosenActionHistogram(),
    ]


def test_metrics_track_episodes_per_environment():
    # Action 0 -> reward 1 per step, so a return equals the episode's length.
    env = CountingEnv([2, 3])
    ms = all_metrics()
    dt.EpisodeDriver(
        env, ScriptedPolicy(env.time_step_spec(), env.action_spec(), [0]), ms, num_episodes=4
    ).run()
    episodes, steps, avg_ret, avg_len, max_ret, min_ret, hist = (m.result() for m in ms)
    # Episodes end in the order env0 (2), env1 (3), env0 (2), env1 (3) after 7 iterations.
    assert episodes == 4
    # 7 iterations x 2 envs minus 3 boundaries (env 0 at iterations 3 and 6, env 1 at 4).
    assert steps == 11
    assert avg_ret == pytest.approx((3 + 2 + 3) / 3)
    assert avg_len == pytest.approx((3 + 2 + 3) / 3)
    assert max_ret == 3 and min_ret == 2
    assert hist == {0: 11}


def test_results_before_any_episode_and_reset():
    m = metrics.AverageReturn()
    assert np.isnan(m.result()) and np.isnan(metrics.MaxReturn().result())
    env = CountingEnv([1])
    dt.StepDriver(env, ScriptedPolicy(env.time_step_spec(), env.action_spec(), [1]), [m], num_steps=3).run()
    assert m.result() == 2.0  # one step with action 1 -> reward 2
    m.reset()
    assert np.isnan(m.result())


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window must be >= 1"):
        metrics.AverageReturn(window=0)


def test_state_dict_continues_identically():
    env_a, env_b = CountingEnv([2, 5]), CountingEnv([2, 5])
    policy_a = ScriptedPolicy(env_a.time_step_spec(), env_a.action_spec(), [0, 1, 1])
    policy_b = ScriptedPolicy(env_b.time_step_spec(), env_b.action_spec(), [0, 1, 1])
    ms_a, ms_b = all_metrics(), all_metrics()
    driver_a = dt.StepDriver(env_a, policy_a, ms_a, num_steps=7)
    ts_a, _ = driver_a.run()
    # b runs the same first part, then its metrics are rebuilt from a's state mid-episode.
    ts_b, _ = dt.StepDriver(env_b, policy_b, ms_b, num_steps=7).run()
    restored = all_metrics()
    for src, dst in zip(ms_b, restored, strict=True):
        dst.load_state_dict(src.state_dict())
    driver_a.run(ts_a)
    dt.StepDriver(env_b, policy_b, restored, num_steps=7).run(ts_b)
    assert [m.result() for m in ms_a] == [m.result() for m in restored]


F, M, L = 0, 1, 2  # step types


def _traj(step_type, next_step_type, reward):
    b = len(step_type)
    return dt.Trajectory(
        np.array(step_type, np.int32),
        np.zeros((b, 1), np.float32),
        np.zeros(b, np.int64),
        {},
        np.array(next_step_type, np.int32),
        np.array(reward, np.float32),
        np.ones(b, np.float32),
    )


def test_an_episode_restarted_mid_way_is_not_joined_to_the_next():
    # Env 0: F(r=1) M(r=2) ... restart ... F(r=10) M(r=20) -> L : the return is 30, length 2.
    # Env 1 runs one clean episode alongside: F(r=1) M(r=1) M(r=1) M(r=1) -> L: return 4, length 4.
    script = [
        _traj([F, F], [M, M], [1, 1]),
        _traj([M, M], [M, M], [2, 1]),  # env 0 is interrupted after this transition
        _traj([F, M], [M, M], [10, 1]),  # a FIRST that does not follow a LAST
        _traj([M, M], [L, L], [20, 1]),
    ]
    ret, length = metrics.AverageReturn(), metrics.AverageEpisodeLength()
    highest, lowest = metrics.MaxReturn(), metrics.MinReturn()
    bar = dt.observers.ProgressBar(total=100, disable=True)
    for traj in script:
        for observer in (ret, length, highest, lowest, bar):
            observer(traj)
    assert highest.result() == 30.0  # not 33 (1 + 2 carried over)
    assert lowest.result() == 4.0
    assert ret.result() == pytest.approx((30.0 + 4.0) / 2)
    assert length.result() == pytest.approx((2 + 4) / 2)
    assert bar.average_return == pytest.approx((30.0 + 4.0) / 2)


def test_an_episode_joined_after_its_start_is_left_out():
    """Env 0's episode was under way when the metrics first saw it: only its end would count.
    Env 1's starts in view. After env 0's next FIRST its episodes count again."""
    script = [
        _traj([M, F], [M, M], [5, 1]),
        _traj([M, M], [L, M], [5, 1]),  # env 0's joined episode ends: left out
        _traj([L, M], [F, L], [0, 1]),  # env 1's whole episode: return 3, length 3
        _traj([F, L], [M, F], [2, 0]),
        _traj([M, F], [L, M], [2, 1]),  # env 0's whole episode: return 4, length 2
    ]
    ms = [metrics.AverageReturn(), metrics.AverageEpisodeLength(), metrics.MaxReturn(), metrics.MinReturn()]
    for traj in script:
        for m in ms:
            m(traj)
    assert [m.result() for m in ms] == [3.5, 2.5, 4.0, 3.0]
    assert metrics.NumberOfEpisodes().result() == 0  # counts every LAST it sees (here: none fed)


def test_a_reset_metric_leaves_out_the_episodes_under_way():
    m = metrics.AverageEpisodeLength()
    m(_traj([F], [M], [1]))
    m.reset()
    m(_traj([M], [L], [1]))
    assert np.isnan(m.result())
    m(_traj([L], [F], [0]))
    m(_traj([F], [L], [1]))
    assert m.result() == 1.0


def test_a_state_saved_without_the_started_flags_counts_the_episodes_under_way():
    saved = metrics.AverageReturn()
    saved(_traj([F, F], [M, M], [1, 2]))
    state = saved.state_dict()
    assert state["started"].tolist() == [True, True]
    del state["started"]  # as states were saved before the flags were kept
    restored = metrics.AverageReturn()
    restored.load_state_dict(state)
    restored(_traj([M, M], [L, L], [1, 1]))
    assert restored.result() == pytest.approx((2 + 3) / 2)
