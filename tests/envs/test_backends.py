"""Seeding and backends: same seed -> same time steps; lean sync == SyncVectorEnv == AsyncVectorEnv."""

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import drivetrain as dt
from drivetrain.envs.testing import ScriptedGymEnv


def play(env, actions):
    """The time steps of reset() and of stepping ``actions``."""
    out = [env.reset()]
    out.extend(env.step(a) for a in actions)
    return out


def assert_same_time_steps(a, b):
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        for field in ("step_type", "reward", "discount"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field), err_msg=f"{field} at {t}")
            assert getattr(x, field).dtype == getattr(y, field).dtype
        dt.core.nest.map_structure(
            lambda u, v, t=t: np.testing.assert_array_equal(u, v, err_msg=f"observation at {t}"),
            x.observation,
            y.observation,
        )


def random_actions(n, steps, seed=0, high=2):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, high, n) for _ in range(steps)]


def test_same_seed_same_trajectories_and_different_seeds_differ():
    actions = random_actions(3, 200)
    a = play(dt.envs.make("CartPole-v1", num_envs=3, seed=7), actions)
    b = play(dt.envs.make("CartPole-v1", num_envs=3, seed=7), actions)
    c = play(dt.envs.make("CartPole-v1", num_envs=3, seed=8), actions)
    assert_same_time_steps(a, b)
    assert not np.array_equal(a[0].observation, c[0].observation)
    assert sum(int(ts.is_last().sum()) for ts in a) >= 3  # auto-resets happened in the window


def test_env_i_is_seeded_with_seed_plus_i():
    env = dt.envs.make("CartPole-v1", num_envs=3, seed=10)
    first = env.reset().observation
    for i in range(3):
        expected, _ = gymnasium.make("CartPole-v1").reset(seed=10 + i)
        np.testing.assert_array_equal(first[i], expected)


def test_action_spaces_are_seeded_too():
    def samples(backend):
        env = dt.envs.make("CartPole-v1", num_envs=2, seed=5, backend=backend)
        env.reset()
        space = env.envs[1].action_space if backend == "sync" else env.vector_env.action_space
        return [space.sample() for _ in range(30)]

    for backend in ("sync", "gymnasium"):
        assert np.array_equal(samples(backend), samples(backend))
    space = gymnasium.make("CartPole-v1").action_space
    space.seed(6)  # env 1 of seed 5
    assert samples("sync") == [space.sample() for _ in range(30)]


def test_later_resets_do_not_reseed():
    env = dt.envs.make("CartPole-v1", seed=0)
    assert not np.array_equal(env.reset().observation, env.reset().observation)


def test_lean_sync_backend_equals_gymnasium_sync_vector_env():
    """The default backend and gymnasium.vector.SyncVectorEnv (NEXT_STEP) give identical time steps."""
    actions = random_actions(4, 300, seed=1)
    lean = dt.envs.make("CartPole-v1", num_envs=4, seed=3)
    ref = dt.envs.make("CartPole-v1", num_envs=4, seed=3, backend="gymnasium")
    assert isinstance(lean, dt.envs.GymnasiumEnv) and isinstance(ref, dt.envs.VectorEnvAdapter)
    assert lean.observation_spec() == ref.observation_spec() and lean.action_spec() == ref.action_spec()
    assert_same_time_steps(play(lean, actions), play(ref, actions))


def test_lean_and_gymnasium_backends_agree_on_termination_and_truncation():
    def factory():
        return ScriptedGymEnv(
            lengths=(2, 3, 1, 4), terminate=(True, False, True), truncate=(False, True, True)
        )

    actions = random_actions(3, 40, high=3)
    lean = play(dt.envs.make(factory, num_envs=3, seed=0), actions)
    ref = play(dt.envs.make(factory, num_envs=3, seed=0, backend="gymnasium"), actions)
    assert_same_time_steps(lean, ref)
    assert {int(x) for ts in lean for x in ts.discount[ts.is_last()]} == {0, 1}


def test_from_vector_env_adapts_a_user_built_vector_env():
    vec = gymnasium.make_vec("CartPole-v1", 2, vectorization_mode="sync")
    env = dt.envs.from_vector_env(vec, seed=5)
    actions = random_actions(2, 100)
    assert_same_time_steps(play(env, actions), play(dt.envs.make("CartPole-v1", num_envs=2, seed=5), actions))
    assert env.vector_env is vec


def test_from_vector_env_rejects_other_autoreset_modes():
    vec = SyncVectorEnv([lambda: gymnasium.make("CartPole-v1")], autoreset_mode=AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match=r"needs AutoresetMode\.NEXT_STEP"):
        dt.envs.from_vector_env(vec)


def test_async_backend_equals_the_sync_backend():
    actions = random_actions(2, 60)
    with dt.envs.make("CartPole-v1", num_envs=2, seed=4, backend="async") as env:
        remote = play(env, actions)
    assert_same_time_steps(remote, play(dt.envs.make("CartPole-v1", num_envs=2, seed=4), actions))
