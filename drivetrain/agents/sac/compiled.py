"""SAC's whole update as one compiled step: what :class:`~drivetrain.agents.SAC` runs with ``compile=True``.

Protocol::

    update = CompiledSACUpdate(actor, critic, target_critic, temperature, optimizers,
                               max_grad_norm=None, tau=0.005, autotune_alpha=True, target_entropy=-1.0)
    packed = update(transitions, noise)   # noise [2, B, d]: the agent's, drawn on the host
    # packed: float32 [9]: critic_loss, actor_loss, alpha_loss, alpha, entropy, q_values, target,
    # critic_grad_norm, actor_grad_norm

One call is the eager :meth:`SAC.train <drivetrain.agents.SAC.train>` of a batch with a valid
transition: the critics' target from the actor and the target critics (``noise[0]``), the
critics' loss, gradients, global norm (clipped to ``max_grad_norm`` if set) and Adam step; the
actor's reparameterized loss (``noise[1]``) through the just-updated critics, its gradients
(the critics get none), norm, clip and step; the temperature's loss and, with
``autotune_alpha``, its step; with ``tau`` set (target updates every train step) the Polyak
averaging of the target critics. Written with ``torch.func`` (``functional_call``,
``grad_and_value``) as a function of the networks', the optimizers' and the batch's tensors
and compiled by :func:`~drivetrain.agents.compiling.compile_update` (a new batch size
compiles again). It updates the live parameters, optimizer states and target critics in place,
so checkpoints keep their format. A non-finite loss disables its part's step and every later
one inside the graph (:mod:`~drivetrain.agents.continuous.compiled`); the caller raises for it.
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
from drivetrain.agents.sac import loss as loss_lib
from drivetrain.networks.continuous import squashed_sample

__all__ = ["CompiledSACUpdate"]


class CompiledSACUpdate:
    """The SAC update as one ``torch.compile``-d function (see the module docstring)."""

    def __init__(
        self,
        actor: nn.Module,
        critic: nn.Module,
        target_critic: nn.Module,
        temperature: nn.Module,
        optimizers: dict[str, torch.optim.Optimizer],
        *,
        max_grad_norm: float | None,
        tau: float | None,
        autotune_alpha: bool,
        target_entropy: float,
    ):
        self._actor, self._critic = NamedTensors(actor), NamedTensors(critic)
        self._target = NamedTensors(target_critic)
        self._temperature = NamedTensors(temperature)
        parts = {"critic": critic, "actor": actor}
        if autotune_alpha:
            parts["temperature"] = temperature
        self._optimizers = {
            name: FunctionalOptimizer(optimizers[name], list(module.parameters()), "SAC")
            for name, module in parts.items()
        }
        step = _make_step(
            actor,
            critic,
            (self._actor, self._critic, self._target),
            self._optimizers,
            max_grad_norm,
            tau,
            target_entropy,
        )
        self._step = compile_update(step, next(actor.parameters()).device)

    def __call__(self, t: Transitions, noise: torch.Tensor) -> torch.Tensor:
        """One update (in place); returns the packed statistics (see the module docstring)."""
        fopts = self._optimizers
        packed: torch.Tensor = self._step(
            self._critic.params,
            self._critic.buffers,
            self._actor.params,
            self._actor.buffers,
            self._temperature.params[0],
            self._target.everything,
            {name: fopt.state() for name, fopt in fopts.items()},
            {name: fopt.scalars() for name, fopt in fopts.items()},
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
    critic_module: nn.Module,
    named: tuple[NamedTensors, NamedTensors, NamedTensors],
    optimizers: dict[str, FunctionalOptimizer],
    max_grad_norm: float | None,
    tau: float | None,
    target_entropy: float,
) -> Callable[..., torch.Tensor]:
    """The update as a function of tensors, for ``torch.compile``."""
    actor, critic, target_critic = named
    functional_call = functional_call_of(actor_module, critic_module)
    autotune = "temperature" in optimizers

    def actor_loss_of(
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        critic_tensors: dict[str, torch.Tensor],
        observation: Any,
        noise: torch.Tensor,
        alpha: torch.Tensor,
        weight: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = functional_call(actor_module, {**params, **buffers}, (observation,))
        action, log_prob = squashed_sample(mean, log_std, noise)
        q_pi = functional_call(critic_module, critic_tensors, (observation, action)).min(0).values
        return loss_lib.actor_loss(q_pi, log_prob, alpha, weight), log_prob

    def temperature_loss_of(
        log_alpha: torch.Tensor, log_prob: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        return loss_lib.temperature_loss(log_alpha, log_prob, target_entropy, weight)

    critic_grad = torch.func.grad_and_value(critic_loss_function(critic_module), has_aux=True)
    actor_grad = torch.func.grad_and_value(actor_loss_of, has_aux=True)
    temperature_grad = torch.func.grad_and_value(temperature_loss_of)

    def step(
        critic_params: list[torch.Tensor],
        critic_buffers: dict[str, torch.Tensor],
        actor_params: list[torch.Tensor],
        actor_buffers: dict[str, torch.Tensor],
        log_alpha: torch.Tensor,
        target_tensors: list[torch.Tensor],
        states: dict[str, Any],
        scalars: dict[str, torch.Tensor],
        observation: Any,
        action: torch.Tensor,
        reward: torch.Tensor,
        discount: torch.Tensor,
        next_observation: Any,
        weight: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        alpha = log_alpha.exp()
        actor_now = actor.as_dict(actor_params, actor_buffers)
        mean, log_std = functional_call(actor_module, actor_now, (next_observation,))
        next_action, next_log_prob = squashed_sample(mean, log_std, noise[0])
        target_now = dict(zip(target_critic.all_names, target_tensors, strict=True))
        next_q = functional_call(critic_module, target_now, (next_observation, next_action)).min(0).values
        target = loss_lib.critic_target(reward, discount, next_q, next_log_prob, alpha)

        critic_loss, q, critic_norm, ok = critic_step(
            critic_grad,
            critic,
            optimizers["critic"],
            (critic_params, critic_buffers, states["critic"], scalars["critic"]),
            (observation, action, target, weight),
            max_grad_norm,
        )
        critic_now = critic.as_dict(critic_params, critic_buffers)  # the updated weights

        trainable = dict(zip(actor.names, actor_params, strict=True))
        grads, (actor_loss, log_prob) = actor_grad(
            trainable, actor_buffers, critic_now, observation, noise[1], alpha, weight
        )
        ok = ok & finite(actor_loss)
        actor_norm = optimizers["actor"].clipped_update(
            actor_params,
            [grads[n] for n in actor.names],
            states["actor"],
            scalars["actor"],
            max_grad_norm,
            ok,
        )

        if autotune:
            grad, alpha_loss = temperature_grad(log_alpha, log_prob, weight)
            ok = ok & finite(alpha_loss)
            optimizers["temperature"].clipped_update(
                [log_alpha],
                [grad],
                states["temperature"],
                scalars["temperature"],
                max_grad_norm,
                ok,
                norm=False,
            )
        else:
            alpha_loss = temperature_loss_of(log_alpha, log_prob, weight)
        if tau is not None:
            polyak(target_tensors, [critic_now[n] for n in target_critic.all_names], tau, ok)
        assert critic_norm is not None and actor_norm is not None
        statistics = [
            critic_loss,
            actor_loss,
            alpha_loss,
            alpha,
            -(log_prob * weight).sum(),
            (q * weight).sum() / q.shape[0],
            (target * weight).sum(),
            critic_norm,
            actor_norm,
        ]
        return torch.stack(statistics)

    return step
