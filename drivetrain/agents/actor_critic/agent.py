"""What the policy-gradient agents (REINFORCE, PPO) share around their loss.

:class:`ActorCriticAgent` holds the :class:`ActorCriticNetwork`, Adam (fused where it can be) with a learning-rate
schedule of ``train_step``, the deterministic ``policy`` and the sampling
``collect_policy``, the generator that shuffles minibatches, the evaluation of a batch
(log-probabilities of the actions taken, entropies, values; recurrent sequences start
from the state stored at their first step), the optimizer step with gradient clipping,
weights out and in with a version, and checkpoints. A subclass brings
:meth:`~ActorCriticAgent.prepare` (advantages and returns of a rollout) and
:meth:`~ActorCriticAgent.train` (its loss on a minibatch).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import torch

from drivetrain.agents.actor_critic.distributions import (
    categorical_log_prob_and_entropy,
    gaussian_entropy,
    gaussian_log_prob,
)
from drivetrain.agents.actor_critic.networks import ActorCriticNetwork, ActorCriticOutput
from drivetrain.agents.actor_critic.policy import ActorCriticPolicy
from drivetrain.agents.loss_info import LossInfo, refuse_non_finite
from drivetrain.agents.optimizers import adam, load_optimizer_state
from drivetrain.agents.tensors import to_torch
from drivetrain.core import nest, seeding, types
from drivetrain.core.schedules import Schedule, as_schedule
from drivetrain.replay.rollout import RolloutBatch

__all__ = ["ActorCriticAgent", "Evaluation"]

_FIRST = int(types.StepType.FIRST)


class Evaluation:
    """The network's view of a batch: ``log_prob``, ``entropy`` and ``value``, each ``[...]``."""

    def __init__(self, log_prob: torch.Tensor, entropy: torch.Tensor, value: torch.Tensor):
        self.log_prob, self.entropy, self.value = log_prob, entropy, value


