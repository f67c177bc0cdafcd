"""A run with the compiled DQN update (agent.compile) stopped midway and resumed continues bit for bit."""

import pytest
from resume_checks import CrashError, assert_same_run, crash_at_train_phase

from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.logger import read_progress

TINY = [
    ("total_env_steps", 2000),
    ("learning_starts", 500),
    ("update_period", 100),
    ("gradient_steps", 25),
    ("batch_size", 32),
    ("eval_interval", 1000),
    ("eval_episodes", 2),
    ("final_eval_episodes", 2),
    ("log_interval", 250),
    ("checkpoint_interval", 700),
    ("progress_bar", False),
    ("fc_layers", (32, 32)),
    ("target_update_period", 50),
    ("epsilon_decay_steps", 300),
    ("stop_at_return", None),
    ("eval_num_envs", 1),
    ("compile", True),
]


def tiny_config():
    return apply_overrides(get_preset("cartpole-dqn").build(), TINY)


@pytest.mark.slow
def test_a_compiled_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    a = train(tiny_config(), a_dir, verbose=False)
    crash_at_train_phase(monkeypatch, 12)  # env step 1700: after the checkpoint at 1400, before the next
    with pytest.raises(CrashError):
        train(tiny_config(), b_dir, verbose=False)
    monkeypatch.undo()
    assert read_progress(b_dir / "progress.csv")[-1]["env_steps"] == 1500
    b = train(tiny_config(), b_dir, resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps) == (2000, 375)
    assert_same_run(a_dir, b_dir)
