"""Gymnasium spaces -> specs: every space type, inclusive bounds, nests, and samples that validate."""

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces as gs

import drivetrain as dt
from drivetrain.core import BoundedArraySpec, SpecError, validate
from drivetrain.envs.spaces import spec_from_space


def test_box_keeps_shape_dtype_and_inclusive_bounds():
    space = gs.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, np.inf], np.float32), dtype=np.float32)
    spec = spec_from_space(space, "observation")
    assert spec == BoundedArraySpec((2,), np.float32, [-1.0, 0.0], [1.0, np.inf], "observation")
    validate(spec, np.array([-1.0, 0.0], np.float32), outer_ndim=0)  # the bounds themselves fit
    with pytest.raises(SpecError, match=r"observation: expected values in"):
        validate(spec, np.array([1.5, 0.0], np.float32), outer_ndim=0)


def test_integer_box_and_image_box():
    spec = spec_from_space(gs.Box(0, 255, (84, 84, 1), np.uint8))
    assert (spec.shape, spec.dtype, int(spec.minimum.min()), int(spec.maximum.max())) == (
        (84, 84, 1),
        np.uint8,
        0,
        255,
    )


def test_discrete_with_start_gives_inclusive_bounds():
    assert spec_from_space(gs.Discrete(4)) == BoundedArraySpec((), np.int64, 0, 3)
    spec = spec_from_space(gs.Discrete(3, start=-1), "action")
    assert spec == BoundedArraySpec((), np.int64, -1, 1, "action")
    assert spec.num_values == 3


def test_multi_discrete_with_start():
    spec = spec_from_space(gs.MultiDiscrete([2, 5], start=[1, -2]))
    assert spec == BoundedArraySpec((2,), np.int64, [1, -2], [2, 2])


def test_multi_binary():
    assert spec_from_space(gs.MultiBinary(3)) == BoundedArraySpec((3,), np.int8, 0, 1)
    assert spec_from_space(gs.MultiBinary([2, 2])).shape == (2, 2)


def test_dict_and_tuple_become_nests_with_dotted_names():
    space = gs.Dict(
        {
            "pixels": gs.Box(0, 255, (2, 2), np.uint8),
            "state": gs.Tuple((gs.Discrete(2), gs.Box(-1.0, 1.0, (3,), np.float32))),
        }
    )
    spec = spec_from_space(space, "observation")
    assert isinstance(spec, dict) and set(spec) == {"pixels", "state"}
    assert isinstance(spec["state"], tuple) and len(spec["state"]) == 2
    assert spec["pixels"].name == "observation.pixels"
    assert spec["state"][0] == BoundedArraySpec((), np.int64, 0, 1, "observation.state.0")
    assert spec["state"][1].name == "observation.state.1"


SPACES = [
    gs.Box(-2.0, 3.0, (3,), np.float64),
    gs.Box(-np.inf, np.inf, (2,), np.float32),
    gs.Box(0, 10, (2, 2), np.int32),
    gs.Discrete(5, start=2),
    gs.MultiDiscrete([3, 4]),
    gs.MultiDiscrete([[2, 3], [4, 5]]),
    gs.MultiBinary(4),
    gs.Dict({"a": gs.Discrete(3), "b": gs.Box(0.0, 1.0, (2,), np.float32)}),
    gs.Tuple((gs.MultiBinary(2), gs.Dict({"c": gs.Discrete(2)}))),
]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: type(s).__name__)
def test_samples_of_the_space_validate_against_the_spec_and_batch(space):
    spec = spec_from_space(space)
    space.seed(0)
    for _ in range(20):
        validate(spec, space.sample(), outer_ndim=0)
    # and batched values of gymnasium's batch_space validate with one outer axis
    batched = gymnasium.vector.utils.batch_space(space, 3)
    batched.seed(0)
    validate(spec, batched.sample(), outer_ndim=1)


def test_spec_samples_lie_in_the_space():
    space = gs.Dict({"a": gs.Discrete(3, start=1), "b": gs.Box(-1.0, 1.0, (2,), np.float32)})
    spec = spec_from_space(space)
    rng = np.random.default_rng(0)
    for _ in range(20):
        value = dt.core.specs.sample(spec, rng)
        assert space.contains({"a": np.int64(value["a"]), "b": value["b"]})


@pytest.mark.parametrize(
    "space", [gs.Text(5), gs.Sequence(gs.Discrete(2)), gs.Graph(gs.Box(0, 1, (1,)), None)], ids=repr
)
def test_spaces_without_a_fixed_shape_are_rejected(space):
    with pytest.raises(TypeError, match=r"cannot convert .* supports Box, Discrete, MultiDiscrete"):
        spec_from_space(space, "observation")


def test_dict_observations_and_tuple_actions_through_make():
    class DictEnv(gymnasium.Env):
        observation_space = gs.Dict({"pos": gs.Box(-5.0, 5.0, (2,), np.float32), "key": gs.Discrete(3)})
        action_space = gs.Tuple((gs.Discrete(2), gs.Box(-1.0, 1.0, (1,), np.float32)))

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return {"pos": np.zeros(2, np.float32), "key": 0}, {}

        def step(self, action):
            self.t += 1
            d, x = action
            obs = {"pos": np.full(2, float(x[0]) + d, np.float32), "key": self.t % 3}
            return obs, 1.0, self.t >= 3, False, {}

    action = (np.array([1, 0]), np.array([[0.5], [-0.5]], np.float32))
    results = []
    for backend in ("sync", "gymnasium"):
        env = dt.envs.make(DictEnv, num_envs=2, seed=0, backend=backend)
        env.reset()
        ts = env.step(action)
        validate(env.time_step_spec(), ts)
        results.append(ts.observation)
    for obs in results:
        np.testing.assert_array_equal(obs["pos"], [[1.5, 1.5], [-0.5, -0.5]])
        np.testing.assert_array_equal(obs["key"], [1, 1])
        assert obs["key"].dtype == np.int64
    env = dt.envs.make(DictEnv, num_envs=2, seed=0)
    env.reset()
    with pytest.raises(SpecError, match=r"action.1: expected values in \[-1.0, 1.0\]"):
        env.step((np.array([1, 0]), np.array([[2.0], [0.0]], np.float32)))