class ActorCriticAgent(abc.ABC):
    """Networks, policies, optimizer step, weights and checkpoints; see the module docstring."""

    _name = "ActorCriticAgent"

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        network: ActorCriticNetwork,
        *,
        learning_rate: float | Schedule,
        adam_eps: float,
        max_grad_norm: float | None,
        device: str | torch.device,
        seed: int | None,
    ):
        self._device = torch.device(device)
        self._network = network.to(self._device)
        self._params = [p for p in self._network.parameters() if p.requires_grad]
        self._learning_rate = as_schedule(learning_rate, "learning_rate")
        self._optimizer = adam(self._params, lr=self._learning_rate(0), eps=adam_eps)
        self._max_grad_norm = max_grad_norm
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
    def policy(self) -> ActorCriticPolicy:
        """The deterministic policy (the most likely action)."""
        return self._policy

    @property
    def collect_policy(self) -> ActorCriticPolicy:
        """The sampling policy; it reports log-probabilities and values."""
        return self._collect_policy

    @property
    def collect_data_spec(self) -> types.Trajectory:
        return self._collect_policy.trajectory_spec

    @property
    def train_step(self) -> int:
        """Number of :meth:`train` calls (gradient steps) so far."""
        return self._train_step

    @property
    def network(self) -> ActorCriticNetwork:
        return self._network

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def recurrent(self) -> bool:
        """Minibatches are whole sequences (a recurrent network)."""
        return self._network.recurrent

    @property
    def minibatch_rng(self) -> np.random.Generator:
        """The generator that shuffles minibatches (checkpointed with the agent)."""
        return self._minibatch_rng

    # ------------------------------------------------------------------ training
    @abc.abstractmethod
    def prepare(self, trajectory: types.Trajectory, trained: np.ndarray | None = None) -> RolloutBatch:
        """Advantages and returns of a rollout ``[E, T]``; the mask leaves out items already ``trained``."""

    @abc.abstractmethod
    def train(self, experience: RolloutBatch, weights: np.ndarray | None = None) -> LossInfo:
        """One gradient step on a minibatch of :meth:`prepare`'s output."""

    def stop_epochs(self, loss_info: LossInfo) -> bool:
        """True to end a rollout's epochs early after this update (PPO's ``target_kl``)."""
        del loss_info
        return False

    def _check_experience(self, experience: Any, weights: np.ndarray | None) -> np.ndarray:
        """The minibatch's mask; clear errors for what this agent cannot train on."""
        if weights is not None:
            raise ValueError(f"{self._name}.train: importance weights are not supported (on-policy batches)")
        if not isinstance(experience, RolloutBatch):
            raise TypeError(
                f"{self._name}.train: expected a RolloutBatch (agent.prepare, then minibatches), "
                f"got {type(experience).__name__}"
            )
        mask = np.asarray(experience.mask, bool)
        expected = 2 if self.recurrent else 1
        if mask.ndim != expected:
            layout = "sequences [B, T]" if self.recurrent else "flat items [N]"
            raise ValueError(
                f"{self._name}.train: its {'recurrent' if self.recurrent else 'feed-forward'} network trains on "
                f"{layout}, got a batch whose mask has shape {mask.shape}; split agent.prepare's output with "
                f"drivetrain.replay.rollout.minibatches(data, num_epochs, num_minibatches, agent.minibatch_rng, "
                f"sequences={self.recurrent})"
            )
        if not mask.any():
            raise ValueError(f"{self._name}.train: the batch has no item to train on (its mask is all False)")
        return mask

    def _evaluate(self, trajectory: types.Trajectory) -> ActorCriticOutput:
        """The network on a batch: flat items, or sequences from their stored first state."""
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

    def evaluate_actions(self, trajectory: types.Trajectory) -> Evaluation:
        """Log-probabilities of the actions taken (of the raw samples, for continuous actions),
        entropies and values under the current network."""
        out = self._evaluate(trajectory)
        if out.logits is not None:
            action = np.asarray(trajectory.action)
            index = to_torch(action - self._minimum if self._minimum else action, self._device)
            log_prob, entropy = categorical_log_prob_and_entropy(out.logits, index)
            return Evaluation(log_prob, entropy, out.value)
        assert out.mean is not None and self._network.log_std is not None
        raw = to_torch(trajectory.policy_info["raw_action"], self._device)
        log_std = self._network.log_std
        log_prob = gaussian_log_prob(out.mean, log_std, raw)
        return Evaluation(log_prob, gaussian_entropy(log_std, out.mean.shape[:-1]), out.value)

    def _tensor(self, value: Any) -> torch.Tensor:
        tensor: torch.Tensor = to_torch(np.asarray(value, np.float32), self._device)
        return tensor

    def _schedule_step(self) -> int:
        """The step the learning-rate schedule is called with (``train_step`` by default)."""
        return self._train_step

    def _refuse_non_finite(self, value: float) -> None:
        """A :class:`NonFiniteLossError` for a NaN or infinite loss (before any optimizer step)."""
        refuse_non_finite(self._name, self._train_step, value)

    def _step(self, loss: torch.Tensor) -> tuple[float, float, float]:
        """Sets this step's learning rate, backward, clips, steps; returns ``(loss, grad_norm, lr)``."""
        value = loss.item()
        self._refuse_non_finite(value)
        lr = float(self._learning_rate(self._schedule_step()))
        for group in self._optimizer.param_groups:
            group["lr"] = lr
        self._optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        limit = self._max_grad_norm if self._max_grad_norm is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self._params, limit)
        self._optimizer.step()
        self._train_step += 1
        self._weights_version += 1
        return value, float(grad_norm), lr

    # ------------------------------------------------------------------ weights and checkpoints
    @property
    def weights_version(self) -> int:
        """Changes with every update; a collector compares it with the version of its copy."""
        return self._weights_version

    def get_weights(self) -> tuple[int, dict[str, torch.Tensor]]:
        """``(version, weights)``: the network's weights as CPU tensors (for remote collectors)."""
        weights = {k: v.detach().cpu().clone() for k, v in self._network.state_dict().items()}
        return self._weights_version, weights

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        """Loads weights from :meth:`get_weights` (a collector's copy of the learner)."""
        self._network.load_state_dict(weights)
        self._weights_version = int(version)

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
        load_optimizer_state(self._optimizer, state["optimizer"], keep_hyperparameters=False)
        self._train_step = int(state["train_step"])
        self._weights_version = int(state["weights_version"])
        self._collect_policy.load_state_dict(state["collect_policy"])
        seeding.set_generator_state(self._minibatch_rng, state["minibatch_rng"])
