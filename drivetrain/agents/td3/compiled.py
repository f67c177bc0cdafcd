"""TD3's update as compiled steps: what :class:`~drivetrain.agents.TD3` runs with ``compile=True``.

Protocol::

    update = CompiledTD3Update(actor, critic, target_actor, target_critic, optimizers,
                               max_grad_norm=None, tau=0.005, noise_std=0.2, noise_clip=0.5)
    packed = update(transitions, noise, update_actor)   # noise [B, d]: the agent's, drawn on the host
    # packed: float32 [6]: critic_loss, q_values, target, critic_grad_norm, actor_loss, actor_grad_norm
    # (the last two 0 when not update_actor)

One call is the eager :meth:`TD3.train <drivetrain.agents.TD3.train>` of a batch with a valid
transition: the critics' target from the target actor's smoothed action (``noise``) and the
target critics, the critics' loss, gradients, global norm (clipped to ``max_grad_norm`` if set)
and Adam step; with ``update_actor`` also the actor's loss through the just-updated first
critic, its gradients, norm, clip and step, and the Polyak averaging of the target actor and
critics. The two kinds of train step are two compiled functions (each compiled on its first
call; with ``policy_delay`` 1 only the second is ever used), chosen on the host. Written with
``torch.func`` (``functional_call``, ``grad_and_value``) and compiled by
:func:`~drivetrain.agents.compiling.compile_update`; it updates the live parameters,
optimizer states and targets in place, so checkpoints keep their format. A non-finite loss
disables its part's step and every later one inside the graph
(:mod:`~drivetrain.agents.continuous.compiled`); the caller raises for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from drivetrain.agents.compiling import compile_update, functional_call_of
from drivetrain.agents.continuous.compiled import (
    NamedTensors,
    critic_loss_function,
    critic_step,
    finite,
    polyak,
)
from drivetrain.agents.continuous.transitions import Transitions
from drivetrain.agents.functional_optim import FunctionalOptimizer
from drivetrain.agents.td3 import loss as loss_lib
from drivetrain.networks.continuous import QCritics

__all__ = ["CompiledTD3Update"]

_FIRST = "critics.0."


class CompiledTD3Update:
    """The TD3 update as ``torch.compile``-d functions (see the module docstring)."""

    def __init__(
        self,
        actor: nn.Module,
        critic: QCritics,
        target_actor: nn.Module,
        target_critic: nn.Module,
        optimizers: dict[str, torch.optim.Optimizer],
        *,
        max_grad_norm: float | None,
        tau: float,
        noise_std: float,
        noise_clip: float,
    ):
        self._actor, self._critic = NamedTensors(actor), NamedTensors(critic)
        self._target_actor, self._target_critic = NamedTensors(target_actor), NamedTensors(target_critic)
        self._optimizers = {
            name: FunctionalOptimizer(optimizers[name], list(module.parameters()), "TD3")
            for name, module in (("critic", critic), ("actor", actor))
        }
        named = (self._actor, self._critic, self._target_actor, self._target_critic)
        settings = (max_grad_norm, tau, noise_std, noise_clip)
        self._steps = {
            update_actor: compile_update(
                _make_step(actor, critic, named, self._optimizers, settings, update_actor),
                next(actor.parameters()).device,
            )
            for update_actor in (False, True)
        }

    def __call__(self, t: Transitions, noise: torch.Tensor, update_actor: bool) -> torch.Tensor:
        """One update (in place); returns the packed statistics (see the module docstring)."""
        names = ("critic", "actor") if update_actor else ("critic",)
        fopts = [self._optimizers[name] for name in names]
        packed: torch.Tensor = self._steps[update_actor](
            self._critic.params,
            self._critic.buffers,
            self._actor.params,
            self._actor.buffers,
            self._target_actor.everything,
            self._target_critic.everything,
            [fopt.state() for fopt in fopts],
            [fopt.scalars() for fopt in fopts],
            t.observation,
            t.action,
            t.reward,
            t.discount,
            t.next_observation,
            t.weight,
            noise,
        )
        return packed


def _make_step(
    actor_module: nn.Module,
    critic_module: QCritics,
    named: tuple[NamedTensors, NamedTensors, NamedTensors, NamedTensors],
    optimizers: dict[str, FunctionalOptimizer],
    settings: tuple[float | None, float, float, float],
    update_actor: bool,
) -> Callable[..., torch.Tensor]:
    """The update (with the actor's or without) as a function of tensors, for ``torch.compile``."""
    actor, critic, target_actor, target_critic = named
    max_grad_norm, tau, noise_std, noise_clip = settings
    functional_call = functional_call_of(actor_module, critic_module)
    first_critic = critic_module.critics[0]

    def actor_loss_of(
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        first_critic_tensors: dict[str, torch.Tensor],
        observation: Any,
        weight: torch.Tensor,
    ) -> torch.Tensor:
        action = torch.tanh(functional_call(actor_module, {**params, **buffers}, (observation,)))
        q_pi = functional_call(first_critic, first_critic_tensors, (observation, action))
        return loss_lib.actor_loss(q_pi, weight)

    critic_grad = torch.func.grad_and_value(critic_loss_function(critic_module), has_aux=True)
    actor_grad = torch.func.grad_and_value(actor_loss_of)

    def step(
        critic_params: list[torch.Tensor],
        critic_buffers: dict[str, torch.Tensor],
        actor_params: list[torch.Tensor],
        actor_buffers: dict[str, torch.Tensor],
        target_actor_tensors: list[torch.Tensor],
        target_critic_tensors: list[torch.Tensor],
        states: list[Any],
        scalars: list[torch.Tensor],
        observation: Any,
        action: torch.Tensor,
        reward: torch.Tensor,
        discount: torch.Tensor,
        next_observation: Any,
        weight: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        target_actor_now = dict(zip(target_actor.all_names, target_actor_tensors, strict=True))
        target_mean = functional_call(actor_module, target_actor_now, (next_observation,))
        next_action = loss_lib.smoothed_target_action(target_mean, noise, noise_std, noise_clip)
        target_critic_now = dict(zip(target_critic.all_names, target_critic_tensors, strict=True))
        next_q = (
            functional_call(critic_module, target_critic_now, (next_observation, next_action)).min(0).values
        )
        target = loss_lib.critic_target(reward, discount, next_q)

        critic_loss, q, critic_norm, ok = critic_step(
            critic_grad,
            critic,
            optimizers["critic"],
            (critic_params, critic_buffers, states[0], scalars[0]),
            (observation, action, target, weight),
            max_grad_norm,
        )
        statistics = [critic_loss, (q * weight).sum() / q.shape[0], (target * weight).sum(), critic_norm]
        if not update_actor:
            return torch.stack(statistics)

        critic_now = critic.as_dict(critic_params, critic_buffers)  # the updated weights
        first = {n[len(_FIRST) :]: v for n, v in critic_now.items() if n.startswith(_FIRST)}
        trainable = dict(zip(actor.names, actor_params, strict=True))
        grads, actor_loss = actor_grad(trainable, actor_buffers, first, observation, weight)
        ok = ok & finite(actor_loss)
        actor_norm = optimizers["actor"].clipped_update(
            actor_params,
            [grads[n] for n in actor.names],
            states[1],
            scalars[1],
            max_grad_norm,
            ok,
        )
        assert actor_norm is not None
        actor_now = actor.as_dict(actor_params, actor_buffers)
        polyak(target_actor_tensors, [actor_now[n] for n in target_actor.all_names], tau, ok)
        polyak(target_critic_tensors, [critic_now[n] for n in target_critic.all_names], tau, ok)
        return torch.stack([*statistics, actor_loss, actor_norm])

    return step
