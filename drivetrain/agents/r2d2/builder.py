"""``make_r2d2``: a recurrent DQN agent, its recurrent Q-network and its optimizer from an :class:`R2D2Config`.

:class:`R2D2Builder` registers it for the training stack (see :mod:`drivetrain.agents.protocol`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from drivetrain.agents.compiling import resolve_compile
from drivetrain.agents.dqn.builder import DQNBuilder, make_optimizer, q_learning_kwargs
from drivetrain.agents.protocol import RunPlan, register_builder
from drivetrain.agents.r2d2.agent import R2D2
from drivetrain.agents.r2d2.config import R2D2Config
from drivetrain.core import seeding, types
from drivetrain.networks.recurrent import RecurrentQNetwork

__all__ = ["R2D2Builder", "make_r2d2"]


def make_r2d2(
    config: R2D2Config, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None = None
) -> R2D2:
    """Builds the recurrent Q-network (seeded), the optimizer and the agent (collect policy seeded).

    The same ``seed`` gives the same initial weights and the same exploration.
    """
    network_seed, policy_seed = seeding.spawn_seeds(seed, 2)
    q_network = RecurrentQNetwork(
        time_step_spec.observation,
        action_spec,
        core=config.core,
        hidden_size=config.hidden_size,
        fc_layers=config.fc_layers,
        conv_layers=config.conv_layers,
        dueling=config.dueling,
        seed=network_seed,
    ).to(config.device)
    compiled = resolve_compile(config.compile, config.device, "R2D2")
    return R2D2(
        time_step_spec,
        action_spec,
        q_network,
        make_optimizer(config, q_network.parameters(), compiled),
        sequence_length=config.sequence_length,
        burn_in=config.burn_in,
        initial_state=config.initial_state,
        priority_eta=config.priority_eta,
        **q_learning_kwargs(config, policy_seed),
        compile=compiled,
    )


class R2D2Builder(DQNBuilder):
    """R2D2 from an :class:`R2D2Config`: DQN's replay and schedule, sequences of its length."""

    kind: ClassVar[str] = "r2d2"
    config_type: ClassVar[type] = R2D2Config
    changeable_on_resume: ClassVar[frozenset[str]] = DQNBuilder.changeable_on_resume | {
        "sequence_length",
        "burn_in",
        "initial_state",
        "priority_eta",
    }

    def window_steps(self, config: Any) -> int:
        """Steps of a sampled window: ``burn_in + sequence_length + n_step``."""
        return int(config.burn_in) + int(config.sequence_length) + int(config.n_step)

    def window_text(self, config: Any) -> str:
        return f"agent.burn_in {config.burn_in} + sequence_length {config.sequence_length} + n_step {config.n_step}"

    def make_agent(
        self, config: Any, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None, plan: RunPlan
    ) -> Any:
        del plan
        return make_r2d2(config, time_step_spec, action_spec, seed)


register_builder(R2D2Builder())
