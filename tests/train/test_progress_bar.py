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


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_final_bar_is_drawn_once_when_it_reaches_the_total():
    bar, _, text = run(lambda avg: {"total": 10})  # mininterval 0: every step draws
    assert text.count("10/10") == 1
    bar.write("final evaluation")  # what comes after prints below the finished bar
    bar.close()


def test_without_a_terminal_plain_lines_replace_the_bar():
    env = CountingEnv([2, 3])
    out = io.StringIO()
    policy = ScriptedPolicy(env.time_step_spec(), env.action_spec(), [0])
    with ProgressBar(total=10, file=out, disable=None, line_every=0.25, desc="run") as bar:
        dt.StepDriver(env, policy, [bar], num_steps=11).run()
    lines = out.getvalue().splitlines()
    done = [int(line.removeprefix("run: ").split("/")[0]) for line in lines]
    assert len(done) == 4 and done[-1] == 10  # a line past each quarter (3, 6, 9 steps) and at the total
    assert all(t <= d < t + 2 for t, d in zip((3, 6, 9), done, strict=False))  # 2 envs: 2 steps at a time
    assert "(100%)" in lines[-1] and "steps/s, return " in lines[-1]
    assert "\r" not in out.getvalue() and "|" not in out.getvalue()  # no bar, no carriage returns


def test_on_a_terminal_disable_none_draws_the_live_bar():
    out = Terminal()
    with ProgressBar(total=100, file=out, disable=None, mininterval=0) as bar:
        bar(make_trajectory())
    assert "%|" in out.getvalue() and "\r" in out.getvalue()


def make_trajectory():
    env = CountingEnv([3])
    policy = ScriptedPolicy(env.time_step_spec(), env.action_spec(), [0])
    seen = []
    dt.StepDriver(env, policy, [seen.append], num_steps=1).run()
    return seen[0]


def test_line_every_out_of_range_is_an_error():
    with pytest.raises(ValueError, match=r"line_every must be in \(0, 1\], got 0"):
        ProgressBar(10, line_every=0)


def test_its_own_returns_leave_out_an_episode_it_joined_midway():
    env = CountingEnv([3])  # reward 1 per step, episodes of 3 steps
    policy = ScriptedPolicy(env.time_step_spec(), env.action_spec(), [0])
    dt.StepDriver(env, policy, [], num_steps=2).run()  # two steps before the bar sees any
    bar, avg = ProgressBar(total=100, disable=True, window=5), metrics.AverageReturn(window=5)
    dt.StepDriver(env, policy, [bar, avg], num_steps=4).run()  # the tail of one, then a whole one
    assert avg.result() == 3.0
    assert bar.average_return == 3.0  # not (1 + 3) / 2
