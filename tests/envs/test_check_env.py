"""check_env: good environments pass; one broken environment per class of problem, each with its message."""

import gymnasium
import numpy as np
import pytest

import drivetrain as dt
from drivetrain.core import StepType, specs
from drivetrain.envs import CountingEnv, EnvCheckError, check_env
from drivetrain.envs.testing import ScriptedGymEnv

FIRST, MID, LAST = int(StepType.FIRST), int(StepType.MID), int(StepType.LAST)


# ---------------------------------------------------------------------- good environments
def test_cartpole_passes_and_its_seeding_is_checked():
    report = check_env(lambda: dt.envs.make("CartPole-v1", num_envs=3, seed=0), num_steps=300)
    assert report.reproducibility_checked and report.batch_size == 3 and report.steps == 300
    assert report.episodes >= 10  # random CartPole episodes last ~20 steps


def test_instances_pass_without_the_seeding_check():
    report = check_env(CountingEnv(episode_lengths=(2, 3), truncate=(False, True)), num_steps=30)
    assert not report.reproducibility_checked
    # env 0 ends an episode every 3 steps (2 + a boundary), at steps 1, 4, ..., 28: 10 episodes;
    # env 1 every 4 steps, at steps 2, 6, ..., 26: 7 episodes
    assert report.episodes == 10 + 7


def test_other_backends_and_spaces_pass():
    check_env(lambda: dt.envs.make("CartPole-v1", num_envs=2, seed=1, backend="gymnasium"), num_steps=100)
    check_env(lambda: dt.envs.make("CartPole-v1", seed=1, mask_velocity=True), num_steps=100)
    check_env(lambda: dt.envs.make(lambda: ScriptedGymEnv((2, 5), (True, False), (True, True)), 2, seed=0))
    check_env(lambda: dt.envs.make("Pendulum-v1", num_envs=2, seed=0, max_episode_steps=20), num_steps=60)


# ---------------------------------------------------------------------- broken environments
class Broken(CountingEnv):
    """A CountingEnv (episodes of 3 and 4 steps, the second truncated) with one defect.

    Subclasses override :meth:`corrupt`, which gets every time step and the step index
    (``None`` for reset).
    """

    def __init__(self):
        super().__init__(episode_lengths=(3, 4), truncate=(False, True))
        self.t = None

    def reset(self):
        self.t = None
        return self.corrupt(super().reset(), None)

    def step(self, action):
        self.t = 0 if self.t is None else self.t + 1
        return self.corrupt(super().step(action), self.t)

    def corrupt(self, ts, t):
        return ts


def at(step, fn):
    """A Broken env class whose time step number ``step`` is replaced by ``fn(ts)``."""
    return type("BrokenAt", (Broken,), {"corrupt": lambda self, ts, t: fn(ts) if t == step else ts})


def with_obs(ts, obs):
    return ts._replace(observation=obs)


def set_value(ts, field, env, value):
    arr = getattr(ts, field).copy()
    arr[env] = value
    return ts._replace(**{field: arr})


class BoundedObservation(Broken):
    """Declares observations in [0, 3]; the episode counter (obs[2]) leaves that range."""

    def observation_spec(self):
        return specs.BoundedArraySpec((3,), np.float32, 0.0, 3.0, "observation")


class NoAutoReset(Broken):
    """Never returns FIRST after LAST: the episode goes on with MID."""

    def corrupt(self, ts, t):
        return ts._replace(step_type=np.where(ts.is_first(), MID, ts.step_type).astype(np.int32)) if t else ts


class NeverLast(Broken):
    """Reports LAST as MID, so FIRST comes out of the blue."""

    def corrupt(self, ts, t):
        return ts._replace(step_type=np.where(ts.is_last(), MID, ts.step_type).astype(np.int32))


class Raises(Broken):
    def corrupt(self, ts, t):
        if t == 3:
            raise RuntimeError("boom")
        return ts


class GymnasiumSpecs(Broken):
    def observation_spec(self):
        return gymnasium.spaces.Box(0.0, 1.0, (3,))


