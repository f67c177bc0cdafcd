"""Several seeds of one config: the spec, the layout, --resume/--force per seed, failing seeds."""

import json

import pytest
from run_dirs import fingerprint

from drivetrain.train import apply_overrides, get_preset
from drivetrain.train.rundir import RunDir, RunDirError
from drivetrain.train.seeds import (
    SeedsSpecError,
    default_run_dir,
    parse_seeds,
    run_seeds,
    run_seeds_command,
    seed_dir,
)

TINY = [
    ("total_env_steps", "400"),
    ("learning_starts", "200"),
    ("update_period", "100"),
    ("gradient_steps", "2"),
    ("agent.fc_layers", "8"),
    ("eval_interval", "0"),
    ("stop_at_return", "none"),
    ("final_eval_episodes", "1"),
    ("checkpoint_interval", "200"),
    ("tensorboard", "false"),
    ("progress_bar", "false"),
]


@pytest.fixture(scope="module")
def config():
    return apply_overrides(get_preset("cartpole-dqn").build(), TINY)


@pytest.mark.parametrize(
    ("spec", "seeds"),
    [("3", (3,)), ("0-4", (0, 1, 2, 3, 4)), ("0,2,5", (0, 2, 5)), ("0-2, 7", (0, 1, 2, 7)), ("5,1", (5, 1))],
)
def test_seed_specs(spec, seeds):
    assert parse_seeds(spec) == seeds


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "an empty item"),
        ("0,,1", "an empty item"),
        ("a", "'a' is not a seed or a range"),
        ("1.5", "'1.5' is not a seed"),
        ("-1", "'-1' is not a seed"),
        ("1-", "'1-' is not a seed"),
        ("4-0", "the range '4-0' runs backwards; write 0-4"),
        ("0-2,1", "seed 1 given twice"),
    ],
)
def test_bad_seed_specs_name_the_option(spec, message):
    with pytest.raises(SeedsSpecError, match="--seeds") as e:
        parse_seeds(spec)
    assert message in str(e.value)


def test_layout_and_default_run_dir(config):
    assert seed_dir("runs/x", 3).as_posix() == "runs/x/seed-3"
    assert default_run_dir(config).as_posix() == "runs/cartpole-dqn"


def test_command_line_mistakes_are_one_line(config, tmp_path, capsys):
    run = tmp_path / "runs"
    assert run_seeds_command(config, run, "4-0") == 2
    assert "drivetrain: error: --seeds '4-0'" in capsys.readouterr().err
    assert run_seeds_command(config, run, None, parallel=2) == 2
    assert "--parallel needs --seeds" in capsys.readouterr().err
    assert run_seeds_command(config, run, "0-1", overrides=[("seed", "3")]) == 2
    assert "--seed and --seeds contradict each other" in capsys.readouterr().err
    assert run_seeds_command(config, run, "0-1", parallel=0) == 2
    assert "--parallel must be at least 1, got 0" in capsys.readouterr().err
    assert not run.exists()


