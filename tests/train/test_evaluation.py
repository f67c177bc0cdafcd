import pytest

from drivetrain.envs.testing import CountingEnv
from drivetrain.policies import ScriptedPolicy
from drivetrain.train.evaluation import evaluate


def policy_for(env, action=0):
    return ScriptedPolicy(env.time_step_spec(), env.action_spec(), [action])


def test_single_env_returns_and_lengths():
    env = CountingEnv([4])
    result = evaluate(env, policy_for(env, action=1), num_episodes=3)  # reward 2 per step
    assert result.returns == (8.0, 8.0, 8.0)
    assert result.lengths == (4, 4, 4)
    assert result.mean_return == 8.0 and result.std_return == 0.0 and result.episodes == 3


def test_batched_envs_are_not_biased_towards_short_episodes():
    # env 0's episodes last 1 step, env 1's 9 steps. Counting the first 4 episodes to *end*
    # would take four 1-step episodes; by index it takes two of each: mean (1 + 9) / 2.
    env = CountingEnv([1, 9])
    result = evaluate(env, policy_for(env), num_episodes=4)
    assert sorted(result.lengths) == [1, 1, 9, 9]
    assert result.mean_return == pytest.approx(5.0)
    assert result.std_return == pytest.approx(4.0)


def test_odd_number_of_episodes_over_a_batch_keeps_lower_indices_first():
    env = CountingEnv([2, 3, 5])
    result = evaluate(env, policy_for(env), num_episodes=4)
    # first episode of each env (2, 3, 5), then the second episode of env 0 (2)
    assert result.lengths == (2, 3, 5, 2)
    d = result.to_dict(env_steps=1234)
    assert d["mean_return"] == pytest.approx(3.0)
    assert d["episodes"] == 4 and d["env_steps"] == 1234 and d["returns"] == [2.0, 3.0, 5.0, 2.0]


def test_each_call_starts_from_a_reset():
    env = CountingEnv([3])
    evaluate(env, policy_for(env), 1)
    assert evaluate(env, policy_for(env), 1).lengths == (3,)


def test_a_batch_left_mid_episode_is_reset_by_the_next_call():
    """The first call stops with env 0 in its fourth episode: the next one starts whole episodes."""
    env = CountingEnv([3, 10])
    assert evaluate(env, policy_for(env), 2).lengths == (3, 10)
    assert evaluate(env, policy_for(env), 2).lengths == (3, 10)


def test_zero_episodes_is_an_error():
    env = CountingEnv([3])
    with pytest.raises(ValueError, match="num_episodes must be >= 1"):
        evaluate(env, policy_for(env), 0)


def test_max_steps_stops_counting_new_episodes_and_keeps_whole_ones():
    env = CountingEnv([4])
    result = evaluate(env, policy_for(env), num_episodes=30, max_steps=10)
    assert result.lengths == (4, 4, 4)  # 8 steps < 10: a third episode starts and is finished
    one = evaluate(env, policy_for(env), num_episodes=30, max_steps=1)
    assert one.lengths == (4,)  # at least one whole episode
    assert evaluate(env, policy_for(env), num_episodes=2, max_steps=100).lengths == (4, 4)


def test_max_steps_with_a_batch_counts_by_index_every_env_at_least_once():
    env = CountingEnv([1, 9])
    result = evaluate(env, policy_for(env), num_episodes=10, max_steps=6)
    # 6 steps: env 0 finished 3 one-step episodes, env 1 none; one each is kept, by index.
    assert sorted(result.lengths) == [1, 9]
    assert evaluate(env, policy_for(env), num_episodes=10, max_steps=20).lengths == (1, 9)


def test_max_steps_below_one_is_an_error():
    env = CountingEnv([3])
    with pytest.raises(ValueError, match="max_steps must be >= 1 or None, got 0"):
        evaluate(env, policy_for(env), 1, max_steps=0)


def test_a_step_limit_cuts_episodes_that_do_not_end_and_names_the_cause():
    env = CountingEnv([10**9])  # never ends within the limit
    with pytest.raises(
        RuntimeError, match=r"no episode ended in 500 steps of 1 environment\(s\); give the environment"
    ):
        evaluate(env, policy_for(env), num_episodes=2, step_limit=500)
    batch = CountingEnv([4, 10**9])  # one environment ends its episodes, the other never does
    result = evaluate(batch, policy_for(batch, action=1), num_episodes=4, step_limit=300)
    assert result.lengths == (4,) and result.returns == (8.0,)  # whole episodes only, index 0 of each env


def test_the_step_limit_grows_with_the_episodes_asked_for():
    from drivetrain.train.evaluation import eval_step_limit

    assert eval_step_limit(600, 60) > 60 * 200 + eval_step_limit(
        600, 0
    )  # MountainCar's 200-step episodes fit


def test_the_step_limit_counts_every_environment_of_the_batch():
    from drivetrain.train.evaluation import eval_step_limit

    batch = CountingEnv([3000] * 8)  # episodes that do end, one asked for over 8 environments
    result = evaluate(batch, policy_for(batch), num_episodes=1, step_limit=eval_step_limit(1000, 1, 8))
    assert result.lengths == (3000,)
