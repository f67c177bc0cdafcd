"""The DQN agent (Mnih et al. 2015) with Double DQN, n-step targets and prioritized-replay weights.

Protocol::

    agent = DQN(time_step_spec, action_spec, q_network, optimizer, gamma=0.99, ...)
    replay = UniformReplay(agent.collect_data_spec, capacity, num_envs)
    driver = StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=4)
    batch, info = replay.sample(64, num_steps=agent.train_sequence_length)   # [64, n_step + 1, ...]
    loss_info = agent.train(batch, weights=info.weights)    # one gradient step
    replay.update_priorities(info.ids, loss_info.extra["td_error"])         # prioritized replay

One ``train`` call: n-step transitions of the windows (:mod:`~drivetrain.agents.dqn.batch`),
the loss of :mod:`~drivetrain.agents.dqn.loss`, one optimizer step (after clipping the
gradients' global norm if ``gradient_clipping`` is set), ``train_step += 1``, then the
target network update: every ``target_update_period`` train steps
``target <- tau * online + (1 - tau) * target`` (``tau = 1``: a hard copy; Polyak
averaging with ``tau < 1``, usually with period 1). A batch without any valid window
skips the optimizer step. ``LossInfo.extra``: ``q_values`` and ``target`` (means over
valid windows), ``td_error`` (``|td|`` per window, float32 ``[B]``, 0 for boundary
windows: new priorities), ``grad_norm`` (before clipping) and ``num_valid``.

``agent.policy`` is the greedy :class:`QPolicy` of the online network;
``agent.collect_policy`` is epsilon-greedy around it, epsilon a float or a schedule of
``agent.train_step``. ``state_dict()`` holds the online and target networks, the
optimizer, ``train_step`` and the collect policy's RNG: a restored agent continues
bit for bit.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from drivetrain.agents.dqn import loss as loss_lib
from drivetrain.agents.dqn.batch import make_inputs
from drivetrain.agents.dqn.policy import QPolicy
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.tensors import to_torch
from drivetrain.core import seeding, specs, types
from drivetrain.core.schedules import Schedule
from drivetrain.policies import EpsilonGreedyPolicy

__all__ = ["DQN"]

_TRAINED_FIELDS = ("step_type", "observation", "action", "next_step_type", "reward", "discount")


def _check_optimizer(optimizer: torch.optim.Optimizer, q_network: nn.Module) -> None:
    own = {id(p) for p in q_network.parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in own:
                raise ValueError(
                    "DQN: the optimizer updates a tensor that is not a parameter of q_network; "
                    "build it with optimizer_class(q_network.parameters(), ...)"
                )


class DQN:
    """Deep Q-learning on windows of ``n_step + 1`` trajectories (see the module docstring)."""

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        q_network: nn.Module,
        optimizer: torch.optim.Optimizer,
        gamma: float = 0.99,
        target_update_period: int = 2000,
        target_update_tau: float = 1.0,
        n_step: int = 1,
        double: bool = False,
        loss: loss_lib.LossKind = "huber",
        huber_delta: float = 1.0,
        gradient_clipping: float | None = None,
        reward_scale: float = 1.0,
        reward_clip: float | None = None,
        epsilon_greedy: float | Schedule = 0.1,
        seed: seeding.Seed = None,
        device: str | torch.device = "cpu",
    ):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"DQN: gamma must be in [0, 1], got {gamma}")
        if target_update_period < 1:
            raise ValueError(f"DQN: target_update_period must be >= 1, got {target_update_period}")
        if not 0.0 < target_update_tau <= 1.0:
            raise ValueError(f"DQN: target_update_tau must be in (0, 1], got {target_update_tau}")
        if n_step < 1:
            raise ValueError(f"DQN: n_step must be >= 1, got {n_step}")
        if loss not in ("huber", "mse"):
            raise ValueError(f"DQN: loss must be 'huber' or 'mse', got {loss!r}")
        if huber_delta <= 0:
            raise ValueError(f"DQN: huber_delta must be positive, got {huber_delta}")
        if gradient_clipping is not None and gradient_clipping <= 0:
            raise ValueError(f"DQN: gradient_clipping must be positive or None, got {gradient_clipping}")
        if reward_clip is not None and reward_clip <= 0:
            raise ValueError(f"DQN: reward_clip must be positive or None, got {reward_clip}")
        _check_optimizer(optimizer, q_network)
        self._device = torch.device(device)
        self._q_network = q_network.to(self._device)
        self._target_network = copy.deepcopy(self._q_network).requires_grad_(False)
        self._optimizer = optimizer
        self._params = [p for p in self._q_network.parameters() if p.requires_grad]
        self._online_tensors = [*self._q_network.parameters(), *self._q_network.buffers()]
        self._target_tensors = [*self._target_network.parameters(), *self._target_network.buffers()]
        self._gamma = float(gamma)
        self._target_update_period = int(target_update_period)
        self._tau = float(target_update_tau)
        self._n_step = int(n_step)
        self._double = bool(double)
        self._loss: loss_lib.LossKind = loss
        self._huber_delta = float(huber_delta)
        self._gradient_clipping = None if gradient_clipping is None else float(gradient_clipping)
        self._reward_scale = float(reward_scale)
        self._reward_clip = None if reward_clip is None else float(reward_clip)
        self._train_step = 0
        self._time_step_spec = time_step_spec
        self._action_spec = action_spec
        self._policy = QPolicy(time_step_spec, action_spec, self._q_network, self._device)
        self._collect_policy = EpsilonGreedyPolicy(
            self._policy, epsilon_greedy, seed=seeding.as_generator(seed), step_fn=lambda: self._train_step
        )
        self._action_minimum = int(action_spec.minimum)
        self._batch_checked = False

    # ------------------------------------------------------------------ properties
    @property
    def time_step_spec(self) -> types.TimeStep:
        return self._time_step_spec

    @property
    def action_spec(self) -> Any:
        return self._action_spec

    @property
    def policy(self) -> QPolicy:
        """The greedy policy of the online network."""
        return self._policy

    @property
    def collect_policy(self) -> EpsilonGreedyPolicy:
        """Epsilon-greedy around :attr:`policy`; epsilon follows :attr:`train_step`."""
        return self._collect_policy

    @property
    def collect_data_spec(self) -> types.Trajectory:
        """The trajectories :meth:`train` learns from: the replay buffer's data spec."""
        return self._collect_policy.trajectory_spec

    @property
    def train_sequence_length(self) -> int:
        """Steps per sampled window: ``n_step + 1``."""
        return self._n_step + 1

    @property
    def train_step(self) -> int:
        """Number of :meth:`train` calls so far."""
        return self._train_step

    @property
    def q_network(self) -> nn.Module:
        return self._q_network

    @property
    def target_network(self) -> nn.Module:
        return self._target_network

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    @property
    def device(self) -> torch.device:
        return self._device

    # ------------------------------------------------------------------ training
    def _check_batch(self, batch: types.Trajectory) -> None:
        shape = np.shape(batch.step_type)
        if len(shape) != 2 or shape[1] != self.train_sequence_length:
            raise ValueError(
                f"DQN.train: expected windows [batch, train_sequence_length={self.train_sequence_length}], "
                f"got step_type shape {shape}; sample with num_steps=agent.train_sequence_length"
            )
        if not self._batch_checked:
            spec = self.collect_data_spec
            specs.validate(
                {f: getattr(spec, f) for f in _TRAINED_FIELDS},
                {f: getattr(batch, f) for f in _TRAINED_FIELDS},
                outer_ndim=2,
                name="batch",
            )
            self._batch_checked = True

    def train(self, batch: types.Trajectory, weights: np.ndarray | None = None) -> LossInfo:
        """One gradient step on windows ``[B, n_step + 1, ...]``; ``weights``: importance weights ``[B]``."""
        self._check_batch(batch)
        inputs = make_inputs(
            batch,
            self._gamma,
            self._n_step,
            self._action_minimum,
            self._reward_scale,
            self._reward_clip,
            weights,
        )
        device = self._device
        observation = to_torch(inputs.observation, device)
        next_observation = to_torch(inputs.next_observation, device)
        action = to_torch(inputs.action, device).unsqueeze(1)
        reward, discount, weight = to_torch(inputs.scalars, device)

        q = self._q_network(observation).gather(1, action).squeeze(1)
        with torch.no_grad():
            next_online = self._q_network(next_observation) if self._double else None
            target = loss_lib.td_target(reward, discount, self._target_network(next_observation), next_online)
        if weights is None and inputs.num_valid == len(inputs.valid):
            loss = loss_lib.element_loss(q, target, self._loss, self._huber_delta, reduction="mean")
        else:
            losses = loss_lib.element_loss(q, target, self._loss, self._huber_delta)
            loss = loss_lib.weighted_loss(losses, weight, inputs.num_valid)

        self._optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        grad_norm = self._clip_gradients()
        if inputs.num_valid:
            self._optimizer.step()
        self._train_step += 1
        if self._train_step % self._target_update_period == 0:
            self.update_target()
        return self._loss_info(loss, q, target, grad_norm, inputs.valid, inputs.num_valid)

    def _clip_gradients(self) -> torch.Tensor:
        """The global gradient norm (before clipping); clips to ``gradient_clipping`` if set."""
        grads = [p.grad for p in self._params if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self._device)
        # = torch.nn.utils.get_total_norm(grads), without its per-call grouping (half the time)
        norm: torch.Tensor = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        if self._gradient_clipping is not None:
            torch.nn.utils.clip_grads_with_norm_(self._params, self._gradient_clipping, norm, foreach=True)
        return norm

    def _loss_info(
        self,
        loss: torch.Tensor,
        q: torch.Tensor,
        target: torch.Tensor,
        grad_norm: torch.Tensor,
        valid: np.ndarray,
        num_valid: int,
    ) -> LossInfo:
        # One device-to-host transfer; the rest is NumPy on [B] arrays.
        with torch.no_grad():
            packed = torch.cat([loss.detach().reshape(1), grad_norm.reshape(1), q.detach(), target])
        values = packed.to("cpu", torch.float32).numpy()
        q_np, target_np = values[2:].reshape(2, -1)
        td_error = np.abs(q_np - target_np)
        if num_valid == len(valid):
            q_mean, target_mean = q_np.mean(), target_np.mean()
        else:
            td_error[~valid] = 0.0
            count = max(num_valid, 1)
            q_mean, target_mean = q_np[valid].sum() / count, target_np[valid].sum() / count
        return LossInfo(
            float(values[0]),
            {
                "q_values": float(q_mean),
                "target": float(target_mean),
                "grad_norm": float(values[1]),
                "td_error": td_error,
                "num_valid": num_valid,
            },
        )

    def update_target(self, tau: float | None = None) -> None:
        """``target <- tau * online + (1 - tau) * target`` (``tau`` defaults to ``target_update_tau``)."""
        tau = self._tau if tau is None else float(tau)
        with torch.no_grad():
            for t, o in zip(self._target_tensors, self._online_tensors, strict=True):
                if tau == 1.0 or not t.is_floating_point():
                    t.copy_(o)
                else:
                    t.lerp_(o, tau)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Online and target networks, optimizer, ``train_step`` and the collect policy's RNG.

        As with ``nn.Module.state_dict``, the tensors are the live ones: serialize
        (``torch.save``) or deep-copy the result before training on.
        """
        return {
            "q_network": self._q_network.state_dict(),
            "target_network": self._target_network.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "train_step": self._train_step,
            "collect_policy": self._collect_policy.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned."""
        missing = {"q_network", "target_network", "optimizer", "train_step", "collect_policy"} - set(state)
        if missing:
            raise KeyError(f"DQN.load_state_dict: missing keys {sorted(missing)}")
        self._q_network.load_state_dict(state["q_network"])
        self._target_network.load_state_dict(state["target_network"])
        self._optimizer.load_state_dict(state["optimizer"])
        self._train_step = int(state["train_step"])
        self._collect_policy.load_state_dict(state["collect_policy"])
