import io
import math

import pytest

import drivetrain as dt
from drivetrain.core import metrics
from drivetrain.envs.testing import CountingEnv
from drivetrain.observers import ProgressBar
from drivetrain.policies import ScriptedPolicy


def run(bar_kwargs, num_steps=11, lengths=(2, 3)):
    env = CountingEnv(list(lengths))
    out = io.StringIO()
    avg = metrics.AverageReturn(window=3)
    bar = ProgressBar(file=out, mininterval=0, **bar_kwargs(avg))
    policy = ScriptedPolicy(env.time_step_spec(), env.action_spec(), [0])  # reward 1 per step
    with bar:
        dt.StepDriver(env, policy, [avg, bar], num_steps=num_steps).run()
    return bar, avg, out.getvalue()


def test_counts_non_boundary_steps_and_tracks_returns_itself():
    bar, avg, text = run(lambda avg: {"total": 100, "window": 3})
    # 7 iterations x 2 envs minus 3 boundaries = 11 steps; episodes of return 2, 3, 2, 3 ended.
    assert bar.steps == 11
    assert bar.average_return == pytest.approx((3 + 2 + 3) / 3)
    assert bar.average_return == pytest.approx(avg.result())
    assert "11/100" in text
    assert "return=2.667" in text
    assert "step/s" in text


def test_shows_a_given_average_return_metric():
    bar, avg, text = run(lambda avg: {"total": 100, "average_return": avg})
    assert bar.average_return == avg.result()
    assert f"return={avg.result():.4g}" in text


def test_no_return_before_an_episode_ends_and_initial_offset():
    bar, _, text = run(lambda avg: {"total": 100, "initial": 40}, num_steps=1, lengths=(5,))
    assert bar.steps == 41
    assert math.isnan(bar.average_return)
    assert "return=" not in text
    assert "41/100" in text


def test_overshoot_keeps_the_bar_full_and_close_is_idempotent():
    bar, _, text = run(lambda avg: {"total": 10})
    assert bar.steps == 11  # the exact count ...
    assert "10/10" in text and "11/10" not in text  # ... and a bar that stops at 100%
    bar.close()


def test_disabled_bar_writes_nothing_but_counts():
    bar, _, text = run(lambda avg: {"total": 100, "disable": True})
    assert text == "" and bar.steps == 11


def test_negative_total_is_an_error():
    with pytest.raises(ValueError, match="total must be >= 0"):
        ProgressBar(-1)
