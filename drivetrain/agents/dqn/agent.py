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

With ``compile=True`` a train call on a batch with a valid window runs the loss, the
gradients, the clipping, the optimizer step and (with ``target_update_period == 1``)
the target update as one compiled function (:mod:`~drivetrain.agents.dqn.compiled`;
``torch.compile`` on the first call, which takes seconds); the results equal the eager
update's within floating-point tolerance, the checkpoint format is the same, and a batch
of boundary windows only takes the eager path. The optimizer must be ``torch.optim.Adam``,
``torch.optim.RMSprop`` or :class:`~drivetrain.agents.optimizers.RMSpropTF` (ValueError
otherwise, naming it).

``agent.policy`` is the greedy :class:`QPolicy` of the online network;
``agent.collect_policy`` is epsilon-greedy around it, epsilon a float or a schedule of
``agent.train_step``. ``state_dict()`` holds the online and target networks, the
optimizer, ``train_step`` and the collect policy's RNG: a restored agent continues
bit for bit. What DQN shares with :class:`~drivetrain.agents.R2D2` (networks, policies,
the update after the loss, checkpoints) lives in :class:`~drivetrain.agents.q_learning.QLearningAgent`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from drivetrain.agents.compiled_q import CompiledQUpdate
from drivetrain.agents.compiling import CompileSetting, resolve_compile
from drivetrain.agents.dqn import loss as loss_lib
from drivetrain.agents.dqn.batch import make_inputs
from drivetrain.agents.dqn.compiled import make_step
from drivetrain.agents.dqn.policy import QPolicy
from drivetrain.agents.loss_info import LossInfo, host_values
from drivetrain.agents.q_learning import QLearningAgent, check_arguments
from drivetrain.agents.tensors import to_torch
from drivetrain.core import seeding, types
from drivetrain.core.schedules import Schedule

__all__ = ["DQN"]


def _check_optimizer(optimizer: torch.optim.Optimizer, q_network: nn.Module) -> None:
    own = {id(p) for p in q_network.parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in own:
                raise ValueError(
                    "DQN: the optimizer updates a tensor that is not a parameter of q_network; "
                    "build it with optimizer_class(q_network.parameters(), ...)"
                )


class DQN(QLearningAgent[nn.Module, QPolicy]):
    """Deep Q-learning on windows of ``n_step + 1`` trajectories (see the module docstring)."""

    _name = "DQN"

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
        compile: CompileSetting = False,
    ):
        check_arguments("DQN", {"n_step": (n_step >= 1, ">= 1", n_step)})
        super().__init__(
            time_step_spec,
            action_spec,
            q_network,
            optimizer,
            QPolicy,
            gamma=gamma,
            target_update_period=target_update_period,
            target_update_tau=target_update_tau,
            double=double,
            loss=loss,
            huber_delta=huber_delta,
            gradient_clipping=gradient_clipping,
            reward_scale=reward_scale,
            reward_clip=reward_clip,
            epsilon_greedy=epsilon_greedy,
            seed=seed,
            device=device,
        )
        self._n_step = int(n_step)
        self._compiled: CompiledQUpdate | None = None
        if resolve_compile(compile, self._device, self._name):
            polyak = self._tau if self._target_update_period == 1 else None
            self._compiled = CompiledQUpdate(
                self._q_network,
                self._target_network,
                self._optimizer,
                make_step,
                double=self._double,
                loss=self._loss,
                huber_delta=self._huber_delta,
                gradient_clipping=self._gradient_clipping,
                polyak_tau=polyak,
                owner="DQN",
            )

    def _check_networks(self, q_network: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        _check_optimizer(optimizer, q_network)

    @property
    def compiled(self) -> bool:
        """Whether train calls run the compiled update (``compile`` True, or ``"auto"`` resolved so)."""
        return self._compiled is not None

    @property
    def train_sequence_length(self) -> int:
        """Steps per sampled window: ``n_step + 1``."""
        return self._n_step + 1

    # ------------------------------------------------------------------ training
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
        if self._compiled is not None and inputs.num_valid:
            valid = to_torch(inputs.valid, device)
            batch_tensors = (observation, next_observation, action, reward, discount, weight, valid)
            return self._train_compiled(self._compiled, *batch_tensors, num_valid=inputs.num_valid)

        q = self._q_network(observation).gather(1, action).squeeze(1)
        with torch.no_grad():
            next_online = self._q_network(next_observation) if self._double else None
            target = loss_lib.td_target(reward, discount, self._target_network(next_observation), next_online)
        if weights is None and inputs.num_valid == len(inputs.valid):
            loss = loss_lib.element_loss(q, target, self._loss, self._huber_delta, reduction="mean")
        else:
            losses = loss_lib.element_loss(q, target, self._loss, self._huber_delta)
            loss = loss_lib.weighted_loss(losses, weight, inputs.num_valid)

        grad_norm = self._gradients(loss)
        info = self._loss_info(loss, q, target, grad_norm, inputs.valid, inputs.num_valid)
        self._finish_step(info.loss, inputs.num_valid)
        return info

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
        values = host_values(packed)
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
