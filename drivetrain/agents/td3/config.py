"""Typed configuration of a TD3 agent (and of DDPG, its special case).

Defaults are TD3's (Fujimoto et al. 2018, "Addressing Function Approximation Error in
Actor-Critic Methods") as CleanRL's ``td3_continuous_action.py`` sets them: two critics,
target policy smoothing with noise 0.2 clipped at 0.5, the actor and the targets updated
every 2 critic updates, exploration noise 0.1. **DDPG** (Lillicrap et al. 2016, with TD3's
networks) is ``TD3Config(num_critics=1, target_policy_noise=0.0, policy_delay=1)``.
Noise scales are in unit actions: 0.1 is a tenth of each dimension's half range.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from drivetrain.core.config_checks import check_fields, require

__all__ = ["TD3Config"]


@dataclasses.dataclass(frozen=True)
class TD3Config:
    """Hyperparameters of :func:`drivetrain.agents.make_td3`.

    Frozen, as the agent built from it fixes them (its compiled update among others):
    ``dataclasses.replace(config, field=value)`` makes a changed copy for a new agent.
    """

    actor_learning_rate: float = 3e-4
    """Adam's learning rate of the actor."""

    critic_learning_rate: float = 3e-4
    """Adam's learning rate of the critics."""

    anneal_learning_rate: bool = False
    """Decay every learning rate linearly to 0 over the run's environment steps (rl-zoo's ``lin_X``:
    Stable-Baselines3 scales by the fraction of the budget still to come)."""

    adam_eps: float = 1e-8
    """Adam's epsilon, for both optimizers."""

    gamma: float = 0.99
    """Discount factor γ."""

    tau: float = 0.005
    """Polyak averaging weight of the target actor and critics."""

    num_critics: int = 2
    """Critics whose minimum makes the target (clipped double Q); 1 for DDPG."""

    policy_delay: int = 2
    """Critic updates per actor and target update (delayed policy updates); 1 for DDPG."""

    target_policy_noise: float = 0.2
    """Std of the Gaussian noise added to the target action (target policy smoothing); 0 for DDPG."""

    target_noise_clip: float = 0.5
    """The target action's noise is clipped to [-target_noise_clip, target_noise_clip]."""

    exploration_noise: float = 0.1
    """Std of the Gaussian noise the collect policy adds to the actor's action."""

    actor_layers: tuple[int, ...] = (256, 256)
    """Widths of the actor's Linear -> ReLU torso."""

    critic_layers: tuple[int, ...] = (256, 256)
    """Widths of each critic's Linear -> ReLU torso."""

    max_grad_norm: float | None = None
    """Clip each optimizer's gradients to this global norm (None: no clipping)."""

    device: str = "cpu"
    """Torch device of the networks ("cpu", "cuda", "cuda:1", ...)."""

    compile: bool | Literal["auto"] = False
    """Run each update (losses, gradients, clipping, Adam steps, the Polyak targets) as one
    torch.compile-d function (two: with and without the actor's delayed update). True, False or
    "auto": compiled on the CPU when a C++ compiler is found (else eager, with a warning), eager
    on other devices; the presets whose runs pay for the compilation set "auto"
    (bench/compile_pays.py). An update is 1.07-1.13x as fast on the presets' networks (one
    thread); the compilations at the start of a run take ~25 s the first time on a machine and
    ~4.5 s once torch's on-disk cache holds them, so they pay from ~34,000-40,000 updates
    (~6,000-7,000 with the cache). The same noise, results within floating-point tolerance and
    the same checkpoints (a run may switch at one)."""

    def __post_init__(self) -> None:
        check_fields(self)  # types first (a ConfigTypeError naming the field), then the ranges
        object.__setattr__(self, "actor_layers", tuple(self.actor_layers))
        object.__setattr__(self, "critic_layers", tuple(self.critic_layers))

        def need(ok: bool, field: str, expected: str) -> None:
            require(self, ok, field, expected)

        for rate in ("actor_learning_rate", "critic_learning_rate", "adam_eps"):
            need(getattr(self, rate) > 0, rate, "a positive number")
        need(0 <= self.gamma <= 1, "gamma", "a number in [0, 1]")
        need(0 < self.tau <= 1, "tau", "a number in (0, 1]")
        need(self.num_critics >= 1, "num_critics", "an integer >= 1")
        need(self.policy_delay >= 1, "policy_delay", "an integer >= 1")
        need(self.target_policy_noise >= 0, "target_policy_noise", "a non-negative number")
        need(self.target_noise_clip >= 0, "target_noise_clip", "a non-negative number")
        need(self.exploration_noise >= 0, "exploration_noise", "a non-negative number")
        need(all(w >= 1 for w in self.actor_layers), "actor_layers", "widths >= 1")
        need(all(w >= 1 for w in self.critic_layers), "critic_layers", "widths >= 1")
        need(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", "positive or None")
