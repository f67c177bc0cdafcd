"""PPO and REINFORCE through the training stack: resume bit for bit, config files, checks, export."""

import json

import numpy as np
import pytest
from resume_checks import CrashError, assert_same_run, crash_at_train_phase

from drivetrain.agents import PPO, PPOConfig, Reinforce
from drivetrain.export import load_exported_policy
from drivetrain.train import apply_overrides, get_preset, load_config, train
from drivetrain.train.artifacts import load_agent
from drivetrain.train.fields import ConfigError

TINY = [
    ("env.num_envs", 2),
    ("agent.rollout_steps", 64),
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


def tiny(preset, *extra):
    return apply_overrides(get_preset(preset).build(), [*TINY, *extra])


def test_a_ppo_run_resumed_after_a_crash_matches_the_uninterrupted_one(tmp_path, monkeypatch):
    config = tiny("cartpole-ppo", ("agent.num_minibatches", 2))
    a = train(config, tmp_path / "a", verbose=False)
    crash_at_train_phase(monkeypatch, 12)  # after the checkpoint at env step 640, before the next
    with pytest.raises(CrashError):
        train(config, tmp_path / "b", verbose=False)
    monkeypatch.undo()
    b = train(config, tmp_path / "b", resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps)
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_a_recurrent_ppo_run_resumes_bit_for_bit_too(tmp_path, monkeypatch):
    config = tiny("cartpole-masked-rppo", ("agent.num_minibatches", 2), ("agent.hidden_size", 16))
    train(config, tmp_path / "a", verbose=False)
    crash_at_train_phase(monkeypatch, 9)
    with pytest.raises(CrashError):
        train(config, tmp_path / "b", verbose=False)
    monkeypatch.undo()
    train(config, tmp_path / "b", resume=True, verbose=False)
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_policy_gradient_runs_log_their_own_scalars_and_reload(tmp_path):
    result = train(tiny("cartpole-reinforce", ("agent.rollout_steps", 200)), tmp_path, verbose=False)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"policy_loss", "value_loss", "entropy", "episode_steps"} <= set(header)
    assert json.loads((tmp_path / "config.json").read_text())["agent_kind"] == "reinforce"
    loaded = load_agent(tmp_path)
    assert isinstance(loaded.agent, Reinforce) and loaded.env_steps == result.env_steps
    assert load_config(tmp_path / "config.json") == tiny("cartpole-reinforce", ("agent.rollout_steps", 200))


def test_on_policy_agents_refuse_a_random_warmup_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"loop\.learning_starts must be 0 for PPO"):
        train(tiny("cartpole-ppo", ("learning_starts", 100)), tmp_path, verbose=False)
    with pytest.raises(ConfigError, match=r"agent\.num_minibatches .* exceeds env\.num_envs"):
        train(tiny("cartpole-masked-rppo", ("agent.num_minibatches", 4)), tmp_path, verbose=False)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_ppo_policies_export_discrete_and_continuous(tmp_path, env_id):
    import drivetrain as dt
    from drivetrain.agents import make_ppo
    from drivetrain.export import export_policy

    env = dt.envs.make(env_id, num_envs=3, seed=0)
    agent = make_ppo(PPOConfig(normalize_observations=True), env.time_step_spec(), env.action_spec(), seed=0)
    ts = env.reset()
    agent.network.obs_rms.update(np.random.default_rng(0).normal(2.0, 3.0, (50, *ts.observation.shape[1:])))
    export_policy(agent, tmp_path / "p.pt2")
    exported = load_exported_policy(tmp_path / "p.pt2")
    np.testing.assert_allclose(exported.action(ts.observation), agent.policy.action(ts).action, rtol=1e-6)
    assert exported.output_name == ("mean" if env_id == "Pendulum-v1" else "logits")
    assert isinstance(agent, PPO)


def test_a_nan_loss_in_ppo_stops_the_run_as_training_diverged(tmp_path, monkeypatch):
    # The actor-critic agents refuse a non-finite loss before their optimizer step; the loop
    # must still report it as a divergence naming the train step and the last good checkpoint
    # (the CLI's one-line error), not let a FloatingPointError escape.
    import math

    import torch

    from drivetrain.train.loop import TrainingDivergedError

    real = PPO.train

    def poisoned(self, batch, weights=None):
        if self.train_step == 200:  # the first update after the checkpoint at env step 515
            with torch.no_grad():
                next(self.network.parameters()).fill_(math.nan)
        return real(self, batch, weights)

    monkeypatch.setattr(PPO, "train", poisoned)
    with pytest.raises(TrainingDivergedError, match=r"train step 201 .*last good checkpoint is .*ckpt-") as e:
        train(tiny("cartpole-ppo", ("agent.num_minibatches", 2)), tmp_path, verbose=False)
    assert "gradient_clipping" not in str(e.value)  # DQN's field names are no advice for PPO
    agent = load_agent(tmp_path).agent  # agent.pkl of the last checkpoint: finite weights
    assert all(torch.isfinite(t).all() for t in agent.network.state_dict().values())
