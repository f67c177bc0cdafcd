"""Typed configuration of a DQN agent: network, optimizer, targets, loss and exploration.

The training loop's batch size, replay capacity and schedule of env steps live in the
training configuration, not here. Every field has a docstring: the command line shows
it as help.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from drivetrain.core.config_checks import check_fields, require

__all__ = ["DQNConfig"]


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of :func:`drivetrain.agents.make_dqn`.

    Frozen, as the agent built from it fixes them (its compiled update among others):
    ``dataclasses.replace(config, field=value)`` makes a changed copy for a new agent.
    """

    learning_rate: float = 1e-4
    """Learning rate of the optimizer."""

    optimizer: Literal["adam", "rmsprop", "rmsprop_tf"] = "adam"
    """Optimizer: "adam" (torch.optim.Adam), "rmsprop" (torch.optim.RMSprop: ε outside the root, as
    Keras 2's RMSprop without momentum) or "rmsprop_tf" (RMSpropTF: ε inside the root, as TensorFlow's
    kernels and DeepMind's 2015 DQN)."""

    adam_eps: float = 1e-8
    """Adam's epsilon (1.5e-4 in Dopamine's Atari agents; 1e-8 is PyTorch's default)."""

    rmsprop_alpha: float = 0.95
    """RMSprop's smoothing constant ρ (0.95 in the 2015 DQN)."""

    rmsprop_momentum: float = 0.0
    """RMSprop's momentum."""

    rmsprop_eps: float = 0.01
    """RMSprop's epsilon (0.01 in the 2015 DQN, under the root there: use "rmsprop_tf")."""

    rmsprop_centered: bool = True
    """Centered RMSprop (divides by the gradient's estimated variance, as DeepMind's RMSProp)."""

    gamma: float = 0.99
    """Discount factor γ of the return."""

    n_step: int = 1
    """Number of rewards summed in the TD target; windows of n_step + 1 steps are sampled."""

    double: bool = False
    """Double DQN: the online network picks the next action, the target network evaluates it."""

    dueling: bool = False
    """Dueling head: the last fully connected layer splits into value and advantage streams."""

    target_update_period: int = 2000
    """Train steps between target network updates."""

    target_update_tau: float = 1.0
    """Target update weight: 1 copies the online network, tau < 1 is Polyak averaging."""

    loss: Literal["huber", "mse"] = "huber"
    """Loss of the TD error: "huber" (Huber with huber_delta) or "mse" (squared error)."""

    huber_delta: float = 1.0
    """Huber loss threshold δ between the quadratic and the linear part."""

    gradient_clipping: float | None = None
    """Maximum global norm of the gradients (None: no clipping)."""

    reward_scale: float = 1.0
    """Rewards are multiplied by this before the TD target (after reward_clip)."""

    reward_clip: float | None = None
    """Rewards are clipped to [-reward_clip, reward_clip] (1.0 for Atari; None: no clipping)."""

    epsilon_start: float = 1.0
    """Exploration epsilon of the collect policy at train step 0."""

    epsilon_end: float = 0.05
    """Exploration epsilon after epsilon_decay_steps train steps."""

    epsilon_decay_steps: int = 10_000
    """Train steps (agent.train calls, not env steps) over which epsilon decays."""

    epsilon_power: float = 1.0
    """Power of the polynomial epsilon decay (1: linear)."""

    fc_layers: tuple[int, ...] = (512,)
    """Widths of the fully connected hidden layers of the Q-network."""

    conv_layers: tuple[tuple[int, int | tuple[int, int], int | tuple[int, int]], ...] | None = None
    """(filters, kernel, stride) per convolution for image observations, kernel and stride an int or
    an (h, w) pair as TF-Agents writes them: ((32, (8, 8), 4), ...) (None: the Nature DQN CNN)."""

    device: str = "cpu"
    """PyTorch device of the networks and the updates ("cpu", "cuda", "cuda:1", ...)."""

    compile: bool | Literal["auto"] = False
    """Run each update (loss, gradients, clipping, optimizer step) as one torch.compile-d function.
    True, False or "auto": compiled on the CPU when a C++ compiler is found (else eager, with a
    warning), eager on other devices; the presets whose runs pay for the compilation set "auto"
    (bench/compile_pays.py). On cartpole-dqn's network an update is ~1.7x as fast (0.55 vs 0.96
    ms; the whole run 1.50x a hand-written loop's speed, eager 1.06x), the Nature CNN's 1.28x;
    the compilation at the start of a run takes ~12-16 s the first time on a machine and ~3 s
    once torch's on-disk cache holds it, so it pays from ~30,000 updates (~7,000 with the
    cache). R2D2 (this field too): the update unrolled over its window, ~1.5x as fast on
    cartpole-masked-rdqn, ~33 s to compile the first time on a machine. The same results within
    floating-point tolerance and the same checkpoints (Adam, RMSprop, RMSpropTF)."""

    def __post_init__(self) -> None:
        check_fields(self)  # types first (a ConfigTypeError naming the field), then the ranges

        def need(ok: bool, field: str, expected: str) -> None:
            require(self, ok, field, expected)

        need(self.learning_rate > 0, "learning_rate", "a positive number")
        need(
            self.optimizer in ("adam", "rmsprop", "rmsprop_tf"),
            "optimizer",
            "'adam', 'rmsprop' or 'rmsprop_tf'",
        )
        need(self.adam_eps > 0, "adam_eps", "a positive number")
        need(0 <= self.rmsprop_alpha < 1, "rmsprop_alpha", "a number in [0, 1)")
        need(self.rmsprop_momentum >= 0, "rmsprop_momentum", "a non-negative number")
        need(self.rmsprop_eps > 0, "rmsprop_eps", "a positive number")
        need(0 <= self.gamma <= 1, "gamma", "a number in [0, 1]")
        need(self.n_step >= 1, "n_step", "an integer >= 1")
        need(self.target_update_period >= 1, "target_update_period", "an integer >= 1")
        need(0 < self.target_update_tau <= 1, "target_update_tau", "a number in (0, 1]")
        need(self.loss in ("huber", "mse"), "loss", "'huber' or 'mse'")
        need(self.huber_delta > 0, "huber_delta", "a positive number")
        need(self.gradient_clipping is None or self.gradient_clipping > 0, "gradient_clipping", "None or > 0")
        need(self.reward_clip is None or self.reward_clip > 0, "reward_clip", "None or > 0")
        need(self.reward_scale > 0, "reward_scale", "a positive number")
        need(0 <= self.epsilon_start <= 1, "epsilon_start", "a number in [0, 1]")
        need(0 <= self.epsilon_end <= 1, "epsilon_end", "a number in [0, 1]")
        need(self.epsilon_decay_steps >= 1, "epsilon_decay_steps", "an integer >= 1")
        need(self.epsilon_power > 0, "epsilon_power", "a positive number")
        need(all(int(u) >= 1 for u in self.fc_layers), "fc_layers", "positive widths")
        if self.conv_layers is not None:
            from drivetrain.networks.conv import conv_layer  # the networks' own parser and its messages

            for i, layer in enumerate(self.conv_layers):
                try:
                    conv_layer(layer, f"layer {i}")
                except ValueError as e:
                    need(False, "conv_layers", f"(filters, kernel, stride) per layer ({e})")
