import numpy as np
import pytest

from drivetrain.core import schedules, specs, types
from drivetrain.core.policy import Policy
from drivetrain.policies import EpsilonGreedyPolicy, GreedyPolicy, RandomPolicy, ScriptedPolicy

OBS = specs.ArraySpec((1,), np.float32)
TS_SPEC = types.time_step_spec(OBS)
ACTIONS = specs.BoundedArraySpec((), np.int64, 2, 5)  # 4 actions: 2..5


class FixedQPolicy(Policy):
    """Q-values [0, 0, 9, 0] for every state: greedy action index 2 -> action 4."""

    def __init__(self):
        super().__init__(TS_SPEC, ACTIONS, info_spec={"q_values": specs.ArraySpec((4,), np.float32)})

    def _action(self, time_step, policy_state):
        b = time_step.step_type.shape[0]
        q = np.tile(np.array([0, 0, 9, 0], np.float32), (b, 1))
        return types.PolicyStep(np.full(b, 2, np.int64), (), {"q_values": q})


def ts(b):
    return types.restart(np.zeros((b, 1), np.float32))


def test_random_policy_covers_inclusive_range_and_is_seeded():
    a = RandomPolicy(TS_SPEC, ACTIONS, seed=0).action(ts(4000)).action
    assert set(np.unique(a).tolist()) == {2, 3, 4, 5} and a.dtype == np.int64
    b = RandomPolicy(TS_SPEC, ACTIONS, seed=0).action(ts(4000)).action
    np.testing.assert_array_equal(a, b)
    specs.validate(ACTIONS, a)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_random_policy_one_row_at_a_time_draws_as_a_batch_does(dtype):
    """A batch of one takes the uniform double that rng.random(1) would, with the same floor."""
    spec = specs.BoundedArraySpec((), dtype, 2, 5)
    policy, rng = RandomPolicy(TS_SPEC, spec, seed=3), np.random.default_rng(3)
    got = [policy.action(ts(1)).action for _ in range(200)]
    want = [(np.floor(rng.random(1) * 4) + 2).astype(dtype) for _ in range(200)]
    assert all(g.dtype == dtype and g.shape == (1,) for g in got)
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))
    assert set(np.concatenate(got).tolist()) == {2, 3, 4, 5}


def test_random_policy_on_continuous_nest():
    spec = {"steer": specs.BoundedArraySpec((2,), np.float32, -1, 1), "gear": ACTIONS}
    out = RandomPolicy(TS_SPEC, spec, seed=1).action(ts(50)).action
    specs.validate(spec, out)


def test_random_policy_refuses_unbounded_actions():
    with pytest.raises(TypeError, match="must be bounded"):
        RandomPolicy(TS_SPEC, specs.ArraySpec((), np.float32))


def test_greedy_uses_q_values_and_minimum():
    step = GreedyPolicy(FixedQPolicy()).action(ts(3))
    assert step.action.tolist() == [4, 4, 4] and "q_values" in step.info


@pytest.mark.parametrize("emit_info", [True, False])
def test_greedy_of_an_exploring_policy_acts_greedily(emit_info):
    """Its own info dropped or not, an epsilon-greedy policy is unwrapped to its q-values."""
    exploring = EpsilonGreedyPolicy(FixedQPolicy(), 1.0, seed=0, emit_info=emit_info)
    assert GreedyPolicy(exploring).action(ts(500)).action.tolist() == [4] * 500


def test_greedy_of_a_policy_without_preferences_is_refused_by_name():
    with pytest.raises(TypeError, match=r"info of RandomPolicy holds neither q_values nor logits; use"):
        GreedyPolicy(RandomPolicy(TS_SPEC, ACTIONS, seed=0))
    sampling = EpsilonGreedyPolicy(RandomPolicy(TS_SPEC, ACTIONS, seed=0), 0.5, emit_info=False)
    with pytest.raises(TypeError, match=r"EpsilonGreedyPolicy .*nor does that of any policy it wraps"):
        GreedyPolicy(sampling)


def test_epsilon_zero_and_one():
    greedy = EpsilonGreedyPolicy(FixedQPolicy(), 0.0, seed=0).action(ts(500)).action
    assert (greedy == 2).all()
    explore = EpsilonGreedyPolicy(FixedQPolicy(), 1.0, seed=0).action(ts(4000)).action
    counts = np.bincount(explore - 2, minlength=4)
    assert set(np.unique(explore).tolist()) == {2, 3, 4, 5}
    assert counts.min() > 900  # uniform: ~1000 each


class CallCounting(FixedQPolicy):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def _action(self, time_step, policy_state):
        self.calls += 1
        return super()._action(time_step, policy_state)


