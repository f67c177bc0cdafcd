"""The chapter's environment wrappers: ActionRepeat, ActionOffset, and make(..., wrappers=...)."""

from functools import partial

import gymnasium
import numpy as np
import pytest

import drivetrain as dt
from drivetrain.envs import ActionOffset, ActionRepeat


def cartpole() -> gymnasium.Env:
    return gymnasium.make("CartPole-v1")


def test_action_repeat_sums_rewards_and_stops_at_the_episode_end():
    env = ActionRepeat(cartpole(), times=4)
    env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step(1)
    assert reward == 4.0 and not (terminated or truncated)
    steps = 1
    while True:
        _, reward, terminated, truncated, _ = env.step(1)
        steps += 1
        if terminated or truncated:
            break
        assert reward == 4.0
    assert 1.0 <= reward <= 4.0 and steps < 20  # always pushing right: the pole falls within a few repeats


def test_action_repeat_refuses_bad_times():
    with pytest.raises(ValueError, match="times must be an int >= 1"):
        ActionRepeat(cartpole(), times=0)


def test_make_applies_the_books_wrappers_in_order():
    plain = dt.envs.make("CartPole-v1", num_envs=1, seed=3)
    repeated = dt.envs.make(
        "CartPole-v1",
        num_envs=1,
        seed=3,
        wrappers=[
            partial(gymnasium.wrappers.TimeLimit, max_episode_steps=10_000),
            partial(ActionRepeat, times=4),
        ],
    )
    plain.reset()
    repeated.reset()
    action = np.ones(1, np.int64)
    for _ in range(3):
        plain.step(action)
    first = repeated.step(action)
    # one repeated step = 4 plain steps: 3 above and this one; same seed, same observation
    np.testing.assert_array_equal(first.observation, plain.step(action).observation)
    assert first.reward[0] == 4.0
    plain.close()
    repeated.close()


def test_make_refuses_wrappers_that_are_not_a_list_of_callables():
    with pytest.raises(TypeError, match="wrappers must be a list of callables"):
        dt.envs.make("CartPole-v1", wrappers=partial(ActionRepeat, times=4))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="returned int"):
        dt.envs.make("CartPole-v1", wrappers=[lambda env: 3]).reset()


def test_action_offset_starts_actions_at_zero():
    base = gymnasium.make("CartPole-v1")
    base.action_space = gymnasium.spaces.Discrete(2, start=5)
    sent = []
    base.step = lambda a: (sent.append(a), (np.zeros(4, np.float32), 0.0, False, False, {}))[1]  # type: ignore[method-assign]
    env = ActionOffset(base)
    assert env.action_space == gymnasium.spaces.Discrete(2)
    env.step(1)
    assert sent == [6]
    with pytest.raises(ValueError, match="Discrete or MultiDiscrete"):
        ActionOffset(gymnasium.make("Pendulum-v1"))
