"""The distributed run on the in-process transport: run directory, determinism, exact counters, resume, refusals."""

import json
import os
import signal

import pytest

from drivetrain.distributed.runner import train_distributed
from drivetrain.distributed.topology import InProcessTransport
from drivetrain.train import ConfigError, apply_overrides, get_preset, load_checkpoint
from drivetrain.train.loop import RunSetupError, train
from drivetrain.train.signals import RunInterruptedError

TINY = [
    ("execution.backend", "ray"),
    ("execution.collectors", "2"),
    ("loop.total_env_steps", "1600"),
    ("loop.learning_starts", "300"),
    ("loop.update_period", "100"),
    ("loop.gradient_steps", "8"),
    ("loop.batch_size", "16"),
    ("loop.eval_interval", "800"),
    ("loop.eval_episodes", "2"),
    ("loop.final_eval_episodes", "2"),
    ("loop.checkpoint_interval", "700"),
    ("loop.log_interval", "400"),
    ("loop.progress_bar", "false"),
    ("loop.tensorboard", "false"),
    ("agent.fc_layers", "16,16"),
    ("replay.capacity", "4000"),
]


def tiny(*overrides, preset="cartpole-dqn"):
    return apply_overrides(get_preset(preset).build(), [*TINY, *overrides])


def run(config, path, **kwargs):
    transport = InProcessTransport()
    result = train_distributed(config, path, transport=transport, verbose=False, **kwargs)
    return result, transport


def test_a_run_writes_a_complete_run_directory_with_exact_counters(tmp_path):
    result, transport = run(tiny(), tmp_path / "run")
    folder = tmp_path / "run"
    for name in (
        "config.json",
        "progress.csv",
        "progress.jsonl",
        "learning_curve.png",
        "agent.pkl",
        "eval.json",
    ):
        assert (folder / name).exists(), name
    assert list((folder / "checkpoints").glob("ckpt-*.pkl"))
    evaluation = json.loads((folder / "eval.json").read_text())
    assert {"mean_return", "std_return", "episodes", "env_steps"} <= evaluation.keys()
    assert evaluation["env_steps"] == result.env_steps >= 1600
    # env steps are the sum of the inserted fragments: the collectors' own counts
    assert result.env_steps == sum(c.env_steps for c in transport.collectors)
    counters = transport.server.counters() if transport._server else None
    assert counters is None or counters["stored"] == sum(c.sequence_number for c in transport.collectors)
    last = load_checkpoint(max((folder / "checkpoints").glob("ckpt-*.pkl")))
    assert last["env_steps"] == result.env_steps
    server = last["experiment"]["transport"]["server"]
    stored = sum(c["sequence_number"] for c in last["experiment"]["transport"]["collectors"])
    assert server["counts"]["stored"] == stored
    # the schedule: gradient_steps per update_period after the warm-up (pro rata)
    assert result.train_steps == pytest.approx((result.env_steps - 300) * 8 / 100, abs=8)