@pytest.mark.parametrize("emit_info", [False, True])
def test_the_wrapped_policy_runs_only_when_a_row_keeps_its_action_or_its_info_is_kept(emit_info):
    wrapped = CallCounting()
    policy = EpsilonGreedyPolicy(wrapped, 1.0, seed=0, emit_info=emit_info)
    steps = [policy.action(ts(1)) for _ in range(20)]
    assert wrapped.calls == (20 if emit_info else 0)
    assert all(("q_values" in s.info) == emit_info for s in steps)
    # the same actions either way: the skipped network draws nothing from the generator
    shown = [s.action.item() for s in steps]
    other = EpsilonGreedyPolicy(FixedQPolicy(), 1.0, seed=0, emit_info=not emit_info)
    assert shown == [other.action(ts(1)).action.item() for _ in range(20)]
    half = CallCounting()
    mixed = EpsilonGreedyPolicy(half, 0.5, seed=0, emit_info=False)
    for _ in range(40):
        mixed.action(ts(1))
    assert 5 < half.calls < 35  # the greedy steps only


def test_epsilon_schedule_follows_step_counter():
    sched = schedules.LinearDecay(1.0, 0.0, 10)
    step = {"n": 0}
    policy = EpsilonGreedyPolicy(FixedQPolicy(), sched, seed=0, step_fn=lambda: step["n"])
    assert policy.epsilon == 1.0
    step["n"] = 5
    assert policy.epsilon == pytest.approx(0.5)
    step["n"] = 50
    assert policy.epsilon == 0.0
    assert (policy.action(ts(100)).action == 2).all()
    own = EpsilonGreedyPolicy(FixedQPolicy(), sched, seed=0)  # counts its own calls
    for _ in range(4):
        own.action(ts(1))
    assert own.epsilon == pytest.approx(0.6)


def test_polynomial_decay_by_hand():
    sched = schedules.PolynomialDecay(1.0, 0.1, 100, power=2.0)
    assert sched(0) == 1.0
    assert sched(50) == pytest.approx(0.1 + 0.9 * 0.25)
    assert sched(1000) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="steps must be positive"):
        schedules.PolynomialDecay(1.0, 0.0, 0)


def test_epsilon_greedy_state_dict_resumes_identically():
    a = EpsilonGreedyPolicy(FixedQPolicy(), 0.5, seed=3)
    a.action(ts(10))
    b = EpsilonGreedyPolicy(FixedQPolicy(), 0.5, seed=99)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.action(ts(50)).action, b.action(ts(50)).action)


def test_scripted_policy_cycles():
    p = ScriptedPolicy(TS_SPEC, ACTIONS, [2, 5])
    assert [int(p.action(ts(2)).action[1]) for _ in range(3)] == [2, 5, 2]
    with pytest.raises(ValueError, match="must not be empty"):
        ScriptedPolicy(TS_SPEC, ACTIONS, [])


def test_random_policy_emits_zero_info_of_a_given_spec():
    info_spec = {"q_values": specs.ArraySpec((4,), np.float32)}
    policy = RandomPolicy(TS_SPEC, ACTIONS, seed=0, info_spec=info_spec)
    info = policy.action(ts(3)).info
    specs.validate(info_spec, info)
    assert not info["q_values"].any()
    assert policy.trajectory_spec.policy_info == info_spec
    assert RandomPolicy(TS_SPEC, ACTIONS).action(ts(3)).info == {}


@pytest.mark.parametrize("emit_info", [True, False])
def test_epsilon_greedy_one_row_at_a_time_explores_as_the_batched_draws_do(emit_info):
    # Row by row (batch 1) the policy takes one uniform draw per step, then the random action's
    # draw when it explores: the same numbers, in the same order, as the batched path takes.
    policy = EpsilonGreedyPolicy(FixedQPolicy(), 0.3, seed=7, emit_info=emit_info)
    twin = np.random.default_rng(7)
    explored = 0
    for _ in range(400):
        action = int(policy.action(ts(1)).action[0])
        explores = twin.random(1)[0] < 0.3
        expected = int((twin.random(1) * 4).astype(np.int64)[0]) + 2 if explores else 2
        assert action == expected
        explored += explores
    assert 90 < explored < 150  # ~120 of 400


