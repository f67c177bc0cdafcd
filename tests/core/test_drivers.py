import numpy as np
import pytest

import drivetrain as dt
from drivetrain.core.types import StepType
from drivetrain.envs.testing import CountingEnv
from drivetrain.policies import RandomPolicy, ScriptedPolicy
from drivetrain.policies.testing import CountingPolicy


def scripted(env, actions=(1,)):
    return ScriptedPolicy(env.time_step_spec(), env.action_spec(), list(actions))


def test_step_driver_does_not_count_boundaries():
    env = CountingEnv([2])
    seen = []
    driver = dt.StepDriver(env, scripted(env), [seen.append], num_steps=4)
    driver.run()
    # F->M, M->L, L->F (boundary, not counted), F->M, M->L
    assert [int(t.step_type[0]) for t in seen] == [0, 1, 2, 0, 1]
    assert [int(t.next_step_type[0]) for t in seen] == [1, 2, 0, 1, 2]
    assert sum(int(t.is_boundary().sum()) for t in seen) == 1


def test_step_driver_counting_boundaries_takes_exactly_k_steps_of_the_batch():
    env = CountingEnv([1, 3])
    seen = []
    dt.StepDriver(env, scripted(env), [seen.append], num_steps=8, count_boundaries=True).run()
    # env 0 ends an episode every step: half of its items are boundaries, yet 4 steps of the batch
    assert len(seen) == 4
    assert sum(int(t.is_boundary().sum()) for t in seen) >= 1


def test_num_steps_is_a_total_over_the_batch():
    env = CountingEnv([1, 3])
    seen = []
    dt.StepDriver(env, scripted(env), [seen.append], num_steps=5).run()
    # iteration 1: 2 steps; 2: env 0 is a boundary -> 1 step; 3: 2 steps -> 5 in all.
    assert len(seen) == 3


def test_run_continues_seamlessly():
    def observations(runs, steps):
        env = CountingEnv([2, 3], truncate=[False, True])
        seen = []
        driver = dt.StepDriver(env, scripted(env, [0, 1]), [seen.append], num_steps=steps)
        ts, state = None, None
        for _ in range(runs):
            ts, state = driver.run(ts, state)
        return np.stack([t.observation for t in seen]), np.stack([t.reward for t in seen])

    obs_split, rew_split = observations(3, 4)
    obs_once, rew_once = observations(1, 12)
    np.testing.assert_array_equal(obs_split, obs_once)
    np.testing.assert_array_equal(rew_split, rew_once)


def test_episode_driver_counts_episodes_over_the_batch():
    env = CountingEnv([2, 3])
    seen = []
    dt.EpisodeDriver(env, scripted(env), [seen.append], num_episodes=4).run()
    # env 0 ends at iterations 2, 5; env 1 at 3, 7 -> the 4th episode ends at iteration 7.
    assert len(seen) == 7
    assert sum(int(t.is_last().sum()) for t in seen) == 4


def test_book_aliases():
    assert dt.DynamicStepDriver is dt.StepDriver and dt.DynamicEpisodeDriver is dt.EpisodeDriver


def test_stateful_policy_state_is_threaded_reset_and_stored():
    env = CountingEnv([3, 2])
    policy = CountingPolicy(env.time_step_spec(), env.action_spec())
    seen = []
    ts, state = dt.StepDriver(env, policy, [seen.append], num_steps=12).run()
    for traj in seen:
        # The stored state is the one the policy acted from.
        np.testing.assert_array_equal(traj.policy_info["state"], traj.policy_info["seen_state"])
    # Each environment's stored state counts the steps since FIRST: 0 at every FIRST.
    for i in range(env.batch_size):
        states = [int(t.policy_info["state"][i]) for t in seen]
        firsts = [int(t.step_type[i]) == StepType.FIRST for t in seen]
        for k, (s, first) in enumerate(zip(states, firsts, strict=True)):
            if first:
                assert s == 0
            else:
                assert s == states[k - 1] + 1
    # Actions applied by the environment were t % 2 for t the step of the episode.
    applied = np.stack(env.actions_applied)
    assert set(applied[:, 0].tolist()) <= {-1, 0, 1}
    assert applied[:3, 0].tolist() == [0, 1, 0]  # env 0: steps 0, 1, 2 of its first episode
    assert policy.trajectory_spec.policy_info["state"] == policy.policy_state_spec
    assert isinstance(state, np.ndarray) and ts.step_type.shape == (2,)


