"""Recurrent agents in the training stack: build, warm up, train, save, load, evaluate and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from resume_checks import CrashError, assert_same_run, crash_at_train_phase

from drivetrain.agents import DQN, R2D2, DQNConfig, R2D2Config, export_policy
from drivetrain.core import types
from drivetrain.core.drivers import StepDriver
from drivetrain.policies import EpsilonGreedyPolicy, RandomPolicy
from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.artifacts import evaluate_run, load_agent
from drivetrain.train.config import config_from_dict, config_to_dict, load_config, save_config
from drivetrain.train.experiment import build_experiment
from drivetrain.train.fields import ConfigError

FIRST = int(types.StepType.FIRST)

TINY = [
    ("total_env_steps", 1600),
    ("learning_starts", 300),
    ("update_period", 16),
    ("gradient_steps", 1),
    ("batch_size", 4),
    ("eval_interval", 800),
    ("eval_episodes", 2),
    ("final_eval_episodes", 2),
    ("eval_num_envs", 2),
    ("stop_at_return", None),
    ("log_interval", 200),
    ("checkpoint_interval", 500),
    ("progress_bar", False),
    ("tensorboard", False),
    ("hidden_size", 8),
    ("fc_layers", (8,)),
    ("sequence_length", 5),
    ("burn_in", 3),
    ("target_update_period", 20),
    ("compile", False),  # the preset compiles ("auto"); the compiled run has its own case below
]


def tiny_config(**extra):
    return apply_overrides(get_preset("cartpole-masked-rdqn").build(), [*TINY, *extra.items()])


def test_experiment_builds_r2d2_with_a_stateful_warmup_policy():
    exp = build_experiment(tiny_config())
    try:
        assert isinstance(exp.agent, R2D2)
        assert isinstance(exp.warmup_policy, EpsilonGreedyPolicy) and exp.warmup_policy.stateful
        assert set(exp.replay.data_spec.policy_info) == {"state"}  # q-values are not stored
    finally:
        exp.close()
    dqn = build_experiment(get_preset("cartpole-masked-dqn").build())
    try:
        assert isinstance(dqn.agent, DQN) and isinstance(dqn.warmup_policy, RandomPolicy)
    finally:
        dqn.close()


def test_warmup_trajectories_store_the_state_the_agent_policy_held():
    """Random actions, but each stored state is what the agent's network computed from the episode so far."""
    exp = build_experiment(tiny_config())
    try:
        seen: list[types.Trajectory] = []
        StepDriver(exp.env, exp.warmup_policy, [exp.source.observe, seen.append], num_steps=120).run()
        net = exp.agent.q_network
        state = net.initial_state(exp.env.batch_size)
        nonzero = 0
        for traj in seen:
            stored = traj.policy_info["state"]
            first = traj.step_type == FIRST
            assert all(not s[first].any() for s in stored)  # zeros at FIRST
            held = tuple(np.where(first[:, None], 0.0, s.numpy()).astype(np.float32) for s in state)
            for s_stored, s_held in zip(stored, held, strict=True):
                np.testing.assert_allclose(s_stored, s_held, rtol=1e-5, atol=1e-6)
            nonzero += int(np.abs(stored[0]).sum() > 0)
            with torch.no_grad():
                obs = torch.as_tensor(traj.observation, dtype=torch.float32)[:, None]
                _, state = net(obs, torch.as_tensor(first)[:, None], tuple(torch.as_tensor(h) for h in held))
        assert nonzero > len(seen) // 2  # mid-episode states are really carried, not zeros
        # and the replay holds them: every stored state in the buffer is finite and the right shape
        batch, _ = exp.replay.sample(4, exp.agent.train_sequence_length)
        assert batch.policy_info["state"][0].shape == (4, exp.agent.train_sequence_length, 8)
    finally:
        exp.close()


def test_train_save_load_and_evaluate_a_recurrent_run(tmp_path):
    result = train(tiny_config(), tmp_path, verbose=False)
    assert result.env_steps >= 1600 and result.train_steps > 0
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["agent_kind"] == "r2d2" and saved["agent"]["core"] == "gru"
    config = load_config(tmp_path / "config.json")
    assert isinstance(config.agent, R2D2Config) and config == tiny_config()
    loaded = load_agent(tmp_path)
    assert isinstance(loaded.agent, R2D2) and loaded.env_steps == result.env_steps
    again, _ = evaluate_run(tmp_path)  # the final evaluation, reproduced from the saved agent
    assert again.returns == result.evaluation.returns
    with pytest.raises(TypeError, match="stateful"):
        export_policy(loaded.agent, tmp_path / "policy.pt2")


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_a_resumed_recurrent_run_matches_the_uninterrupted_one(tmp_path, monkeypatch, compile):
    """The driver's policy state is in the checkpoint: a resumed run continues bit for bit."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    config = tiny_config(compile=compile)
    a = train(config, a_dir, verbose=False)
    crash_at_train_phase(monkeypatch, 45)  # after the checkpoint at env step 500 (iteration 13 of 16 steps)
    with pytest.raises(CrashError):
        train(config, b_dir, verbose=False)
    monkeypatch.undo()
    assert (b_dir / "checkpoints").is_dir() and any((b_dir / "checkpoints").iterdir())
    b = train(config, b_dir, resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps)
    assert b.evaluation == a.evaluation
    assert_same_run(a_dir, b_dir)


def test_config_files_name_their_agent_kind(tmp_path):
    rdqn, dqn = tiny_config(), get_preset("cartpole-dqn").build()
    assert config_to_dict(dqn)["agent_kind"] == "dqn"
    for config in (rdqn, dqn):
        path = save_config(config, tmp_path / "config.json")
        assert load_config(path) == config
    old = config_to_dict(dqn)
    del old["agent_kind"]  # files written before recurrent agents: a DQN config
    assert type(config_from_dict(old).agent) is DQNConfig
    with pytest.raises(ConfigError, match="agent_kind"):
        config_from_dict({**old, "agent_kind": "a2c"})
    bad = config_to_dict(dqn)
    bad["agent"]["core"] = "gru"  # an R2D2 field in a DQN config
    with pytest.raises(ConfigError, match=r"agent\.core"):
        config_from_dict(bad)
