"""What the Q-learning agents (:class:`~drivetrain.agents.DQN`, :class:`~drivetrain.agents.R2D2`) share.

:class:`QLearningAgent` holds:

- the online network, its target copy (no gradients) and the optimizer;
- ``agent.policy``, the greedy policy of the online network (the subclass names its class),
  and ``agent.collect_policy``, epsilon-greedy around it with epsilon a float, a schedule
  of ``agent.train_step`` or a callable of no arguments; the collect policy emits no info
  (its q-values stay with ``agent.policy``), so ``collect_data_spec`` is what training reads;
- the hyperparameters both agents take (``gamma``, target updates, loss, gradient clipping,
  reward scale and clip, exploration, seed, device) and their checks;
- the batch checks: windows of ``train_sequence_length`` steps, at least one window (an
  empty batch is a ValueError; a batch of boundary windows only is not: it has nothing to
  train on, gives loss 0 and skips the optimizer step), and on the first batch the
  trained fields against ``collect_data_spec``;
- the update after a loss: a NaN or infinite loss is refused
  (:class:`~drivetrain.agents.loss_info.NonFiniteLossError`) before anything changes; else one
  optimizer step (after clipping the gradients' global norm if
  ``gradient_clipping`` is set; skipped when no step of the batch is valid),
  ``train_step += 1``, then the target network update every ``target_update_period`` train
  steps, ``target <- tau * online + (1 - tau) * target`` (``tau = 1``: a hard copy);
- the checkpoint format: ``state_dict()`` holds the online and target networks, the
  optimizer, ``train_step`` and the collect policy's RNG, so a restored agent continues
  bit for bit;
- weights for collectors: ``get_weights() -> (train_step, online Q-network's CPU state dict)``
  and ``set_weights(weights, version)``, which sets ``train_step`` to the version.

A subclass brings its batch layout (:attr:`~QLearningAgent.train_sequence_length`,
:meth:`~QLearningAgent.train`), its own hyperparameters and the checks of its networks.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch
from torch import nn

from drivetrain.agents.compiled_q import CompiledQUpdate, move_targets
from drivetrain.agents.dqn.loss import LossKind
from drivetrain.agents.loss_info import LossInfo, host_values, refuse_non_finite
from drivetrain.agents.optimizers import load_optimizer_state
from drivetrain.core import seeding, specs, types
from drivetrain.core.policy import Policy
from drivetrain.core.schedules import Schedule
from drivetrain.policies import EpsilonGreedyPolicy

__all__ = ["QLearningAgent", "check_arguments"]

NetworkT = TypeVar("NetworkT", bound=nn.Module, covariant=True)
PolicyT = TypeVar("PolicyT", bound=Policy, covariant=True)

TRAINED_FIELDS = ("step_type", "observation", "action", "next_step_type", "reward", "discount")
"""The trajectory fields that ``train`` reads (checked against the data spec on the first batch)."""

_STATE_KEYS = frozenset({"q_network", "target_network", "optimizer", "train_step", "collect_policy"})


def check_arguments(owner: str, checks: Mapping[str, tuple[bool, str, Any]]) -> None:
    """``ValueError("{owner}: {name} must be {expected}, got {value!r}")`` for the first failed check.

    ``checks`` maps each argument's name to ``(ok, expected, value)``.
    """
    for name, (ok, expected, value) in checks.items():
        if not ok:
            raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")


class QLearningAgent(abc.ABC, Generic[NetworkT, PolicyT]):
    """Networks, policies, optimizer step, target updates and checkpoints of a Q-learning agent.

    See the module docstring; subclasses: :class:`~drivetrain.agents.DQN`,
    :class:`~drivetrain.agents.R2D2`.
    """

    _name: ClassVar[str] = "QLearningAgent"
    """The agent's name at the start of its error messages."""

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        q_network: NetworkT,
        optimizer: torch.optim.Optimizer,
        policy_class: Callable[[types.TimeStep, Any, NetworkT, torch.device], PolicyT],
        *,
        gamma: float,
        target_update_period: int,
        target_update_tau: float,
        double: bool,
        loss: LossKind,
        huber_delta: float,
        gradient_clipping: float | None,
        reward_scale: float,
        reward_clip: float | None,
        epsilon_greedy: float | Schedule,
        seed: seeding.Seed,
        device: str | torch.device,
    ):
        check_arguments(
            self._name,
            {
                "gamma": (0.0 <= gamma <= 1.0, "in [0, 1]", gamma),
                "target_update_period": (target_update_period >= 1, ">= 1", target_update_period),
                "target_update_tau": (0.0 < target_update_tau <= 1.0, "in (0, 1]", target_update_tau),
                "loss": (loss in ("huber", "mse"), "'huber' or 'mse'", loss),
                "huber_delta": (huber_delta > 0, "positive", huber_delta),
                "gradient_clipping": (
                    gradient_clipping is None or gradient_clipping > 0,
                    "positive or None",
                    gradient_clipping,
                ),
                "reward_clip": (reward_clip is None or reward_clip > 0, "positive or None", reward_clip),
            },
        )
        self._check_networks(q_network, optimizer)
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
        self._double = bool(double)
        self._loss: LossKind = loss
        self._huber_delta = float(huber_delta)
        self._gradient_clipping = None if gradient_clipping is None else float(gradient_clipping)
        self._reward_scale = float(reward_scale)
        self._reward_clip = None if reward_clip is None else float(reward_clip)
        self._train_step = 0
        self._time_step_spec = time_step_spec
        self._action_spec = action_spec
        self._policy = policy_class(time_step_spec, action_spec, self._q_network, self._device)
        self._collect_policy = EpsilonGreedyPolicy(
            self._policy,
            epsilon_greedy,
            seed=seeding.as_generator(seed),
            step_fn=lambda: self._train_step,
            emit_info=False,
        )
        self._action_minimum = int(action_spec.minimum)
        self._batch_checked = False

    def _check_networks(self, q_network: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Raises if the agent cannot train ``q_network`` with ``optimizer`` (after the argument checks)."""

    # ------------------------------------------------------------------ properties
    @property
    def time_step_spec(self) -> types.TimeStep:
        return self._time_step_spec

    @property
    def action_spec(self) -> Any:
        return self._action_spec

    @property
    def policy(self) -> PolicyT:
        """The greedy policy of the online network."""
        return self._policy

    @property
    def collect_policy(self) -> EpsilonGreedyPolicy:
        """Epsilon-greedy around :attr:`policy`; epsilon follows :attr:`train_step`."""
        return self._collect_policy

    @property
    def collect_data_spec(self) -> types.Trajectory:
        """The trajectories :meth:`train` learns from: the replay buffer's data spec.

        Its ``policy_info`` holds only what training reads (a recurrent policy's ``"state"``;
        nothing for DQN), so a ``RandomPolicy(time_step_spec, action_spec)`` warm-up fits it.
        """
        return self._collect_policy.trajectory_spec

    @property
    @abc.abstractmethod
    def train_sequence_length(self) -> int:
        """Steps per sampled window (``num_steps`` of the replay's ``sample``)."""

    @property
    def train_step(self) -> int:
        """Number of :meth:`train` calls so far."""
        return self._train_step

    @property
    def q_network(self) -> NetworkT:
        return self._q_network

    @property
    def target_network(self) -> NetworkT:
        return self._target_network

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    @property
    def device(self) -> torch.device:
        return self._device

    # ------------------------------------------------------------------ training
    @abc.abstractmethod
    def train(self, batch: types.Trajectory, weights: np.ndarray | None = None) -> LossInfo:
        """One gradient step on windows ``[B, train_sequence_length, ...]``; ``weights``: ``[B]``."""

    def _window_layout(self) -> str:
        """Said after the expected window shape when a batch has the wrong one."""
        return ""

    def _fields_to_check(self, batch: types.Trajectory) -> tuple[dict[str, Any], dict[str, Any]]:
        """The specs and the batch's values that the first batch is checked on."""
        spec = self.collect_data_spec
        return (
            {f: getattr(spec, f) for f in TRAINED_FIELDS},
            {f: getattr(batch, f) for f in TRAINED_FIELDS},
        )

    def _check_batch(self, batch: types.Trajectory) -> None:
        shape = np.shape(batch.step_type)
        if len(shape) != 2 or shape[1] != self.train_sequence_length:
            raise ValueError(
                f"{self._name}.train: expected windows [batch, train_sequence_length="
                f"{self.train_sequence_length}]{self._window_layout()}, got step_type shape {shape}; "
                "sample with num_steps=agent.train_sequence_length"
            )
        if shape[0] == 0:  # a mean over no windows is NaN; boundary-only windows are not empty
            raise ValueError(
                f"{self._name}.train: the batch is empty (step_type shape {shape}); sample at least one "
                "window (batch_size >= 1)"
            )
        if not self._batch_checked:
            checked, values = self._fields_to_check(batch)
            specs.validate(checked, values, outer_ndim=2, name="batch")
            self._batch_checked = True

    def _gradients(self, loss: torch.Tensor) -> torch.Tensor:
        """Backward pass and clipping; returns the gradients' global norm before clipping."""
        self._optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        return self._clip_gradients()

    def _finish_step(self, loss: float, num_valid: int) -> None:
        """A :class:`~drivetrain.agents.loss_info.NonFiniteLossError` for a NaN or infinite ``loss``
        (the weights, the optimizer and ``train_step`` as they were); else the optimizer step (if
        ``num_valid``), ``train_step += 1`` and the target update when it is due."""
        refuse_non_finite(self._name, self._train_step, loss)
        if num_valid:
            self._optimizer.step()
        self._end_step()

    def _end_step(self, target_updated: bool = False) -> None:
        """``train_step += 1``, then the target update if it is due (and not ``target_updated`` yet)."""
        self._train_step += 1
        if not target_updated and self._train_step % self._target_update_period == 0:
            self.update_target()

    def _train_compiled(self, update: CompiledQUpdate, *batch: Any, num_valid: int) -> LossInfo:
        """One compiled update (which updates the target itself when that comes every step, and
        changes nothing for a non-finite loss, refused here), ``train_step += 1`` and the periodic
        target update, and its LossInfo."""
        info = self._packed_info(update(*batch, num_valid=num_valid), num_valid)
        refuse_non_finite(self._name, self._train_step, info.loss)  # the step left everything as it was
        self._end_step(target_updated=self._target_update_period == 1)
        return info

    @staticmethod
    def _packed_info(packed: torch.Tensor, num_valid: int) -> LossInfo:
        """LossInfo from ``[loss, grad_norm, q_mean, target_mean, td_error or priorities...]``
        (one device-to-host transfer)."""
        values = host_values(packed)
        loss, grad_norm, q_mean, target_mean = values[:4].tolist()
        return LossInfo(
            loss,
            {
                "q_values": q_mean,
                "target": target_mean,
                "grad_norm": grad_norm,
                "td_error": values[4:],
                "num_valid": num_valid,
            },
        )

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

    def update_target(self, tau: float | None = None) -> None:
        """``target <- tau * online + (1 - tau) * target`` (``tau`` defaults to ``target_update_tau``)."""
        tau = self._tau if tau is None else float(tau)
        with torch.no_grad():
            move_targets(self._target_tensors, self._online_tensors, tau)

    # ------------------------------------------------------------------ weights for collectors
    def get_weights(self) -> tuple[int, dict[str, torch.Tensor]]:
        """``(train_step, the online Q-network's state dict as CPU tensors)``: what the greedy and
        collect policies act with; the version counts the train steps."""
        weights = {k: v.detach().cpu().clone() for k, v in self._q_network.state_dict().items()}
        return self._train_step, weights

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        """Loads :meth:`get_weights`' weights into the online Q-network (a collector's copy of the
        learner); ``train_step`` becomes ``version``, so the collect policy's epsilon follows it."""
        self._q_network.load_state_dict(weights)
        self._train_step = int(version)

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
        """Restores what :meth:`state_dict` returned.

        The optimizer's state (moments, step counts) comes from ``state``; its
        hyperparameters (learning rate, epsilon, ...: every ``param_groups`` entry but the
        parameters) stay those this agent was built with, so an agent built from a config
        with a new learning rate trains with it after loading an older checkpoint.
        """
        missing = _STATE_KEYS - set(state)
        if missing:
            raise KeyError(f"{self._name}.load_state_dict: missing keys {sorted(missing)}")
        self._q_network.load_state_dict(state["q_network"])
        self._target_network.load_state_dict(state["target_network"])
        load_optimizer_state(self._optimizer, state["optimizer"])
        self._train_step = int(state["train_step"])
        self._collect_policy.load_state_dict(state["collect_policy"])