def test_seeds_run_into_sibling_folders_resume_skips_finished_ones_and_refusals_touch_nothing(
    config, tmp_path
):
    run = tmp_path / "multi"
    outcomes = run_seeds(config, run, (0, 1), verbose=False)
    assert [(o.seed, o.status) for o in outcomes] == [(0, "done"), (1, "done")]
    for o in outcomes:
        saved = json.loads((o.run_dir / "config.json").read_text())
        assert o.run_dir == run / f"seed-{o.seed}" and saved["seed"] == o.seed
        assert saved["loop"]["total_env_steps"] == 400
        assert o.mean_return == json.loads((o.run_dir / "eval.json").read_text())["mean_return"]
    before = fingerprint(run)
    with pytest.raises(RunDirError, match=r"seed-0, .*seed-1 already hold a run; pass --resume"):
        run_seeds(config, run, (0, 1, 2), verbose=False)
    with pytest.raises(RunDirError, match="holds a single run"):
        run_seeds(config, run / "seed-0", (0,), verbose=False)
    with pytest.raises(RunDirError, match="nothing to resume"):
        run_seeds(config, run, (5, 6), resume=True, verbose=False)
    assert fingerprint(run) == before

    # --resume with the preset and the same overrides: each seed's saved config + overrides is finished.
    preset = get_preset("cartpole-dqn").build()
    outcomes = run_seeds(preset, run, (0, 1), resume=True, verbose=False, overrides=TINY)
    assert [o.status for o in outcomes] == ["skipped", "skipped"]
    other = get_preset("cartpole-ppo").build()
    with pytest.raises(RunDirError, match="seed-0 holds a run of preset 'cartpole-dqn', not 'cartpole-ppo'"):
        run_seeds(other, run, (0, 1), resume=True, verbose=False, overrides=[])
    assert fingerprint(run) == before

    # A larger budget continues seeds 0 and 1 from their checkpoints; seed 2 never started: it starts.
    longer = [*TINY, ("loop.total_env_steps", "500")]
    outcomes = run_seeds(
        apply_overrides(preset, longer), run, (0, 1, 2), resume=True, verbose=False, overrides=longer
    )
    assert [o.status for o in outcomes] == ["done", "done", "done"]
    for s in (0, 1, 2):
        assert json.loads((run / f"seed-{s}" / "eval.json").read_text())["env_steps"] == 500
        assert json.loads((run / f"seed-{s}" / "config.json").read_text())["seed"] == s

    outcomes = run_seeds(config, run, (1,), force=True, verbose=False)
    assert outcomes[0].status == "done"
    assert json.loads((run / "seed-1" / "eval.json").read_text())["env_steps"] == 400


@pytest.mark.parametrize("parallel", [None, 2])
def test_a_failing_seed_does_not_stop_the_others_and_the_status_names_it(config, tmp_path, capsys, parallel):
    run = tmp_path / "multi"
    with RunDir(seed_dir(run, 1)).lock():  # seed 1's folder is in use: that seed fails
        status = run_seeds_command(config, run, "0-2", parallel=parallel, verbose=False)
    out, err = capsys.readouterr()
    assert status == 1
    assert "drivetrain: error: 1 of 3 seeds failed: seed 1: run directory" in err and "is in use by" in err
    assert "seed 0: done" in out and "seed 2: done" in out
    for s in (0, 2):
        assert (seed_dir(run, s) / "eval.json").is_file()
    assert not seed_dir(run, 1).exists()  # nothing written there

    assert run_seeds_command(config, run, "0-2", parallel=parallel, resume=True, verbose=False) == 0
    assert "seed 1: done" in capsys.readouterr().out  # --resume runs the seed that failed
    assert (seed_dir(run, 1) / "eval.json").is_file()


