"""Recurrent DQN in the style of R2D2 (Kapturowski et al. 2019): stored state, burn-in, n-step targets.

Protocol (the same as :class:`~drivetrain.agents.DQN`, so the training loop runs either)::

    agent = R2D2(time_step_spec, action_spec, RecurrentQNetwork(...), optimizer,
                 sequence_length=20, burn_in=10, n_step=3)
    replay = UniformReplay(agent.collect_data_spec, capacity, num_envs)   # holds policy_info["state"]
    driver = StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=4)
    batch, info = replay.sample(32, num_steps=agent.train_sequence_length)  # burn_in + T + n_step
    loss_info = agent.train(batch, weights=info.weights)
    replay.update_priorities(info.ids, loss_info.extra["td_error"])          # sequence priorities

One ``train`` call: rewards clipped and scaled; the n-step rewards, discounts and
bootstrap offsets of the ``T`` training steps (:func:`drivetrain.replay.nstep.n_step_sequence`
on the window after the burn-in); both networks unrolled from the initial state, which
is the ``policy_info["state"]`` stored at the window's first step (``initial_state="stored"``)
or zeros (``"zeros"``), the burn-in without gradient; the masked loss of
:mod:`~drivetrain.agents.r2d2.loss`; one optimizer step (gradients clipped to
``gradient_clipping`` if set; skipped when no step is valid); ``train_step += 1``; the
target update every ``target_update_period`` train steps (``tau < 1``: Polyak).

``LossInfo.extra``: ``q_values`` and ``target`` (means over valid steps), ``td_error``
(the sequence priorities ``[B]``), ``grad_norm`` (before clipping), ``num_valid`` (valid steps).

With ``compile=True`` a train call on a batch with a valid step runs all of it (both unrolls,
the loss, the gradients, the clipping, the optimizer step and, with ``target_update_period ==
1``, the target update) as one compiled function (:mod:`~drivetrain.agents.r2d2.compiled`); the
results equal the eager update's within floating-point tolerance, the checkpoint format is the
same, and a batch without a valid step takes the eager path. The optimizer must be
``torch.optim.Adam``, ``torch.optim.RMSprop`` or :class:`~drivetrain.agents.optimizers.RMSpropTF`.

``agent.policy`` is the greedy :class:`RecurrentQPolicy`; ``agent.collect_policy`` is
epsilon-greedy around it (the state passes through); both are stateful policies that
the drivers run unchanged. ``state_dict()`` holds both networks, the optimizer,
``train_step`` and the collect policy's RNG. What R2D2 shares with :class:`~drivetrain.agents.DQN`
(networks, policies, the update after the loss, checkpoints) lives in
:class:`~drivetrain.agents.q_learning.QLearningAgent`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from drivetrain.agents.compiled_q import CompiledQUpdate
from drivetrain.agents.compiling import CompileSetting, resolve_compile
from drivetrain.agents.dqn.batch import checked_weights
from drivetrain.agents.dqn.loss import LossKind
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.q_learning import QLearningAgent, check_arguments
from drivetrain.agents.r2d2 import loss as loss_lib
from drivetrain.agents.r2d2.compiled import make_step
from drivetrain.agents.r2d2.policy import RecurrentQPolicy
from drivetrain.agents.tensors import to_torch
from drivetrain.core import nest, seeding, types
from drivetrain.core.schedules import Schedule
from drivetrain.networks.recurrent import RecurrentQNetwork, State
from drivetrain.replay.nstep import n_step_sequence

__all__ = ["R2D2"]

_FIRST = int(types.StepType.FIRST)


class R2D2(QLearningAgent[RecurrentQNetwork, RecurrentQPolicy]):
    """Recurrent deep Q-learning on sequences of ``burn_in + sequence_length + n_step`` trajectories."""

    _name = "R2D2"

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        q_network: RecurrentQNetwork,
        optimizer: torch.optim.Optimizer,
        gamma: float = 0.99,
        sequence_length: int = 20,
        burn_in: int = 10,
        n_step: int = 1,
        initial_state: Literal["stored", "zeros"] = "stored",
        target_update_period: int = 2000,
        target_update_tau: float = 1.0,
        double: bool = False,
        loss: LossKind = "huber",
        huber_delta: float = 1.0,
        gradient_clipping: float | None = None,
        reward_scale: float = 1.0,
        reward_clip: float | None = None,
        priority_eta: float = 0.9,
        epsilon_greedy: float | Schedule = 0.1,
        seed: seeding.Seed = None,
        device: str | torch.device = "cpu",
        compile: CompileSetting = False,
    ):
        check_arguments(
            "R2D2",
            {
                "sequence_length": (sequence_length >= 1, ">= 1", sequence_length),
                "burn_in": (burn_in >= 0, ">= 0", burn_in),
                "n_step": (n_step >= 1, ">= 1", n_step),
                "initial_state": (initial_state in ("stored", "zeros"), "'stored' or 'zeros'", initial_state),
                "priority_eta": (0.0 <= priority_eta <= 1.0, "in [0, 1]", priority_eta),
            },
        )
        super().__init__(
            time_step_spec,
            action_spec,
            q_network,
            optimizer,
            RecurrentQPolicy,
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
        self._sequence_length = int(sequence_length)
        self._burn_in = int(burn_in)
        self._n_step = int(n_step)
        self._initial_state = initial_state
        self._priority_eta = float(priority_eta)
        self._compiled: CompiledQUpdate | None = None
        if resolve_compile(compile, self._device, self._name):
            self._compiled = CompiledQUpdate(
                self._q_network,
                self._target_network,
                self._optimizer,
                make_step,
                burn_in=self._burn_in,
                sequence_length=self._sequence_length,
                double=self._double,
                loss=self._loss,
                huber_delta=self._huber_delta,
                gradient_clipping=self._gradient_clipping,
                polyak_tau=self._tau if self._target_update_period == 1 else None,
                priority_eta=self._priority_eta,
                owner=self._name,
            )

    def _check_networks(self, q_network: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(q_network, RecurrentQNetwork):
            raise TypeError(f"R2D2: q_network must be a RecurrentQNetwork, got {type(q_network).__name__}")

    @property
    def compiled(self) -> bool:
        """Whether train calls run the compiled update (``compile`` True, or ``"auto"`` resolved so)."""
        return self._compiled is not None

    @property
    def train_sequence_length(self) -> int:
        """Steps per sampled window: ``burn_in + sequence_length + n_step``."""
        return self._burn_in + self._sequence_length + self._n_step

    # ------------------------------------------------------------------ training
    def _window_layout(self) -> str:
        return f" (burn_in {self._burn_in} + sequence_length {self._sequence_length} + n_step {self._n_step})"

    def _fields_to_check(self, batch: types.Trajectory) -> tuple[dict[str, Any], dict[str, Any]]:
        checked, values = super()._fields_to_check(batch)
        if self._initial_state == "stored":
            info = batch.policy_info if isinstance(batch.policy_info, dict) else {}
            if "state" not in info:
                raise KeyError(
                    "R2D2.train: initial_state='stored' needs policy_info['state'] in the batch; "
                    "build the replay with agent.collect_data_spec (or use initial_state='zeros')"
                )
            checked["state"] = self.collect_data_spec.policy_info["state"]
            values["state"] = info["state"]
        return checked, values

    def _start_state(self, batch: types.Trajectory) -> State:
        size = int(np.shape(batch.step_type)[0])
        if self._initial_state == "zeros":
            return self._q_network.initial_state(size, self._device)
        stored = nest.map_structure(
            lambda x: np.ascontiguousarray(x[:, 0], np.float32), batch.policy_info["state"]
        )
        return tuple(to_torch(stored, self._device))

    def _n_step_returns(self, batch: types.Trajectory) -> tuple[np.ndarray, ...]:
        """n-step reward, discount, offsets and the valid mask of the ``T`` training steps (``[B, T]``)."""
        reward = np.asarray(batch.reward, np.float32)
        if self._reward_clip is not None:
            reward = np.clip(reward, -self._reward_clip, self._reward_clip)
        if self._reward_scale != 1.0:
            reward = reward * np.float32(self._reward_scale)
        b = self._burn_in
        after = types.Trajectory(
            step_type=np.asarray(batch.step_type)[:, b:],
            observation=np.zeros((*np.shape(batch.step_type)[:1], self.train_sequence_length - b), np.int8),
            action=np.asarray(batch.action)[:, b:],
            policy_info={},
            next_step_type=np.asarray(batch.next_step_type)[:, b:],
            reward=reward[:, b:],
            discount=np.asarray(batch.discount)[:, b:],
        )  # observations are gathered on the device from the unrolled q-values, not here
        ns = n_step_sequence(after, self._gamma, self._n_step)
        return ns.reward, ns.discount, ns.steps, ns.valid

    def train(self, batch: types.Trajectory, weights: np.ndarray | None = None) -> LossInfo:
        """One gradient step on windows ``[B, train_sequence_length, ...]``; ``weights``: ``[B]``."""
        self._check_batch(batch)
        device, length = self._device, self._sequence_length
        returns = self._n_step_returns(batch)
        reward, discount, steps, valid = to_torch(returns, device)
        observation = to_torch(batch.observation, device)
        first = to_torch(np.asarray(batch.step_type) == _FIRST, device)
        action = to_torch(
            np.asarray(batch.action, np.int64)[:, self._burn_in : self._burn_in + length], device
        )
        if self._action_minimum:
            action = action - self._action_minimum
        w = (
            None
            if weights is None
            else to_torch(checked_weights(f"{self._name}.train", weights, len(valid)), device)
        )
        state = self._start_state(batch)
        num_valid = int(np.count_nonzero(returns[3]))
        if self._compiled is not None and num_valid:
            if w is None:
                w = torch.ones(len(returns[3]), dtype=reward.dtype, device=device)
            batch_tensors = (observation, first, state, action, reward, discount, steps, valid, w)
            return self._train_compiled(self._compiled, *batch_tensors, num_valid=num_valid)

        q_all, _ = loss_lib.unroll(self._q_network, observation, first, state, self._burn_in)
        q = q_all[:, :length].gather(2, action.unsqueeze(2)).squeeze(2)
        with torch.no_grad():
            q_target_all, _ = loss_lib.unroll(self._target_network, observation, first, state, self._burn_in)
            online = q_all.detach() if self._double else None
            target = loss_lib.n_step_targets(reward, discount, steps, q_target_all, online)
        loss = loss_lib.masked_loss(q, target, valid, w, self._loss, self._huber_delta)
        grad_norm = self._gradients(loss)

        # One device-to-host transfer, as the compiled update's: the statistics, then the priorities.
        with torch.no_grad():
            q = q.detach()
            m = valid.to(q.dtype)
            count = max(num_valid, 1)
            statistics = [loss.detach(), grad_norm, (q * m).sum() / count, (target * m).sum() / count]
            priorities = loss_lib.sequence_priorities((q - target).abs(), valid, self._priority_eta)
            packed = torch.cat([torch.stack(statistics), priorities])
        info = self._packed_info(packed, num_valid)
        self._finish_step(info.loss, num_valid)
        return info
