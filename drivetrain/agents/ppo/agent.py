"""PPO: the clipped-surrogate actor-critic, trained on minibatches of on-policy rollouts.

::

    agent = make_ppo(PPOConfig(), env.time_step_spec(), env.action_spec(), seed=0)
    rollout = RolloutBuffer(agent.collect_data_spec, env.batch_size)
    driver = StepDriver(env, agent.collect_policy, [rollout.add_batch], num_steps=128 * env.batch_size)
    driver.run()
    data = agent.prepare(*rollout.gather())            # GAE(λ) advantages and returns, [E, T]
    for batch in minibatches(data, 4, 4, rng, sequences=agent.recurrent):
        agent.train(batch)                             # LossInfo(loss, extra={...})
    rollout.release(data.mask)

:meth:`PPO.prepare` computes the advantages from the values the collect policy reported
(``policy_info["value"]``; a truncated episode bootstraps from the value its boundary
item holds) with :func:`drivetrain.replay.advantages.gae`. :meth:`PPO.train` is one
gradient step of :func:`~drivetrain.agents.ppo.loss.ppo_loss` on a minibatch: flat items,
or for a recurrent network whole sequences that start from the state the driver stored
at their first step and reset at every FIRST inside, as the policy did while acting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from drivetrain.agents.actor_critic.distributions import (
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)
from drivetrain.agents.actor_critic.networks import ActorCriticNetwork, ActorCriticOutput
from drivetrain.agents.actor_critic.policy import ActorCriticPolicy
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.ppo.config import PPOConfig
from drivetrain.agents.ppo.loss import ppo_loss
from drivetrain.agents.tensors import to_torch
from drivetrain.core import nest, seeding, types
from drivetrain.core.schedules import Schedule, as_schedule
from drivetrain.replay.advantages import gae
from drivetrain.replay.rollout import RolloutBatch

__all__ = ["PPO"]

_FIRST = int(types.StepType.FIRST)


class PPO:
    """Proximal policy optimization; see the module docstring."""

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        network: ActorCriticNetwork,
        config: PPOConfig,
        *,
        learning_rate: float | Schedule | None = None,
        seed: int | None = None,
    ):
        self._config = config
        self._device = torch.device(config.device)
        self._network = network.to(self._device)
        self._params = [p for p in self._network.parameters() if p.requires_grad]
        self._optimizer = torch.optim.Adam(self._params, lr=config.learning_rate, eps=config.adam_eps)
        self._learning_rate = as_schedule(
            config.learning_rate if learning_rate is None else learning_rate, "learning_rate"
        )
        policy_seed, minibatch_seed = seeding.spawn_seeds(seed, 2)
        self._policy = ActorCriticPolicy(
            time_step_spec, action_spec, network, self._device, deterministic=True
        )
        self._collect_policy = ActorCriticPolicy(
            time_step_spec, action_spec, network, self._device, deterministic=False, seed=policy_seed
        )
        self._minibatch_rng = seeding.as_generator(minibatch_seed)
        self._time_step_spec = time_step_spec
        self._action_spec = action_spec
        self._minimum = 0 if network.continuous else int(action_spec.minimum)
        self._train_step = 0
        self._weights_version = 0

    # ------------------------------------------------------------------ protocol
    @property
    def time_step_spec(self) -> types.TimeStep:
        return self._time_step_spec

    @property
    def action_spec(self) -> Any:
        return self._action_spec

    @property
    def config(self) -> PPOConfig:
        return self._config

    @property
    def policy(self) -> ActorCriticPolicy:
        """The deterministic policy (most likely action)."""
        return self._policy

    @property
    def collect_policy(self) -> ActorCriticPolicy:
        """The stochastic policy that reports log-probabilities and values."""
        return self._collect_policy

    @property
    def collect_data_spec(self) -> types.Trajectory:
        return self._collect_policy.trajectory_spec

    @property
    def train_step(self) -> int:
        """Number of :meth:`train` calls (minibatch updates) so far."""
        return self._train_step

    @property
    def network(self) -> ActorCriticNetwork:
        return self._network

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    @property
    def recurrent(self) -> bool:
        """Minibatches are whole sequences (a recurrent network)."""
        return self._network.recurrent

    @property
    def minibatch_rng(self) -> np.random.Generator:
        """The generator that shuffles minibatches (checkpointed with the agent)."""
        return self._minibatch_rng

    # ------------------------------------------------------------------ training
    def prepare(self, trajectory: types.Trajectory, trained: np.ndarray | None = None) -> RolloutBatch:
        """Advantages and returns of a rollout ``[E, T]``; the mask leaves out items already ``trained``."""
        c = self._config
        out = gae(
            trajectory.step_type,
            trajectory.next_step_type,
            trajectory.reward,
            trajectory.discount,
            trajectory.policy_info["value"],
            c.gamma,
            c.gae_lambda,
        )
        mask = out.valid if trained is None else out.valid & ~np.asarray(trained, bool)
        return RolloutBatch(trajectory, out.advantages, out.returns, mask)

    def _evaluate(self, trajectory: types.Trajectory) -> ActorCriticOutput:
        obs = to_torch(trajectory.observation, self._device)
        if not self.recurrent:
            out: ActorCriticOutput = self._network(obs)
            return out
        first = torch.as_tensor(np.asarray(trajectory.step_type) == _FIRST, device=self._device)
        state = nest.map_structure(
            lambda s: to_torch(np.asarray(s)[:, 0], self._device), trajectory.policy_info["state"]
        )
        out = self._network(obs, first, tuple(state))
        return out

    def _log_prob_and_entropy(
        self, out: ActorCriticOutput, trajectory: types.Trajectory
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if out.logits is not None:
            index = to_torch(np.asarray(trajectory.action) - self._minimum, self._device)
            return categorical_log_prob(out.logits, index), categorical_entropy(out.logits)
        assert out.mean is not None and self._network.log_std is not None
        raw = to_torch(trajectory.policy_info["raw_action"], self._device)
        log_std = self._network.log_std
        return gaussian_log_prob(out.mean, log_std, raw), gaussian_entropy(log_std, out.mean.shape[:-1])

    def train(self, experience: RolloutBatch, weights: np.ndarray | None = None) -> LossInfo:
        """One gradient step of the PPO loss on a minibatch (see :func:`~drivetrain.replay.rollout.minibatches`)."""
        if weights is not None:
            raise ValueError("PPO.train: importance weights are not supported (on-policy minibatches)")
        if not isinstance(experience, RolloutBatch):
            raise TypeError(
                f"PPO.train: expected a RolloutBatch (agent.prepare, then minibatches), got {type(experience).__name__}"
            )
        mask_np = np.asarray(experience.mask, bool)
        if not mask_np.any():
            raise ValueError("PPO.train: the minibatch has no item to train on (its mask is all False)")
        c = self._config
        trajectory = experience.trajectory
        lr = float(self._learning_rate(self._train_step))
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        out = self._evaluate(trajectory)
        log_prob, entropy = self._log_prob_and_entropy(out, trajectory)
        tensors = {
            "old_log_prob": trajectory.policy_info["log_prob"],
            "old_value": trajectory.policy_info["value"],
            "advantages": experience.advantages,
            "returns": experience.returns,
        }
        t = {k: to_torch(np.asarray(v, np.float32), self._device) for k, v in tensors.items()}
        terms = ppo_loss(
            log_prob,
            t["old_log_prob"],
            t["advantages"],
            out.value,
            t["old_value"],
            t["returns"],
            entropy,
            to_torch(mask_np, self._device),
            clip_ratio=c.clip_ratio,
            value_clip=c.value_clip,
            vf_coef=c.vf_coef,
            ent_coef=c.ent_coef,
            normalize_advantages=c.normalize_advantages,
        )
        if not torch.isfinite(terms.loss):
            raise FloatingPointError(
                f"PPO.train: the loss is {terms.loss.item()} at train step {self._train_step}"
            )
        self._optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(terms.loss)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self._params, c.max_grad_norm if c.max_grad_norm is not None else float("inf")
        )
        self._optimizer.step()
        self._train_step += 1
        self._weights_version += 1
        extra = {
            "policy_loss": terms.policy_loss.item(),
            "value_loss": terms.value_loss.item(),
            "entropy": terms.entropy.item(),
            "approx_kl": terms.approx_kl.item(),
            "clip_fraction": terms.clip_fraction.item(),
            "grad_norm": float(grad_norm),
            "learning_rate": lr,
        }
        return LossInfo(terms.loss.item(), extra)

    def stop_epochs(self, loss_info: LossInfo) -> bool:
        """True when ``target_kl`` is set and this update's approximate KL exceeds it."""
        target = self._config.target_kl
        return target is not None and float(loss_info.extra["approx_kl"]) > target

    # ------------------------------------------------------------------ weights and checkpoints
    def get_weights(self) -> tuple[int, dict[str, Any]]:
        """``(version, weights)``: the network's weights as CPU tensors (for remote collectors)."""
        return self._weights_version, {
            k: v.detach().cpu().clone() for k, v in self._network.state_dict().items()
        }

    def set_weights(self, weights: dict[str, Any], version: int) -> None:
        """Loads weights from :meth:`get_weights` (a collector's copy of the learner)."""
        self._network.load_state_dict(weights)
        self._weights_version = int(version)

    @property
    def weights_version(self) -> int:
        return self._weights_version

    def state_dict(self) -> dict[str, Any]:
        return {
            "network": self._network.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "train_step": self._train_step,
            "weights_version": self._weights_version,
            "collect_policy": self._collect_policy.state_dict(),
            "minibatch_rng": seeding.generator_state(self._minibatch_rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._network.load_state_dict(state["network"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._train_step = int(state["train_step"])
        self._weights_version = int(state["weights_version"])
        self._collect_policy.load_state_dict(state["collect_policy"])
        seeding.set_generator_state(self._minibatch_rng, state["minibatch_rng"])