def test_a_stop_signal_reaches_every_running_seed_once():
    import os
    import signal
    import subprocess
    import sys

    from drivetrain.train.seed_processes import _Forward

    before = signal.getsignal(signal.SIGTERM)
    children = {
        s: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        for s in (0, 1)
    }
    with _Forward(children) as forward:
        os.kill(os.getpid(), signal.SIGTERM)  # handled: this process goes on
        assert forward.received == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal is not passed on again
    assert [children[s].wait(timeout=30) for s in (0, 1)] == [-signal.SIGTERM, -signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_seed_that_never_started_resumes_as_its_siblings_were_started(config, tmp_path):
    """``--seeds 0-1 --resume`` without the first command's overrides: seed 1, stopped before it
    started, trains seed 0's saved config (with this command's overrides), not the bare preset's."""
    run = tmp_path / "multi"
    run_seeds(config, run, (0,), verbose=False)
    preset = get_preset("cartpole-dqn").build()
    again = [("loop.final_eval_episodes", "2")]
    outcomes = run_seeds(
        apply_overrides(preset, again), run, (0, 1), resume=True, verbose=False, overrides=again
    )
    assert [o.status for o in outcomes] == ["skipped", "done"]  # seed 0 had finished
    saved = [json.loads((run / f"seed-{s}" / "config.json").read_text()) for s in (0, 1)]
    assert saved[1]["seed"] == 1 and saved[1]["loop"]["total_env_steps"] == 400
    assert saved[1]["agent"]["fc_layers"] == saved[0]["agent"]["fc_layers"] == [8]
    assert saved[1]["loop"]["final_eval_episodes"] == 2  # this command's override, on top


def test_the_run_seed_seeds_torchs_global_generator_too():
    import torch

    from drivetrain.train import get_preset
    from drivetrain.train.experiment import build_experiment

    config = get_preset("cartpole-dqn").build()
    draws = []
    for perturb in (1, 2):
        torch.manual_seed(perturb)  # whatever the process did before
        build_experiment(config).close()
        draws.append(torch.rand(3))
    assert torch.equal(draws[0], draws[1])


def test_seeds_resumed_without_a_preset_take_their_own_keys(tmp_path, capsys):
    from drivetrain.cli import main

    folder = str(tmp_path / "ppos")
    tiny = [
        "--eval_interval",
        "0",
        "--stop_at_return",
        "none",
        "--final_eval_episodes",
        "1",
        "--tensorboard",
        "false",
    ]
    assert (
        main(
            [
                "train",
                "cartpole-ppo",
                "--run-dir",
                folder,
                "--seeds",
                "0,1",
                "--quiet",
                "--total_env_steps",
                "256",
                *tiny,
            ]
        )
        == 0
    )
    resumed = [
        "train",
        "--run-dir",
        folder,
        "--seeds",
        "0,1",
        "--resume",
        "--quiet",
        "--total_env_steps",
        "384",
    ]
    assert main([*resumed, "--agent.clip_ratio", "0.1"]) == 0  # a PPO key, not the default DQN preset's
    assert all(
        json.loads((tmp_path / "ppos" / f"seed-{s}" / "config.json").read_text())["agent"]["clip_ratio"]
        == 0.1
        for s in (0, 1)
    )


def test_a_seed_killed_by_a_forwarded_signal_as_it_ends_is_stopped_not_failed(tmp_path):
    import io
    import signal

    from drivetrain.train import get_preset
    from drivetrain.train.seed_processes import _outcome
    from drivetrain.train.seeds import SeedPlan

    plan = SeedPlan(1, tmp_path, get_preset("cartpole-dqn").build(), False)
    outcome = _outcome(plan, -signal.SIGINT, io.BytesIO(b"done: greedy return 9.1\n"))
    assert (outcome.status, outcome.exit_status) == ("stopped", 130)


def test_the_parent_forwards_a_hangup_to_its_seeds_as_sigterm():
    import signal

    from drivetrain.train.seed_processes import _Forward

    class Child:
        def __init__(self):
            self.sent = []

        def poll(self):
            return None

        def send_signal(self, signum):
            self.sent.append(signum)

    child = Child()
    forward = _Forward({0: child})
    forward._handle(signal.SIGHUP, None)
    assert child.sent == [signal.SIGTERM] and forward.received == signal.SIGTERM


def test_a_seed_stopped_while_it_starts_says_so_and_exits_as_stopped(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from drivetrain.train import get_preset
    from drivetrain.train.config import config_to_dict

    child = subprocess.Popen(
        [sys.executable, "-m", "drivetrain.train.seed_processes", "--run-dir", str(tmp_path / "run")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(0.3)  # importing torch takes longer
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(
        json.dumps(config_to_dict(get_preset("cartpole-dqn").build())).encode(), timeout=60
    )
    assert child.returncode == 130, out
    assert b"stopped by SIGINT before the run started" in out
    assert not (tmp_path / "run").exists()


def test_seed_lines_name_an_epsilon_greedy_evaluation(tmp_path, capsys):
    from run_dirs import TINY_CLI

    from drivetrain.cli import main

    assert (
        main(["train", "--run-dir", str(tmp_path / "s"), "--seeds", "0", *TINY_CLI, "--eval_epsilon", "0.1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "seed 0: return (ε = 0.1)" in out and "seed 0: done, return (ε = 0.1)" in out
    assert "greedy return" not in out
