"""The DQN loss, as plain functions of tensors.

With ``q = Q(o_0, a_0)`` the q-value of the action taken, the n-step ``reward`` and
``discount`` of :func:`drivetrain.replay.nstep.n_step_transitions` and ``o_m`` the
observation ``m`` steps later::

    target = reward + discount * V(o_m)
    V(o_m) = max_a Q_target(o_m, a)                                 (DQN)
    V(o_m) = Q_target(o_m, argmax_a Q_online(o_m, a))               (Double DQN)
    td     = q - target                                             (target: no gradient)
    loss   = sum_i w_i * l(td_i) / max(number of valid windows, 1)

``w_i`` is the importance weight of window ``i`` (1 without prioritized replay) times
0 for boundary windows, which so never contribute. Without importance weights and
boundary windows this is the plain mean, which the agent then computes as such
(``reduction="mean"``: fewer operations in the backward pass). ``l`` is the Huber loss
``0.5 td²`` for ``|td| <= δ`` and ``δ (|td| - δ/2)`` beyond (``torch.nn.functional.huber_loss``),
or the squared error ``td²`` (``mse_loss``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional

__all__ = ["LossKind", "element_loss", "td_target", "weighted_loss"]

LossKind = Literal["huber", "mse"]


def td_target(
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_q_target: torch.Tensor,
    next_q_online: torch.Tensor | None = None,
) -> torch.Tensor:
    """``reward + discount * V(next)``; Double DQN when ``next_q_online`` is given. ``[B]``."""
    if next_q_online is None:
        next_value = next_q_target.max(dim=1).values
    else:
        best = next_q_online.argmax(dim=1, keepdim=True)
        next_value = next_q_target.gather(1, best).squeeze(1)
    return reward + discount * next_value


def element_loss(
    q: torch.Tensor,
    target: torch.Tensor,
    kind: LossKind,
    huber_delta: float = 1.0,
    reduction: Literal["none", "mean"] = "none",
) -> torch.Tensor:
    """Loss of ``td = q - target`` per window (``[B]``) or its mean: Huber with ``huber_delta`` or squared error."""
    if kind == "huber":
        return functional.huber_loss(q, target, reduction=reduction, delta=huber_delta)
    if kind == "mse":
        return functional.mse_loss(q, target, reduction=reduction)
    raise ValueError(f"loss must be 'huber' or 'mse', got {kind!r}")


def weighted_loss(losses: torch.Tensor, weights: torch.Tensor, num_valid: int) -> torch.Tensor:
    """``sum(weights * losses) / max(num_valid, 1)``: the mean over valid windows, importance-weighted."""
    return (losses * weights).sum() / max(int(num_valid), 1)