def test_the_same_seed_gives_the_same_run(tmp_path):
    run(tiny(), tmp_path / "a")
    run(tiny(), tmp_path / "b")
    drop = ("steps_per_second", "wall_seconds")

    def rows(path):
        lines = [json.loads(line) for line in (path / "progress.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if k not in drop} for row in lines]

    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    assert (tmp_path / "a/eval.json").read_text() == (tmp_path / "b/eval.json").read_text()


def test_a_resumed_run_continues_to_the_same_counters_and_weights(tmp_path):
    whole, _ = run(tiny(), tmp_path / "whole")
    short = tiny(("loop.total_env_steps", "700"))
    run(short, tmp_path / "cut")
    resumed, _ = run(tiny(), tmp_path / "cut", resume=True)
    assert (resumed.env_steps, resumed.train_steps) == (whole.env_steps, whole.train_steps)
    a = load_checkpoint(max((tmp_path / "whole/checkpoints").glob("ckpt-*.pkl")))
    b = load_checkpoint(max((tmp_path / "cut/checkpoints").glob("ckpt-*.pkl")))
    assert a["env_steps"] == b["env_steps"]
    for key, value in a["experiment"]["agent"]["q_network"].items():
        assert (value == b["experiment"]["agent"]["q_network"][key]).all(), key
    assert (
        a["experiment"]["transport"]["server"]["counts"] == b["experiment"]["transport"]["server"]["counts"]
    )


def test_an_on_policy_run_refuses_the_replay_settings_by_name(tmp_path):
    config = apply_overrides(
        get_preset("cartpole-ppo").build(),
        [
            ("execution.backend", "ray"),
            ("execution.samples_per_insert", "2.0"),
            ("loop.progress_bar", "false"),
        ],
    )
    with pytest.raises(ConfigError, match=r"execution\.samples_per_insert.*on-policy"):
        run(config, tmp_path / "ppo")
    assert not (tmp_path / "ppo").exists()


def test_train_dispatches_on_the_backend(tmp_path):
    ppo = apply_overrides(get_preset("cartpole-ppo").build(), [("execution.samples_per_insert", "2.0")])
    with pytest.raises(ConfigError, match=r"execution\.samples_per_insert"):
        train(apply_overrides(ppo, [("execution.backend", "ray")]), tmp_path / "ppo")
    assert not (tmp_path / "ppo").exists()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ([("replay.capacity", "1")], r"replay\.capacity"),
        ([("loop.learning_starts", "1500"), ("replay.capacity", "1000")], r"loop\.learning_starts"),
        (
            [("execution.samples_per_insert", "8.0"), ("execution.rate_error_buffer", "1.0")],
            r"deadlock|error_buffer",
        ),
    ],
)
def test_bad_execution_settings_are_refused(tmp_path, overrides, match):
    with pytest.raises((ConfigError, RunSetupError), match=match):
        run(tiny(*overrides), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_an_execution_field_out_of_range_is_refused_by_name():
    with pytest.raises(ValueError, match=r"ExecutionConfig\.collectors: expected >= 1"):
        tiny(("execution.collectors", "0"))


class Interrupting(InProcessTransport):
    """Sends this process a SIGINT when the learner takes its ``at``-th fragment."""

    def __init__(self, at):
        super().__init__()
        self.at, self.taken = at, 0

    def next_fragment(self):
        self.taken += 1
        if self.taken == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().next_fragment()


def test_sigint_stops_with_a_checkpoint_and_resume_continues_bit_for_bit(tmp_path):
    whole, _ = run(tiny(), tmp_path / "whole")
    with pytest.raises(RunInterruptedError, match=r"SIGINT.*resume continues") as stopped:
        train_distributed(tiny(), tmp_path / "cut", transport=Interrupting(at=9), verbose=False)
    assert 0 < load_checkpoint(stopped.value.checkpoint)["env_steps"] < 1600
    assert not (tmp_path / "cut/eval.json").exists()
    resumed, _ = run(tiny(), tmp_path / "cut", resume=True)
    assert (resumed.env_steps, resumed.train_steps) == (whole.env_steps, whole.train_steps)
    a = load_checkpoint(max((tmp_path / "whole/checkpoints").glob("ckpt-*.pkl")))
    b = load_checkpoint(max((tmp_path / "cut/checkpoints").glob("ckpt-*.pkl")))
    for key, value in a["experiment"]["agent"]["q_network"].items():
        assert (value == b["experiment"]["agent"]["q_network"][key]).all(), key


def test_intervals_changed_on_resume_count_from_the_resumed_step(tmp_path):
    from drivetrain.train.logger import read_progress

    run(tiny(("loop.total_env_steps", "900")), tmp_path / "run")  # an evaluation at 800 set the next at 1600
    run(tiny(("loop.eval_interval", "300")), tmp_path / "run", resume=True)
    rows = read_progress(tmp_path / "run" / "progress.csv")
    evaluated = [r["env_steps"] for r in rows if "eval_mean_return" in r]
    resumed = [s for s in evaluated if 900 < s < 1600]
    assert resumed and resumed[0] < 1300, evaluated  # the next multiple of 300, not 1600
