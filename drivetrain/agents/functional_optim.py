"""An optimizer's step as a pure function of tensors, for updates compiled as one graph.

Protocol::

    fopt = FunctionalOptimizer(optimizer, params, owner="DQN")   # refuses what it cannot follow
    state, scalars = fopt.state(), fopt.scalars()                   # before each compiled call
    # inside the compiled function:
    fopt.update(params, grads, state, scalars)   # in place: params and state, as optimizer.step()
    fopt.update(params, grads, state, scalars, enabled=flag)   # a no-op where the bool flag is false

``update`` does what ``optimizer.step()`` does to ``params`` given ``grads``, with the same
operations in the same order, on the optimizer's *own* state tensors: ``state()`` returns
the live tensors of ``optimizer.state`` (created as the optimizer's lazy initialization
creates them, if the optimizer has not stepped yet), so ``optimizer.state_dict()`` and
``load_state_dict()`` keep their format and a checkpoint written after compiled steps
resumes into either path. ``state()`` looks the tensors up again after
``optimizer.load_state_dict`` replaced them. The scalars of the step travel as a float64
tensor ``scalars()``, computed on the host from the parameter group's hyperparameters
(learning rate, betas, epsilon, ...) on every call, as the eager step computes them in
Python (for Adam: the bias corrections of the coming step, from the state's step count,
which all parameters share); so a changed learning rate needs no recompilation and the
compiled kernels do no per-element scalar arithmetic. With ``enabled`` (a 0-dim bool tensor,
e.g. "the loss is finite") the step writes ``torch.where(enabled, new, old)`` into every
parameter and state tensor, the step count included: a step refused inside a compiled graph
leaves the parameters and the optimizer exactly as they were. The structural settings
(``centered``, ``momentum > 0``) are fixed when the object is built, and ``scalars()``
raises if they changed or a refused setting (below) was switched on since. Results equal the eager step within floating-point tolerance (a
compiler may fuse and contract the arithmetic differently).

Supported: ``torch.optim.Adam`` (``weight_decay=0``, no ``amsgrad``, ``maximize``,
``capturable`` or ``differentiable``; fused or not: a fused Adam keeps the same state, its
step count on the parameters' device), ``torch.optim.RMSprop`` (``weight_decay=0``,
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


def _refused_settings(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> list[str]:
    """The settings of ``group`` that :meth:`FunctionalOptimizer.update` does not follow, by name."""
    adam = type(optimizer) is torch.optim.Adam
    refused = [f for f in _REFUSED_FLAGS if group.get(f) and not (f == "fused" and adam)]
    if group.get("weight_decay", 0):
        refused.append("weight_decay")
    return refused


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
        refused = _refused_settings(optimizer, group)
        if refused or type(optimizer) not in (torch.optim.Adam, torch.optim.RMSprop, RMSpropTF):
            what = f"{name} with {', '.join(refused)}" if refused else name
            raise ValueError(
                f"{owner}: compile=True supports torch.optim.Adam, torch.optim.RMSprop and RMSpropTF "
                f"without weight_decay, amsgrad, maximize, capturable or differentiable (fused: Adam only); "
                f"got {what}"
            )
        self._kind = type(optimizer)
        self._structure = self._structure_of(group)
        self._live: list[torch.Tensor] | None = None
        self._state: State = {}
        self._key: tuple[float, ...] = ()
        self._scalars = torch.zeros(0, dtype=torch.float64)

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
        fused = bool(group.get("fused"))  # torch.optim.Adam keeps a fused step's count on the device
        state["step"] = torch.zeros((), dtype=torch.float32, device=p.device if fused else "cpu")
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
            if len({float(step) for step in self._live}) != 1:
                raise ValueError(
                    f"{self._owner}: compile=True needs one step count for all parameters, and the "
                    "optimizer's differ (an eager optimizer.step() skips a parameter without a gradient: "
                    "a trainable parameter the loss does not use); train this agent with compile=False"
                )
        return self._state

    def scalars(self) -> torch.Tensor:
        """float64 ``[-lr / bias_correction1, sqrt(bias_correction2), 1 - beta1, beta2, 1 - beta2, eps]``
        of Adam's coming step, or ``[lr, alpha, 1 - alpha, eps, momentum]`` (the RMSprop kinds), on
        the parameters' device (a compiled step then reads them where its kernels run)."""
        group = self._optimizer.param_groups[0]
        changed = _refused_settings(self._optimizer, group)
        if self._structure_of(group) != self._structure:
            changed.append("centered/momentum")
        if changed:  # the compiled step would go on without them, where optimizer.step() follows them
            raise ValueError(
                f"{self._owner}: the optimizer's settings changed after the compiled update was built "
                f"({', '.join(changed)}); compile=False follows such changes"
            )
        if self._kind is torch.optim.Adam:
            beta1, beta2 = (float(b) for b in group["betas"])
            lr, eps = float(group["lr"]), float(group["eps"])
            step = float(self.state()["step"][0]) + 1  # as torch.optim.Adam computes it after step += 1
            step_size = lr / (1 - beta1**step)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            values = (-step_size, bias_correction2_sqrt, 1 - beta1, beta2, 1 - beta2, eps)
            return torch.tensor(values, dtype=torch.float64, device=self._params[0].device)
        alpha = float(group["rho"] if self._kind is RMSpropTF else group["alpha"])
        key = (float(group["lr"]), alpha, float(group["eps"]), float(group["momentum"]))
        if key != self._key:
            lr, alpha, eps, momentum = key
            self._key = key
            self._scalars = torch.tensor(
                (lr, alpha, 1 - alpha, eps, momentum), dtype=torch.float64, device=self._params[0].device
            )
        return self._scalars

    def update(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        state: State,
        scalars: Any,
        enabled: torch.Tensor | None = None,
    ) -> None:
        """One step of the optimizer on ``params`` (in place), traceable by ``torch.compile``;
        with ``enabled`` (0-dim bool) a no-op where it is false."""
        if self._kind is torch.optim.Adam:
            _adam(params, grads, state, scalars, enabled)
        else:
            _rmsprop(
                params, grads, state, scalars, *self._structure, enabled, eps_inside=self._kind is RMSpropTF
            )

    def clipped_update(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        state: State,
        scalars: Any,
        max_norm: float | None,
        enabled: torch.Tensor | None = None,
        *,
        norm: bool = True,
    ) -> torch.Tensor | None:
        """What an eager update does after its backward pass: the gradients' global norm (if
        ``norm`` or clipping), their clip to ``max_norm`` (as ``torch.nn.utils.clip_grad_norm_``),
        then :meth:`update`; returns the norm before clipping (None if not computed)."""
        total = None
        if norm or max_norm is not None:
            total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            if max_norm is not None:
                coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
                grads = [g * coefficient for g in grads]
        self.update(params, grads, state, scalars, enabled)
        return total


