"""R2D2's whole update as one compiled step: what :class:`~drivetrain.agents.R2D2` runs with ``compile=True``.

Protocol::

    update = CompiledQUpdate(q_network, target_network, optimizer, make_step, owner="R2D2", burn_in=10,
                             sequence_length=20, double=True, loss="huber", huber_delta=1.0,
                             gradient_clipping=10.0, polyak_tau=None, priority_eta=0.9)
    packed = update(observation, first, state, action, reward, discount, steps, valid, weight,
                    num_valid=num_valid)
    # packed: float [4 + B]: loss, gradient norm before clipping, mean q and mean target over the
    # valid steps, the sequence priorities

One call is the eager update (:mod:`~drivetrain.agents.r2d2.loss`) of a batch with at least
one valid step: both networks unrolled from ``state`` (the burn-in without gradient), the
n-step targets (Double DQN if ``double``), the masked loss ``sum(w_b * mask * l(q - target)) /
num_valid``, its gradients, clipping and the optimizer's step, the target update when it
comes after every step (``polyak_tau``), and the priorities; a NaN or infinite loss changes
nothing (the agent then refuses it, as the eager update does). The recurrent cores run
``stepwise`` (one ``lstm_cell``/``gru_cell`` step at a time, an order that does not depend on
where the sequences reset), which the compiler unrolls over the window: a new window length
or batch size compiles again, and the first compilation takes longer than a feed-forward
network's (~33 s for ``cartpole-masked-rdqn``'s 33 steps with an empty cache, ~3 s with
torch's on-disk cache). The plumbing (parameters, optimizer state, checkpoints, copies) is
:class:`~drivetrain.agents.compiled_q.CompiledQUpdate`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from drivetrain.agents.compiled_q import optimizer_and_target_step
from drivetrain.agents.compiling import functional_call_of
from drivetrain.agents.dqn.loss import LossKind, element_loss
from drivetrain.agents.functional_optim import FunctionalOptimizer
from drivetrain.agents.r2d2.loss import n_step_targets, sequence_priorities
from drivetrain.networks.recurrent import State

__all__ = ["make_step"]


def make_step(
    q_network: nn.Module,
    names: tuple[list[str], list[str]],
    optimizer: FunctionalOptimizer,
    *,
    burn_in: int,
    sequence_length: int,
    double: bool,
    loss: LossKind,
    huber_delta: float,
    gradient_clipping: float | None,
    polyak_tau: float | None,
    priority_eta: float,
) -> Callable[..., torch.Tensor]:
    """The update as a function of tensors, for ``torch.compile``; ``names``: those of the
    trainable parameters and those of all parameters and buffers (the target's order)."""
    trainable_names, all_names = names
    apply_gradients = optimizer_and_target_step(optimizer, names, gradient_clipping, polyak_tau)
    functional_call = functional_call_of(q_network)
    stepwise = {"stepwise": True}

    def unrolled(
        tensors: dict[str, torch.Tensor], observation: torch.Tensor, first: torch.Tensor, state: State
    ) -> torch.Tensor:
        """q-values ``[B, L - burn_in, A]`` after the burn-in (which only warms the state up)."""
        if burn_in > 0:
            head = (observation[:, :burn_in], first[:, :burn_in], state)
            _, state = functional_call(q_network, tensors, head, stepwise)
            state = tuple(s.detach() for s in state)
        rest = (observation[:, burn_in:], first[:, burn_in:], state)
        q: torch.Tensor = functional_call(q_network, tensors, rest, stepwise)[0]
        return q

    def loss_of(
        trainable: dict[str, torch.Tensor],
        frozen: dict[str, torch.Tensor],
        inputs: tuple[Any, ...],
        q_target: torch.Tensor,
        count: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        observation, first, state, action, reward, discount, steps, valid, weight = inputs
        q_all = unrolled({**trainable, **frozen}, observation, first, state)
        q = q_all[:, :sequence_length].gather(2, action.unsqueeze(2)).squeeze(2)
        online = q_all.detach() if double else None
        target = n_step_targets(reward, discount, steps, q_target, online, checked=False)
        losses = element_loss(q, target, loss, huber_delta) * valid.to(q.dtype) * weight.unsqueeze(1)
        return losses.sum() / count, (q.detach(), target)

    grad_and_loss = torch.func.grad_and_value(loss_of, has_aux=True)

    def step(
        params: list[torch.Tensor],
        frozen: dict[str, torch.Tensor],
        target_list: list[torch.Tensor],
        optimizer_state: dict[str, list[torch.Tensor]],
        scalars: torch.Tensor,
        observation: torch.Tensor,
        first: torch.Tensor,
        state: State,
        action: torch.Tensor,
        reward: torch.Tensor,
        discount: torch.Tensor,
        steps: torch.Tensor,
        valid: torch.Tensor,
        weight: torch.Tensor,
        count: torch.Tensor,
    ) -> torch.Tensor:
        trainable = dict(zip(trainable_names, params, strict=True))
        online = {**trainable, **frozen}
        q_target = unrolled(dict(zip(all_names, target_list, strict=True)), observation, first, state)
        inputs = (observation, first, state, action, reward, discount, steps, valid, weight)
        grads_by_name, (loss_value, (q, target)) = grad_and_loss(trainable, frozen, inputs, q_target, count)
        enabled = torch.isfinite(loss_value)  # a non-finite loss changes nothing (refused on the host)
        norm = apply_gradients(params, grads_by_name, optimizer_state, scalars, target_list, online, enabled)
        mask = valid.to(q.dtype)
        priorities = sequence_priorities((q - target).abs(), valid, priority_eta)
        statistics = [loss_value, norm, (q * mask).sum() / count, (target * mask).sum() / count]
        return torch.cat([torch.stack(statistics), priorities])

    return step
