"""drivetrain tune: the --param parser and its errors, a study end to end at a tiny budget
(study.db, trial folders, best.yaml that `drivetrain train` trains), its resumption (finished
trials kept, a trial left running by a dead process not counted), refusals, and a trial pruned
by the median pruner inside the real training loop."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from drivetrain.cli import main
from drivetrain.train import get_preset
from drivetrain.train.preset_files import load_preset_file
from drivetrain.train.search_space import DEFAULT_SPACES, ParamError, default_space, parse_param, parse_space

optuna = pytest.importorskip("optuna")
TrialState = optuna.trial.TrialState

TINY = [
    "--total_env_steps", "1000", "--learning_starts", "200", "--update_period", "100",
    "--gradient_steps", "2", "--agent.fc_layers", "16", "--eval_interval", "200", "--eval_episodes", "1",
    "--eval_num_envs", "1", "--stop_at_return", "none", "--final_eval_episodes", "2",
    "--checkpoint_interval", "0", "--tensorboard", "false",
]  # fmt: skip


def dqn():
    return get_preset("cartpole-dqn").build()


def test_params_parse_with_keys_resolved_as_overrides_are():
    config = dqn()
    p = parse_param("learning_rate=loguniform(1e-5, 1e-2)", config)
    assert (p.key, p.kind, p.args) == ("agent.learning_rate", "loguniform", (1e-5, 1e-2))
    assert parse_param("loop.batch_size=int(32,256)", config).args == (32, 256)
    assert parse_param("gamma=uniform(0.9,0.999)", config).args == (0.9, 0.999)
    p = parse_param("agent.fc_layers=choice((64,64), (256,256))", config)
    assert p.args == ("(64,64)", "(256,256)")
    assert parse_param("optimizer=choice(adam,rmsprop)", config).args == ("adam", "rmsprop")
    assert str(p) == "agent.fc_layers=choice((64,64),(256,256))"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("learning_rate", "expected KEY=DIST"),
        ("learnin_rate=uniform(0,1)", "unknown config key 'learnin_rate'; did you mean agent.learning_rate"),
        ("learning_rate=normal(0,1)", "the distribution must be loguniform(a,b), uniform(a,b), int(a,b)"),
        ("learning_rate=uniform(0,1,2)", "uniform(a,b) takes two bounds, got 3"),
        ("learning_rate=uniform(x,1)", "uniform(a,b) takes two floats"),
        ("learning_rate=uniform(1,0.5)", "the lower bound 1.0 must be below the upper bound 0.5"),
        ("learning_rate=loguniform(0,1)", "loguniform(a,b) needs 0 < a"),
        ("batch_size=int(1.5,8)", "int(a,b) takes two ints"),
        ("batch_size=uniform(16,64)", "loop.batch_size is int, which a float distribution does not fit"),
        ("optimizer=choice(adam,sgdd)", "agent.optimizer"),
        ("optimizer=choice()", "choice(...) needs values"),
        ("gamma=uniform(0.9,1.5)", "gamma: expected a number in [0, 1], got 1.5"),
    ],
)
def test_param_errors_name_the_param(text, message):
    with pytest.raises(ParamError) as e:
        parse_param(text, dqn())
    assert str(e.value).startswith(f"--param {text!r}: ") and message in str(e.value), str(e.value)


def test_a_key_given_twice_and_the_default_spaces():
    with pytest.raises(ParamError, match=r"agent\.learning_rate given more than once"):
        parse_space(["learning_rate=uniform(1e-3,1e-2)", "agent.learning_rate=uniform(1e-3,1e-2)"], dqn())
    for name, kind in [("cartpole-dqn", "dqn"), ("cartpole-ppo", "ppo"), ("cartpole-reinforce", "reinforce"),
                       ("pendulum-sac", "sac"), ("pendulum-td3", "td3"), ("cartpole-masked-rdqn", "r2d2")]:  # fmt: skip
        space = default_space(get_preset(name).build(), kind)
        assert [str(p).split("=")[0] for p in space] == [t.split("=")[0] for t in DEFAULT_SPACES[kind]]


def test_bad_params_and_keys_are_refused_before_any_trial(tmp_path, capsys):
    run = tmp_path / "study"
    assert (
        main(["tune", "cartpole-dqn", "--trials", "2", "--run-dir", str(run), "--param", "lr=uniform(0,1)"])
        == 2
    )
    assert "--param 'lr=uniform(0,1)': unknown config key 'lr'" in capsys.readouterr().err
    assert main(["tune", "cartpole-dqn", "--trials", "2", "--run-dir", str(run), "--learnin_rate", "1"]) == 2
    assert "unknown config key 'learnin_rate'" in capsys.readouterr().err
    assert main(["tune", "cartpole-dqn", "--run-dir", str(run)]) == 2
    assert "--trials N is required" in capsys.readouterr().err
    assert main(["tune", "cartpole-dqn", "--trials", "0", "--run-dir", str(run)]) == 2
    assert "--trials must be at least 1" in capsys.readouterr().err
    assert not run.exists()
    assert main(["tune", "cartpole-ppo", "--help"]) == 0
    assert "agent.ent_coef=loguniform" in capsys.readouterr().out


def _study(run):
    return optuna.load_study(study_name="drivetrain", storage=f"sqlite:///{run / 'study.db'}")


def _states(run):
    return [t.state for t in _study(run).trials]


def test_tune_end_to_end_resume_and_best_yaml_trains(tmp_path, capsys):
    run = tmp_path / "study"
    command = ["tune", "cartpole-dqn", "--run-dir", str(run), "--param", "learning_rate=loguniform(1e-4,1e-2)",
               "--param", "epsilon_end=uniform(0.01,0.1)", *TINY]  # fmt: skip
    assert main([*command, "--trials", "2"]) == 0
    assert _states(run) == [TrialState.COMPLETE] * 2
    first = [t.params for t in _study(run).trials]
    assert (run / "best.yaml").is_file() and (run / "trial-1" / "eval.json").is_file()
    # a process killed during a trial leaves it RUNNING: the next run marks it failed, not counted
    _study(run).ask()
    capsys.readouterr()
    assert main([*command, "--trials", "4"]) == 0
    out = capsys.readouterr().out
    assert "trial 2 was running when its process ended: marked failed, not counted" in out
    trials = _study(run).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2 + [TrialState.FAIL] + [
        TrialState.COMPLETE
    ] * 2
    assert [t.params for t in trials[:2]] == first  # the finished trials are kept
    assert len({t.params["agent.learning_rate"] for t in trials if t.params}) == 4  # no repeats on resume
    assert "trial  state" in out and "best: trial" in out
    assert sorted(p.name for p in run.glob("trial-*")) == ["trial-0", "trial-1", "trial-3", "trial-4"]
    # done: the same command again runs nothing new
    assert main([*command, "--trials", "4"]) == 0
    assert len(_study(run).trials) == 5
    # best.yaml is the best trial's config, and trains
    study = _study(run)
    best = study.best_trial
    assert best.value == max(t.value for t in trials if t.state == TrialState.COMPLETE)
    again = tmp_path / "again"
    assert main(["train", str(run / "best.yaml"), "--run-dir", str(again), "--quiet"]) == 0
    saved = json.loads((again / "config.json").read_text())
    assert saved["preset"] == "cartpole-dqn-tuned"
    assert saved["agent"]["learning_rate"] == best.params["agent.learning_rate"]
    assert saved["agent"]["epsilon_end"] == best.params["agent.epsilon_end"]
    assert saved["loop"]["total_env_steps"] == 1000
    assert load_preset_file(
        run / "best.yaml"
    ).config.loop.progress_bar  # the base's, not the trials' quiet one
    # another search in the same folder is refused, and changes nothing
    assert main([*command[: -len(TINY)], "--trials", "5"]) == 2
    err = capsys.readouterr().err
    assert "holds a study of another search: agent.fc_layers: (16,) -> (256, 256)" in err
    assert len(_study(run).trials) == 5


def test_a_trial_below_the_median_is_pruned_in_the_real_loop(tmp_path, capsys):
    run = tmp_path / "study"
    run.mkdir()
    study = optuna.create_study(
        study_name="drivetrain", storage=f"sqlite:///{run / 'study.db'}", direction="maximize"
    )
    # two CartPole trials (returns of 8 or more), then one whose episodes end after 3 steps
    for steps in ("500", "500", "3"):
        study.enqueue_trial({"env.max_episode_steps": steps})
    command = [
        "tune",
        "cartpole-dqn",
        "--run-dir",
        str(run),
        "--param",
        "env.max_episode_steps=choice(500,3)",
    ]
    assert main([*command, "--trials", "3", *TINY]) == 0
    trials = _study(run).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    pruned = trials[2]
    assert pruned.params == {"env.max_episode_steps": "3"}
    assert list(pruned.intermediate_values) == [300]  # pruned at its first evaluation
    evaluation = json.loads((run / "trial-2" / "eval.json").read_text())  # a complete run directory
    assert evaluation["env_steps"] == 300 and evaluation["mean_return"] <= 3
    assert "    2  pruned" in capsys.readouterr().out


def test_failing_trials_do_not_count_and_three_in_a_row_stop_the_study(tmp_path, capsys):
    run = tmp_path / "study"
    bad = ["--param", "loop.learning_starts=choice(5000,6000)"]  # each fits its field, no trial's config runs
    assert main(["tune", "cartpole-dqn", "--trials", "2", "--run-dir", str(run), *bad, *TINY]) == 2
    err = capsys.readouterr().err
    assert "3 trials failed in a row; the last: loop.learning_starts (" in err
    assert _states(run) == [TrialState.FAIL] * 3
    # a base config that cannot run is refused before any trial
    assert main(["tune", "cartpole-dqn", "--trials", "2", "--run-dir", str(tmp_path / "b"), *TINY,
                 "--learning_starts", "5000"]) == 2  # fmt: skip
    assert "loop.learning_starts (5000) exceeds loop.total_env_steps (1000)" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["kill", "interrupt"])
def test_a_study_stopped_during_a_trial_resumes_without_it(signum, tmp_path):
    run = tmp_path / "study"
    tiny = [*TINY, "--total_env_steps", "4000", "--eval_interval", "0"]  # a few seconds per trial
    command = [sys.executable, "-m", "drivetrain", "tune", "cartpole-dqn", "--trials", "2", "--run-dir", str(run),
               "--param", "learning_rate=loguniform(1e-4,1e-2)", "--quiet", *tiny]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "trial-1" / "config.json").exists():  # trial 0 finished, trial 1 started
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    os.kill(process.pid, signum)
    _, err = process.communicate(timeout=60)
    if signum == signal.SIGKILL:  # the trial stays RUNNING in the study
        assert _states(run) == [TrialState.COMPLETE, TrialState.RUNNING]
    else:  # stopped at a safe point: the trial is failed, the command says how to resume
        assert process.returncode == 130, err
        assert f"tuning stopped by SIGINT: the same command resumes the study in {run}" in err
        assert _states(run) == [TrialState.COMPLETE, TrialState.FAIL]
    assert main(command[3:]) == 0
    assert _states(run) == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert (run / "best.yaml").is_file() and (run / "trial-2" / "eval.json").is_file()
