"""Typed configuration of a recurrent DQN (R2D2-style) agent.

``R2D2Config`` extends :class:`~drivetrain.agents.DQNConfig` (optimizer, targets, loss,
exploration mean the same) with the recurrent core and the sequence layout. A sampled
window has ``burn_in + sequence_length + n_step`` steps: the burn-in warms the state up,
the loss covers ``sequence_length`` steps, and the last ``n_step`` steps only provide
bootstrap targets. ``fc_layers`` are the layers between the encoder and the core.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from drivetrain.agents.dqn.config import DQNConfig
from drivetrain.core.config_checks import require

__all__ = ["R2D2Config"]


@dataclasses.dataclass(frozen=True)
class R2D2Config(DQNConfig):
    """Hyperparameters of :func:`drivetrain.agents.r2d2.make_r2d2`.

    Frozen, as the agent built from it fixes them (its compiled update among others):
    ``dataclasses.replace(config, field=value)`` makes a changed copy for a new agent.
    """

    core: Literal["lstm", "gru"] = "lstm"
    """Recurrent core of the Q-network: "lstm" or "gru"."""

    hidden_size: int = 128
    """Width of the recurrent state."""

    sequence_length: int = 20
    """Steps per sampled sequence that are trained on (T, after the burn-in)."""

    burn_in: int = 10
    """Steps at the start of each sequence that only warm the recurrent state up (no loss, no gradient)."""

    initial_state: Literal["stored", "zeros"] = "stored"
    """Start each sequence from the state stored at its first step ("stored", R2D2) or from zeros."""

    priority_eta: float = 0.9
    """Sequence priority: eta * max |td| + (1 - eta) * mean |td| over the sequence (prioritized replay)."""

    def __post_init__(self) -> None:
        super().__post_init__()  # checks the types of every field, these included

        def need(ok: bool, field: str, expected: str) -> None:
            require(self, ok, field, expected)

        need(self.core in ("lstm", "gru"), "core", "'lstm' or 'gru'")
        need(self.hidden_size >= 1, "hidden_size", "an integer >= 1")
        need(self.sequence_length >= 1, "sequence_length", "an integer >= 1")
        need(self.burn_in >= 0, "burn_in", "an integer >= 0")
        need(self.initial_state in ("stored", "zeros"), "initial_state", "'stored' or 'zeros'")
        need(0.0 <= self.priority_eta <= 1.0, "priority_eta", "a number in [0, 1]")
