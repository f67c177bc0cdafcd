"""Whole runs of every agent family on a CUDA device (skipped without one; ``-m cuda`` selects them).

Each run trains with ``agent.device = "cuda"`` (compiled where the family has a compiled
update), evaluates, checkpoints and writes ``eval.json``; its agent then loads on the CPU and
acts as the CUDA agent does (feed-forward Q-networks: the same q-values within float32
tolerance), with TF32 off. The continuous-control runs are in ``test_continuous_runs.py``.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.artifacts import load_agent
from drivetrain.train.experiment import make_env

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.usefixtures("full_float32_on_cuda"),
]

COMMON = [
    ("agent.device", "cuda"),
    ("eval_episodes", 1),
    ("final_eval_episodes", 2),
    ("eval_num_envs", 1),
    ("progress_bar", False),
    ("tensorboard", False),
    ("stop_at_return", None),
]
RUNS = {
    "cartpole-dqn": [
        ("total_env_steps", 1_200), ("learning_starts", 200), ("agent.compile", True),
        ("eval_interval", 600), ("log_interval", 200), ("checkpoint_interval", 600),
    ],
    "cartpole-ppo": [
        ("env.num_envs", 2), ("agent.rollout_steps", 64), ("total_env_steps", 1_024),
        ("agent.compile", True), ("eval_interval", 512), ("log_interval", 256), ("checkpoint_interval", 512),
    ],
    "cartpole-reinforce": [
        ("env.num_envs", 2), ("agent.rollout_steps", 200), ("total_env_steps", 1_200),
        ("eval_interval", 600), ("log_interval", 400), ("checkpoint_interval", 600),
    ],
    "cartpole-masked-rdqn": [
        ("total_env_steps", 1_200), ("learning_starts", 300), ("update_period", 16), ("batch_size", 4),
        ("hidden_size", 8), ("fc_layers", (8,)), ("agent.compile", True), ("eval_interval", 600), ("log_interval", 200),
        ("checkpoint_interval", 600),
    ],
    "cartpole-masked-rppo": [
        ("env.num_envs", 2), ("agent.rollout_steps", 64), ("total_env_steps", 1_024),
        ("agent.num_minibatches", 2), ("agent.hidden_size", 16), ("eval_interval", 512),
        ("log_interval", 256), ("checkpoint_interval", 512),
    ],
    "breakout-dqn": [
        ("total_env_steps", 900), ("learning_starts", 300), ("batch_size", 4), ("capacity", 2_000),
        ("conv_layers", ((4, 8, 8),)), ("fc_layers", (16,)), ("agent.compile", True),
        ("eval_interval", 0), ("log_interval", 100), ("checkpoint_interval", 400),
        ("env.atari.max_episode_steps", 500),
    ],
}  # fmt: skip
ATARI = pytest.param(
    "breakout-dqn",
    marks=[
        pytest.mark.atari,
        pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py"),
    ],
)


@pytest.mark.parametrize("preset", [*sorted(set(RUNS) - {"breakout-dqn"}), ATARI])
def test_a_cuda_run_trains_evaluates_and_loads_on_the_cpu(tmp_path, preset):
    config = apply_overrides(get_preset(preset).build(), [*COMMON, *RUNS[preset]])
    result = train(config, tmp_path, verbose=False)
    assert result.env_steps >= config.loop.total_env_steps and result.train_steps > 0
    assert json.loads((tmp_path / "eval.json").read_text())["episodes"] == 2
    assert (tmp_path / "progress.csv").read_text().count("\n") >= 3  # a header and rows
    on_gpu, on_cpu = load_agent(tmp_path), load_agent(tmp_path, device="cpu")
    assert on_gpu.env_steps == on_cpu.env_steps == result.env_steps
    network = getattr(on_gpu.agent, "q_network", None) or on_gpu.agent.network
    assert all(p.is_cuda for p in network.parameters())
    with make_env(config.env, 1, 5) as env:
        time_step = env.reset()
    gpu, cpu = (a.agent.policy for a in (on_gpu, on_cpu))
    if hasattr(gpu, "q_values") and not gpu.stateful:  # near ties of greedy actions may flip
        np.testing.assert_allclose(
            gpu.q_values(time_step.observation), cpu.q_values(time_step.observation), rtol=1e-2, atol=1e-3
        )
        return
    np.testing.assert_array_equal(
        gpu.action(time_step, gpu.get_initial_state(1)).action,
        cpu.action(time_step, cpu.get_initial_state(1)).action,
    )
