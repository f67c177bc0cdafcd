"""Typed configuration of a REINFORCE agent (the first algorithm of *Hands-On ML*, ch. 18).

Every field has a docstring: the command line shows it as help.
"""

from __future__ import annotations

import dataclasses

from drivetrain.core.config_checks import check_fields, require

__all__ = ["ReinforceConfig"]


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    """Hyperparameters of :func:`drivetrain.agents.make_reinforce`.

    Frozen, as the agent built from it fixes them (its compiled update among others):
    ``dataclasses.replace(config, field=value)`` makes a changed copy for a new agent.
    """

    learning_rate: float = 0.01
    """Adam's learning rate (0.01 in the book)."""

    adam_eps: float = 1e-8
    """Adam's epsilon."""

    rollout_steps: int = 500
    """Steps collected per environment between updates; each update trains on the episodes that
    ended (an unfinished episode waits for its end, its steps kept for the next update)."""

    gamma: float = 0.95
    """Discount factor γ of the returns (0.95 in the book)."""

    normalize_returns: bool = True
    """Normalize the returns of each update to zero mean and unit variance, as the book does (with
    a baseline: the advantages, returns minus values)."""

    baseline: bool = False
    """Subtract a learned value V(o) from the returns (REINFORCE with baseline; the critic is
    trained on the returns, and a truncated episode's return bootstraps from the value of its
    final observation)."""

    vf_coef: float = 0.5
    """Weight of the baseline's loss (with baseline=True)."""

    ent_coef: float = 0.0
    """Weight of an entropy bonus."""

    max_grad_norm: float | None = None
    """Clip the gradients' global norm (None: no clipping)."""

    layers: tuple[int, ...] = (32,)
    """Widths of the Linear -> tanh layers of the policy (and baseline) torsos."""

    device: str = "cpu"
    """Torch device of the network."""

    def __post_init__(self) -> None:
        check_fields(self)  # types first (a ConfigTypeError naming the field), then the ranges
        object.__setattr__(self, "layers", tuple(self.layers))

        def need(ok: bool, field: str, expected: str) -> None:
            require(self, ok, field, expected)

        need(self.learning_rate > 0, "learning_rate", "a positive number")
        need(self.adam_eps > 0, "adam_eps", "a positive number")
        need(self.rollout_steps >= 1, "rollout_steps", "an integer >= 1")
        need(0 <= self.gamma <= 1, "gamma", "a number in [0, 1]")
        need(self.vf_coef >= 0, "vf_coef", "a non-negative number")
        need(self.ent_coef >= 0, "ent_coef", "a non-negative number")
        need(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", "positive or None")
        need(all(w >= 1 for w in self.layers), "layers", "widths >= 1")
