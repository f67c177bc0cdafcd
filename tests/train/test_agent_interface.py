"""The training loop knows only the agent protocol: a tiny agent written here trains through it."""

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from drivetrain.agents import LossInfo, RunPlan, builder_for, register_builder
from drivetrain.policies import RandomPolicy
from drivetrain.replay import UniformReplay
from drivetrain.replay.sources import ReplaySource
from drivetrain.train import ExperimentConfig, train
from drivetrain.train.config import EnvConfig, LoopConfig, ReplayConfig
from drivetrain.train.logger import read_progress


@dataclasses.dataclass
class CountingConfig:
    """A tiny agent's config: it learns nothing, it counts what it was given."""

    scale: float = 1.0
    """Multiplies the mean reward it reports."""
    device: str = "cpu"
    """Unused."""


class CountingAgent:
    """Random actions; ``train`` records the windows it gets and reports their mean reward."""

    def __init__(self, time_step_spec, action_spec, scale, seed):
        self.time_step_spec, self.action_spec = time_step_spec, action_spec
        self.policy = RandomPolicy(time_step_spec, action_spec, seed=seed)
        self.collect_policy = self.policy
        self.scale = scale
        self.train_step = 0

    @property
    def collect_data_spec(self):
        return self.collect_policy.trajectory_spec

    def train(self, experience, weights=None):
        assert weights is None
        assert experience.reward.shape == (4, 3)  # the builder's batch of windows
        self.train_step += 1
        return LossInfo(
            0.0, {"mean_reward": self.scale * float(np.mean(experience.reward)), "ignored": "text"}
        )

    def state_dict(self):
        return {"train_step": self.train_step, "policy": self.policy.state_dict()}

    def load_state_dict(self, state):
        self.train_step = state["train_step"]
        self.policy.load_state_dict(state["policy"])

    def get_weights(self):
        return self.train_step, {}

    def set_weights(self, weights, version):
        del weights, version


class CountingBuilder:
    kind: ClassVar[str] = "counting-test-agent"
    config_type: ClassVar[type] = CountingConfig
    changeable_on_resume: ClassVar[frozenset[str]] = frozenset({"scale"})

    def make_agent(self, config, time_step_spec, action_spec, seed, plan):
        return CountingAgent(time_step_spec, action_spec, config.scale, seed)

    def make_source(self, agent, replay, plan: RunPlan, seed):
        buffer = UniformReplay(agent.collect_data_spec, replay.capacity, plan.num_envs, seed=seed)
        return ReplaySource(
            buffer,
            batch_size=4,
            num_steps=3,
            update_period=plan.update_period,
            gradient_steps=plan.gradient_steps,
        )

    def update_period(self, config, plan):
        return plan.update_period

    def warmup_policy(self, agent, seed):
        return None

    def check(self, config, plan):
        return [] if config.scale > 0 else ["agent.scale must be positive"]


register_builder(CountingBuilder())


def config(**agent):
    return ExperimentConfig(
        env=EnvConfig(name="CartPole-v1", num_envs=1),
        agent=CountingConfig(**agent),
        replay=ReplayConfig(capacity=1_000),
        loop=LoopConfig(
            total_env_steps=400,
            learning_starts=0,
            update_period=40,
            gradient_steps=2,
            eval_interval=0,
            log_interval=100,
            final_eval_episodes=2,
            checkpoint_interval=200,
            progress_bar=False,
            tensorboard=False,
        ),
    )


def test_a_new_agent_trains_through_the_same_loop(tmp_path):
    result = train(config(scale=2.0), tmp_path, verbose=False)
    assert result.env_steps == 400 and result.train_steps == 2 * 400 // 40
    rows = read_progress(tmp_path / "progress.csv")
    assert "mean_reward" in rows[-1] and "ignored" not in rows[-1]  # every scalar of extra, and only those
    assert rows[-1]["mean_reward"] == pytest.approx(2.0)  # CartPole's reward is 1 on every real step
    assert builder_for(CountingConfig()).kind == "counting-test-agent"
    resumed = train(config(scale=3.0), tmp_path, resume=True, verbose=False)  # an allowed change
    assert resumed.env_steps == 400


def test_its_builder_checks_the_run(tmp_path):
    from drivetrain.train.fields import ConfigError

    with pytest.raises(ConfigError, match=r"agent\.scale must be positive"):
        train(config(scale=-1.0), tmp_path, verbose=False)


@pytest.mark.parametrize(
    ("backend", "key"), [("local", "env.num_envs"), ("ray", "execution.envs_per_collector")]
)
def test_a_collect_phase_that_is_not_a_whole_number_of_driver_steps_is_refused(tmp_path, backend, key):
    # 8 environments step together: a phase of 4 env steps would take 8 and train as if it took 4
    from drivetrain.train import apply_overrides, get_preset
    from drivetrain.train.fields import ConfigError

    config = apply_overrides(
        get_preset("cartpole-dqn").build(),
        [("execution.backend", backend), (key, 8), ("loop.update_period", 4), ("loop.gradient_steps", 1)],
    )
    with pytest.raises(ConfigError, match=r"loop\.update_period \(4\) must be a multiple of .* \(8\)"):
        train(config, tmp_path / "run", verbose=False)
    assert not (tmp_path / "run").exists()
