"""dt.envs.make: termination/truncation mapping, next-step auto-reset, dtypes, action checks, errors."""

import os

import gymnasium
import numpy as np
import pytest

import drivetrain as dt
from drivetrain.core import SpecError, StepType
from drivetrain.envs.testing import ScriptedGymEnv

FIRST, MID, LAST = StepType.FIRST, StepType.MID, StepType.LAST
BACKENDS = ["sync", "gymnasium"]


def scripted(**kwargs):
    """A make() factory that also remembers the Gymnasium environments it built."""
    built = []

    def factory():
        env = ScriptedGymEnv(**kwargs)
        built.append(env)
        return env

    return factory, built


@pytest.mark.parametrize("backend", BACKENDS)
def test_terminated_truncated_and_both_map_to_last_with_the_right_discount(backend):
    # episode 0: terminated after 2 steps; episode 1: truncated after 3; episode 2: both after 1
    factory, _ = scripted(lengths=(2, 3, 1), terminate=(True, False, True), truncate=(False, True, True))
    env = dt.envs.make(factory, num_envs=1, seed=0, backend=backend)
    seen = [env.reset()]
    for _ in range(9):
        seen.append(env.step(np.array([1])))
    step_types = [int(ts.step_type[0]) for ts in seen]
    discounts = [float(ts.discount[0]) for ts in seen]
    assert step_types == [FIRST, MID, LAST, FIRST, MID, MID, LAST, FIRST, LAST, FIRST]
    assert discounts == [1, 1, 0, 1, 1, 1, 1, 1, 0, 1]  # termination 0, truncation 1, both: 0
    # Episode indices in the observation show that each FIRST is a new episode.
    assert [int(ts.observation[0, 1]) for ts in seen] == [0, 0, 0, 1, 1, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_action_after_last_is_ignored_and_first_has_reward_0(backend):
    factory, built = scripted(lengths=(2,), num_actions=3)
    env = dt.envs.make(factory, num_envs=1, seed=0, backend=backend)
    env.reset()
    rewards, step_types = [], []
    for a in [0, 1, 2, 2, 0]:  # the third action arrives after LAST
        ts = env.step(np.array([a]))
        rewards.append(float(ts.reward[0]))
        step_types.append(int(ts.step_type[0]))
    assert step_types == [MID, LAST, FIRST, MID, LAST]
    assert rewards == [1.0, 2.0, 0.0, 3.0, 1.0]  # reward = action + 1; FIRST: 0
    assert built[0].actions == [0, 1, 2, 0]  # the action 2 sent with the reset never reached the env


def test_envs_of_a_batch_restart_independently():
    factory, built = scripted(lengths=(1, 3), terminate=(True,))
    env = dt.envs.make(factory, num_envs=2, seed=0)
    env.reset()
    types = [env.step(np.array([0, 1])).step_type.tolist() for _ in range(4)]
    # both envs share the script (1, 3, 1, ...), so they stay in lock step here
    assert types == [[LAST, LAST], [FIRST, FIRST], [MID, MID], [MID, MID]]
    assert built[0].actions == [0, 0, 0] and built[1].actions == [1, 1, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_step_dtypes_shapes_and_specs(backend):
    env = dt.envs.make("CartPole-v1", num_envs=3, seed=0, backend=backend)
    ts = env.reset()
    assert env.batch_size == 3
    assert ts.step_type.dtype == np.int32 and ts.step_type.shape == (3,)
    assert ts.reward.dtype == np.float32 and ts.reward.shape == (3,)
    assert ts.discount.dtype == np.float32 and ts.discount.shape == (3,)
    assert ts.observation.shape == (3, 4) and ts.observation.dtype == np.float32
    assert env.action_spec() == dt.BoundedArraySpec((), np.int64, 0, 1, "action")
    assert env.observation_spec().shape == (4,)
    assert env.time_step_spec().observation == env.observation_spec()
    ts = env.step(np.zeros(3, np.int64))
    dt.core.validate(env.time_step_spec(), ts)
    env.close()
    env.close()  # idempotent


def test_max_episode_steps_truncates_with_discount_1():
    env = dt.envs.make(lambda: ScriptedGymEnv(lengths=(100,)), num_envs=1, seed=0, max_episode_steps=4)
    env.reset()
    seen = [env.step(np.array([0])) for _ in range(5)]
    assert [int(ts.step_type[0]) for ts in seen] == [MID, MID, MID, LAST, FIRST]
    assert float(seen[3].discount[0]) == 1.0
    by_id = dt.envs.make("CartPole-v1", seed=0, max_episode_steps=3)
    by_id.reset()
    assert [int(by_id.step(np.array([i % 2])).step_type[0]) for i in range(4)] == [MID, MID, LAST, FIRST]


def test_gymnasium_kwargs_reach_gymnasium_make():
    env = dt.envs.make("CartPole-v1", render_mode="rgb_array", seed=0)
    env.reset()
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.array([0, 2]), r"action: expected values in \[0, 1\] \(inclusive\), got 2"),
        (np.array([0, -1]), r"expected values in \[0, 1\]"),
        (np.array([0.0, 1.0]), r"action: expected dtype int64, got float64"),
        (np.array([0, 1], np.int32), r"expected dtype int64, got int32"),
        (np.array([1]), r"expected a batch of 2 actions .* got shape \(1,\)"),
        (np.int64(1), r"expected a batch of 2 actions .* got shape \(\)"),
        (np.zeros((2, 1), np.int64), r"action: expected shape \[B\] \+ \(\), got \(2, 1\)"),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_actions_raise_a_spec_error_naming_the_problem(backend, action, message):
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0, backend=backend)
    env.reset()
    with pytest.raises(SpecError, match=message):
        env.step(action)
    env.step(np.array([0, 1]))  # still usable afterwards


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            np.array([[0.5], [2.5]], np.float32),
            r"action: expected values in \[-2.0, 2.0\] \(inclusive\), got 2.5",
        ),
        (np.array([[0.5], [-2.001]], np.float32), r"expected values in \[-2.0, 2.0\]"),
        (np.array([[0.5], [np.nan]], np.float32), r"action: non-finite value"),
        (np.array([[np.nan], [0.5]], np.float32), r"action: non-finite value"),
        (np.array([[0.5], [0.5]]), r"action: expected dtype float32, got float64"),
        (np.array([0.5, 0.5], np.float32), r"action: expected shape \[B\] \+ \(1,\), got \(2,\)"),
        (np.array([[0.5]], np.float32), r"expected a batch of 2 actions"),
    ],
)
def test_wrong_continuous_actions_raise_a_spec_error_naming_the_problem(action, message):
    env = dt.envs.make("Pendulum-v1", num_envs=2, seed=0)
    env.reset()
    with pytest.raises(SpecError, match=message):
        env.step(action)
    bounds = np.array([[-2.0], [2.0]], np.float32)  # the bounds themselves are valid
    assert env.step(bounds).reward.shape == (2,)


