"""A run whose replay samples in a background thread (``replay.prefetch``)."""

import math

from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.logger import read_progress

TINY = [
    ("total_env_steps", 1200),
    ("learning_starts", 300),
    ("update_period", 100),
    ("gradient_steps", 10),
    ("batch_size", 16),
    ("eval_interval", 0),
    ("final_eval_episodes", 2),
    ("log_interval", 300),
    ("checkpoint_interval", 600),
    ("progress_bar", False),
    ("fc_layers", (16,)),
    ("stop_at_return", None),
    ("eval_num_envs", 1),
]


def test_a_run_with_prefetching_trains_from_its_first_phase_and_resumes(tmp_path):
    config = apply_overrides(get_preset("cartpole-dqn").build(), [*TINY, ("prefetch", 2)])
    result = train(config, tmp_path, verbose=False)
    assert (result.env_steps, result.train_steps) == (1200, 90)
    rows = read_progress(tmp_path / "progress.csv")
    assert rows[-1]["env_steps"] == 1200
    assert all(math.isfinite(r["loss"]) for r in rows)
    longer = apply_overrides(config, [("total_env_steps", 1500)])
    assert train(longer, tmp_path, resume=True, verbose=False).train_steps == 120
