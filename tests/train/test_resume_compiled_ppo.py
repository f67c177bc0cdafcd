"""A run with the compiled PPO update (agent.compile) stopped midway and resumed continues bit for bit."""

import pytest
from resume_checks import CrashError, assert_same_run, crash_at_train_phase

from drivetrain.train import apply_overrides, get_preset, train

TINY = [
    ("env.num_envs", 2),
    ("agent.rollout_steps", 64),
    ("agent.num_minibatches", 2),
    ("agent.compile", True),
    ("total_env_steps", 2_000),
    ("eval_interval", 600),
    ("eval_episodes", 2),
    ("final_eval_episodes", 2),
    ("eval_num_envs", 1),
    ("log_interval", 256),
    ("checkpoint_interval", 500),
    ("progress_bar", False),
    ("tensorboard", False),
    ("stop_at_return", None),
]


@pytest.mark.slow
def test_a_compiled_ppo_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    config = apply_overrides(get_preset("cartpole-ppo").build(), TINY)
    a = train(config, tmp_path / "a", verbose=False)
    crash_at_train_phase(monkeypatch, 12)  # after the checkpoint at env step 640, before the next
    with pytest.raises(CrashError):
        train(config, tmp_path / "b", verbose=False)
    monkeypatch.undo()
    b = train(config, tmp_path / "b", resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps)
    assert_same_run(tmp_path / "a", tmp_path / "b")
