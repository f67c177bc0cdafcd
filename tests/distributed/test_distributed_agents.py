"""Every replay-based agent runs on the distributed topology (in-process transport): SAC, TD3, R2D2."""

import json

import pytest

from drivetrain.agents import R2D2, SAC, TD3
from drivetrain.distributed.runner import train_distributed
from drivetrain.distributed.topology import InProcessTransport
from drivetrain.train import apply_overrides, get_preset
from drivetrain.train.artifacts import load_agent

SMALL = [
    ("execution.backend", "ray"),
    ("execution.collectors", 2),
    ("loop.progress_bar", False),
    ("loop.tensorboard", False),
    ("loop.total_env_steps", 800),
    ("loop.learning_starts", 400),
    ("loop.eval_interval", 400),
    ("loop.eval_episodes", 1),
    ("loop.final_eval_episodes", 1),
    ("loop.checkpoint_interval", 400),
]


@pytest.mark.parametrize(
    ("preset", "agent_type", "extra"),
    [
        ("pendulum-sac", SAC, [("agent.actor_layers", (32,)), ("agent.critic_layers", (32,))]),
        ("pendulum-td3", TD3, [("loop.update_period", 100), ("loop.gradient_steps", 100)]),
        ("cartpole-masked-rdqn", R2D2, []),
    ],
)
def test_replay_based_agents_train_distributed(tmp_path, preset, agent_type, extra):
    config = apply_overrides(get_preset(preset).build(), [*SMALL, *extra])
    result = train_distributed(config, tmp_path, transport=InProcessTransport(), verbose=False)
    # the schedule: gradient_steps per update_period env steps after the warm-up (a warm-up that
    # overshoots by a driver step leaves a phase short, as in the local loop)
    plan_steps = config.loop.gradient_steps * (800 - 400) // config.loop.update_period
    assert result.env_steps >= 800 and plan_steps >= result.train_steps >= 0.9 * plan_steps > 0
    assert json.loads((tmp_path / "eval.json").read_text())["env_steps"] == result.env_steps
    loaded = load_agent(tmp_path)
    assert isinstance(loaded.agent, agent_type) and loaded.agent.train_step == result.train_steps
