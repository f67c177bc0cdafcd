"""The R2D2 loss over sequences, as plain functions of tensors.

A sampled window of ``L = burn_in + T + n`` steps is split into ``burn_in`` steps that
only warm up the recurrent state (:func:`unroll`: run under ``torch.no_grad``, so no
gradient reaches them) and ``T + n`` steps on which both networks are unrolled. With
the n-step ``reward``, ``discount`` and ``steps`` (``m`` in 1..n) of
:func:`drivetrain.replay.nstep.n_step_sequence` for the first ``T`` of those::

    q_t      = Q_online(h_t, a_t)                                   t = 0..T-1
    target_t = reward_t + discount_t * V(t + m_t)
    V(k)     = max_a Q_target[k, a]                                  (DQN)
    V(k)     = Q_target[k, argmax_a Q_online[k, a]]                  (Double DQN)
    loss     = sum_{b,t} w_b * mask_{b,t} * l(q - target) / max(sum_{b,t} mask_{b,t}, 1)

``mask`` is False at boundaries (``step_type == LAST``: the action was never taken)
and anywhere the caller excludes (padding); ``w_b`` is the importance weight of
sequence ``b``. Termination (discount 0) never bootstraps; truncation (discount 1)
bootstraps from the episode's final observation, never from the next episode, because
``t + m_t`` stops at the first LAST (:mod:`drivetrain.replay.nstep`). The recurrent state
at index ``t + m_t`` is that of the same unroll, which resets at FIRST steps.

Priorities (R2D2): ``eta * max_t |td| + (1 - eta) * mean_t |td|`` over the masked steps.
"""

from __future__ import annotations

from typing import Literal

import torch

from drivetrain.agents.dqn.loss import element_loss
from drivetrain.networks.recurrent import RecurrentQNetwork, State

__all__ = ["masked_loss", "n_step_targets", "sequence_priorities", "unroll"]


def unroll(
    network: RecurrentQNetwork,
    observation: torch.Tensor,
    first: torch.Tensor,
    state: State,
    burn_in: int,
) -> tuple[torch.Tensor, State]:
    """q-values ``[B, L - burn_in, A]`` of the steps after the burn-in, and the final state.

    The first ``burn_in`` steps run under ``torch.no_grad`` and the state they reach is
    detached: they only warm the state up.
    """
    if burn_in > 0:
        with torch.no_grad():
            _, state = network(observation[:, :burn_in], first[:, :burn_in], state)
        state = tuple(s.detach() for s in state)
    return network(observation[:, burn_in:], first[:, burn_in:], state)  # type: ignore[no-any-return]


def n_step_targets(
    reward: torch.Tensor,
    discount: torch.Tensor,
    steps: torch.Tensor,
    q_target: torch.Tensor,
    q_online: torch.Tensor | None = None,
    *,
    checked: bool = True,
) -> torch.Tensor:
    """``reward + discount * V(t + steps)``: ``[B, T]`` from n-step ``[B, T]`` and q-values ``[B, T + n, A]``.

    ``checked``: a ValueError for a bootstrap index beyond the unrolled steps (which reads the
    indices back from the device; a compiled update, whose steps come from
    :func:`~drivetrain.replay.nstep.n_step_sequence`, leaves it out).
    """
    count = reward.shape[1]
    index = torch.arange(count, device=steps.device).unsqueeze(0) + steps.to(torch.int64)  # [B, T]
    if checked and index.max() >= q_target.shape[1]:
        raise ValueError(
            f"n_step_targets: bootstrap index {int(index.max())} beyond the {q_target.shape[1]} unrolled steps"
        )
    gather = index.unsqueeze(-1).expand(-1, -1, q_target.shape[2])
    next_q_target = torch.gather(q_target, 1, gather)  # [B, T, A]
    if q_online is None:
        next_value = next_q_target.max(dim=2).values
    else:
        best = torch.gather(q_online, 1, gather).argmax(dim=2, keepdim=True)
        next_value = next_q_target.gather(2, best).squeeze(2)
    return reward + discount * next_value


def masked_loss(
    q: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    weights: torch.Tensor | None = None,
    kind: Literal["huber", "mse"] = "huber",
    huber_delta: float = 1.0,
) -> torch.Tensor:
    """``sum(w_b * mask * l(q - target)) / max(sum(mask), 1)`` over ``[B, T]``."""
    losses = element_loss(q, target, kind, huber_delta) * mask.to(q.dtype)
    if weights is not None:
        losses = losses * weights.to(q.dtype).unsqueeze(1)
    return losses.sum() / mask.sum().clamp(min=1).to(q.dtype)


def sequence_priorities(td_abs: torch.Tensor, mask: torch.Tensor, eta: float = 0.9) -> torch.Tensor:
    """``eta * max + (1 - eta) * mean`` of ``|td|`` over each sequence's masked steps: ``[B]`` (0 if none)."""
    m = mask.to(td_abs.dtype)
    masked = td_abs * m
    count = m.sum(dim=1)
    mean = masked.sum(dim=1) / count.clamp(min=1)
    return eta * masked.max(dim=1).values + (1.0 - eta) * mean
