"""What the compiled updates of SAC and TD3 share: named tensors, the critics' loss and step, gated
optimizer steps, Polyak averaging.

Protocol (inside a function that :func:`~drivetrain.agents.compiling.compile_update` compiles)::

    critic = NamedTensors(critic_module)              # built once, on the host
    tensors = critic.as_dict(params, buffers)         # name -> tensor, for torch.func.functional_call
    critic_grad = torch.func.grad_and_value(critic_loss_function(critic_module), has_aux=True)
    loss, q, norm, ok = critic_step(critic_grad, critic, fopt, (params, buffers, state, scalars),
                                    (observation, action, target, weight), max_grad_norm)
    ok = ok & finite(actor_loss)                      # 0-dim bool
    norm = fopt.clipped_update(params, grads, state, scalars, max_grad_norm, ok)
    polyak(targets, onlines, tau, ok)                 # target <- where(ok, lerp(target, online, tau), target)

A compiled update takes the live tensors of the networks (detached views of the parameters
and buffers, updated in place) and of the optimizers
(:class:`~drivetrain.agents.functional_optim.FunctionalOptimizer`), so the agent's
``state_dict()`` keeps its format. Each optimizer step is gated by a flag: the chain of
"every loss so far is finite", so that, as in the eager update, a non-finite loss leaves the
part it would have trained (and every later part) untouched, while the parts before it keep
their step; the host reads the losses after the call and raises
:class:`~drivetrain.agents.loss_info.NonFiniteLossError` for the first non-finite one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from drivetrain.agents.compiling import functional_call_of
from drivetrain.agents.continuous.loss import critic_loss
from drivetrain.agents.functional_optim import FunctionalOptimizer, State

__all__ = ["NamedTensors", "critic_loss_function", "critic_step", "finite", "polyak"]


class NamedTensors:
    """A module's parameters and buffers as detached views (their storage is the module's).

    ``params`` and ``names`` follow ``named_parameters()``; ``buffers`` maps the buffers' names;
    ``everything`` is ``[*parameters(), *buffers()]`` (the order of Polyak averaging)."""

    def __init__(self, module: nn.Module):
        named = list(module.named_parameters())
        self.names = [n for n, _ in named]
        self.params = [p.detach() for _, p in named]
        self.buffers = {n: b.detach() for n, b in module.named_buffers()}
        self.everything = [*self.params, *self.buffers.values()]
        self.all_names = [*self.names, *self.buffers]

    def as_dict(
        self, params: Sequence[torch.Tensor], buffers: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """``name -> tensor`` of ``params`` (in the order of ``names``) and ``buffers``."""
        return {**dict(zip(self.names, params, strict=True)), **buffers}


def critic_loss_function(critic_module: nn.Module) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``(params, buffers, observation, action, target, weight) -> (loss, q)``: the critics' loss
    (:func:`~drivetrain.agents.continuous.loss.critic_loss`) as a function of their tensors, for
    ``torch.func.grad_and_value``; ``q`` ``[num_critics, B]``."""

    functional_call = functional_call_of(critic_module)

    def critic_loss_of(
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        observation: Any,
        action: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = functional_call(critic_module, {**params, **buffers}, (observation, action))
        return critic_loss(q, target, weight), q

    return critic_loss_of


def finite(x: torch.Tensor) -> torch.Tensor:
    """0-dim bool: ``x`` (a scalar loss) is finite."""
    return torch.isfinite(x)


def critic_step(
    critic_grad: Callable[..., Any],
    critic: NamedTensors,
    optimizer: FunctionalOptimizer,
    tensors: tuple[list[torch.Tensor], dict[str, torch.Tensor], State, torch.Tensor],
    batch: tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor],
    max_grad_norm: float | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The critics' step, the same in SAC and TD3: with ``tensors = (params, buffers, optimizer
    state, scalars)`` and ``batch = (observation, action, target, weight)``, the loss of
    ``critic_grad`` (:func:`critic_loss_function` under ``torch.func.grad_and_value``), its
    gradients and the clipped optimizer step where the loss is finite. Returns ``(loss, q,
    gradient norm before clipping, finite)``."""
    params, buffers, state, scalars = tensors
    trainable = dict(zip(critic.names, params, strict=True))
    grads, (loss, q) = critic_grad(trainable, buffers, *batch)
    ok = finite(loss)
    grad_list = [grads[n] for n in critic.names]
    norm = optimizer.clipped_update(params, grad_list, state, scalars, max_grad_norm, ok)
    assert norm is not None
    return loss, q, norm, ok


def polyak(
    targets: Sequence[torch.Tensor], onlines: Sequence[torch.Tensor], tau: float, enabled: torch.Tensor
) -> None:
    """:func:`~drivetrain.agents.continuous.agent.polyak_update` where ``enabled`` (in place)."""
    for t, o in zip(targets, onlines, strict=True):
        new = o if tau == 1.0 or not t.is_floating_point() else t.lerp(o, tau)
        t.copy_(torch.where(enabled, new, t))