class Unseeded(gymnasium.Env):
    """Ignores the seed: its observations come from a generator seeded by the OS."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self):
        self.rng = np.random.default_rng()

    def reset(self, *, seed=None, options=None):
        return self.rng.uniform(-1, 1, 2).astype(np.float32), {}

    def step(self, action):
        return self.rng.uniform(-1, 1, 2).astype(np.float32), 1.0, False, False, {}


def float64_obs(ts):
    return with_obs(ts, ts.observation.astype(np.float64))


BROKEN = {
    "observation shape": (
        at(None, lambda ts: with_obs(ts, ts.observation[:, :2])),
        r"observation: expected shape \(2, 3\) \(batch 2 \+ spec shape \(3,\)\), got \(2, 2\) after reset\(\)",
    ),
    "observation batch size": (
        at(4, lambda ts: with_obs(ts, ts.observation[:1])),
        r"observation: expected shape \(2, 3\) .* got \(1, 3\) at step 4",
    ),
    "observation dtype": (
        at(2, float64_obs),
        r"observation: expected the spec's dtype float32, got float64 at step 2; cast observations",
    ),
    "observation bounds": (
        BoundedObservation,
        # env 1's episodes last 4 steps: t = 4 at step 3 leaves [0, 3]
        r"observation: \[1.0, 4.0, 0.0\] at step 3, env 1 is outside the spec's inclusive bounds "
        r"\[\[0.0, 0.0, 0.0\], \[3.0, 3.0, 3.0\]\]",
    ),
    "NaN observation": (
        at(6, lambda ts: set_value(ts, "observation", 1, np.nan)),
        r"observation: NaN or inf in the observation \[nan, nan, nan\] at step 6, env 1; observations must be finite",
    ),
    "inf reward": (
        at(5, lambda ts: set_value(ts, "reward", 0, np.inf)),
        r"reward: inf at step 5, env 0; rewards must be finite",
    ),
    "discount out of range": (
        at(1, lambda ts: set_value(ts, "discount", 1, 1.5)),
        r"discount: 1.5 at step 1, env 1 is outside \[0, 1\]",
    ),
    "negative discount": (
        at(1, lambda ts: set_value(ts, "discount", 0, -0.5)),
        r"discount: -0.5 at step 1, env 0 is outside \[0, 1\]",
    ),
    "reset not FIRST": (
        at(None, lambda ts: set_value(ts, "step_type", 1, MID)),
        r"reset\(\) returned step type MID for env 1; reset\(\) must return FIRST for every environment",
    ),
    "FIRST with a reward": (
        at(3, lambda ts: set_value(ts, "reward", 0, 2.0)),  # step 3: env 0 restarts
        r"FIRST time step with reward 2.0 at step 3, env 0; a FIRST time step has reward 0",
    ),
    "FIRST with discount < 1": (
        at(4, lambda ts: set_value(ts, "discount", 1, 0.0)),  # step 4: env 1 restarts
        r"FIRST time step with discount 0.0 at step 4, env 1; a FIRST time step has discount 1",
    ),
    "no FIRST after LAST": (
        NoAutoReset,
        r"MID follows LAST at step 3, env 0; the step after LAST must start a new episode and return FIRST",
    ),
    "FIRST without LAST": (
        NeverLast,
        r"FIRST follows MID at step 3, env 0: the episode restarted without ending",
    ),
    "step type out of range": (
        at(0, lambda ts: set_value(ts, "step_type", 0, 3)),
        r"step_type: 3 at step 0, env 0 is not FIRST \(0\), MID \(1\) or LAST \(2\)",
    ),
    "step type dtype": (
        at(0, lambda ts: ts._replace(step_type=ts.step_type.astype(np.int64))),
        r"step_type: expected dtype int32, got int64 at step 0; build time steps with drivetrain.core.types",
    ),
    "reward shape": (
        at(0, lambda ts: ts._replace(reward=np.float32(1.0))),
        r"reward: expected shape \(2,\), one per env, got \(\) at step 0",
    ),
    "not a TimeStep": (
        at(0, lambda ts: tuple(ts)),
        r"step\(\) returned a tuple, expected a drivetrain TimeStep",
    ),
    "step raises": (Raises, r"step\(\) raised RuntimeError: boom at step 3"),
    "specs that are not ArraySpecs": (
        GymnasiumSpecs,
        r"observation_spec\(\): the spec is Box\(0.0, 1.0, \(3,\), float32\), expected an ArraySpec",
    ),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_broken_environment_is_caught_with_an_actionable_message(name):
    env_class, message = BROKEN[name]
    with pytest.raises(EnvCheckError, match=message) as info:
        check_env(env_class(), num_steps=40)
    assert len(info.value.problems) >= 1
    # The same defect is caught from a factory too.
    with pytest.raises(EnvCheckError, match=message):
        check_env(env_class, num_steps=40)


def test_the_control_environment_passes():
    check_env(Broken(), num_steps=40)
    check_env(Broken, num_steps=40)  # deterministic, so its "seeding" passes too


def test_an_unseeded_environment_fails_the_reproducibility_check():
    with pytest.raises(EnvCheckError, match=r"two environments from the same factory differ after reset\(\)"):
        check_env(lambda: dt.envs.make(Unseeded, seed=0), num_steps=10)


def test_a_factory_returning_the_same_object_is_caught():
    env = CountingEnv()
    with pytest.raises(EnvCheckError, match="returned the same environment object twice"):
        check_env(lambda: env, num_steps=10)


def test_problems_are_collected_and_counted():
    class TwoDefects(Broken):
        def corrupt(self, ts, t):
            if t is None:
                return ts
            first = ts.is_first()
            return ts._replace(
                reward=np.where(first, ts.reward, np.nan).astype(np.float32),
                discount=np.where(first, ts.discount, 2.0).astype(np.float32),
            )

    with pytest.raises(EnvCheckError) as info:
        check_env(TwoDefects(), num_steps=5)
    assert len(info.value.problems) == 2
    assert "reward: nan at step 0, env 0" in info.value.problems[0]
    assert "[5 occurrences]" in info.value.problems[0]
    assert "discount: 2.0 at step 0, env 0" in info.value.problems[1]
    assert str(info.value).startswith("check_env found 2 problem(s) in TwoDefects:")


def test_not_an_environment_is_a_type_error():
    with pytest.raises(
        TypeError, match="expected a drivetrain Environment or a factory of one, got CartPoleEnv"
    ):
        check_env(lambda: gymnasium.make("CartPole-v1").unwrapped)


@pytest.mark.parametrize("given", ["CartPole-v1", "instance"])
def test_a_gymnasium_environment_or_id_is_refused_with_the_call_that_works(given):
    env = gymnasium.make("CartPole-v1") if given == "instance" else given
    with pytest.raises(TypeError, match=r"check_env\(lambda: dt\.envs\.make\(\"CartPole-v1\", seed=0\)\)"):
        check_env(env)