def _assign(t: torch.Tensor, new: torch.Tensor, enabled: torch.Tensor | None) -> None:
    """``t <- new`` in place, or ``t <- where(enabled, new, t)``."""
    if enabled is None:
        t.copy_(new)
    else:
        t.copy_(torch.where(enabled.to(t.device), new, t))


def _adam(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    state: State,
    scalars: torch.Tensor,
    enabled: torch.Tensor | None,
) -> None:
    """``torch.optim.Adam``'s single-tensor step; its Python-float scalars become float32, as there."""
    neg_step_size, bias_correction2_sqrt, one_minus_beta1, beta2, one_minus_beta2, eps = scalars.to(
        torch.float32
    ).unbind()
    for p, g, step, m, v in zip(
        params, grads, state["step"], state["exp_avg"], state["exp_avg_sq"], strict=True
    ):
        if enabled is None:
            step.add_(1)
            m.lerp_(g, one_minus_beta1)
            v.copy_(v * beta2 + one_minus_beta2 * g * g)
            denom = v.sqrt() / bias_correction2_sqrt + eps
            p.copy_(p + neg_step_size * m / denom)
            continue
        new_m = m.lerp(g, one_minus_beta1)
        new_v = v * beta2 + one_minus_beta2 * g * g
        denom = new_v.sqrt() / bias_correction2_sqrt + eps
        _assign(p, p + neg_step_size * new_m / denom, enabled)
        _assign(m, new_m, enabled)
        _assign(v, new_v, enabled)
        _assign(step, step + 1, enabled)


def _rmsprop(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    state: State,
    scalars: torch.Tensor,
    centered: bool,
    momentum: bool,
    enabled: torch.Tensor | None,
    *,
    eps_inside: bool,
) -> None:
    """``torch.optim.RMSprop`` (ε outside the root) or :class:`RMSpropTF` (ε inside)."""
    lr, alpha, one_minus_alpha, eps, mom = scalars.to(torch.float32).unbind()
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        step = state["step"][i]
        _assign(step, step + 1, enabled)
        square_avg = state["square_avg"][i]
        mean_square = square_avg * alpha + one_minus_alpha * g * g
        _assign(square_avg, mean_square, enabled)
        if enabled is None:
            mean_square = square_avg
        if centered:
            grad_avg = state["grad_avg"][i]
            if eps_inside:
                new_grad_avg = grad_avg * alpha + one_minus_alpha * g
            else:
                new_grad_avg = grad_avg.lerp(g, one_minus_alpha)
            _assign(grad_avg, new_grad_avg, enabled)
            mean_square = mean_square + (-1.0 * new_grad_avg) * new_grad_avg
        avg = (mean_square + eps).sqrt() if eps_inside else mean_square.sqrt() + eps
        if momentum:
            buf = state["momentum_buffer"][i]
            new_buf = buf * mom + lr * g / avg if eps_inside else buf * mom + g / avg
            _assign(buf, new_buf, enabled)
            _assign(p, p - new_buf if eps_inside else p + -lr * new_buf, enabled)
        else:
            _assign(p, p + -lr * g / avg, enabled)