def test_stateless_policy_stores_no_state():
    env = CountingEnv([2])
    seen = []
    dt.StepDriver(env, scripted(env), [seen.append], num_steps=2).run()
    assert seen[0].policy_info == {}
    assert "state" not in scripted(env).trajectory_spec.policy_info


def test_bad_arguments_get_clear_errors():
    env = CountingEnv([2])
    with pytest.raises(TypeError, match="not callable"):
        dt.StepDriver(env, scripted(env), [42])
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        dt.StepDriver(env, scripted(env), num_steps=0)
    with pytest.raises(ValueError, match="num_episodes must be >= 1"):
        dt.EpisodeDriver(env, scripted(env), num_episodes=0)


def test_same_seed_same_trajectories():
    def run(seed):
        env = CountingEnv([3, 4])
        seen = []
        dt.StepDriver(
            env, RandomPolicy(env.time_step_spec(), env.action_spec(), seed=seed), [seen.append], 20
        ).run()
        return np.stack([t.action for t in seen])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_run_without_a_time_step_continues_the_episodes_in_progress():
    # The book's loop: a warm-up driver, then collect_driver.run() with time_step=None.
    def observations(make_runs):
        env = CountingEnv([5, 7], truncate=[False, True])
        seen = []
        make_runs(env, seen)
        return np.stack([t.observation for t in seen]), np.stack([t.step_type for t in seen])

    def split(env, seen):
        warmup = dt.StepDriver(env, scripted(env, [1]), [seen.append], num_steps=6)
        collect = dt.StepDriver(env, scripted(env, [1]), [seen.append], num_steps=4)
        warmup.run()
        collect.run()  # no time step: continues from env.current_time_step()
        collect.run()

    def once(env, seen):
        dt.StepDriver(env, scripted(env, [1]), [seen.append], num_steps=14).run()

    obs_split, types_split = observations(split)
    obs_once, types_once = observations(once)
    np.testing.assert_array_equal(obs_split, obs_once)
    np.testing.assert_array_equal(types_split, types_once)
    # No restart mid-episode: every FIRST after the first reset follows a LAST.
    after = types_split[1:] == StepType.FIRST
    assert np.all(types_split[:-1][after] == StepType.LAST)


def test_an_environment_that_never_started_is_reset():
    env = CountingEnv([3])
    assert env.current_time_step() is None
    ts, _ = dt.StepDriver(env, scripted(env), num_steps=1).run()
    assert env.current_time_step() is ts


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_steps": None}, TypeError, "num_steps must be an int >= 1, got None"),
        ({"num_steps": 0}, ValueError, "num_steps must be >= 1, got 0"),
        ({"num_steps": 2.5}, TypeError, "num_steps must be an int"),
        ({"num_steps": True}, TypeError, "num_steps must be an int"),
    ],
)
def test_step_driver_refuses_bad_arguments(kwargs, error, match):
    env = CountingEnv([3])
    with pytest.raises(error, match=match):
        dt.StepDriver(env, scripted(env), **kwargs)


def test_episode_driver_refuses_bad_arguments():
    env = CountingEnv([3])
    with pytest.raises(TypeError, match="num_episodes must be an int >= 1, got None"):
        dt.EpisodeDriver(env, scripted(env), num_episodes=None)
    driver = dt.EpisodeDriver(env, scripted(env), num_episodes=1)
    with pytest.raises(ValueError, match="num_episodes must be >= 1, got -1"):
        driver.num_episodes = -1


def test_drivers_refuse_a_wrong_env_policy_or_observers():
    env = CountingEnv([3])
    policy = scripted(env)
    with pytest.raises(TypeError, match="env must be a batched Environment"):
        dt.StepDriver("CartPole-v1", policy)
    with pytest.raises(TypeError, match="policy must be a Policy"):
        dt.StepDriver(env, env)

    class DuckPolicy:  # a duck-typed policy that lacks `stateful`
        def action(self, time_step, policy_state=()):
            return policy.action(time_step, policy_state)

        def get_initial_state(self, batch_size):
            return ()

    with pytest.raises(TypeError, match="with action, get_initial_state and stateful"):
        dt.StepDriver(env, DuckPolicy())
    with pytest.raises(TypeError, match="observers must be a list of callables"):
        dt.StepDriver(env, policy, observers=print)
