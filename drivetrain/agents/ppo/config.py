"""Typed configuration of a PPO agent: network, rollouts, loss and optimization.

Every field has a docstring: the command line shows it as help. Defaults are the
common PPO settings of CleanRL's ``ppo.py`` and Stable-Baselines3 (Huang et al. 2022);
the presets set each task's own values and cite their source.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from drivetrain.core.config_checks import check_fields, require

__all__ = ["PPOConfig"]


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of :func:`drivetrain.agents.make_ppo`.

    Frozen, as the agent built from it fixes them (its compiled update among others):
    ``dataclasses.replace(config, field=value)`` makes a changed copy for a new agent.
    """

    learning_rate: float = 2.5e-4
    """Adam's learning rate (at the start, when annealed)."""

    anneal_learning_rate: bool = True
    """Anneal the learning rate linearly to 0 over the run's planned updates."""

    adam_eps: float = 1e-5
    """Adam's epsilon (1e-5 in the PPO implementations, not PyTorch's 1e-8)."""

    rollout_steps: int = 128
    """Steps collected per environment between updates (n_steps): a rollout holds
    rollout_steps x num_envs transitions."""

    num_epochs: int = 4
    """Passes over each rollout."""

    num_minibatches: int = 4
    """Minibatches per pass: each covers 1/num_minibatches of the rollout (of the environments,
    for a recurrent network, whose minibatches are whole sequences)."""

    gamma: float = 0.99
    """Discount factor γ."""

    gae_lambda: float = 0.95
    """λ of generalized advantage estimation (1: Monte-Carlo, 0: one-step TD)."""

    clip_ratio: float = 0.2
    """ε of the clipped surrogate: ratios outside [1 - ε, 1 + ε] get no gradient."""

    anneal_clip_ratio: bool = False
    """Anneal clip_ratio linearly to 0 over the run's planned updates (rl-baselines3-zoo's lin_0.2)."""

    value_clip: float | None = None
    """Clip the value's change from the collect-time value to ±value_clip in the value loss
    (None: no clipping)."""

    vf_coef: float = 0.5
    """Weight of the value loss, ½ mean((V - R)²) as CleanRL's (Stable-Baselines3's is mean((V - R)²):
    the same vf_coef gives its value term twice this weight)."""

    ent_coef: float = 0.0
    """Weight of the entropy bonus."""

    max_grad_norm: float | None = 0.5
    """Clip the gradients' global norm (None: no clipping)."""

    normalize_advantages: bool = True
    """Normalize the advantages of each minibatch to zero mean and unit variance."""

    target_kl: float | None = None
    """Stop a rollout's epochs early once a minibatch's approximate KL exceeds this (None: never)."""

    layers: tuple[int, ...] = (64, 64)
    """Widths of the Linear -> tanh layers of the actor's and the critic's torsos."""

    shared: bool = False
    """One torso for the actor and the critic (else two of the same widths)."""

    core: Literal["lstm", "gru"] | None = None
    """A recurrent core after the encoder (and the shared torso): recurrent PPO, trained on whole
    sequences from the state stored at their first step."""

    hidden_size: int = 128
    """Units of the recurrent core."""

    initial_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian policy (continuous actions)."""

    normalize_observations: bool = False
    """Normalize observations by running mean and std (kept in the network: checkpointed and
    exported), updated after each rollout's epochs (float vector observations)."""

    scale_rewards: bool = False
    """Divide rewards by the running std of the discounted return before computing advantages
    (the critic learns scaled returns; the metrics report the real ones)."""

    device: str = "cpu"
    """Torch device of the networks ("cpu", "cuda", "cuda:1", ...)."""

    compile: bool | Literal["auto"] = False
    """Run each minibatch update (network, loss, gradients, clipping, Adam step) as one torch.compile-d
    function (feed-forward networks only; "auto" leaves a recurrent core eager). True, False or
    "auto": compiled on the CPU when a C++ compiler is found (else eager, with a warning), eager
    on other devices; the presets whose runs pay for the compilation set "auto"
    (bench/compile_pays.py). An update is 2.3-3.2x as fast on the presets' networks (the whole
    cartpole-ppo run 1.83x a hand-written loop's speed, eager 1.04x); the compilation on the
    run's first update takes ~16-26 s the first time on a machine and ~3-4 s once torch's
    on-disk cache holds it, so it pays from ~25,000-37,000 updates (~6,000 with the cache). The
    same results within floating-point tolerance and the same checkpoints."""

    def __post_init__(self) -> None:
        check_fields(self)  # types first (a ConfigTypeError naming the field), then the ranges
        object.__setattr__(self, "layers", tuple(self.layers))

        def need(ok: bool, field: str, expected: str) -> None:
            require(self, ok, field, expected)

        need(self.learning_rate > 0, "learning_rate", "a positive number")
        need(self.adam_eps > 0, "adam_eps", "a positive number")
        need(self.rollout_steps >= 2, "rollout_steps", "an integer >= 2")
        need(self.num_epochs >= 1, "num_epochs", "an integer >= 1")
        need(self.num_minibatches >= 1, "num_minibatches", "an integer >= 1")
        need(0 <= self.gamma <= 1, "gamma", "a number in [0, 1]")
        need(0 <= self.gae_lambda <= 1, "gae_lambda", "a number in [0, 1]")
        need(self.clip_ratio > 0, "clip_ratio", "a positive number")
        need(self.value_clip is None or self.value_clip > 0, "value_clip", "a positive number or None")
        need(self.vf_coef >= 0, "vf_coef", "a non-negative number")
        need(self.ent_coef >= 0, "ent_coef", "a non-negative number")
        need(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", "positive or None")
        need(self.target_kl is None or self.target_kl > 0, "target_kl", "a positive number or None")
        need(all(w >= 1 for w in self.layers), "layers", "widths >= 1")
        need(self.core in (None, "lstm", "gru"), "core", "'lstm', 'gru' or None")
        need(self.hidden_size >= 1, "hidden_size", "an integer >= 1")
        need(
            not (self.compile is True and self.core is not None),
            "compile",
            "False or 'auto' with a recurrent core (it trains eagerly)",
        )
