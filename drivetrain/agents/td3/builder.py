"""``make_td3``: a TD3 (or DDPG) agent, its actor and critics from a :class:`TD3Config`; and its builder."""

from __future__ import annotations

from typing import Any, ClassVar

from drivetrain.agents.continuous.builder import SHARED_CHANGEABLE_ON_RESUME, ReplayActorCriticBuilder
from drivetrain.agents.protocol import register_builder
from drivetrain.agents.td3.agent import TD3
from drivetrain.agents.td3.config import TD3Config
from drivetrain.core import seeding, types
from drivetrain.core.schedules import Schedule
from drivetrain.networks.continuous import DeterministicActor, QCritics, continuous_action_dim

__all__ = ["TD3Builder", "make_td3"]


def make_td3(
    config: TD3Config,
    time_step_spec: types.TimeStep,
    action_spec: Any,
    seed: int | None = None,
    *,
    learning_rate_fraction: Schedule | None = None,
) -> TD3:
    """Builds the actor and the critics (seeded) and the agent (its noise seeded).

    ``learning_rate_fraction``: train step -> the factor of every learning rate (None: 1); the
    builder passes :func:`~drivetrain.agents.continuous.builder.remaining_budget` when
    ``config.anneal_learning_rate``. The same ``seed`` gives the same initial weights and the same noise. TypeError for an action
    spec that is not a float ``BoundedArraySpec`` of shape ``(d,)`` with finite bounds.
    """
    dim = continuous_action_dim(action_spec, "TD3")
    actor_seed, critic_seed, agent_seed = seeding.spawn_seeds(seed, 3)
    actor = DeterministicActor(time_step_spec.observation, dim, config.actor_layers, seed=actor_seed)
    critic = QCritics(
        time_step_spec.observation,
        dim,
        config.critic_layers,
        num_critics=config.num_critics,
        seed=critic_seed,
    )
    return TD3(
        time_step_spec,
        action_spec,
        actor,
        critic,
        config,
        seed=agent_seed,
        learning_rate_fraction=learning_rate_fraction,
    )


class TD3Builder(ReplayActorCriticBuilder):
    """TD3 (and DDPG) from a :class:`TD3Config`; experience: a uniform replay after a random warm-up
    (:class:`~drivetrain.agents.continuous.builder.ReplayActorCriticBuilder`)."""

    kind: ClassVar[str] = "td3"
    config_type: ClassVar[type] = TD3Config
    changeable_on_resume: ClassVar[frozenset[str]] = SHARED_CHANGEABLE_ON_RESUME | {
        "policy_delay",
        "target_policy_noise",
        "target_noise_clip",
        "exploration_noise",
    }
    """Optimizer constants, targets, delays, noises and device (not the networks' shapes nor the
    number of critics)."""
    _agent_name = "TD3"
    _make = staticmethod(make_td3)


register_builder(TD3Builder())
