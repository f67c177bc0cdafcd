"""RMSprop as TensorFlow's kernels and DeepMind's DQN compute it: epsilon inside the square root.

:class:`RMSpropTF` updates each parameter ``w`` with gradient ``g`` as::

    ms  <- rho * ms + (1 - rho) * g²                      # mean square, starts at initial_mean_square
    mg  <- rho * mg + (1 - rho) * g                       # mean gradient (centered only), starts at 0
    den  = sqrt(ms - mg² + eps)   if centered else sqrt(ms + eps)
    mom <- momentum * mom + lr * g / den                  # kept only when momentum > 0
    w   <- w - mom                (w <- w - lr * g / den  when momentum == 0)

This is TensorFlow's ``ApplyRMSProp`` / ``ApplyCenteredRMSProp`` (used by
``tf.compat.v1.train.RMSPropOptimizer``, which starts ``ms`` at 1, and by the Keras 2
``RMSprop`` when ``momentum > 0``), Keras 3's ``RMSprop``, and the update of DeepMind's
2015 DQN (``dqn/NeuralQLearner.lua``: ``g2 = 0.95 g2 + 0.05 dw²; g = 0.95 g + 0.05 dw;
w += lr dw / sqrt(g2 - g² + 0.01)``, a centered RMSprop with ``eps = 0.01``).
``torch.optim.RMSprop`` adds ``eps`` *outside* the root (``g / (sqrt(ms - mg²) + eps)``),
as the Keras 2 ``RMSprop`` does when ``momentum == 0``: for small gradients the steps of
the two differ by orders of magnitude.

The state (``step``, ``square_avg``, ``grad_avg``, ``momentum_buffer`` per parameter) is
``torch.optim.Optimizer`` state: ``state_dict()`` / ``load_state_dict()`` round-trip it
exactly, so a resumed run continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["RMSpropTF", "adam", "load_optimizer_state"]


def adam(params: Iterable[torch.Tensor], *, lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """``torch.optim.Adam``, fused when every parameter can be: one kernel steps all parameters.

    Fused when every parameter is a floating-point tensor on a device with fused Adam
    kernels (the CPU and CUDA among them); else the default implementation. The fused step
    computes the same update up to floating-point rounding, with the same state (``step``,
    ``exp_avg``, ``exp_avg_sq``), so checkpoints load into either. On a small network the
    default step's per-parameter operations cost more than its arithmetic: fused, an update
    of the ``cartpole-dqn`` network is about a tenth faster on one CPU thread
    (``bench/train_update.py``).
    """
    params = list(params)
    devices = torch.utils._foreach_utils._get_fused_kernels_supported_devices()
    fused = bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)
    return torch.optim.Adam(params, lr=lr, eps=eps, fused=fused or None)


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, state: dict[str, Any], *, keep_hyperparameters: bool = True
) -> None:
    """``optimizer.load_state_dict(state)``, then two repairs of what it leaves.

    - With ``keep_hyperparameters``, every ``param_groups`` entry but the parameters (learning
      rate, epsilon, ...) stays what it was before: an agent built from a config with a new
      learning rate trains with it after loading an older checkpoint.
    - Each state tensor shaped like its parameter gets the parameter's memory layout. The
      loaded tensors keep the strides they were saved with, while a first step creates them
      like the parameter: a checkpoint written while convolution weights were contiguous
      holds contiguous moments for what are now channels-last weights
      (:mod:`drivetrain.networks.conv`). So the steps after a resume run on the layouts of
      a run that never stopped.
    """
    built = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    if keep_hyperparameters:
        for group, hyperparameters in zip(optimizer.param_groups, built, strict=True):
            group.update(hyperparameters)
    for p, moments in optimizer.state.items():  # keyed by parameter
        for key, value in moments.items():
            if isinstance(value, torch.Tensor) and value.shape == p.shape and value.stride() != p.stride():
                moments[key] = torch.empty_like(p, dtype=value.dtype, device=value.device).copy_(value)


class RMSpropTF(torch.optim.Optimizer):
    """RMSprop with ``eps`` inside the square root (see the module docstring).

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate (>= 0).
        rho: decay of the moving averages, in [0, 1) (TF's ``rho``/``decay``; PyTorch's ``alpha``).
        eps: added to the (centered) mean square under the root (>= 0).
        momentum: momentum (>= 0); 0 keeps no momentum buffer.
        centered: divide by the root of the gradient's estimated variance ``ms - mg²``.
        initial_mean_square: the starting value of ``ms`` (0 as in Keras and DeepMind's DQN;
            1 as in ``tf.compat.v1.train.RMSPropOptimizer``).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        rho: float = 0.9,
        eps: float = 1e-7,
        momentum: float = 0.0,
        centered: bool = False,
        initial_mean_square: float = 0.0,
    ):
        checks = {
            "lr": (lr >= 0, ">= 0", lr),
            "rho": (0 <= rho < 1, "in [0, 1)", rho),
            "eps": (eps >= 0, ">= 0", eps),
            "momentum": (momentum >= 0, ">= 0", momentum),
            "initial_mean_square": (initial_mean_square >= 0, ">= 0", initial_mean_square),
        }
        for name, (ok, expected, value) in checks.items():
            if not ok:
                raise ValueError(f"RMSpropTF: {name} must be {expected}, got {value!r}")
        defaults = {
            "lr": float(lr),
            "rho": float(rho),
            "eps": float(eps),
            "momentum": float(momentum),
            "centered": bool(centered),
            "initial_mean_square": float(initial_mean_square),
        }
        super().__init__(params, defaults)

    def _state_of(self, p: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = self.state[p]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["square_avg"] = torch.full_like(
                p, group["initial_mean_square"], memory_format=torch.preserve_format
            )
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if any(g.is_sparse for g in grads):
                raise RuntimeError("RMSpropTF does not support sparse gradients")
            states = [self._state_of(p, group) for p in params]
            rho, lr, momentum = group["rho"], group["lr"], group["momentum"]
            torch._foreach_add_([s["step"] for s in states], 1.0)
            square_avgs = [s["square_avg"] for s in states]
            torch._foreach_mul_(square_avgs, rho)
            torch._foreach_addcmul_(square_avgs, grads, grads, value=1.0 - rho)
            if group["centered"]:
                grad_avgs = [s["grad_avg"] for s in states]
                torch._foreach_mul_(grad_avgs, rho)
                torch._foreach_add_(grad_avgs, grads, alpha=1.0 - rho)
                denom = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1.0)
                torch._foreach_add_(denom, group["eps"])
            else:
                denom = torch._foreach_add(square_avgs, group["eps"])
            torch._foreach_sqrt_(denom)
            if momentum > 0:
                buffers = [s["momentum_buffer"] for s in states]
                torch._foreach_mul_(buffers, momentum)
                torch._foreach_addcdiv_(buffers, grads, denom, value=lr)
                torch._foreach_sub_(params, buffers)
            else:
                torch._foreach_addcdiv_(params, grads, denom, value=-lr)
        return loss
