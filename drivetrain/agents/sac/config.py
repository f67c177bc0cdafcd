"""Typed configuration of a SAC agent: networks, optimizers, targets and the entropy temperature.

Every field has a docstring: the command line shows it as help. Defaults are those of
Stable-Baselines3's SAC (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and
Applications": twin critics, Polyak targets, automatic temperature); the training loop's
batch size, warm-up and schedule live in the loop config, and the presets cite their sources.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from drivetrain.core.config_checks import check_fields, require

__all__ = ["SACConfig"]


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Hyperparameters of :func:`drivetrain.agents.make_sac`.

    Frozen, as the agent built from it fixes them (its compiled update among others):
    ``dataclasses.replace(config, field=value)`` makes a changed copy for a new agent.
    """

    actor_learning_rate: float = 3e-4
    """Adam's learning rate of the actor."""

    critic_learning_rate: float = 3e-4
    """Adam's learning rate of the critics."""

    alpha_learning_rate: float = 3e-4
    """Adam's learning rate of the log temperature (autotune_alpha)."""

    anneal_learning_rate: bool = False
    """Decay every learning rate linearly to 0 over the run's environment steps (rl-zoo's ``lin_X``:
    Stable-Baselines3 scales by the fraction of the budget still to come)."""

    adam_eps: float = 1e-8
    """Adam's epsilon, for every optimizer."""

    gamma: float = 0.99
    """Discount factor γ."""

    tau: float = 0.005
    """Polyak averaging weight of the target critics: target <- tau * online + (1 - tau) * target."""

    target_update_period: int = 1
    """Train steps between target updates."""

    num_critics: int = 2
    """Critics whose minimum makes the target and the actor's objective (clipped double Q)."""

    initial_alpha: float = 1.0
    """Entropy temperature α at the start (Stable-Baselines3's and CleanRL's 1.0)."""

    autotune_alpha: bool = True
    """Learn α so that the policy's entropy tracks target_entropy (else α stays initial_alpha)."""

    target_entropy: float | None = None
    """Target entropy of the policy, in unit actions; None: -|A| (minus the number of action dimensions)."""

    actor_layers: tuple[int, ...] = (256, 256)
    """Widths of the actor's Linear -> ReLU torso."""

    critic_layers: tuple[int, ...] = (256, 256)
    """Widths of each critic's Linear -> ReLU torso."""

    log_std_min: float = -20.0
    """Lower clamp of the actor's log standard deviation."""

    log_std_max: float = 2.0
    """Upper clamp of the actor's log standard deviation."""

    max_grad_norm: float | None = None
    """Clip each optimizer's gradients to this global norm (None: no clipping)."""

    device: str = "cpu"
    """Torch device of the networks ("cpu", "cuda", "cuda:1", ...)."""

    compile: bool | Literal["auto"] = False
    """Run each update (the three losses, gradients, clipping, Adam steps and the Polyak targets) as
    one torch.compile-d function. True, False or "auto": compiled on the CPU when a C++ compiler
    is found (else eager, with a warning), eager on other devices; the presets whose runs pay
    for the compilation set "auto" (bench/compile_pays.py). An update is 1.12-1.23x as fast on
    the presets' networks (one thread; matrix products are most of it); the compilation at the
    start of a run takes ~20 s the first time on a machine and ~3.5 s once torch's on-disk cache
    holds it, so it pays from ~10,000-21,000 updates (~2,000-4,000 with the cache). The same
    noise, results within floating-point tolerance and the same checkpoints (a run may switch at
    one)."""

    def __post_init__(self) -> None:
        check_fields(self)  # types first (a ConfigTypeError naming the field), then the ranges
        object.__setattr__(self, "actor_layers", tuple(self.actor_layers))
        object.__setattr__(self, "critic_layers", tuple(self.critic_layers))

        def need(ok: bool, field: str, expected: str) -> None:
            require(self, ok, field, expected)

        for rate in ("actor_learning_rate", "critic_learning_rate", "alpha_learning_rate", "adam_eps"):
            need(getattr(self, rate) > 0, rate, "a positive number")
        need(0 <= self.gamma <= 1, "gamma", "a number in [0, 1]")
        need(0 < self.tau <= 1, "tau", "a number in (0, 1]")
        need(self.target_update_period >= 1, "target_update_period", "an integer >= 1")
        need(self.num_critics >= 1, "num_critics", "an integer >= 1")
        need(self.initial_alpha > 0, "initial_alpha", "a positive number")
        need(all(w >= 1 for w in self.actor_layers), "actor_layers", "widths >= 1")
        need(all(w >= 1 for w in self.critic_layers), "critic_layers", "widths >= 1")
        need(
            self.log_std_min < self.log_std_max, "log_std_min", f"less than log_std_max ({self.log_std_max})"
        )
        need(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", "positive or None")
