"""SAC and TD3 through the training stack: resume bit for bit, logged scalars, presets, clear refusals."""

import importlib.util
import json

import pytest
from resume_checks import CrashError, assert_same_run, crash_at_train_phase

from drivetrain.agents import SAC, TD3, SACConfig, TD3Config
from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.artifacts import load_agent
from drivetrain.train.loop import RunSetupError

TINY = [
    ("total_env_steps", 700),
    ("learning_starts", 200),
    ("batch_size", 16),
    ("agent.actor_layers", (16, 16)),
    ("agent.critic_layers", (16, 16)),
    ("eval_interval", 300),
    ("eval_episodes", 1),
    ("final_eval_episodes", 1),
    ("eval_num_envs", 1),
    ("log_interval", 100),
    ("checkpoint_interval", 300),
    ("progress_bar", False),
    ("tensorboard", False),
    ("agent.compile", False),  # the stack eagerly; compiled updates: tests/agents/test_continuous_compiled.py
]


def tiny(preset, *extra):
    return apply_overrides(get_preset(preset).build(), [*TINY, *extra])


@pytest.mark.parametrize(
    ("preset", "extra", "crash"),
    [
        ("pendulum-sac", [], 250),  # train phases come one per env step after the warm-up: env step 450
        ("pendulum-td3", [("update_period", 50), ("gradient_steps", 50)], 6),  # env step 500
    ],
)
def test_a_run_resumed_after_a_crash_matches_the_uninterrupted_one(
    tmp_path, monkeypatch, preset, extra, crash
):
    config = tiny(preset, *extra)
    a = train(config, tmp_path / "a", verbose=False)
    crash_at_train_phase(monkeypatch, crash)  # after the checkpoint at env step 300, before the next
    with pytest.raises(CrashError):
        train(config, tmp_path / "b", verbose=False)
    monkeypatch.undo()
    b = train(config, tmp_path / "b", resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps)
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_sac_runs_log_their_scalars_and_reload(tmp_path):
    result = train(tiny("pendulum-sac", ("total_env_steps", 400)), tmp_path, verbose=False)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"critic_loss", "actor_loss", "alpha", "entropy", "q_values", "critic_grad_norm"} <= set(header)
    assert json.loads((tmp_path / "config.json").read_text())["agent_kind"] == "sac"
    loaded = load_agent(tmp_path)
    assert isinstance(loaded.agent, SAC) and loaded.env_steps == result.env_steps == 400
    assert result.train_steps == 200  # one per env step after the 200 warm-up steps


def test_td3_follows_the_episode_schedule_of_its_preset(tmp_path):
    config = tiny("pendulum-td3", ("update_period", 100), ("gradient_steps", 100), ("total_env_steps", 400))
    result = train(config, tmp_path, verbose=False)
    assert result.train_steps == 200
    assert isinstance(load_agent(tmp_path).agent, TD3)


def test_prioritized_replay_and_no_warmup_are_refused_by_name(tmp_path):
    from drivetrain.train.fields import ConfigError

    with pytest.raises(RunSetupError, match=r"replay\.prioritized is not supported by SAC"):
        train(tiny("pendulum-sac", ("replay.prioritized", True)), tmp_path / "p", verbose=False)
    with pytest.raises(ConfigError, match=r"loop\.learning_starts must be >= 1 for TD3"):
        train(tiny("pendulum-td3", ("learning_starts", 0)), tmp_path / "w", verbose=False)


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is not None, reason="MuJoCo is installed")
@pytest.mark.parametrize("preset", ["halfcheetah-sac", "halfcheetah-td3", "hopper-sac"])
def test_mujoco_presets_without_mujoco_stop_before_writing_and_name_the_extra(tmp_path, preset):
    with pytest.raises(RunSetupError, match=r'needs the mujoco extra: pip install "drivetrain\[mujoco\]"'):
        train(get_preset(preset).build(), tmp_path / "run", verbose=False)
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the mujoco extra")
@pytest.mark.parametrize("preset", ["halfcheetah-sac", "halfcheetah-td3", "hopper-sac"])
def test_mujoco_presets_train_evaluate_and_reload(tmp_path, preset):
    config = tiny(preset, ("total_env_steps", 300), ("checkpoint_interval", 300), ("eval_interval", 300))
    config = apply_overrides(config, [("env.max_episode_steps", 100)])
    result = train(config, tmp_path, verbose=False)
    assert result.train_steps == 100  # one per env step after the 200 warm-up steps
    assert json.loads((tmp_path / "eval.json").read_text())["episodes"] == 1
    assert load_agent(tmp_path).env_steps == 300


def test_the_continuous_presets_are_registered_with_their_agents():
    configs = {
        "pendulum-sac": SACConfig,
        "pendulum-td3": TD3Config,
        "lunarlander-continuous-sac": SACConfig,
        "halfcheetah-sac": SACConfig,
        "halfcheetah-td3": TD3Config,
        "hopper-sac": SACConfig,
    }
    for name, config_type in configs.items():
        config = get_preset(name).build()
        assert type(config.agent) is config_type
        assert config.loop.batch_size == 256 and config.loop.learning_starts > 0
    assert get_preset("pendulum-td3").build().agent.actor_layers == (400, 300)


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset", ["pendulum-sac", "pendulum-td3"])
def test_a_cuda_run_trains_evaluates_and_exports(tmp_path, preset):
    from drivetrain.export import export_policy, load_exported_policy

    config = tiny(
        preset,
        ("agent.device", "cuda"),
        ("total_env_steps", 400),
        ("update_period", 50),
        ("gradient_steps", 50),
    )
    result = train(config, tmp_path, verbose=False)
    assert result.train_steps == 200
    loaded = load_agent(tmp_path)
    export_policy(loaded.agent, tmp_path / "p.pt2")
    assert load_exported_policy(tmp_path / "p.pt2").output_name == "mean"


def test_a_nan_loss_in_sac_stops_the_run_as_training_diverged(tmp_path, monkeypatch):
    # SAC refuses a non-finite loss before its optimizer step; the loop reports a divergence
    # naming the train step and the last good checkpoint, not a FloatingPointError traceback
    import math

    import torch

    from drivetrain.train.loop import TrainingDivergedError

    real = SAC.train

    def poisoned(self, batch, weights=None):
        if self.train_step == 150:  # env step 350, after the checkpoint at env step 300
            with torch.no_grad():
                next(self.networks["critic"].parameters()).fill_(math.nan)
        return real(self, batch, weights)

    monkeypatch.setattr(SAC, "train", poisoned)
    with pytest.raises(TrainingDivergedError, match=r"train step 151 .*last good checkpoint is .*ckpt-"):
        train(tiny("pendulum-sac"), tmp_path, verbose=False)
    agent = load_agent(tmp_path).agent
    assert all(torch.isfinite(t).all() for t in agent.networks.state_dict().values())
