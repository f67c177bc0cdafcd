"""A user's own agent, registered from outside drivetrain: linear Q-learning in NumPy.

The tests copy this file under a new module name and name it in a config's ``imports``; its
kind is ``linq-<module name>`` so that every copy registers a kind of its own. Its loss info
carries a torch scalar, as agents written in torch return them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch

import drivetrain as dt
from drivetrain.agents import register_builder
from drivetrain.agents.loss_info import LossInfo
from drivetrain.core import types
from drivetrain.core.policy import Policy
from drivetrain.replay.sources import ReplaySource


@dataclasses.dataclass(frozen=True)
class LinQConfig:
    """Linear Q-learning."""

    learning_rate: float = 0.01
    """Step size."""
    gamma: float = 0.99
    """Discount."""
    epsilon: float = 0.1
    """Exploration."""


class _Greedy(Policy):
    def __init__(self, agent: LinQ):
        super().__init__(agent.time_step_spec, agent.action_spec)
        self._agent = agent

    @property
    def greedy(self) -> bool:
        return True

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        q = self._agent.q(time_step.observation)
        return types.PolicyStep(np.argmax(q, axis=-1).astype(self.action_spec.dtype), (), {})


class LinQ:
    """No ``device``, no ``train_sequence_length``, no ``export_module``: only the Agent protocol."""

    def __init__(self, config: LinQConfig, time_step_spec: Any, action_spec: Any, seed: int | None):
        self.config, self.time_step_spec, self.action_spec = config, time_step_spec, action_spec
        rng = np.random.default_rng(seed)
        n_actions = int(action_spec.maximum) - int(action_spec.minimum) + 1
        self.weights = rng.normal(
            0, 0.01, size=(int(np.prod(time_step_spec.observation.shape)) + 1, n_actions)
        )
        self.train_step = 0
        self.policy = _Greedy(self)
        self.collect_policy = dt.policies.EpsilonGreedyPolicy(
            self.policy, config.epsilon, seed=int(rng.integers(2**31)), emit_info=False
        )
        self.collect_data_spec = self.collect_policy.trajectory_spec

    def features(self, obs: Any) -> np.ndarray:
        obs = np.asarray(obs, np.float64).reshape(len(obs), -1)
        return np.concatenate([obs, np.ones((len(obs), 1))], 1)

    def q(self, obs: Any) -> np.ndarray:
        return self.features(obs) @ self.weights

    def train(self, experience: Any, weights: Any = None) -> LossInfo:
        o0, o1 = experience.observation[:, 0], experience.observation[:, 1]
        action = experience.action[:, 0].astype(int)
        valid = (experience.step_type[:, 0] != int(types.StepType.LAST)).astype(np.float64)
        target = experience.reward[:, 0] + self.config.gamma * experience.discount[:, 0] * self.q(o1).max(-1)
        td = (self.q(o0)[np.arange(len(action)), action] - target) * valid
        grad = np.zeros_like(self.weights)
        np.add.at(grad.T, action, td[:, None] * self.features(o0))
        self.weights -= self.config.learning_rate * grad / max(valid.sum(), 1.0)
        self.train_step += 1
        return LossInfo(float(0.5 * np.mean(td**2)), {"td_abs": torch.tensor(np.abs(td).mean())})

    def state_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights.copy(),
            "step": self.train_step,
            "collect": self.collect_policy.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights, self.train_step = state["weights"].copy(), int(state["step"])
        self.collect_policy.load_state_dict(state["collect"])

    def get_weights(self) -> tuple[int, Any]:
        return self.train_step, self.weights.copy()

    def set_weights(self, weights: Any, version: int) -> None:
        self.weights, self.train_step = weights.copy(), int(version)


class LinQBuilder:
    kind: ClassVar[str] = f"linq-{__name__}"
    config_type: ClassVar[type] = LinQConfig
    changeable_on_resume: ClassVar[frozenset[str]] = frozenset({"learning_rate", "epsilon"})

    def make_agent(self, config: Any, time_step_spec: Any, action_spec: Any, seed: Any, plan: Any) -> LinQ:
        return LinQ(config, time_step_spec, action_spec, seed)

    def make_source(self, agent: Any, replay: Any, plan: Any, seed: int) -> ReplaySource:
        buffer = dt.replay.UniformReplay(agent.collect_data_spec, replay.capacity, plan.num_envs, seed=seed)
        return ReplaySource(
            buffer,
            batch_size=plan.batch_size,
            num_steps=2,
            update_period=plan.update_period,
            gradient_steps=plan.gradient_steps,
            prefetch=replay.prefetch,
        )

    def update_period(self, config: Any, plan: Any) -> int:
        return int(plan.update_period)

    def warmup_policy(self, agent: Any, seed: int) -> Policy:
        return dt.policies.RandomPolicy(agent.time_step_spec, agent.action_spec, seed=seed)

    def check(self, config: Any, plan: Any) -> list[str]:
        return (
            []
            if config.learning_rate > 0
            else [f"agent.learning_rate must be > 0, got {config.learning_rate}"]
        )


register_builder(LinQBuilder())
