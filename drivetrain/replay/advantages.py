"""Advantages and returns of on-policy rollouts (NumPy): GAE(λ) and Monte-Carlo returns.

A rollout is what the collect driver produced for each environment, oldest first: arrays
``[B, T]`` of ``step_type``, ``next_step_type``, ``reward`` and ``discount`` (the
trajectory's, so ``reward[t]`` and ``discount[t]`` come from the time step after item
``t``) and ``value[t] = V(observation[t])`` as the policy computed it while acting (its
``policy_info["value"]``).

Which items can be trained on (``valid``):

- not a **boundary** (``step_type == LAST``: its action was never taken in the MDP);
- its successor ``t + 1`` is in the rollout (the newest item only bootstraps the one
  before it), and continues it: ``step_type[t + 1] == next_step_type[t]``. A FIRST that
  does not follow a LAST (an environment reset mid-episode) starts a new episode: the item
  before it has no next observation and is not trained on, and nothing flows across.

GAE (Schulman et al. 2016), per environment, from the newest item back::

    delta[t] = reward[t] + γ · discount[t] · value[t + 1] - value[t]
    A[t]     = delta[t] + γ λ · discount[t] · A[t + 1]     (A[t + 1] = 0 if item t ends an episode)
    return[t] = A[t] + value[t]

An episode that **terminates** has discount 0: nothing is bootstrapped. One that is
**truncated** has discount 1 and ``value[t + 1]`` is the value of its final observation,
which the boundary item (``step_type == LAST``) holds because the driver runs the policy on
every time step: the target bootstraps from the episode's own last state, never from the
next episode's first.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from drivetrain.core import types

__all__ = ["Advantages", "gae", "monte_carlo_returns", "trainable"]

_LAST = int(types.StepType.LAST)


class Advantages(NamedTuple):
    """Per-item advantages and returns, ``[B, T]`` float32, zero where ``valid`` is False."""

    advantages: np.ndarray
    returns: np.ndarray
    valid: np.ndarray
    """bool ``[B, T]``: the items to train on."""


def _check(name: str, shape: tuple[int, ...], **arrays: np.ndarray) -> None:
    for key, a in arrays.items():
        if a.shape != shape:
            raise ValueError(f"{name}: {key} has shape {a.shape}, expected {shape} like step_type ([B, T])")


def trainable(step_type: np.ndarray, next_step_type: np.ndarray) -> np.ndarray:
    """bool ``[B, T]``: items that are not boundaries and whose successor continues them."""
    step_type, next_step_type = np.asarray(step_type), np.asarray(next_step_type)
    if step_type.ndim != 2:
        raise ValueError(f"trainable: expected [B, T] step types, got shape {step_type.shape}")
    valid = np.zeros(step_type.shape, bool)
    valid[:, :-1] = (step_type[:, :-1] != _LAST) & (step_type[:, 1:] == next_step_type[:, :-1])
    return valid


def gae(
    step_type: np.ndarray,
    next_step_type: np.ndarray,
    reward: np.ndarray,
    discount: np.ndarray,
    value: np.ndarray,
    gamma: float,
    lam: float,
) -> Advantages:
    """GAE(λ) advantages and λ-returns of ``[B, T]`` rollouts (see the module docstring)."""
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gae: gamma and lam must be in [0, 1], got {gamma}, {lam}")
    step_type = np.asarray(step_type)
    shape = step_type.shape
    reward, discount = np.asarray(reward, np.float64), np.asarray(discount, np.float64)
    value = np.asarray(value, np.float64)
    _check(
        "gae", shape, next_step_type=np.asarray(next_step_type), reward=reward, discount=discount, value=value
    )
    valid = trainable(step_type, next_step_type)
    ends = np.asarray(next_step_type) == _LAST
    advantages = np.zeros(shape, np.float64)
    carry = np.zeros(shape[0], np.float64)
    for t in range(shape[1] - 2, -1, -1):
        ok = valid[:, t]
        delta = reward[:, t] + gamma * discount[:, t] * value[:, t + 1] - value[:, t]
        carry = np.where(ok, delta + gamma * lam * discount[:, t] * np.where(ends[:, t], 0.0, carry), 0.0)
        advantages[:, t] = carry
    returns = np.where(valid, advantages + value, 0.0)
    return Advantages(advantages.astype(np.float32), returns.astype(np.float32), valid)


def monte_carlo_returns(
    step_type: np.ndarray,
    next_step_type: np.ndarray,
    reward: np.ndarray,
    discount: np.ndarray,
    gamma: float,
    bootstrap_value: np.ndarray | None = None,
) -> Advantages:
    """Discounted returns ``G[t] = reward[t] + γ · discount[t] · G[t + 1]`` within each episode.

    Only items whose episode ends inside the rollout are valid (an unfinished episode has
    no return yet). A truncated episode (LAST with discount 1) has no return beyond its
    end: with ``bootstrap_value`` (``[B, T]``, e.g. a baseline's ``V(observation)``) the
    return bootstraps from the value of its final observation, held by the boundary item;
    without one it stops there, as the book's REINFORCE does. ``advantages`` holds the
    returns minus ``bootstrap_value`` when it is given, else the returns.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"monte_carlo_returns: gamma must be in [0, 1], got {gamma}")
    step_type = np.asarray(step_type)
    shape = step_type.shape
    next_step_type = np.asarray(next_step_type)
    reward, discount = np.asarray(reward, np.float64), np.asarray(discount, np.float64)
    _check("monte_carlo_returns", shape, next_step_type=next_step_type, reward=reward, discount=discount)
    values = None if bootstrap_value is None else np.asarray(bootstrap_value, np.float64)
    if values is not None:
        _check("monte_carlo_returns", shape, bootstrap_value=values)
    continues = trainable(step_type, next_step_type)
    real = step_type != _LAST
    ends = real & (next_step_type == _LAST)
    truncated = ends & (discount != 0)
    valid = np.zeros(shape, bool)
    returns = np.zeros(shape, np.float64)
    carry = np.zeros(shape[0], np.float64)  # the return of item t + 1
    known = np.zeros(shape[0], bool)  # ... and whether its episode ends inside the rollout
    for t in range(shape[1] - 1, -1, -1):
        if values is None:  # the episode's return stops at its end
            tail, tail_known = np.zeros(shape[0]), np.ones(shape[0], bool)
        elif t + 1 < shape[1]:  # bootstrap a truncation from the boundary's value
            tail, tail_known = values[:, t + 1], np.ones(shape[0], bool)  # carry's γ·discount applies once
        else:  # no final observation in the rollout: only a termination's return is known
            tail, tail_known = np.zeros(shape[0]), ~truncated[:, t]
        after = np.where(ends[:, t], tail, carry)
        known = np.where(ends[:, t], tail_known, continues[:, t] & known)
        carry = reward[:, t] + gamma * discount[:, t] * after
        valid[:, t] = known & real[:, t]
        returns[:, t] = np.where(valid[:, t], carry, 0.0)
    advantages = returns - values if values is not None else returns.copy()
    advantages = np.where(valid, advantages, 0.0)
    return Advantages(advantages.astype(np.float32), returns.astype(np.float32), valid)
