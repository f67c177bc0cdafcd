"""What the continuous-control agents (SAC, TD3 and DDPG) share around their losses.

:class:`OffPolicyActorCritic` holds:

- the networks in one ``nn.ModuleDict`` (``actor``, ``critic``, ``target_critic``, and what a
  subclass adds: ``target_actor``, ``temperature``), so that ``state_dict()["network"]`` holds
  every weight; target copies are made here and never get gradients;
- the :class:`~drivetrain.networks.continuous.ActionScale`, the deterministic ``policy`` and
  the exploring ``collect_policy`` (:class:`~drivetrain.agents.continuous.policy.ActorPolicy`);
- one Adam optimizer per part (fused where it can be; separate learning rates, optionally scaled
  by a schedule of the train step, e.g. a linear anneal), the optimizer step with an optional clip of the gradients'
  global norm, and Polyak averaging (:func:`polyak_update`);
- the batch: windows of 2 steps from a uniform replay become 1-step transitions through
  :func:`drivetrain.replay.nstep.n_step_transitions` (a truncation bootstraps from the
  episode's final observation, a termination has discount 0), actions in unit scale, and
  weights that average over the valid windows (a window that starts at a boundary is not one);
- the training noise: a seeded NumPy generator (checkpointed), so runs repeat and resume
  bit for bit;
- checkpoints (networks, optimizers, ``train_step``, the generators) and weights out and in
  (the actor's, for collectors);
- with ``compile=True``, the subclass's compiled update (``_build_compiled``, built on first use,
  again if an optimizer was replaced or the agent copied), its learning rates and the host's
  non-finite check of its losses.

A subclass brings :meth:`~OffPolicyActorCritic.train` (its losses on :class:`Transitions`).
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from drivetrain.agents.compiling import CompileSetting, resolve_compile
from drivetrain.agents.continuous.policy import ActorPolicy, Exploration
from drivetrain.agents.continuous.transitions import Transitions
from drivetrain.agents.loss_info import LossInfo, refuse_non_finite
from drivetrain.agents.optimizers import adam, load_optimizer_state
from drivetrain.agents.tensors import to_torch
from drivetrain.core import seeding, specs, types
from drivetrain.core.schedules import Schedule
from drivetrain.networks.continuous import ActionScale, DeterministicActor, QCritics, SquashedGaussianActor
from drivetrain.replay.nstep import n_step_transitions

__all__ = ["OffPolicyActorCritic", "Transitions", "polyak_update"]

_TRAINED_FIELDS = ("step_type", "observation", "action", "next_step_type", "reward", "discount")


def polyak_update(target: Iterable[torch.Tensor], online: Iterable[torch.Tensor], tau: float) -> None:
    """``target <- tau · online + (1 - tau) · target`` in place (``tau = 1``: a copy; integer buffers are copied)."""
    with torch.no_grad():
        lerp_targets, lerp_online = [], []
        for t, o in zip(target, online, strict=True):
            if tau == 1.0 or not t.is_floating_point():
                t.copy_(o)
            else:
                lerp_targets.append(t)
                lerp_online.append(o)
        if lerp_targets:  # one fused call: the same values as ``t.lerp_(o, tau)`` one by one
            torch._foreach_lerp_(lerp_targets, lerp_online, tau)


class OffPolicyActorCritic(abc.ABC):
    """Networks, policies, optimizer steps, batches and checkpoints; see the module docstring."""

    _name = "OffPolicyActorCritic"

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        actor: SquashedGaussianActor | DeterministicActor,
        critic: QCritics,
        learning_rates: dict[str, float],
        *,
        gamma: float,
        tau: float,
        adam_eps: float,
        max_grad_norm: float | None,
        exploration: Exploration,
        exploration_noise: float,
        target_actor: bool,
        extra: dict[str, nn.Module] | None = None,
        learning_rate_fraction: Schedule | None = None,
        device: str | torch.device,
        seed: int | None,
        compile: CompileSetting = False,
    ):
        self._device = torch.device(device)
        self._scale = ActionScale(action_spec).to(self._device)
        self._actor = actor.to(self._device)
        self._critic = critic.to(self._device)
        self._target_critic = copy.deepcopy(self._critic).requires_grad_(False)
        modules: dict[str, nn.Module] = {
            "actor": actor,
            "critic": critic,
            "target_critic": self._target_critic,
        }
        self._target_actor = copy.deepcopy(self._actor).requires_grad_(False) if target_actor else None
        if self._target_actor is not None:
            modules["target_actor"] = self._target_actor
        self._networks = nn.ModuleDict({**modules, **(extra or {})}).to(self._device)
        self._critic_parameters = list(self._critic.parameters())
        self._target_tensors: dict[tuple[str, str], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        self._optimizers: dict[str, torch.optim.Optimizer] = {
            name: adam(self._networks[name].parameters(), lr=float(lr), eps=adam_eps)
            for name, lr in learning_rates.items()
        }
        self._learning_rates = {name: float(lr) for name, lr in learning_rates.items()}
        self._learning_rate_fraction = learning_rate_fraction
        self._gamma = float(gamma)
        self._tau = float(tau)
        self._max_grad_norm = max_grad_norm
        policy_seed, train_seed = seeding.spawn_seeds(seed, 2)
        self._policy = ActorPolicy(
            time_step_spec, action_spec, actor, self._scale, self._device, exploration="none"
        )
        self._collect_policy = ActorPolicy(
            time_step_spec,
            action_spec,
            actor,
            self._scale,
            self._device,
            exploration=exploration,
            noise_std=exploration_noise,
            seed=policy_seed,
        )
        self._train_rng = seeding.as_generator(train_seed)
        self._time_step_spec = time_step_spec
        self._action_spec = action_spec
        self._train_step = 0
        self._weights_version = 0
        self._batch_checked = False
        self._compile = resolve_compile(compile, self._device, self._name)
        self._compiled: Any = None
        self._compiled_for: list[int] = []  # ids of the optimizers it was built for

    # ------------------------------------------------------------------ protocol
    @property
    def time_step_spec(self) -> types.TimeStep:
        return self._time_step_spec

    @property
    def action_spec(self) -> Any:
        return self._action_spec

    @property
    def policy(self) -> ActorPolicy:
        """The deterministic policy: ``tanh(mean)`` in the action spec's bounds."""
        return self._policy

    @property
    def collect_policy(self) -> ActorPolicy:
        """The exploring policy (seeded; its generator is checkpointed)."""
        return self._collect_policy

    @property
    def collect_data_spec(self) -> types.Trajectory:
        """The replay's data spec: trajectories with the environment's actions and no policy info."""
        return self._collect_policy.trajectory_spec

    @property
    def train_sequence_length(self) -> int:
        """Steps per sampled window: 2 (one transition and the next time step)."""
        return 2

    @property
    def compiled(self) -> bool:
        """Whether train calls run the compiled update (``compile`` True, or ``"auto"`` resolved so)."""
        return self._compile

    @property
    def train_step(self) -> int:
        """Number of :meth:`train` calls so far."""
        return self._train_step

    @property
    def networks(self) -> nn.ModuleDict:
        """Every network of the agent, targets included."""
        return self._networks

    @property
    def scale(self) -> ActionScale:
        return self._scale

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def learning_rate(self, name: str) -> float:
        """The learning rate of optimizer ``name`` (``"actor"``, ``"critic"``, ...) at the next train step."""
        fraction = self._learning_rate_fraction
        return self._learning_rates[name] * (1.0 if fraction is None else fraction(self._train_step))

    @property
    def device(self) -> torch.device:
        return self._device

    @abc.abstractmethod
    def train(self, experience: types.Trajectory, weights: np.ndarray | None = None) -> LossInfo:
        """One update on windows ``[B, 2, ...]`` of a uniform replay."""

    # ------------------------------------------------------------------ batches
    def transitions(self, batch: types.Trajectory, weights: np.ndarray | None = None) -> Transitions:
        """The 1-step transitions of windows ``[B, 2, ...]``, checked (see the module docstring)."""
        if weights is not None:
            raise ValueError(
                f"{self._name}.train: importance weights are not supported; use a uniform replay "
                "(replay.prioritized false)"
            )
        shape = np.shape(batch.step_type)
        if len(shape) != 2 or shape[1] != 2 or shape[0] == 0:
            raise ValueError(
                f"{self._name}.train: expected windows [batch >= 1, 2], got step_type shape {shape}; "
                "sample with num_steps=agent.train_sequence_length"
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
        nstep = n_step_transitions(batch, self._gamma, 1)
        device = self._device
        num_valid = int(nstep.valid.sum())
        weight = nstep.valid.astype(np.float32) / max(num_valid, 1)
        action = to_torch(np.asarray(nstep.action, np.float32), device)
        return Transitions(
            observation=to_torch(nstep.observation, device),
            action=self._scale.to_unit(action),
            reward=to_torch(nstep.reward, device),
            discount=to_torch(nstep.discount, device),
            next_observation=to_torch(nstep.next_observation, device),
            weight=to_torch(weight, device),
            num_valid=num_valid,
        )

    def _noise(self, *shape: int) -> torch.Tensor:
        """Standard normal noise from the agent's training generator."""
        eps = self._train_rng.standard_normal(shape).astype(np.float32)
        noise: torch.Tensor = to_torch(eps, self._device)
        return noise

    # ------------------------------------------------------------------ updates
    def _step(self, name: str, loss: torch.Tensor) -> torch.Tensor:
        """Backward, clip (if ``max_grad_norm``), step the optimizer of ``name``; the gradients'
        norm before clipping (logged)."""
        total = self._optimize(name, loss, norm=True)
        assert total is not None
        return total

    def _step_unlogged(self, name: str, loss: torch.Tensor) -> None:
        """:meth:`_step` for a part whose gradient norm is not logged (no norm unless it clips)."""
        self._optimize(name, loss, norm=False)

    def _optimize(self, name: str, loss: torch.Tensor, *, norm: bool) -> torch.Tensor | None:
        self._check_finite((name, loss.item()))  # one read of a scalar: cheaper than a check on the tensor
        optimizer = self._optimizers[name]
        self._set_learning_rates(name)
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(loss)
        total: torch.Tensor | None = None
        if norm or self._max_grad_norm is not None:
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            total = torch.nn.utils.get_total_norm([p.grad for p in params])
            if self._max_grad_norm is not None:  # the clip reuses the norm
                torch.nn.utils.clip_grads_with_norm_(params, self._max_grad_norm, total)
        optimizer.step()
        return total

    def _check_finite(self, *losses: tuple[str, float]) -> None:
        """NonFiniteLossError for the first ``(name, value)`` that is not finite (refused before its step:
        the weights stay finite)."""
        for name, value in losses:
            refuse_non_finite(self._name, self._train_step, value, f"{name} loss")

    def _set_learning_rates(self, *names: str) -> dict[str, list[Any]]:
        """Sets this train step's learning rates (with a schedule); returns those they replaced."""
        previous: dict[str, list[Any]] = {}
        if self._learning_rate_fraction is None:
            return previous
        fraction = self._learning_rate_fraction(self._train_step)
        for name in names:
            lr = self._learning_rates[name] * fraction
            groups = self._optimizers[name].param_groups
            previous[name] = [group["lr"] for group in groups]
            for group in groups:
                group["lr"] = lr
        return previous

    def _check_compiled(self, losses: dict[str, float], previous: dict[str, list[Any]]) -> None:
        """The eager refusal after a compiled update (whose graph skipped every step from the first
        non-finite loss on), leaving that part's and the later parts' learning rates as they were."""
        names = list(losses)
        for i, name in enumerate(names):
            if not math.isfinite(losses[name]):
                for later in names[i:]:
                    groups = self._optimizers[later].param_groups
                    for group, lr in zip(groups, previous.get(later, []), strict=False):
                        group["lr"] = lr
                self._check_finite((name, losses[name]))

    # ------------------------------------------------------------------ the compiled update
    def _build_compiled(self) -> Any:
        """The subclass's compiled update over the current networks and optimizers."""
        raise NotImplementedError(f"{self._name} has no compiled update")

    def _compiled_update(self) -> Any:
        """The compiled update, built on first use and again when an optimizer was replaced or the
        agent copied (optimizers compared by id: the compiled update holds them, so none is reused)."""
        optimizers = [id(o) for o in self._optimizers.values()]
        if self._compiled is None or optimizers != self._compiled_for:
            self._compiled = self._build_compiled()
            self._compiled_for = optimizers
        return self._compiled

    def update_targets(self, *pairs: tuple[str, str], tau: float | None = None) -> None:
        """Polyak averaging of each ``(target, online)`` pair of networks (``tau``: the agent's by default)."""
        tau = self._tau if tau is None else float(tau)
        for pair in pairs:
            tensors = self._target_tensors.get(pair)
            if tensors is None:  # the same tensors for the agent's life (checkpoints load into them)
                t, o = self._networks[pair[0]], self._networks[pair[1]]
                tensors = ([*t.parameters(), *t.buffers()], [*o.parameters(), *o.buffers()])
                self._target_tensors[pair] = tensors
            polyak_update(*tensors, tau)

    def freeze_critic(self, frozen: bool) -> None:
        """Turns the critics' gradients off (``True``: the actor's loss reaches only the actor) or back on."""
        for p in self._critic_parameters:
            p.requires_grad_(not frozen)

    def _finish_step(self) -> None:
        self._train_step += 1
        self._weights_version += 1

    # ------------------------------------------------------------------ weights and checkpoints
    @property
    def weights_version(self) -> int:
        return self._weights_version

    def get_weights(self) -> tuple[int, dict[str, torch.Tensor]]:
        """``(version, weights)``: the actor's weights as CPU tensors (what a collector plays)."""
        actor = self._networks["actor"]
        return self._weights_version, {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()}

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        self._networks["actor"].load_state_dict(weights)
        self._weights_version = int(version)

    def state_dict(self) -> dict[str, Any]:
        """Every network (targets too), the optimizers, ``train_step`` and both generators.

        The tensors are the live ones: serialize or deep-copy before training on.
        """
        return {
            "network": self._networks.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self._optimizers.items()},
            "train_step": self._train_step,
            "weights_version": self._weights_version,
            "collect_policy": self._collect_policy.state_dict(),
            "train_rng": seeding.generator_state(self._train_rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`; the optimizers keep the hyperparameters this agent was built
        with (a resumed run may change learning rates)."""
        missing = {"network", "optimizers", "train_step", "collect_policy", "train_rng"} - set(state)
        if missing:
            raise KeyError(f"{self._name}.load_state_dict: missing keys {sorted(missing)}")
        self._networks.load_state_dict(state["network"])
        for name, optimizer in self._optimizers.items():
            load_optimizer_state(optimizer, state["optimizers"][name])
        self._train_step = int(state["train_step"])
        self._weights_version = int(state.get("weights_version", self._train_step))
        self._collect_policy.load_state_dict(state["collect_policy"])
        seeding.set_generator_state(self._train_rng, state["train_rng"])
