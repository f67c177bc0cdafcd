"""PPO: the clipped-surrogate actor-critic, trained on minibatches of on-policy rollouts.

::

    agent = make_ppo(PPOConfig(), env.time_step_spec(), env.action_spec(), seed=0)
    rollout = RolloutBuffer(agent.collect_data_spec, env.batch_size)
    driver = StepDriver(env, agent.collect_policy, [rollout.add_batch], num_steps=128 * env.batch_size)
    driver.run()
    data = agent.prepare(*rollout.gather())            # GAE(λ) advantages and returns, [E, T]
    for batch in minibatches(data, 4, 4, agent.minibatch_rng, sequences=agent.recurrent):
        agent.train(batch)                             # LossInfo(loss, extra={...})
    rollout.release(data.mask)

:meth:`PPO.prepare` computes the advantages from the values the collect policy reported
(``policy_info["value"]``; a truncated episode bootstraps from the value its boundary
item holds) with :func:`drivetrain.replay.advantages.gae`. :meth:`PPO.train` is one
gradient step of :func:`~drivetrain.agents.ppo.loss.ppo_loss` on a minibatch: flat items,
or for a recurrent network whole sequences that start from the state the driver stored
at their first step and reset at every FIRST inside, as the policy did while acting.

With ``config.compile`` (feed-forward networks) each train call runs the network, the loss,
the gradients, their clipping and Adam's step as one compiled function
(:mod:`~drivetrain.agents.ppo.compiled`; ``torch.compile`` on the first call of each
padded minibatch size, which takes seconds: a training loop's minibatches share one, which
:meth:`prepare` sets); the results equal the eager update's within floating-point tolerance,
the LossInfo has the same keys and the checkpoints the same format.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from drivetrain.agents.actor_critic.agent import ActorCriticAgent
from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.actor_critic.normalization import RunningMeanStd, discounted_returns
from drivetrain.agents.compiling import resolve_compile
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.ppo.compiled import CompiledUpdate, minibatch_capacity, padded_inputs
from drivetrain.agents.ppo.config import PPOConfig
from drivetrain.agents.ppo.loss import ppo_loss
from drivetrain.agents.tensors import to_torch
from drivetrain.core import types
from drivetrain.core.schedules import Schedule, as_schedule
from drivetrain.replay.advantages import gae, trainable
from drivetrain.replay.rollout import RolloutBatch

__all__ = ["PPO"]


class PPO(ActorCriticAgent):
    """Proximal policy optimization; see the module docstring."""

    _name = "PPO"

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        network: ActorCriticNetwork,
        config: PPOConfig,
        *,
        learning_rate: float | Schedule | None = None,
        clip_ratio: float | Schedule | None = None,
        seed: int | None = None,
    ):
        super().__init__(
            time_step_spec,
            action_spec,
            network,
            learning_rate=config.learning_rate if learning_rate is None else learning_rate,
            adam_eps=config.adam_eps,
            max_grad_norm=config.max_grad_norm,
            device=config.device,
            seed=seed,
        )
        self._config = config
        self._clip_ratio = as_schedule(config.clip_ratio if clip_ratio is None else clip_ratio, "clip_ratio")
        self._return_rms = RunningMeanStd(())
        self._running_return: np.ndarray | None = None  # per environment, for reward scaling
        self._rollouts = 0  # prepared so far: the annealing schedules' step
        self._progress = 0
        self._compiled: CompiledUpdate | None = None
        self._capacity: int | None = None  # of the compiled update's minibatches, set by prepare
        if resolve_compile(config.compile, config.device, "PPO", supported=not self._network.recurrent):
            self._compiled = CompiledUpdate(
                self._network,
                self._optimizer,
                value_clip=config.value_clip,
                vf_coef=config.vf_coef,
                ent_coef=config.ent_coef,
                normalize_advantages=config.normalize_advantages,
                max_grad_norm=config.max_grad_norm,
                owner=self._name,
            )

    @property
    def config(self) -> PPOConfig:
        return self._config

    @property
    def compiled(self) -> bool:
        """Whether train calls run the compiled update (``compile`` True, or ``"auto"`` resolved so)."""
        return self._compiled is not None

    def prepare(self, trajectory: types.Trajectory, trained: np.ndarray | None = None) -> RolloutBatch:
        """GAE(λ) advantages and λ-returns of a rollout ``[E, T]`` from the values it holds."""
        c = self._config
        new = trainable(trajectory.step_type, trajectory.next_step_type)
        if trained is not None:
            new &= ~np.asarray(trained, bool)
        reward = trajectory.reward
        if c.scale_rewards:  # by the std of the discounted return, each item counted once
            if self._running_return is None or len(self._running_return) != len(new):
                self._running_return = np.zeros(len(new))
            returns, self._running_return = discounted_returns(
                trajectory.step_type, reward, c.gamma, new, self._running_return
            )
            self._return_rms.update(returns)
            reward = (reward / self._return_rms.std.item()).astype(np.float32)
        self._progress, self._rollouts = self._rollouts, self._rollouts + 1
        if self._compiled is not None:
            self._capacity = minibatch_capacity(len(new), c.rollout_steps, c.num_minibatches)
        out = gae(
            trajectory.step_type,
            trajectory.next_step_type,
            reward,
            trajectory.discount,
            trajectory.policy_info["value"],
            c.gamma,
            c.gae_lambda,
        )
        # The loss reads observations, actions, policy info and (recurrent) step types: the
        # other fields are left out, so minibatches do not copy them again at every epoch.
        trained_on = trajectory._replace(next_step_type=(), reward=(), discount=())
        return RolloutBatch(trained_on, out.advantages, out.returns, out.valid & new)

    def finish_rollout(self, data: RolloutBatch) -> None:
        """After a rollout's epochs: folds its observations into the normalization statistics."""
        rms = self._network.obs_rms
        if rms is not None:
            rms.update(np.asarray(data.trajectory.observation)[np.asarray(data.mask, bool)])

    def train(self, experience: RolloutBatch, weights: np.ndarray | None = None) -> LossInfo:
        """One gradient step of the PPO loss on a minibatch (see :func:`~drivetrain.replay.rollout.minibatches`)."""
        mask = self._check_experience(experience, weights)
        if self._compiled is not None:
            return self._train_compiled(self._compiled, experience, mask)
        c = self._config
        trajectory = experience.trajectory
        ev = self.evaluate_actions(trajectory)
        terms = ppo_loss(
            ev.log_prob,
            self._tensor(trajectory.policy_info["log_prob"]),
            self._tensor(experience.advantages),
            ev.value,
            self._tensor(trajectory.policy_info["value"]),
            self._tensor(experience.returns),
            ev.entropy,
            None if mask.all() else self._tensor(mask) > 0,
            clip_ratio=float(self._clip_ratio(self._progress)),
            value_clip=c.value_clip,
            vf_coef=c.vf_coef,
            ent_coef=c.ent_coef,
            normalize_advantages=c.normalize_advantages,
        )
        loss, grad_norm, lr = self._step(terms.loss)
        parts = torch.stack(
            [terms.policy_loss, terms.value_loss, terms.entropy, terms.approx_kl, terms.clip_fraction]
        )
        return self._loss_info(loss, grad_norm, lr, parts.tolist())  # one transfer

    def _train_compiled(self, update: CompiledUpdate, experience: RolloutBatch, mask: np.ndarray) -> LossInfo:
        """The update of :mod:`~drivetrain.agents.ppo.compiled` and its LossInfo (the same keys)."""
        inputs = padded_inputs(experience, mask, self._capacity, self._minimum, self._network.continuous)
        lr = float(self._learning_rate(self._schedule_step()))
        group = self._optimizer.param_groups[0]
        previous_lr, group["lr"] = group["lr"], lr
        packed = update(*to_torch(inputs, self._device), clip_ratio=float(self._clip_ratio(self._progress)))
        loss, grad_norm, *parts = packed.tolist()  # one transfer
        if not math.isfinite(loss):  # the compiled step left the weights and Adam as they were
            group["lr"] = previous_lr
            self._refuse_non_finite(loss)
        self._train_step += 1
        self._weights_version += 1
        return self._loss_info(loss, grad_norm, lr, parts)

    @staticmethod
    def _loss_info(loss: float, grad_norm: float, lr: float, parts: list[float]) -> LossInfo:
        policy_loss, value_loss, entropy, approx_kl, clip_fraction = parts
        extra = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
            "grad_norm": grad_norm,
            "learning_rate": lr,
        }
        return LossInfo(loss, extra)

    def _schedule_step(self) -> int:
        """The annealing schedules count rollouts (CleanRL's and Stable-Baselines3's iterations)."""
        return self._progress

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "return_rms": self._return_rms.state_dict(),
            "running_return": self._running_return,
            "rollouts": (self._rollouts, self._progress),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._return_rms.load_state_dict(state["return_rms"])
        self._running_return = state["running_return"]
        self._rollouts, self._progress = state["rollouts"]

    def stop_epochs(self, loss_info: LossInfo) -> bool:
        """True when ``target_kl`` is set and this update's approximate KL exceeds it."""
        target = self._config.target_kl
        return target is not None and float(loss_info.extra["approx_kl"]) > target
