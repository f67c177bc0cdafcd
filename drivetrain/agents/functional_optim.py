"""An optimizer's step as a pure function of tensors, for updates compiled as one graph.

Protocol::

    fopt = FunctionalOptimizer(optimizer, params, owner="DQN")   # refuses what it cannot follow
    state, hyper = fopt.state(), fopt.hyperparameters()            # before each compiled call
    # inside the compiled function:
    fopt.update(params, grads, state, hyper)   # in place: params and state, as optimizer.step()

``update`` does what ``optimizer.step()`` does to ``params`` given ``grads``, with the same
operations in the same order, on the optimizer's *own* state tensors: ``state()`` returns
the live tensors of ``optimizer.state`` (created as the optimizer's lazy initialization
creates them, if the optimizer has not stepped yet), so ``optimizer.state_dict()`` and
``load_state_dict()`` keep their format and a checkpoint written after compiled steps
resumes into either path. ``state()`` looks the tensors up again after
``optimizer.load_state_dict`` replaced them. The numeric hyperparameters (learning rate,
betas, epsilon, ...) travel as a float64 tensor ``hyperparameters()`` read from the
parameter group on every call, so a changed learning rate needs no recompilation; the
structural ones (``centered``, ``momentum > 0``) are fixed when the object is built and
``hyperparameters()`` raises if they changed. Results equal the eager step within
floating-point tolerance (a compiler may fuse and contract the arithmetic differently).

Supported: ``torch.optim.Adam`` (``weight_decay=0``, no ``amsgrad``, ``maximize``,
``capturable``, ``fused`` or ``differentiable``), ``torch.optim.RMSprop`` (``weight_decay=0``,
no ``maximize``, ``capturable`` or ``differentiable``) and
:class:`~drivetrain.agents.optimizers.RMSpropTF`, with one parameter group holding exactly
``params``. Anything else is a ValueError naming the optimizer and the setting.
"""

from __future__ import annotations

from typing import Any

import torch

from drivetrain.agents.optimizers import RMSpropTF

__all__ = ["FunctionalOptimizer"]

State = dict[str, list[torch.Tensor]]

_REFUSED_FLAGS = ("amsgrad", "maximize", "capturable", "fused", "differentiable")


class FunctionalOptimizer:
    """``optimizer.step()`` as :meth:`update`, a function of tensors (see the module docstring)."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.Tensor], owner: str):
        self._optimizer = optimizer
        self._params = list(params)
        self._owner = owner
        if len(optimizer.param_groups) != 1 or {id(p) for p in optimizer.param_groups[0]["params"]} != {
            id(p) for p in self._params
        }:
            raise ValueError(
                f"{owner}: compile=True needs an optimizer with one parameter group holding exactly "
                "the trainable parameters"
            )
        group = optimizer.param_groups[0]
        name = type(optimizer).__name__
        refused = [f for f in _REFUSED_FLAGS if group.get(f)]
        if group.get("weight_decay", 0):
            refused.append("weight_decay")
        if refused or type(optimizer) not in (torch.optim.Adam, torch.optim.RMSprop, RMSpropTF):
            what = f"{name} with {', '.join(refused)}" if refused else name
            raise ValueError(
                f"{owner}: compile=True supports torch.optim.Adam, torch.optim.RMSprop and RMSpropTF "
                f"without weight_decay, amsgrad, maximize, capturable, fused or differentiable; got {what}"
            )
        self._kind = type(optimizer)
        self._structure = self._structure_of(group)
        self._live: list[torch.Tensor] | None = None
        self._state: State = {}
        self._hyper_key: tuple[float, ...] = ()
        self._hyper = torch.zeros(0, dtype=torch.float64)

    @staticmethod
    def _structure_of(group: dict[str, Any]) -> tuple[bool, bool]:
        return bool(group.get("centered", False)), float(group.get("momentum", 0.0)) > 0

    def _state_keys(self) -> tuple[str, ...]:
        if self._kind is torch.optim.Adam:
            return ("step", "exp_avg", "exp_avg_sq")
        centered, momentum = self._structure
        keys = ["step", "square_avg"]
        if centered:
            keys.append("grad_avg")
        if momentum:
            keys.append("momentum_buffer")
        return tuple(keys)

    def _initialize(self, p: torch.Tensor) -> dict[str, Any]:
        """The optimizer's lazy state initialization for ``p``, as its ``step()`` would do it."""
        state: dict[str, Any] = self._optimizer.state[p]
        if state:
            return state
        group = self._optimizer.param_groups[0]
        state["step"] = torch.tensor(0.0, dtype=torch.float32)
        if self._kind is torch.optim.Adam:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            return state
        initial = float(group.get("initial_mean_square", 0.0))
        state["square_avg"] = torch.full_like(p, initial, memory_format=torch.preserve_format)
        centered, momentum = self._structure
        if momentum:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if centered:
            state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def state(self) -> State:
        """The optimizer's live state tensors by key, in the order of ``params``."""
        first = self._optimizer.state.get(self._params[0])
        if self._live is None or not first or first.get("step") is not self._live[0]:
            states = [self._initialize(p) for p in self._params]
            self._state = {k: [s[k] for s in states] for k in self._state_keys()}
            self._live = [s["step"] for s in states]
        return self._state

    def hyperparameters(self) -> torch.Tensor:
        """float64 ``[lr, beta1, beta2, eps]`` (Adam) or ``[lr, alpha, eps, momentum]`` (RMSprop kinds)."""
        group = self._optimizer.param_groups[0]
        if self._structure_of(group) != self._structure:
            raise ValueError(
                f"{self._owner}: the optimizer's centered/momentum settings changed after the compiled "
                "update was built"
            )
        if self._kind is torch.optim.Adam:
            beta1, beta2 = group["betas"]
            key = (float(group["lr"]), float(beta1), float(beta2), float(group["eps"]))
        else:
            alpha = group["rho"] if self._kind is RMSpropTF else group["alpha"]
            key = (float(group["lr"]), float(alpha), float(group["eps"]), float(group["momentum"]))
        if key != self._hyper_key:
            self._hyper_key, self._hyper = key, torch.tensor(key, dtype=torch.float64)
        return self._hyper

    def update(self, params: list[torch.Tensor], grads: list[torch.Tensor], state: State, hyper: Any) -> None:
        """One step of the optimizer on ``params`` (in place), traceable by ``torch.compile``."""
        if self._kind is torch.optim.Adam:
            _adam(params, grads, state, hyper)
        else:
            _rmsprop(params, grads, state, hyper, *self._structure, eps_inside=self._kind is RMSpropTF)


