"""``make_sac``: a SAC agent, its actor and critics from a :class:`SACConfig`; and its builder."""

from __future__ import annotations

from typing import Any, ClassVar

from drivetrain.agents.continuous.builder import SHARED_CHANGEABLE_ON_RESUME, ReplayActorCriticBuilder
from drivetrain.agents.protocol import register_builder
from drivetrain.agents.sac.agent import SAC
from drivetrain.agents.sac.config import SACConfig
from drivetrain.core import seeding, types
from drivetrain.core.schedules import Schedule
from drivetrain.networks.continuous import QCritics, SquashedGaussianActor, continuous_action_dim

__all__ = ["SACBuilder", "make_sac"]


def make_sac(
    config: SACConfig,
    time_step_spec: types.TimeStep,
    action_spec: Any,
    seed: int | None = None,
    *,
    learning_rate_fraction: Schedule | None = None,
) -> SAC:
    """Builds the actor and the critics (seeded) and the agent (its sampling seeded).

    ``learning_rate_fraction``: train step -> the factor of every learning rate (None: 1); the
    builder passes :func:`~drivetrain.agents.continuous.builder.remaining_budget` when
    ``config.anneal_learning_rate``. The same ``seed`` gives the same initial weights and the same noise. TypeError for an action
    spec that is not a float ``BoundedArraySpec`` of shape ``(d,)`` with finite bounds.
    """
    dim = continuous_action_dim(action_spec, "SAC")
    actor_seed, critic_seed, agent_seed = seeding.spawn_seeds(seed, 3)
    actor = SquashedGaussianActor(
        time_step_spec.observation,
        dim,
        config.actor_layers,
        log_std_bounds=(config.log_std_min, config.log_std_max),
        seed=actor_seed,
    )
    critic = QCritics(
        time_step_spec.observation,
        dim,
        config.critic_layers,
        num_critics=config.num_critics,
        seed=critic_seed,
    )
    return SAC(
        time_step_spec,
        action_spec,
        actor,
        critic,
        config,
        seed=agent_seed,
        learning_rate_fraction=learning_rate_fraction,
    )


class SACBuilder(ReplayActorCriticBuilder):
    """SAC from a :class:`SACConfig`; experience: a uniform replay after a random warm-up
    (:class:`~drivetrain.agents.continuous.builder.ReplayActorCriticBuilder`)."""

    kind: ClassVar[str] = "sac"
    config_type: ClassVar[type] = SACConfig
    changeable_on_resume: ClassVar[frozenset[str]] = SHARED_CHANGEABLE_ON_RESUME | {
        "alpha_learning_rate",
        "target_update_period",
        "autotune_alpha",
        "target_entropy",
        "log_std_min",
        "log_std_max",
    }
    """Optimizer constants, targets, the temperature's tuning, clamps and device (not the networks'
    shapes, the number of critics, nor initial_alpha, which the checkpoint's log α replaces)."""
    _agent_name = "SAC"
    _make = staticmethod(make_sac)


register_builder(SACBuilder())
