"""What the builders of the continuous-control agents (SAC, TD3) share: a uniform replay, a random warm-up.

Their experience: windows of 2 steps sampled uniformly from a replay of
``agent.collect_data_spec`` (the environment's actions), ``loop.batch_size`` per train
step, ``loop.gradient_steps`` train steps after each ``loop.update_period`` environment
steps, after a warm-up of ``loop.learning_starts`` steps of uniformly random actions within
the action spec's bounds (:class:`~drivetrain.policies.RandomPolicy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drivetrain.agents.protocol import RunPlan
from drivetrain.core import types
from drivetrain.core.policy import Policy
from drivetrain.core.schedules import Schedule
from drivetrain.policies import RandomPolicy
from drivetrain.replay.sources import ReplaySource

__all__ = ["SHARED_CHANGEABLE_ON_RESUME", "ReplayActorCriticBuilder", "remaining_budget"]


def remaining_budget(plan: RunPlan) -> Schedule:
    """Train step -> the fraction of the run's environment steps still to come when it runs.

    Stable-Baselines3's ``progress_remaining`` (rl-zoo's ``lin_X`` learning rates are ``X`` times
    it): train step ``k`` follows the warm-up and ``k + 1`` collect phases' worth of
    ``update_period / gradient_steps`` environment steps each; 0 at the end of the budget.
    """
    total = max(plan.total_env_steps, 1)
    per_step = max(plan.update_period, 1) / max(plan.gradient_steps, 1)
    start = plan.learning_starts

    def fraction(train_step: int) -> float:
        return max(0.0, 1.0 - (start + (train_step + 1) * per_step) / total)

    return fraction


SHARED_CHANGEABLE_ON_RESUME = frozenset(
    {
        "actor_learning_rate",
        "critic_learning_rate",
        "adam_eps",
        "anneal_learning_rate",
        "gamma",
        "tau",
        "max_grad_norm",
        "device",
        "compile",
    }
)
"""Config fields of SAC and TD3 alike that a resumed run may change (optimizer constants,
targets, clipping, device, the compiled update); each builder adds its own."""


class ReplayActorCriticBuilder:
    """The experience source, schedule, warm-up, checks and agent construction of SAC and TD3.

    A subclass names its agent (``_agent_name``) and its factory (``_make``: ``make_sac`` or
    ``make_td3``, called with ``learning_rate_fraction``)."""

    _agent_name = "the agent"
    _make: Callable[..., Any]

    def make_agent(
        self, config: Any, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None, plan: RunPlan
    ) -> Any:
        """The agent, its learning rates annealed over the run's budget when ``config.anneal_learning_rate``."""
        fraction = remaining_budget(plan) if config.anneal_learning_rate else None
        return type(self)._make(config, time_step_spec, action_spec, seed, learning_rate_fraction=fraction)

    def make_source(self, agent: Any, replay: Any, plan: RunPlan, seed: int) -> ReplaySource:
        from drivetrain import replay as replay_lib

        if replay.prioritized:
            raise ValueError(
                f"replay.prioritized is not supported by {self._agent_name}: use a uniform replay"
            )
        buffer = replay_lib.UniformReplay(agent.collect_data_spec, replay.capacity, plan.num_envs, seed=seed)
        return ReplaySource(
            buffer,
            batch_size=plan.batch_size,
            num_steps=agent.train_sequence_length,
            update_period=plan.update_period,
            gradient_steps=plan.gradient_steps,
            prefetch=replay.prefetch,
        )

    def update_period(self, config: Any, plan: RunPlan) -> int:
        del config
        return plan.update_period

    def warmup_policy(self, agent: Any, seed: int) -> Policy | None:
        """Uniformly random actions within the bounds (what the replay stores: environment actions)."""
        return RandomPolicy(agent.time_step_spec, agent.action_spec, seed=seed)

    def check(self, config: Any, plan: RunPlan) -> list[str]:
        del config
        if plan.learning_starts < 1:
            return [
                f"loop.learning_starts must be >= 1 for {self._agent_name}, got {plan.learning_starts}: "
                "the first train step samples from the replay that the random warm-up fills"
            ]
        return []
