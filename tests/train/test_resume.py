"""A run stopped midway and resumed continues exactly as if it had never stopped."""

import json

import numpy as np
import pytest
from resume_checks import CrashError, assert_same_run, comparable, crash_at_train_phase

from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.logger import read_progress

TINY = [
    ("total_env_steps", 3000),
    ("learning_starts", 500),
    ("update_period", 100),
    ("gradient_steps", 25),
    ("batch_size", 32),
    ("eval_interval", 1000),
    ("eval_episodes", 2),
    ("final_eval_episodes", 3),
    ("log_interval", 250),
    ("checkpoint_interval", 700),
    ("progress_bar", False),
    ("fc_layers", (32, 32)),
    ("target_update_period", 50),
    ("epsilon_decay_steps", 300),
    ("stop_at_return", None),
    ("eval_num_envs", 1),
]


def tiny_config(**extra):
    return apply_overrides(get_preset("cartpole-dqn").build(), [*TINY, *extra.items()])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("a")
    result = train(tiny_config(), run_dir, verbose=False)
    return run_dir, result


def test_resumed_run_matches_the_uninterrupted_one_bit_for_bit(uninterrupted, tmp_path, monkeypatch):
    a_dir, a = uninterrupted
    crash_at_train_phase(monkeypatch, 17)  # env step 2200: after the checkpoint at 2100, before the next
    with pytest.raises(CrashError):
        train(tiny_config(), tmp_path, verbose=False)
    monkeypatch.undo()
    stopped = read_progress(tmp_path / "progress.csv")
    assert stopped[-1]["env_steps"] == 2000  # the run had logged up to here
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir())[-1] == "ckpt-000000002100.pkl"

    b = train(tiny_config(), tmp_path, resume=True, verbose=False)

    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps) == (3000, 625)
    assert b.evaluation == a.evaluation
    assert json.loads((tmp_path / "eval.json").read_text())["env_steps"] == 3000
    assert_same_run(a_dir, tmp_path)


def test_resume_without_environment_state_keeps_the_step_count_and_the_curve(
    uninterrupted, tmp_path, monkeypatch
):
    a_dir, a = uninterrupted
    from drivetrain.envs.gymnasium_env import GymnasiumEnv

    def unpicklable(self):
        raise TypeError("cannot pickle this environment")

    monkeypatch.setattr(GymnasiumEnv, "state_dict", unpicklable)
    crash_at_train_phase(monkeypatch, 17)
    with pytest.warns(UserWarning, match="do not hold the environments' state"), pytest.raises(CrashError):
        train(tiny_config(), tmp_path, verbose=False)
    crash_at_train_phase(monkeypatch, 10**9)
    with pytest.warns(UserWarning, match="do not hold the environments' state"):
        b = train(tiny_config(), tmp_path, resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps)
    rows_a, rows_b = read_progress(a_dir / "progress.csv"), read_progress(tmp_path / "progress.csv")
    steps_b = [r["env_steps"] for r in rows_b]
    assert steps_b == sorted(set(steps_b)) and steps_b[-1] == 3000
    # up to the checkpoint the logs are the uninterrupted run's
    assert comparable([r for r in rows_b if r["env_steps"] <= 2100]) == comparable(
        [r for r in rows_a if r["env_steps"] <= 2100]
    )
    # the resumed part starts new episodes, so it learns on its own from there
    assert all(np.isfinite(r["loss"]) for r in rows_b)


def test_resume_before_the_first_checkpoint_starts_over_and_says_so(
    uninterrupted, tmp_path, monkeypatch, capsys
):
    a_dir, a = uninterrupted
    crash_at_train_phase(monkeypatch, 2)  # env step 700: rows logged, no checkpoint yet
    with pytest.raises(CrashError):
        train(tiny_config(), tmp_path, verbose=False)
    monkeypatch.undo()
    assert not list((tmp_path / "checkpoints").glob("*.pkl"))
    assert read_progress(tmp_path / "progress.csv") and tensorboard_points(tmp_path)
    capsys.readouterr()
    b = train(tiny_config(), tmp_path, resume=True, verbose=True)
    said = capsys.readouterr()
    assert "no checkpoint in" in said.out + said.err and "starts over from env step 0" in said.out + said.err
    assert b.evaluation == a.evaluation
    assert comparable(read_progress(tmp_path / "progress.csv")) == comparable(
        read_progress(a_dir / "progress.csv")
    )
    assert [
        json.loads(line)["env_steps"] for line in (tmp_path / "progress.jsonl").read_text().splitlines()
    ] == [r["env_steps"] for r in read_progress(a_dir / "progress.csv")]
    assert tensorboard_points(tmp_path) == tensorboard_points(a_dir)  # no point twice


