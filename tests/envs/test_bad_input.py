"""Bad environment output gets an EnvOutputError naming the field, the environment, expected and got.

Each broken environment below is fine for its first steps and breaks at step ``BAD_AT``
in environment 1 of 2, so the checks must run on every step (not only on the first one)
and name the right environment.
"""

import itertools

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import drivetrain as dt
from drivetrain.core.specs import SpecError
from drivetrain.envs.checks import EnvOutputError
from drivetrain.envs.vector_env import from_vector_env

BAD_AT = 3
UNSET = object()
INF_BOX = spaces.Box(-np.inf, np.inf, (4,), np.float32)  # CartPole's velocities: no bounds to break
UINT8_BOX = spaces.Box(0, 255, (4,), np.uint8)


class Scripted(gymnasium.Env):
    """Observation ``[t % 2] * 4`` in ``space``'s dtype, reward 1.0, episodes of 100 steps.

    In the environment whose ``index`` is 1, step ``BAD_AT`` returns ``bad_obs(t)`` /
    ``bad_reward`` instead, and ``old_api`` makes reset or step follow the old Gym API.
    """

    def __init__(self, index, space=INF_BOX, bad_obs=None, bad_reward=UNSET, old_api=None):
        self.index, self.observation_space, self.action_space = index, space, spaces.Discrete(2)
        self.bad_obs, self.bad_reward, self.old_api = bad_obs, bad_reward, old_api
        self.t = 0

    def _obs(self):
        space = self.observation_space
        if isinstance(space, spaces.Dict):
            return {k: np.full(s.shape, self.t % 2, s.dtype) for k, s in space.spaces.items()}
        return np.full(space.shape, self.t % 2, space.dtype)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        if self.index == 1 and self.old_api == "reset":
            return self._obs()  # old Gym: the observation alone
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        obs, reward = self._obs(), 1.0
        if self.index == 1 and self.t == BAD_AT:
            if self.bad_obs is not None:
                obs = self.bad_obs(self.t)
            if self.bad_reward is not UNSET:
                reward = self.bad_reward
            if self.old_api == "step":
                return obs, reward, False, {}  # old Gym: (obs, reward, done, info)
        return obs, reward, False, self.t >= 100, {}


def make(backend="sync", **defect):
    indices = itertools.count()
    env = dt.envs.make(lambda: Scripted(next(indices), **defect), num_envs=2, seed=0, backend=backend)
    env.reset()
    return env


def play(env, steps=BAD_AT):
    for _ in range(steps):
        env.step(np.zeros(2, np.int64))


# ---------------------------------------------------------------------- the drivetrain loop ("sync")
BAD_STEPS = {
    "nan observation": (
        {"bad_obs": lambda t: np.array([0, np.nan, 0, 0], np.float32)},
        r"observation of environment 1: expected finite values, got \[0.0, nan, 0.0, 0.0\]",
    ),
    "inf observation": (
        {"bad_obs": lambda t: np.array([0, 0, -np.inf, 0], np.float64)},
        r"observation of environment 1: expected finite values, got .*-inf",
    ),
    "float64 beyond float32": (
        {"bad_obs": lambda t: np.array([0, 0, 1e300, 0], np.float64)},
        r"observation of environment 1: expected finite values, got .*inf.* beyond float32's range",
    ),
    "observation that would broadcast": (
        {"bad_obs": lambda t: np.array([1.0], np.float32)},
        r"observation of environment 1: expected shape \(4,\) \(the observation space's\), got \(1,\); "
        r"drivetrain does not broadcast",
    ),
    "scalar observation": (
        {"bad_obs": lambda t: 1.0},
        r"observation of environment 1: expected shape \(4,\) .*, got \(\)",
    ),
    "ragged observation": (
        {"bad_obs": lambda t: [1.0, [2.0, 3.0], 4.0, 5.0]},
        r"observation of environment 1: expected an array of shape \(4,\), got a list of 4 values",
    ),
    "string observation": (
        {"bad_obs": lambda t: np.array(["a", "b", "c", "d"])},
        r"observation of environment 1: expected numbers of dtype float32, got dtype <U1",
    ),
    "float into uint8": (
        {"space": UINT8_BOX, "bad_obs": lambda t: np.array([0, 2.7, 0, 0])},
        r"observation of environment 1: got \[0.0, 2.7, 0.0, 0.0\] of dtype float64, which uint8 cannot "
        r"hold exactly \(expected integers in \[0, 255\]",
    ),
    "-1 into uint8": (
        {"space": UINT8_BOX, "bad_obs": lambda t: np.array([0, -1, 0, 0])},
        r"observation of environment 1: got \[0, -1, 0, 0\] of dtype int64, which uint8 cannot hold exactly",
    ),
    "300 into uint8": (
        {"space": UINT8_BOX, "bad_obs": lambda t: np.array([300, 0, 0, 0], np.int16)},
        r"got \[300, 0, 0, 0\] of dtype int16, which uint8 cannot hold exactly",
    ),
    "integer space out of its bounds": (
        {"space": spaces.Box(0, 9, (4,), np.int64), "bad_obs": lambda t: np.array([0, 10, 0, 0])},
        r"observation of environment 1: got \[0, 10, 0, 0\], outside the observation space's inclusive "
        r"bounds \[0, 9\]",
    ),
    "discrete observation out of range": (
        {"space": spaces.Discrete(5), "bad_obs": lambda t: 7},
        r"observation of environment 1: got 7, outside the observation space's inclusive bounds \[0, 4\]",
    ),
    "nan reward": (
        {"bad_reward": float("nan")},
        r"reward of environment 1: expected a finite number, got nan",
    ),
    "inf reward": ({"bad_reward": np.float64(np.inf)}, r"reward of environment 1: expected a finite number"),
    "reward beyond float32": (
        {"bad_reward": 1e300},
        r"reward of environment 1: expected a finite number, got 1e\+300 \(beyond float32's range\)",
    ),
    "string reward": (
        {"bad_reward": "1.0"},
        r"reward of environment 1: expected a real number \(a float\), got str '1.0'",
    ),
    "None reward": ({"bad_reward": None}, r"reward of environment 1: expected a real number"),
    "array reward": (
        {"bad_reward": np.array([1.0, 2.0])},
        r"reward of environment 1: expected a scalar, got an array of shape \(2,\)",
    ),
    "old Gym step": (
        {"old_api": "step"},
        r"step\(\) of environment 1: expected the Gymnasium API step\(action\) -> \(observation, reward, "
        r"terminated, truncated, info\), got a tuple of 4 values .* old Gym API",
    ),
}


