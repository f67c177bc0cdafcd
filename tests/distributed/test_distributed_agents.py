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
EAGER = [
    ("agent.compile", False)
]  # pendulum-sac, breakout-dqn and cartpole-masked-rdqn compile by default ("auto"); tested eagerly


@pytest.mark.parametrize(
    ("preset", "agent_type", "extra"),
    [
        ("pendulum-sac", SAC, [("agent.actor_layers", (32,)), ("agent.critic_layers", (32,)), *EAGER]),
        ("pendulum-td3", TD3, [("loop.update_period", 100), ("loop.gradient_steps", 100)]),
        ("cartpole-masked-rdqn", R2D2, EAGER),
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


ATARI_TINY = [
    ("env.num_envs", 2),
    ("loop.update_period", 4),
    ("execution.fragment_steps", 16),
    ("loop.batch_size", 4),
    ("replay.capacity", 2_000),
    ("agent.conv_layers", ((4, 8, 8),)),
    ("agent.fc_layers", (16,)),
    ("env.atari.max_episode_steps", 300),
    *EAGER,
]


@pytest.mark.atari
@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_atari_collectors_run_on_gymnasium_and_envpool_and_resume(tmp_path, backend):
    pytest.importorskip("ale_py")
    if backend == "envpool":
        pytest.importorskip("envpool")
    config = apply_overrides(
        get_preset("breakout-dqn").build(), [*SMALL, *ATARI_TINY, ("env.backend", backend)]
    )
    transport = InProcessTransport()
    whole = train_distributed(config, tmp_path / "whole", transport=transport, verbose=False)
    # the counts of the local loop on these settings (a phase can end a step past its target)
    assert 800 <= whole.env_steps == sum(c.env_steps for c in transport.collectors) < 800 + 8
    assert whole.train_steps == config.loop.gradient_steps * (800 - 400) // 4
    short = apply_overrides(config, [("loop.total_env_steps", 400)])
    train_distributed(short, tmp_path / "cut", transport=InProcessTransport(), verbose=False)
    resumed = train_distributed(
        config, tmp_path / "cut", transport=InProcessTransport(), resume=True, verbose=False
    )
    assert resumed.train_steps == whole.train_steps
    if backend == "gymnasium":  # the environments' state is in the checkpoint: the same episodes
        assert resumed.env_steps == whole.env_steps
    else:  # EnvPool's state cannot be captured: the resumed collectors start new episodes
        assert 800 <= resumed.env_steps < 800 + 8
    assert json.loads((tmp_path / "cut/eval.json").read_text())["env_steps"] == resumed.env_steps