def tensorboard_points(run_dir):
    """Every (tag, step) in the event files, in the order written, without TensorBoard's purging."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return sorted(
        (value.tag, event.step)
        for path in (run_dir / "tb").glob("events.out.tfevents.*")
        for event in EventFileLoader(str(path)).Load()
        for value in event.summary.value
    )


def test_resuming_a_finished_run_trains_no_more(uninterrupted, tmp_path):
    import shutil

    a_dir, a = uninterrupted
    shutil.copytree(a_dir, tmp_path, dirs_exist_ok=True)
    b = train(tiny_config(), tmp_path, resume=True, verbose=False)
    assert (b.env_steps, b.train_steps, b.evaluation) == (a.env_steps, a.train_steps, a.evaluation)
    assert read_progress(tmp_path / "progress.csv") == read_progress(a_dir / "progress.csv")


def test_extending_a_finished_run_continues_its_curve(uninterrupted, tmp_path):
    import shutil

    a_dir, _ = uninterrupted
    shutil.copytree(a_dir, tmp_path, dirs_exist_ok=True)
    b = train(tiny_config(total_env_steps=3500), tmp_path, resume=True, verbose=False)
    assert b.env_steps == 3500
    steps = [r["env_steps"] for r in read_progress(tmp_path / "progress.csv")]
    assert steps[: len(read_progress(a_dir / "progress.csv"))] == [
        r["env_steps"] for r in read_progress(a_dir / "progress.csv")
    ]
    assert steps[-1] == 3500


def test_stop_at_return_ends_the_run_and_resume_respects_it(tmp_path):
    # Every evaluation reaches a return of 0: the run stops at the first one (env step 1000).
    result = train(tiny_config(stop_at_return=0.0), tmp_path, verbose=False)
    assert result.env_steps == 1000 and result.evaluation.episodes == 3  # final-sized evaluation
    recorded = json.loads((tmp_path / "eval.json").read_text())
    assert recorded["env_steps"] == 1000 and recorded["mean_return"] == result.evaluation.mean_return
    last = read_progress(tmp_path / "progress.csv")[-1]  # the curve ends at eval.json's evaluation
    assert last["env_steps"] == 1000
    assert (last["eval_mean_return"], last["eval_std_return"]) == pytest.approx(
        (recorded["mean_return"], recorded["std_return"])
    )
    again = train(tiny_config(stop_at_return=0.0), tmp_path, resume=True, verbose=False)
    assert again.env_steps == 1000
    onwards = train(
        tiny_config(stop_at_return=None, total_env_steps=1500), tmp_path, resume=True, verbose=False
    )
    assert onwards.env_steps == 1500
    assert [r["env_steps"] for r in read_progress(tmp_path / "progress.csv")][-1] == 1500


def test_intervals_changed_on_resume_count_from_the_resumed_step(tmp_path, monkeypatch):
    crash_at_train_phase(monkeypatch, 17)  # the checkpoint at 2100 was due at 2100 (interval 700)
    with pytest.raises(CrashError):
        train(tiny_config(), tmp_path, verbose=False)
    monkeypatch.undo()
    changed = tiny_config(eval_interval=300, checkpoint_interval=200, keep_checkpoints=20)
    train(changed, tmp_path, resume=True, verbose=False)
    rows = read_progress(tmp_path / "progress.csv")
    evaluated = [r["env_steps"] for r in rows if np.isfinite(r.get("eval_mean_return", np.nan))]
    assert evaluated == [1000, 2000, 2400, 2700, 3000]  # not next at 3000, the old interval's
    saved = sorted(int(p.stem.split("-")[1]) for p in (tmp_path / "checkpoints").glob("ckpt-*.pkl"))
    assert saved[-6:] == [2100, 2200, 2400, 2600, 2800, 3000]  # not next at 2800


def test_a_higher_stop_at_return_on_resume_trains_on(tmp_path):
    assert train(tiny_config(stop_at_return=0.0), tmp_path, verbose=False).env_steps == 1000
    onwards = train(
        tiny_config(stop_at_return=1e9, total_env_steps=1500), tmp_path, resume=True, verbose=False
    )
    assert onwards.env_steps == 1500


def test_a_resume_that_the_stop_at_return_still_ends_says_so(tmp_path, capsys):
    train(tiny_config(stop_at_return=0.0), tmp_path, verbose=False)
    again = train(tiny_config(stop_at_return=0.0, total_env_steps=1500), tmp_path, resume=True, verbose=True)
    assert again.env_steps == 1000
    said = capsys.readouterr()
    assert "an evaluation reached loop.stop_at_return = 0.0" in said.out + said.err


def test_a_resume_that_trains_past_the_end_sets_its_old_eval_json_aside(uninterrupted, tmp_path, monkeypatch):
    """eval.json is the run's end; a resume with a longer budget that stops before it has none
    (compare then counts the run as unfinished, not at its old return)."""
    import shutil

    a_dir, _ = uninterrupted
    shutil.copytree(a_dir, tmp_path, dirs_exist_ok=True)
    crash_at_train_phase(monkeypatch, 3)
    with pytest.raises(CrashError):
        train(tiny_config(total_env_steps=4000), tmp_path, resume=True, verbose=False)
    assert not (tmp_path / "eval.json").exists() and (tmp_path / "agent.pkl").exists()
    monkeypatch.undo()
    b = train(tiny_config(total_env_steps=4000), tmp_path, resume=True, verbose=False)
    assert json.loads((tmp_path / "eval.json").read_text())["env_steps"] == b.env_steps == 4000


def test_a_resume_from_a_checkpoint_without_its_replay_fills_the_replay_before_training(
    tmp_path, monkeypatch
):
    from drivetrain.train import loop as loop_lib

    config = tiny_config(checkpoint_replay=False)
    crash_at_train_phase(monkeypatch, 17)
    with pytest.raises(CrashError):
        train(config, tmp_path, verbose=False)
    monkeypatch.undo()
    sizes = []
    real = loop_lib._train_phase

    def phase(exp, collected, stats):
        sizes.append(len(exp.source.replay))
        return real(exp, collected, stats)

    monkeypatch.setattr(loop_lib, "_train_phase", phase)
    with pytest.warns(UserWarning, match="collects loop.learning_starts steps with the collect policy"):
        b = train(config, tmp_path, resume=True, verbose=False)
    assert sizes[0] >= 500 + 100  # learning_starts, then a collect phase (not 100 items alone)
    assert b.env_steps == 3000 and b.evaluation.episodes == 3  # the refill is of the budget


def test_a_finished_run_resumed_without_its_replay_stays_finished(tmp_path):
    config = tiny_config(checkpoint_replay=False, total_env_steps=1000)
    a = train(config, tmp_path, verbose=False)
    with pytest.warns(UserWarning, match="no replay buffer"):
        b = train(config, tmp_path, resume=True, verbose=False)
    assert a.env_steps == b.env_steps == 1000 and b.evaluation == a.evaluation


def test_a_resume_without_environment_state_does_not_replay_the_first_episodes(monkeypatch):
    from drivetrain.core.drivers import StepDriver
    from drivetrain.envs.gymnasium_env import GymnasiumEnv
    from drivetrain.policies import RandomPolicy
    from drivetrain.train.experiment import build_experiment

    def unpicklable(self):
        raise TypeError("cannot pickle this environment")

    monkeypatch.setattr(GymnasiumEnv, "state_dict", unpicklable)
    config = tiny_config()
    first = build_experiment(config)
    initial = first.env.reset().observation.copy()
    StepDriver(
        first.env,
        RandomPolicy(first.env.time_step_spec(), first.env.action_spec(), seed=0),
        first.metrics.observers,
        300,
    ).run()
    with pytest.warns(UserWarning, match="do not hold the environments' state"):
        state = first.state_dict()

    def resumed_start():
        exp = build_experiment(config)
        assert not exp.load_state_dict(state)
        return exp.env.reset().observation

    a, b = resumed_start(), resumed_start()
    np.testing.assert_array_equal(a, b)  # the same resume point starts the same episodes
    assert not np.array_equal(a, initial)  # and not the run's first one again


def test_a_run_saved_with_a_field_its_suite_ignores_still_resumes_with_a_warning(tmp_path, monkeypatch):
    from drivetrain.train import config as config_module
    from drivetrain.train.fields import ConfigError

    ignored = tiny_config(total_env_steps=1000, **{"env.atari.noop_max": 5})
    with pytest.raises(ConfigError, match="applies to suite 'atari' only"):
        train(ignored, tmp_path / "new", verbose=False)  # refused for a new run
    monkeypatch.setattr(config_module, "_check_suite_fields", lambda env: None)  # as runs were saved before
    train(ignored, tmp_path / "old", verbose=False)
    monkeypatch.undo()
    longer = apply_overrides(ignored, [("total_env_steps", 1500)])
    with pytest.warns(UserWarning, match=r"env.atari \(env.atari.noop_max\) applies to suite 'atari' only"):
        assert train(longer, tmp_path / "old", resume=True, verbose=False).env_steps == 1500


def test_weights_that_a_finite_loss_overflowed_are_never_saved_or_called_good(tmp_path):
    from drivetrain.train.loop_state import first_non_finite
    from drivetrain.train.runs import TrainingDivergedError

    assert first_non_finite({"a": [np.ones(2), {"b": np.array([1.0, np.inf])}]}) == "a.1.b"
    assert first_non_finite({"a": np.array([1, 2]), "s": "x"}) is None
    config = tiny_config(learning_rate=1e38, gradient_steps=1, total_env_steps=1500, checkpoint_interval=600)
    with pytest.raises(TrainingDivergedError, match=r"the agent's q_network.* holds NaN or infinite values"):
        train(config, tmp_path, verbose=False)
    for path in (tmp_path / "checkpoints").glob("ckpt-*.pkl"):  # every checkpoint left is finite
        from drivetrain.train import load_checkpoint

        assert first_non_finite(load_checkpoint(path)["experiment"]["agent"]) is None
