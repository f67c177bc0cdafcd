"""Soft Actor-Critic (Haarnoja et al. 2018) with twin critics and an automatic temperature.

Protocol::

    agent = make_sac(SACConfig(), env.time_step_spec(), env.action_spec(), seed=0)
    replay = UniformReplay(agent.collect_data_spec, capacity, num_envs)   # environment actions
    driver = StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=1)
    batch, _ = replay.sample(256, num_steps=agent.train_sequence_length)  # [256, 2, ...]
    loss_info = agent.train(batch)

One ``train`` call, on the valid 1-step transitions of the windows
(:meth:`~drivetrain.agents.continuous.agent.OffPolicyActorCritic.transitions`):

1. the critics: target ``y = r + discount (min_i Q'_i(s', a') - α log π(a'|s'))`` with ``a'``
   sampled from the current actor and the target critics, one Adam step on ``critic_loss``;
2. the actor: ``ã = tanh(mean + std ε)`` (reparameterized), one Adam step on
   ``α log π(ã|s) - min_i Q_i(s, ã)`` through the just-updated critics (their weights get no
   gradient from it);
3. the temperature (``autotune_alpha``): one Adam step on ``log α`` towards ``target_entropy``;
4. every ``target_update_period`` train steps, Polyak averaging of the target critics.

The losses are :mod:`drivetrain.agents.sac.loss`. ``LossInfo.loss`` is the sum of the critic and
actor losses; ``extra``: ``critic_loss``, ``actor_loss``, ``alpha_loss``, ``alpha`` (the
temperature used in this step), ``entropy`` (``-mean log π`` of the actor's samples),
``q_values`` (mean over critics and transitions), ``target``, ``critic_grad_norm``,
``actor_grad_norm`` (before clipping) and ``num_valid``. A batch without a valid window
changes nothing but ``train_step`` and reports zeros.

With ``config.compile`` a train call on a batch with a valid transition runs steps 1-4 (step 4
when ``target_update_period`` is 1; otherwise it stays on the host) as one compiled function
(:mod:`drivetrain.agents.sac.compiled`; ``torch.compile`` on the first call, which takes
seconds). It consumes the same noise, gives the same results within floating-point
tolerance, raises the same :class:`~drivetrain.agents.loss_info.NonFiniteLossError` with the
same weights left, and keeps the checkpoint format.

``agent.policy`` is deterministic, ``tanh(mean)`` rescaled to the bounds; ``agent.collect_policy``
samples. The noise of both (and of training) comes from seeded NumPy generators that
``state_dict()`` holds with every network and optimizer, so a restored agent continues bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from drivetrain.agents.continuous.agent import OffPolicyActorCritic, Transitions
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.sac import loss as loss_lib
from drivetrain.agents.sac.compiled import CompiledSACUpdate
from drivetrain.agents.sac.config import SACConfig
from drivetrain.core import types
from drivetrain.core.schedules import Schedule
from drivetrain.networks.continuous import QCritics, SquashedGaussianActor, squashed_sample

__all__ = ["SAC", "Temperature"]


class Temperature(nn.Module):
    """The entropy temperature ``α = exp(log_alpha)``, learned in log space."""

    def __init__(self, initial_alpha: float):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(math.log(initial_alpha), dtype=torch.float32))

    def forward(self) -> torch.Tensor:
        return self.log_alpha.exp()


class SAC(OffPolicyActorCritic):
    """Soft Actor-Critic on windows of 2 steps of a uniform replay; see the module docstring."""

    _name = "SAC"

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        actor: SquashedGaussianActor,
        critic: QCritics,
        config: SACConfig,
        seed: int | None = None,
        learning_rate_fraction: Schedule | None = None,
    ):
        if not isinstance(actor, SquashedGaussianActor):
            raise TypeError(f"SAC: the actor must be a SquashedGaussianActor, got {type(actor).__name__}")
        self._config = config
        self._sac_actor = actor
        self._temperature = Temperature(config.initial_alpha)
        super().__init__(
            time_step_spec,
            action_spec,
            actor,
            critic,
            {
                "critic": config.critic_learning_rate,
                "actor": config.actor_learning_rate,
                "temperature": config.alpha_learning_rate,
            },
            gamma=config.gamma,
            tau=config.tau,
            adam_eps=config.adam_eps,
            max_grad_norm=config.max_grad_norm,
            exploration="sample",
            exploration_noise=0.0,
            target_actor=False,
            extra={"temperature": self._temperature},
            learning_rate_fraction=learning_rate_fraction,
            device=config.device,
            seed=seed,
            compile=config.compile,
        )
        dim = int(action_spec.shape[0])
        self._target_entropy = -float(dim) if config.target_entropy is None else float(config.target_entropy)
        self._action_dim = dim
        if self._compile:
            self._compiled_update()  # refuses what it cannot compile now; torch compiles on the first call

    @property
    def config(self) -> SACConfig:
        return self._config

    @property
    def target_entropy(self) -> float:
        return self._target_entropy

    @property
    def alpha(self) -> float:
        """The entropy temperature now."""
        return float(self._temperature().detach())

    # ------------------------------------------------------------------ training
    def critic_target(self, t: Transitions, noise: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
        """``y = r + discount (min_i Q'_i(s', a') - α log π(a'|s'))`` with ``a' = tanh(mean' + std' · noise)``."""
        with torch.no_grad():
            mean, log_std = self._sac_actor(t.next_observation)
            next_action, next_log_prob = squashed_sample(mean, log_std, noise)
            next_q = self._target_critic.min(t.next_observation, next_action)
            return loss_lib.critic_target(t.reward, t.discount, next_q, next_log_prob, alpha)

    def train(self, experience: types.Trajectory, weights: np.ndarray | None = None) -> LossInfo:
        """One SAC update on windows ``[B, 2, ...]`` (see the module docstring)."""
        t = self.transitions(experience, weights)
        noise = self._noise(2, len(t.weight), self._action_dim)  # drawn even for an all-boundary batch
        if t.num_valid == 0:
            self._finish_step()
            return _empty_info()
        if self._compile:
            return self._train_compiled(t, noise)
        alpha = self._temperature().detach()

        target = self.critic_target(t, noise[0], alpha)
        q = self._critic(t.observation, t.action)
        critic_loss = loss_lib.critic_loss(q, target, t.weight)
        critic_grad = self._step("critic", critic_loss)

        mean, log_std = self._sac_actor(t.observation)
        action, log_prob = squashed_sample(mean, log_std, noise[1])
        self.freeze_critic(True)  # the actor's gradient only
        q_pi = self._critic(t.observation, action).min(0).values  # the gradient reaches one critic per sample
        self.freeze_critic(False)
        actor_loss = loss_lib.actor_loss(q_pi, log_prob, alpha, t.weight)
        actor_grad = self._step("actor", actor_loss)

        alpha_loss = loss_lib.temperature_loss(
            self._temperature.log_alpha, log_prob, self._target_entropy, t.weight
        )
        if self._config.autotune_alpha:
            self._step_unlogged("temperature", alpha_loss)

        self._finish_step()
        if self._train_step % self._config.target_update_period == 0:
            self.update_targets(("target_critic", "critic"))
        with torch.no_grad():
            values = torch.stack(
                [
                    critic_loss.detach(),
                    actor_loss.detach(),
                    alpha_loss.detach(),
                    alpha,
                    -(log_prob.detach() * t.weight).sum(),
                    (q.detach() * t.weight).sum() / q.shape[0],
                    (target * t.weight).sum(),
                    critic_grad,
                    actor_grad,
                ]
            ).to("cpu", torch.float64)
        return _info(values.tolist(), t.num_valid)

    def _build_compiled(self) -> CompiledSACUpdate:
        c = self._config
        return CompiledSACUpdate(
            self._sac_actor,
            self._critic,
            self._target_critic,
            self._temperature,
            self._optimizers,
            max_grad_norm=self._max_grad_norm,
            tau=self._tau if c.target_update_period == 1 else None,
            autotune_alpha=c.autotune_alpha,
            target_entropy=self._target_entropy,
        )

    def _train_compiled(self, t: Transitions, noise: torch.Tensor) -> LossInfo:
        """:mod:`~drivetrain.agents.sac.compiled`'s update, the host's checks and the LossInfo."""
        update = self._compiled_update()
        parts = ("critic", "actor", "temperature") if self._config.autotune_alpha else ("critic", "actor")
        previous = self._set_learning_rates(*parts)
        values = update(t, noise).to("cpu", torch.float64).tolist()
        self._check_compiled(dict(zip(parts, values[:3], strict=False)), previous)
        self._finish_step()
        period = self._config.target_update_period
        if period != 1 and self._train_step % period == 0:
            self.update_targets(("target_critic", "critic"))
        return _info(values, t.num_valid)


def _info(values: list[float], num_valid: int) -> LossInfo:
    c, a, al, alpha_value, entropy, q_mean, target_mean, cg, ag = values
    return LossInfo(
        c + a,
        {
            "critic_loss": c,
            "actor_loss": a,
            "alpha_loss": al,
            "alpha": alpha_value,
            "entropy": entropy,
            "q_values": q_mean,
            "target": target_mean,
            "critic_grad_norm": cg,
            "actor_grad_norm": ag,
            "num_valid": num_valid,
        },
    )


def _empty_info() -> LossInfo:
    keys = ("critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy", "q_values", "target")
    return LossInfo(
        0.0, {**dict.fromkeys(keys, 0.0), "critic_grad_norm": 0.0, "actor_grad_norm": 0.0, "num_valid": 0}
    )