@pytest.mark.parametrize("case", list(BAD_STEPS))
def test_a_bad_step_raises_an_error_naming_field_environment_expected_and_got(case):
    defect, message = BAD_STEPS[case]
    env = make(**defect)
    play(env, BAD_AT - 1)  # the good steps pass
    with pytest.raises(EnvOutputError, match=message):
        env.step(np.zeros(2, np.int64))
    assert issubclass(EnvOutputError, SpecError)


@pytest.mark.parametrize("case", list(BAD_STEPS))
def test_one_environment_gets_the_same_checks(case):
    # batches of one take shortcuts for float vectors and Python float rewards: they must refuse the same
    defect, message = BAD_STEPS[case]
    env = dt.envs.make(lambda: Scripted(1, **defect), num_envs=1, seed=0)
    env.reset()
    for _ in range(BAD_AT - 1):
        env.step(np.zeros(1, np.int64))
    with pytest.raises(EnvOutputError, match=message.replace("environment 1", "environment 0")):
        env.step(np.zeros(1, np.int64))


def test_old_gym_reset_returning_the_observation_alone_is_named():
    indices = itertools.count()
    env = dt.envs.make(lambda: Scripted(next(indices), old_api="reset"), num_envs=2, seed=0)
    with pytest.raises(
        EnvOutputError,
        match=r"reset\(\) of environment 1: expected the Gymnasium API reset\(seed=None, options=None\) -> "
        r"\(observation, info\) with info a dict, got an array of shape \(4,\) and dtype float32; .* old Gym API",
    ):
        env.reset()


def test_the_auto_reset_inside_step_is_checked_too():
    indices = itertools.count()

    class OldAfterFirstEpisode(Scripted):
        def reset(self, *, seed=None, options=None):
            first = seed is not None
            obs, info = super().reset(seed=seed)
            return (obs, info) if first or self.index == 0 else obs

        def step(self, action):
            obs, reward, _, _, info = super().step(action)
            return obs, reward, True, False, info  # every step ends the episode

    env = dt.envs.make(lambda: OldAfterFirstEpisode(next(indices)), num_envs=2, seed=0)
    env.reset()
    env.step(np.zeros(2, np.int64))  # LAST
    with pytest.raises(EnvOutputError, match=r"reset\(\) of environment 1: expected the Gymnasium API"):
        env.step(np.zeros(2, np.int64))  # the auto-reset


