"""DQN's whole update as one compiled step: what :class:`~drivetrain.agents.DQN` runs with ``compile=True``.

Protocol::

    update = CompiledQUpdate(q_network, target_network, optimizer, make_step, owner="DQN", double=False,
                             loss="huber", huber_delta=1.0, gradient_clipping=10.0, polyak_tau=None)
    packed = update(observation, next_observation, action, reward, discount, weight, valid,
                    num_valid=num_valid)
    # packed: float [4 + B]: loss, gradient norm before clipping, mean q and mean target over the
    # valid windows, |q - target| per window (0 where not valid)

One call is the eager update of a batch with at least one valid window: the TD target
(Double DQN if ``double``) from the target network, the loss ``sum(weight * l(q - target)) /
num_valid`` (:mod:`~drivetrain.agents.dqn.loss`), its gradients, the global gradient norm
and clipping to ``gradient_clipping``, and the optimizer's step
(:class:`~drivetrain.agents.functional_optim.FunctionalOptimizer`); with ``polyak_tau`` set
(a target update after every train step) also ``target <- tau * online + (1 - tau) * target``.
A NaN or infinite loss changes nothing (the agent then refuses it, as the eager update does).
It is written as a function of the parameter, optimizer-state and batch tensors
(``torch.func.functional_call`` and ``torch.func.grad_and_value``) and compiled with
``torch.compile(fullgraph=True, dynamic=False)`` on the first call (a new batch shape
compiles again); it guards on the input tensors only, so the networks must keep their
structure and attributes (their weights change, in place). It updates in place the
q-network's parameters, the optimizer's own state tensors and the target network, so
checkpoints keep their format and a run may switch between the eager and the compiled
update at a checkpoint. The results equal the eager
update's within floating-point tolerance; the same inputs give the same bits every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from drivetrain.agents.compiled_q import optimizer_and_target_step
from drivetrain.agents.compiling import functional_call_of
from drivetrain.agents.dqn import loss as loss_lib
from drivetrain.agents.functional_optim import FunctionalOptimizer

__all__ = ["make_step"]


def make_step(
    q_network: nn.Module,
    names: tuple[list[str], list[str]],
    optimizer: FunctionalOptimizer,
    *,
    double: bool,
    loss: loss_lib.LossKind,
    huber_delta: float,
    gradient_clipping: float | None,
    polyak_tau: float | None,
) -> Callable[..., torch.Tensor]:
    """The update as a function of tensors, for ``torch.compile``; ``names``: those of the
    trainable parameters and those of all parameters and buffers (the target's order)."""
    trainable_names, all_names = names
    apply_gradients = optimizer_and_target_step(optimizer, names, gradient_clipping, polyak_tau)
    functional_call = functional_call_of(q_network)

    def loss_of(
        trainable: dict[str, torch.Tensor],
        frozen: dict[str, torch.Tensor],
        observation: Any,
        action: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor,
        count: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = functional_call(q_network, {**trainable, **frozen}, (observation,)).gather(1, action).squeeze(1)
        losses = loss_lib.element_loss(q, target, loss, huber_delta)
        return (losses * weight).sum() / count, q

    grad_and_loss = torch.func.grad_and_value(loss_of, has_aux=True)

    def step(
        params: list[torch.Tensor],
        frozen: dict[str, torch.Tensor],
        target_list: list[torch.Tensor],
        optimizer_state: dict[str, list[torch.Tensor]],
        scalars: torch.Tensor,
        observation: Any,
        next_observation: Any,
        action: torch.Tensor,
        reward: torch.Tensor,
        discount: torch.Tensor,
        weight: torch.Tensor,
        valid: torch.Tensor,
        count: torch.Tensor,
    ) -> torch.Tensor:
        trainable = dict(zip(trainable_names, params, strict=True))
        online = {**trainable, **frozen}
        target_tensors = dict(zip(all_names, target_list, strict=True))
        next_target = functional_call(q_network, target_tensors, (next_observation,))
        next_online = functional_call(q_network, online, (next_observation,)) if double else None
        target = loss_lib.td_target(reward, discount, next_target, next_online)
        grads_by_name, (loss_value, q) = grad_and_loss(
            trainable, frozen, observation, action, target, weight, count
        )
        enabled = torch.isfinite(loss_value)  # a non-finite loss changes nothing (refused on the host)
        norm = apply_gradients(params, grads_by_name, optimizer_state, scalars, target_list, online, enabled)
        td_error = torch.where(valid, (q - target).abs(), 0.0)
        q_mean = torch.where(valid, q, 0.0).sum() / count
        target_mean = torch.where(valid, target, 0.0).sum() / count
        statistics = [loss_value, norm, q_mean, target_mean]
        return torch.cat([torch.stack(statistics), td_error])

    return step