def test_actions_may_be_lists():
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0)
    env.reset()
    assert env.step([0, 1]).step_type.tolist() == [MID, MID]


def test_step_before_reset_is_an_error():
    for backend in BACKENDS:
        env = dt.envs.make("CartPole-v1", backend=backend)
        with pytest.raises(RuntimeError, match=r"reset\(\) before step\(\)"):
            env.step(np.array([0]))


def test_argument_errors():
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        dt.envs.make("CartPole-v1", backend="fast")
    with pytest.raises(ValueError, match="num_envs must be >= 1, got 0"):
        dt.envs.make("CartPole-v1", num_envs=0)
    with pytest.raises(TypeError, match="got an environment instance; pass a factory"):
        dt.envs.make(gymnasium.make("CartPole-v1"))
    with pytest.raises(TypeError, match=r"keyword arguments \['render_mode'\] go to gymnasium.make"):
        dt.envs.make(lambda: ScriptedGymEnv(), render_mode="rgb_array")
    with pytest.raises(TypeError, match=r"returned int, expected a gymnasium\.Env"):
        dt.envs.make(lambda: 3)
    with pytest.raises(TypeError, match="expected an environment id or a zero-argument factory"):
        dt.envs.make(3)


def test_observations_that_do_not_fit_the_space_raise_a_clear_error():
    class Lying(ScriptedGymEnv):
        def step(self, action):
            obs, *rest = super().step(action)
            return obs[:3], *rest

    env = dt.envs.make(Lying, seed=0)
    env.reset()
    with pytest.raises(
        SpecError, match=r"observation of environment 0: expected shape \(4,\) .*, got \(3,\)"
    ):
        env.step(np.array([0]))


def test_state_dict_resumes_exactly_and_keeps_the_environment_objects():
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=3)
    env.reset()
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 2, 2) for _ in range(60)]
    for a in actions[:10]:
        env.step(a)
    state = env.state_dict()
    inner = env.envs[0].env
    first = [env.step(a) for a in actions[10:]]
    env.load_state_dict(state)
    again = [env.step(a) for a in actions[10:]]
    assert env.envs[0].env is inner
    for x, y in zip(first, again, strict=True):
        for field in ("step_type", "reward", "discount", "observation"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))
    assert any(ts.is_last().any() for ts in first)  # the window crossed an auto-reset


