"""TD3 (Fujimoto et al. 2018), and DDPG as its special case.

Protocol::

    agent = make_td3(TD3Config(), env.time_step_spec(), env.action_spec(), seed=0)
    replay = UniformReplay(agent.collect_data_spec, capacity, num_envs)   # environment actions
    driver = StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=1)
    batch, _ = replay.sample(256, num_steps=agent.train_sequence_length)  # [256, 2, ...]
    loss_info = agent.train(batch)

One ``train`` call, on the valid 1-step transitions of the windows:

1. the critics: target ``y = r + discount · min_i Q'_i(s', a')`` with ``a'`` the target actor's
   action plus clipped noise (target policy smoothing), one Adam step on the critics' loss;
2. every ``policy_delay`` train steps (the first one included): one Adam step of the actor on
   ``-mean Q_1(s, tanh(mean(s)))``, then Polyak averaging of the target actor and critics.

The losses are :mod:`drivetrain.agents.td3.loss`. ``TD3Config(num_critics=1,
target_policy_noise=0.0, policy_delay=1)`` is DDPG. ``LossInfo.loss`` is the critic loss plus
the latest actor loss; ``extra``: ``critic_loss``, ``actor_loss`` and ``actor_grad_norm`` (of the
latest actor update, so that averages over train steps stay meaningful), ``actor_updated``
(1 when this step updated the actor), ``q_values``, ``target``, ``critic_grad_norm``, ``num_valid``.

With ``config.compile`` a train call on a batch with a valid transition runs as one compiled
function (:mod:`drivetrain.agents.td3.compiled`: one for the critic-only steps, one for the
steps that also update the actor and the targets; ``torch.compile`` on the first call of each,
which takes seconds). It consumes the same noise, gives the same results within
floating-point tolerance, raises the same :class:`~drivetrain.agents.loss_info.NonFiniteLossError`
with the same weights left, and keeps the checkpoint format.

``agent.policy`` is deterministic, ``tanh(mean)`` rescaled to the bounds; ``agent.collect_policy``
adds Gaussian noise of ``exploration_noise`` (unit actions) and clips. All noise comes from
seeded NumPy generators that ``state_dict()`` holds: a restored agent continues bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from drivetrain.agents.continuous.agent import OffPolicyActorCritic, Transitions
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.td3 import loss as loss_lib
from drivetrain.agents.td3.compiled import CompiledTD3Update
from drivetrain.agents.td3.config import TD3Config
from drivetrain.core import types
from drivetrain.core.schedules import Schedule
from drivetrain.networks.continuous import DeterministicActor, QCritics

__all__ = ["TD3"]


class TD3(OffPolicyActorCritic):
    """TD3 (or DDPG) on windows of 2 steps of a uniform replay; see the module docstring."""

    _name = "TD3"

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        actor: DeterministicActor,
        critic: QCritics,
        config: TD3Config,
        seed: int | None = None,
        learning_rate_fraction: Schedule | None = None,
    ):
        self._config = config
        self._td3_actor = actor
        super().__init__(
            time_step_spec,
            action_spec,
            actor,
            critic,
            {"critic": config.critic_learning_rate, "actor": config.actor_learning_rate},
            gamma=config.gamma,
            tau=config.tau,
            adam_eps=config.adam_eps,
            max_grad_norm=config.max_grad_norm,
            exploration="gaussian",
            exploration_noise=config.exploration_noise,
            target_actor=True,
            learning_rate_fraction=learning_rate_fraction,
            device=config.device,
            seed=seed,
            compile=config.compile,
        )
        self._action_dim = int(action_spec.shape[0])
        self._last_actor = (0.0, 0.0)  # (loss, grad norm) of the latest actor update
        if self._compile:
            self._compiled_update()  # refuses what it cannot compile now; torch compiles on the first call

    @property
    def config(self) -> TD3Config:
        return self._config

    # ------------------------------------------------------------------ training
    def critic_target(self, t: Transitions, noise: torch.Tensor) -> torch.Tensor:
        """``y = r + discount · min_i Q'_i(s', a')``, ``a'`` the target actor's action smoothed by ``noise``."""
        c = self._config
        with torch.no_grad():
            assert self._target_actor is not None
            target_mean = self._target_actor.mean(t.next_observation)
            next_action = loss_lib.smoothed_target_action(
                target_mean, noise, c.target_policy_noise, c.target_noise_clip
            )
            next_q = self._target_critic.min(t.next_observation, next_action)
            return loss_lib.critic_target(t.reward, t.discount, next_q)

    def train(self, experience: types.Trajectory, weights: np.ndarray | None = None) -> LossInfo:
        """One TD3 update on windows ``[B, 2, ...]`` (see the module docstring)."""
        t = self.transitions(experience, weights)
        noise = self._noise(len(t.weight), self._action_dim)  # drawn even for an all-boundary batch
        update_actor = self._train_step % self._config.policy_delay == 0
        if t.num_valid == 0:
            self._finish_step()
            return _empty_info()
        if self._compile:
            return self._train_compiled(t, noise, update_actor)
        target = self.critic_target(t, noise)
        q = self._critic(t.observation, t.action)
        critic_loss = loss_lib.critic_loss(q, target, t.weight)
        critic_grad = self._step("critic", critic_loss)

        if update_actor:
            self.freeze_critic(True)  # the actor's gradient only
            q_pi = self._critic.first(t.observation, torch.tanh(self._td3_actor.mean(t.observation)))
            self.freeze_critic(False)
            actor_loss = loss_lib.actor_loss(q_pi, t.weight)
            actor_grad = self._step("actor", actor_loss)
            self._last_actor = (float(actor_loss.detach()), float(actor_grad))
            self.update_targets(("target_actor", "actor"), ("target_critic", "critic"))
        self._finish_step()

        with torch.no_grad():
            values = torch.stack(
                [
                    critic_loss.detach(),
                    (q.detach() * t.weight).sum() / q.shape[0],
                    (target * t.weight).sum(),
                    critic_grad,
                ]
            ).to("cpu", torch.float64)
        return self._info(values.tolist(), update_actor, t.num_valid)

    def _build_compiled(self) -> CompiledTD3Update:
        c = self._config
        assert self._target_actor is not None
        return CompiledTD3Update(
            self._td3_actor,
            self._critic,
            self._target_actor,
            self._target_critic,
            self._optimizers,
            max_grad_norm=self._max_grad_norm,
            tau=self._tau,
            noise_std=c.target_policy_noise,
            noise_clip=c.target_noise_clip,
        )

    def _train_compiled(self, t: Transitions, noise: torch.Tensor, update_actor: bool) -> LossInfo:
        """:mod:`~drivetrain.agents.td3.compiled`'s update, the host's checks and the LossInfo."""
        update = self._compiled_update()
        parts = ("critic", "actor") if update_actor else ("critic",)
        previous = self._set_learning_rates(*parts)
        values = update(t, noise, update_actor).to("cpu", torch.float64).tolist()
        self._check_compiled(dict(zip(parts, values[::4], strict=True)), previous)
        if update_actor:
            self._last_actor = (values[4], values[5])
        self._finish_step()
        return self._info(values[:4], update_actor, t.num_valid)

    def _info(self, values: list[float], update_actor: bool, num_valid: int) -> LossInfo:
        c, q_mean, target_mean, cg = values
        actor_loss_value, actor_grad_value = self._last_actor
        return LossInfo(
            c + actor_loss_value,
            {
                "critic_loss": c,
                "actor_loss": actor_loss_value,
                "actor_updated": int(update_actor),
                "q_values": q_mean,
                "target": target_mean,
                "critic_grad_norm": cg,
                "actor_grad_norm": actor_grad_value,
                "num_valid": num_valid,
            },
        )

    def state_dict(self) -> dict[str, Any]:
        """The base agent's state and the latest actor update's loss and gradient norm (reported until the next)."""
        return {**super().state_dict(), "last_actor": self._last_actor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        loss, grad_norm = state.get("last_actor", (0.0, 0.0))
        self._last_actor = (float(loss), float(grad_norm))


def _empty_info() -> LossInfo:
    keys = ("critic_loss", "actor_loss", "q_values", "target", "critic_grad_norm", "actor_grad_norm")
    return LossInfo(0.0, {**dict.fromkeys(keys, 0.0), "actor_updated": 0, "num_valid": 0})
