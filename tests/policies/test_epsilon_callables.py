"""Epsilon as a number, a schedule of the step, or a callable of no arguments (TF-Agents' form)."""

import numpy as np
import pytest

from drivetrain.core import schedules, specs, types
from drivetrain.policies import EpsilonGreedyPolicy, RandomPolicy

OBS = specs.ArraySpec((1,), np.float32)
TS_SPEC = types.time_step_spec(OBS)
ACTIONS = specs.BoundedArraySpec((), np.int64, 0, 3)


def ts(b: int) -> types.TimeStep:
    return types.restart(np.zeros((b, 1), np.float32))


def greedy() -> RandomPolicy:
    return RandomPolicy(TS_SPEC, ACTIONS, seed=0)


def test_zero_argument_epsilon_is_called_at_each_action():
    counter = {"train_step": 0}
    epsilon_fn = schedules.PolynomialDecay(1.0, 0.0, 10)
    policy = EpsilonGreedyPolicy(greedy(), lambda: epsilon_fn(counter["train_step"]), seed=0)
    assert policy.epsilon == 1.0
    policy.action(ts(4))  # the first collect step used to raise a TypeError here
    counter["train_step"] = 5
    assert policy.epsilon == pytest.approx(0.5)
    counter["train_step"] = 10
    assert policy.epsilon == 0.0


def test_schedule_of_the_step_and_constants_still_work():
    policy = EpsilonGreedyPolicy(greedy(), schedules.LinearDecay(1.0, 0.0, 4), seed=0, step_fn=lambda: 2)
    assert policy.epsilon == pytest.approx(0.5)
    assert EpsilonGreedyPolicy(greedy(), np.float32(0.25)).epsilon == 0.25
    assert EpsilonGreedyPolicy(
        greedy(), lambda step=0: 0.1 * step, step_fn=lambda: 3
    ).epsilon == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("epsilon", "match"),
    [
        (lambda a, b: 0.1, r"epsilon must be .* callable of no arguments"),
        ("0.1", "epsilon must be a number or a callable"),
        (None, "epsilon must be a number or a callable"),
        (float, "epsilon must be a number or a schedule, got the type float"),
    ],
)
def test_other_epsilons_are_refused_at_construction(epsilon, match):
    with pytest.raises(TypeError, match=match):
        EpsilonGreedyPolicy(greedy(), epsilon)


def test_emit_info_false_drops_the_wrapped_info():
    wrapped = RandomPolicy(TS_SPEC, ACTIONS, info_spec={"q_values": specs.ArraySpec((4,), np.float32)})
    assert EpsilonGreedyPolicy(wrapped, 0.5).action(ts(2)).info.keys() == {"q_values"}
    quiet = EpsilonGreedyPolicy(wrapped, 0.5, emit_info=False)
    assert quiet.info_spec == {} and quiet.action(ts(2)).info == {}
    assert quiet.trajectory_spec.policy_info == {}