class _KeepsTheBase(gymnasium.Wrapper):
    """A user's wrapper that keeps a reference to the base environment."""

    def __init__(self, env):
        super().__init__(env)
        self.base = env.unwrapped

    def step(self, action):
        out = super().step(action)
        self.base_state = tuple(self.base.state)
        return out


def test_a_restored_wrapper_that_keeps_the_base_environment_keeps_the_live_one():
    env = dt.envs.make("CartPole-v1", seed=3, wrappers=[_KeepsTheBase])
    env.reset()
    env.step(np.array([1]))
    state = env.state_dict()
    env.step(np.array([0]))
    env.load_state_dict(state)
    keeper = env.envs[0]
    while not isinstance(keeper, _KeepsTheBase):
        keeper = keeper.env
    assert keeper.base is env.envs[0].unwrapped  # not the copy the snapshot was unpickled into
    env.step(np.array([0]))
    assert keeper.base_state == tuple(env.envs[0].unwrapped.state)


def test_state_dict_refuses_environments_that_pickle_their_constructor_arguments():
    from gymnasium.utils import EzPickle

    class Ez(ScriptedGymEnv, EzPickle):
        def __init__(self):
            ScriptedGymEnv.__init__(self)
            EzPickle.__init__(self)

    env = dt.envs.make(Ez, seed=0)
    env.reset()
    with pytest.raises(TypeError, match="pickles its constructor arguments"):
        env.state_dict()


def _needs_box2d(**kwargs):
    raise gymnasium.error.DependencyNotInstalled(
        'Box2D is not installed, you can install it by run `pip install swig` followed by `pip install "gymnasium[box2d]"`'
    )


def test_a_missing_dependency_names_the_drivetrain_extra_that_installs_it():
    gymnasium.register(id="DrivetrainNeedsBox2D-v0", entry_point=_needs_box2d)
    try:
        with pytest.raises(gymnasium.error.DependencyNotInstalled) as info:
            dt.envs.make("DrivetrainNeedsBox2D-v0", num_envs=1)
    finally:
        del gymnasium.registry["DrivetrainNeedsBox2D-v0"]
    message = str(info.value)
    assert message.startswith(
        'DrivetrainNeedsBox2D-v0 needs the box2d extra: pip install "drivetrain[box2d]"'
    )
    assert "Box2D is not installed" in message and "\n" not in message


def test_wrappers_given_as_a_generator_are_all_applied():
    from drivetrain.envs.wrappers import ActionRepeat

    env = dt.envs.make("CartPole-v1", wrappers=(w for w in [lambda e: ActionRepeat(e, times=2)]))
    assert isinstance(env._envs[0], ActionRepeat)
    env.close()


@pytest.mark.parametrize("backend", ["sync", "gymnasium", "async"])
def test_render_gives_one_environments_frame_on_every_backend(backend):
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0, backend=backend, render_mode="rgb_array")
    try:
        env.reset()
        frame = env.render()
        assert isinstance(frame, np.ndarray) and frame.shape == (400, 600, 3) and frame.dtype == np.uint8
    finally:
        env.close()


class DiesAtStep3(gymnasium.Env):
    observation_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        import os

        self.t += 1
        if self.t == 3:
            os._exit(3)
        return np.zeros(2, np.float32), 0.0, False, False, {}


def test_an_async_environment_whose_process_dies_is_named_and_close_ends_the_rest():
    env = dt.envs.make(DiesAtStep3, num_envs=2, seed=0, backend="async")
    env.reset()
    env.step(np.zeros(2, np.int64))
    env.step(np.zeros(2, np.int64))
    with pytest.raises(RuntimeError, match=r"the subprocess of environment .*exit code 3.* is gone"):
        env.step(np.zeros(2, np.int64))
    env.close()  # no second error


class FailsInWorkers(gymnasium.Env):
    """Builds in the test process (Gymnasium's probe for the spaces), fails in the backend's workers."""

    observation_space = gymnasium.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)
    parent = os.getpid()

    def __init__(self):
        if os.getpid() != self.parent:
            raise RuntimeError("cannot build here")


def test_an_async_environment_that_cannot_be_built_in_its_worker_is_named():
    with pytest.raises(RuntimeError, match=r"ended while it built .*FailsInWorkers.*backend='sync'"):
        dt.envs.make(FailsInWorkers, num_envs=2, seed=0, backend="async")