def test_nested_observations_name_the_field():
    space = spaces.Dict({"position": INF_BOX, "cell": spaces.Discrete(3)})

    def bad(t):
        return {"position": np.array([0, 0, np.nan, 0], np.float32), "cell": 1}

    env = make(space=space, bad_obs=bad)
    play(env, BAD_AT - 1)
    with pytest.raises(
        EnvOutputError, match=r"observation.position of environment 1: expected finite values"
    ):
        env.step(np.zeros(2, np.int64))

    env = make(space=space, bad_obs=lambda t: {"position": np.zeros(4, np.float32)})
    play(env, BAD_AT - 1)
    with pytest.raises(
        EnvOutputError,
        match=r"observation of environment 1: expected the fields \['observation.cell', "
        r"'observation.position'\] .*, got \['observation.position'\]",
    ):
        env.step(np.zeros(2, np.int64))


GOOD = {
    "float64 observations of a float32 space": (INF_BOX, lambda t: np.full(4, t, np.float64)),
    "lists": (INF_BOX, lambda t: [t, t, t, t]),
    "Python ints of a Discrete space": (spaces.Discrete(5), lambda t: 4),
    "int16 values of a uint8 space": (UINT8_BOX, lambda t: np.full(4, 255, np.int16)),
    "whole floats of an integer space": (spaces.Box(0, 9, (4,), np.int64), lambda t: np.full(4, 9.0)),
    # Finite float bounds are not enforced: Gymnasium environments step slightly past them.
    "floats past finite float bounds": (spaces.Box(-1, 1, (4,), np.float32), lambda t: np.full(4, 1.01)),
}


@pytest.mark.parametrize("case", list(GOOD))
def test_values_that_convert_exactly_pass(case):
    space, observe = GOOD[case]
    env = make(space=space, bad_obs=observe, bad_reward=np.float32(2.5))
    play(env, BAD_AT - 1)
    ts = env.step(np.zeros(2, np.int64))
    assert ts.observation.dtype == space.dtype and ts.observation.shape == (2, *space.shape)
    np.testing.assert_array_equal(ts.observation[1], np.asarray(observe(BAD_AT)).astype(space.dtype))
    assert ts.reward.tolist() == [1.0, 2.5]


# ---------------------------------------------------------------------- Gymnasium vector envs
@pytest.mark.parametrize("case", ["nan observation", "inf observation", "nan reward", "inf reward"])
def test_the_gymnasium_backend_checks_what_the_vector_env_returns(case):
    defect, message = BAD_STEPS[case]
    env = make(backend="gymnasium", **defect)
    play(env, BAD_AT - 1)
    with pytest.raises(EnvOutputError, match=message):
        env.step(np.zeros(2, np.int64))


class FakeVectorEnv:
    """A duck-typed Gymnasium vector env of 2 (next-step auto-reset) that returns what it is told."""

    metadata = {"autoreset_mode": gymnasium.vector.AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(self, space, reset_result=None, step_result=None):
        self.num_envs = 2
        self.single_observation_space, self.single_action_space = space, spaces.Discrete(2)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, 2)
        self.reset_result, self.step_result = reset_result, step_result

    def _obs(self):
        return np.zeros((2, *self.single_observation_space.shape), self.single_observation_space.dtype)

    def reset(self, seed=None, options=None):
        return self.reset_result if self.reset_result is not None else (self._obs(), {})

    def step(self, action):
        if self.step_result is not None:
            return self.step_result
        return self._obs(), np.ones(2), np.zeros(2, bool), np.zeros(2, bool), {}


def _vec_step(obs=None, reward=None, space=INF_BOX):
    obs = np.zeros((2, *space.shape), space.dtype) if obs is None else obs
    reward = np.ones(2) if reward is None else reward
    return obs, reward, np.zeros(2, bool), np.zeros(2, bool), {}


VECTOR_CASES = {
    "observation shape": (
        INF_BOX,
        {"step_result": _vec_step(obs=np.zeros((2, 1), np.float32))},
        r"observation of the vector environment: expected shape \[2 environments\] \+ \(4,\) .*, got \(2, 1\)",
    ),
    "nan observation": (
        INF_BOX,
        {"step_result": _vec_step(obs=np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]], np.float32))},
        r"observation of environment 1: expected finite values",
    ),
    "float into uint8": (
        UINT8_BOX,
        {"step_result": _vec_step(obs=np.array([[0, 0, 0, 0], [0, 0.5, 0, 0]]), space=UINT8_BOX)},
        r"observation of environment 1: got \[0.0, 0.5, 0.0, 0.0\] of dtype float64, which uint8 cannot",
    ),
    "-1 into uint8": (
        UINT8_BOX,
        {"step_result": _vec_step(obs=np.array([[0, 0, 0, 0], [0, -1, 0, 0]]), space=UINT8_BOX)},
        r"observation of environment 1: got \[0, -1, 0, 0\] of dtype int64, which uint8 cannot",
    ),
    "reward shape": (
        INF_BOX,
        {"step_result": _vec_step(reward=np.ones((2, 1)))},
        r"reward: expected 2 rewards, one per environment, got an array of shape \(2, 1\)",
    ),
    "string rewards": (
        INF_BOX,
        {"step_result": _vec_step(reward=np.array(["1", "2"]))},
        r"reward of environment 0: expected a real number \(a float\), got str '1'",
    ),
    "nan reward": (
        INF_BOX,
        {"step_result": _vec_step(reward=np.array([1.0, np.nan]))},
        r"reward of environment 1: expected a finite number, got nan",
    ),
    "old Gym step": (
        INF_BOX,
        {"step_result": _vec_step()[:4]},
        r"step\(\) of the vector environment: expected the Gymnasium API .* got a tuple of 4 values",
    ),
}