class RecordingPolicy(FixedQPolicy):
    """FixedQPolicy whose greedy action is 2 + (observation > 0), recording each batch's rows."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def _action(self, time_step, policy_state):
        self.rows.append(time_step.observation[:, 0].copy())
        step = super()._action(time_step, policy_state)
        return step._replace(action=step.action + (time_step.observation[:, 0] > 0))


def test_epsilon_greedy_runs_a_dropped_info_policy_on_the_greedy_rows_only():
    observation = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]  # row i: a distinct value
    time_step = types.restart(observation)
    recording = RecordingPolicy()
    policy = EpsilonGreedyPolicy(recording, 0.5, seed=3, emit_info=False)
    twin = np.random.default_rng(3)
    for _ in range(5):
        action = policy.action(time_step).action
        explore = twin.random(64) < 0.5
        random_action = (twin.random(64) * 4).astype(np.int64) + 2
        greedy = 2 + (observation[:, 0] > 0)
        np.testing.assert_array_equal(action, np.where(explore, random_action, greedy))
        assert action.dtype == np.int64
        np.testing.assert_array_equal(recording.rows[-1], observation[~explore, 0])  # greedy rows only
    assert len(recording.rows) == 5
    kept = EpsilonGreedyPolicy(RecordingPolicy(), 0.5, seed=3)  # info kept: every row runs
    kept.action(time_step)
    assert len(kept.wrapped.rows[-1]) == 64


def test_greedy_of_a_user_epsilon_greedy_policy_leaves_its_counter_and_rng_alone():
    exploring = EpsilonGreedyPolicy(FixedQPolicy(), schedules.PolynomialDecay(1.0, 0.0, 10), seed=0)
    before = exploring.state_dict()
    greedy = GreedyPolicy(exploring)
    for _ in range(5):
        assert greedy.action(ts(3)).action.tolist() == [4, 4, 4]
    after = exploring.state_dict()
    assert after["calls"] == before["calls"] == 0 and exploring.epsilon == 1.0
    assert after["rng"] == before["rng"]


def test_scripted_actions_that_the_spec_would_change_are_refused():
    with pytest.raises(ValueError, match=r"action 2.9 is not a value of int64"):
        ScriptedPolicy(TS_SPEC, ACTIONS, [2.9]).action(ts(1))
    with pytest.raises(specs.SpecError, match=r"expected values in \[2, 5\]"):
        ScriptedPolicy(TS_SPEC, ACTIONS, [99]).action(ts(1))
    assert ScriptedPolicy(TS_SPEC, ACTIONS, [3.0]).action(ts(2)).action.tolist() == [3, 3]
    steer = specs.BoundedArraySpec((1,), np.float32, -2.0, 2.0)
    out = ScriptedPolicy(TS_SPEC, steer, [[0.1]]).action(ts(2)).action  # float32 rounds 0.1: fine
    assert out.dtype == np.float32 and out.tolist() == [[np.float32(0.1)]] * 2


@pytest.mark.parametrize("epsilon", [1.5, -0.2, float("nan")])
def test_a_constant_epsilon_outside_zero_one_is_refused(epsilon):
    with pytest.raises(ValueError, match="epsilon must be a probability in \\[0, 1\\]"):
        EpsilonGreedyPolicy(FixedQPolicy(), epsilon)


def test_a_schedule_that_leaves_zero_one_is_refused_when_it_does():
    from drivetrain.core.schedules import LinearDecay

    policy = EpsilonGreedyPolicy(FixedQPolicy(), LinearDecay(0.5, -0.5, 4), seed=0)
    policy.action(ts(2))
    policy.action(ts(2))
    policy.action(ts(2))  # epsilon 0.0 at step 2
    with pytest.raises(ValueError, match=r"the epsilon schedule gave -0.25 at step 3"):
        policy.action(ts(2))
    with pytest.raises(ValueError, match="gave nan at step 0"):
        EpsilonGreedyPolicy(FixedQPolicy(), lambda step: float("nan")).action(ts(1))


class MaskIndex2(Policy):
    """A user's wrapper that forbids action index 2: it changes the wrapped policy's preferences."""

    def __init__(self, policy):
        super().__init__(policy.time_step_spec, policy.action_spec, info_spec=policy.info_spec)
        self.wrapped = policy

    def _action(self, time_step, policy_state):
        q = self.wrapped.action(time_step).info["q_values"].copy()
        q[:, 2] = -np.inf
        return types.PolicyStep(np.argmax(q, -1) + int(self.action_spec.minimum), (), {"q_values": q})


def test_greedy_of_a_wrapper_that_changes_preferences_keeps_its_changes():
    masked = MaskIndex2(FixedQPolicy())
    greedy = GreedyPolicy(masked).action(ts(2)).action
    np.testing.assert_array_equal(greedy, masked.action(ts(2)).action)
    assert 4 not in greedy.tolist()  # the masked action (index 2) is not taken
    epsilon = EpsilonGreedyPolicy(FixedQPolicy(), 0.5, seed=0)
    assert GreedyPolicy(epsilon).wrapped is epsilon.wrapped  # an exploring wrapper is looked through