def _f32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float32)


def _adam(params: list[torch.Tensor], grads: list[torch.Tensor], state: State, hyper: torch.Tensor) -> None:
    """``torch.optim.Adam``'s single-tensor step: Python-float scalars become float64 tensors."""
    lr, beta1, beta2, eps = hyper.unbind()
    one_minus_beta1, beta2_32, one_minus_beta2 = _f32(1 - beta1), _f32(beta2), _f32(1 - beta2)
    for p, g, step, m, v in zip(
        params, grads, state["step"], state["exp_avg"], state["exp_avg_sq"], strict=True
    ):
        step.add_(1)
        m.lerp_(g, one_minus_beta1)
        v.copy_(v * beta2_32 + one_minus_beta2 * g * g)
        t = step.to(torch.float64)
        step_size = lr / (1 - torch.pow(beta1, t))
        bias_correction2_sqrt = torch.pow(1 - torch.pow(beta2, t), 0.5)
        denom = v.sqrt() / _f32(bias_correction2_sqrt) + _f32(eps)
        p.copy_(p + _f32(-step_size) * m / denom)


def _rmsprop(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    state: State,
    hyper: torch.Tensor,
    centered: bool,
    momentum: bool,
    *,
    eps_inside: bool,
) -> None:
    """``torch.optim.RMSprop`` (ε outside the root) or :class:`RMSpropTF` (ε inside)."""
    lr, alpha, eps, mom = hyper.unbind()
    alpha_32, one_minus_alpha = _f32(alpha), _f32(1 - alpha)
    lr_32, eps_32, mom_32 = _f32(lr), _f32(eps), _f32(mom)
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        state["step"][i].add_(1)
        square_avg = state["square_avg"][i]
        square_avg.copy_(square_avg * alpha_32 + one_minus_alpha * g * g)
        mean_square = square_avg
        if centered:
            grad_avg = state["grad_avg"][i]
            if eps_inside:
                grad_avg.copy_(grad_avg * alpha_32 + one_minus_alpha * g)
            else:
                grad_avg.lerp_(g, one_minus_alpha)
            mean_square = square_avg + (-1.0 * grad_avg) * grad_avg
        avg = (mean_square + eps_32).sqrt() if eps_inside else mean_square.sqrt() + eps_32
        if momentum:
            buf = state["momentum_buffer"][i]
            if eps_inside:
                buf.copy_(buf * mom_32 + lr_32 * g / avg)
                p.copy_(p - buf)
            else:
                buf.copy_(buf * mom_32 + g / avg)
                p.copy_(p + -lr_32 * buf)
        else:
            p.copy_(p + -lr_32 * g / avg)