@pytest.mark.parametrize("case", list(VECTOR_CASES))
def test_vector_env_output_is_checked(case):
    space, behaviour, message = VECTOR_CASES[case]
    env = from_vector_env(FakeVectorEnv(space, **behaviour), seed=0)
    env.reset()
    with pytest.raises(EnvOutputError, match=message):
        env.step(np.zeros(2, np.int64))


def test_a_vector_env_reset_of_the_old_api_is_named():
    env = from_vector_env(FakeVectorEnv(INF_BOX, reset_result=np.zeros((2, 4), np.float32)), seed=0)
    with pytest.raises(EnvOutputError, match=r"reset\(\) of the vector environment: .* old Gym API"):
        env.reset()


def test_a_good_vector_env_passes_and_its_observations_are_copies():
    vec = FakeVectorEnv(INF_BOX)
    shared = np.zeros((2, 4), np.float32)
    vec.step_result = _vec_step(obs=shared)
    env = from_vector_env(vec, seed=0)
    env.reset()
    ts = env.step(np.zeros(2, np.int64))
    shared[:] = 7.0  # the vector env reuses its buffer
    assert ts.observation.tolist() == [[0.0] * 4] * 2 and ts.reward.tolist() == [1.0, 1.0]


def test_one_environment_observations_are_copies_of_what_it_returns():
    class InPlace(Scripted):  # returns the same array every step, changed in place
        def _obs(self):
            self.buffer = getattr(self, "buffer", np.zeros(4, np.float32))
            self.buffer[:] = self.t
            return self.buffer

    env = dt.envs.make(lambda: InPlace(0), num_envs=1, seed=0)
    first = env.reset()
    second = env.step(np.zeros(1, np.int64))
    assert first.observation.tolist() == [[0.0] * 4] and second.observation.tolist() == [[1.0] * 4]


# ---------------------------------------------------------------------- inside the vector backends' workers
WORKER_CASES = ["-1 into uint8", "float into uint8", "observation that would broadcast", "scalar observation"]


@pytest.mark.parametrize("case", WORKER_CASES)
def test_the_gymnasium_backend_checks_before_its_buffers_cast_or_broadcast(case):
    """SyncVectorEnv writes each observation into a buffer of the space's dtype and shape: -1 would
    become 255 and a scalar a row of it, before the adapter saw them. Each env checks its own."""
    defect, message = BAD_STEPS[case]
    env = make(backend="gymnasium", **defect)
    play(env, BAD_AT - 1)
    with pytest.raises(EnvOutputError, match=message):
        env.step(np.zeros(2, np.int64))


class BadInEveryEnv(Scripted):
    def __init__(self, space, bad_obs):
        super().__init__(1, space=space, bad_obs=bad_obs)


@pytest.mark.parametrize("case", ["-1 into uint8", "observation that would broadcast"])
def test_the_async_backend_checks_inside_its_subprocesses(case):
    from functools import partial

    defect, message = BAD_STEPS[case]
    space = defect.get("space", INF_BOX)
    env = dt.envs.make(partial(BadInEveryEnv, space, defect["bad_obs"]), num_envs=2, seed=0, backend="async")
    try:
        env.reset()
        play(env, BAD_AT - 1)
        with pytest.raises(EnvOutputError, match=message.replace("environment 1", "environment [01]")):
            env.step(np.zeros(2, np.int64))
    finally:
        env.close()


def test_a_time_limit_that_a_factorys_own_limit_would_cut_short_is_refused():
    import gymnasium as gym

    import drivetrain as dt

    env = dt.envs.make(lambda: gym.make("MountainCar-v0"), max_episode_steps=50, seed=0)  # shorter: fine
    env.close()
    with pytest.raises(ValueError, match="already truncates at 200 steps"):
        dt.envs.make(lambda: gym.make("MountainCar-v0"), max_episode_steps=300, seed=0).reset()
