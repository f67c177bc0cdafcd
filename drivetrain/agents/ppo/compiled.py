"""PPO's minibatch update as one compiled step: what :class:`~drivetrain.agents.PPO` runs with ``compile=True``.

Protocol::

    update = CompiledUpdate(network, optimizer, value_clip=None, vf_coef=0.5, ent_coef=0.0,
                            normalize_advantages=True, max_grad_norm=0.5, owner="PPO")
    capacity = minibatch_capacity(num_envs, rollout_steps, num_minibatches)   # per rollout
    inputs = padded_inputs(minibatch, mask, capacity, action_minimum=0, continuous=False)   # NumPy
    packed = update(*to_torch(inputs, device), clip_ratio=0.2)
    # packed: float32 [7]: loss, gradient norm before clipping, policy loss, value loss,
    # entropy, approximate KL, clip fraction

One call is the eager update of a feed-forward :class:`~drivetrain.agents.PPO` on a
minibatch: the network on the observations, the log-probabilities and entropies of the
actions taken (categorical or Gaussian), :func:`~drivetrain.agents.ppo.loss.ppo_loss`
(advantages normalized over the minibatch's items as eagerly, value clipping and the
entropy bonus as configured), its gradients (``torch.func.grad_and_value``), the global
gradient norm and clipping to ``max_grad_norm``, and Adam's step on the optimizer's own
state tensors (:class:`~drivetrain.agents.functional_optim.FunctionalOptimizer`), so
checkpoints keep their format and a run may switch between the eager and the compiled
update at a checkpoint. The learning rate (the optimizer's, set before each call) and
the clip ratio travel as tensors, so annealing them compiles nothing again.

**Non-finite losses.** The optimizer step is ``enabled`` by ``isfinite(loss)`` (a ``where``
on every parameter and optimizer-state tensor): a NaN or infinite loss leaves them as they
were, and the caller reads the loss on the host and refuses it
(:class:`~drivetrain.agents.loss_info.NonFiniteLossError`), as the eager update does
before its step.

**Shapes.** :func:`padded_inputs` takes the minibatch's items (those of its mask) and pads
them, by repeating the first item, to a fixed size, the padded items masked out of every
mean; each size is compiled once (``torch.compile(fullgraph=True, dynamic=False)``, its own
code object). The size is the ``capacity`` of the training loop's minibatches when the
items fill at least half of it: :meth:`PPO.prepare <drivetrain.agents.PPO.prepare>` sets it
from the rollout, :func:`minibatch_capacity`, ``ceil(num_envs x (rollout_steps + 2) /
num_minibatches)``. A rollout's trainable items are fewer than ``num_envs x (rollout_steps +
2)``: the driver's last step may pass ``num_envs x rollout_steps`` by up to ``num_envs - 1``
real steps (it does not count reset steps), and the newest item of each environment in the
previous rollout is trained on with this one. So a training loop's minibatches, the last of
each epoch included, compile once. Other item counts are rounded up to a multiple of 1/8 of the
largest power of two not above them (at least 8): :func:`padded_size`. The size depends on
the item count and the prepared rollout's shape only: the same minibatch of the same
rollout gives the same bits every time, after a restore too.

The compiled function guards on its input tensors only: the network must keep its
structure and attributes (its weights and normalization statistics change in place).
Recurrent networks are not supported (their sequences are cut where episodes reset, a
data-dependent loop): the caller refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from drivetrain.agents.actor_critic.distributions import (
    categorical_log_prob_and_entropy,
    gaussian_entropy,
    gaussian_log_prob,
)
from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.compiling import compile_update, functional_call_of
from drivetrain.agents.functional_optim import FunctionalOptimizer
from drivetrain.agents.ppo.loss import ppo_loss
from drivetrain.replay.rollout import RolloutBatch

__all__ = ["CompiledUpdate", "minibatch_capacity", "padded_inputs", "padded_size"]

PackedInputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
State = dict[str, list[torch.Tensor]]


def minibatch_capacity(num_envs: int, rollout_steps: int, num_minibatches: int) -> int:
    """The most items a minibatch of a training loop's rollout holds (see the module docstring)."""
    return -(-num_envs * (rollout_steps + 2) // num_minibatches)


def padded_size(count: int, capacity: int | None = None) -> int:
    """``capacity`` if ``count`` fills at least half of it, else ``count`` rounded up to a multiple
    of ``max(8, 2 ** (bit_length(count) - 4))``."""
    if capacity is not None and capacity <= 2 * count <= 2 * capacity:
        return capacity
    granule = max(8, 1 << max(0, int(count).bit_length() - 4))
    return -(-int(count) // granule) * granule


def padded_inputs(
    experience: RolloutBatch, mask: np.ndarray, capacity: int | None, action_minimum: int, continuous: bool
) -> PackedInputs:
    """``(observation [P, ...], action [P] int64 or raw action [P, d] float32, data float32 [4, P],
    valid bool [P])`` of the items where ``mask`` is True (any batch shape), padded to
    ``P = padded_size(count, capacity)``; ``data`` holds the collect-time log-probabilities,
    the advantages, the collect-time values and the returns."""
    flat = mask.reshape(-1)
    count = int(np.count_nonzero(flat))
    everything = count == flat.size
    size = padded_size(count, capacity)
    lead = mask.ndim

    def items(x: Any) -> np.ndarray:
        array = np.asarray(x)
        array = array.reshape(flat.size, *array.shape[lead:])
        return array if everything else array[flat]

    def pad(x: Any, dtype: Any = None) -> np.ndarray:
        array = items(x)
        out = np.empty((size, *array.shape[1:]), dtype or array.dtype)
        out[:count] = array
        out[count:] = array[:1]  # real items: valid inputs for every encoder (one-hot states)
        return out

    trajectory = experience.trajectory
    if continuous:
        action = pad(trajectory.policy_info["raw_action"], np.float32)
    else:
        action = pad(trajectory.action, np.int64)
        if action_minimum:
            action -= action_minimum
    data = np.zeros((4, size), np.float32)
    columns = (
        trajectory.policy_info["log_prob"],
        experience.advantages,
        trajectory.policy_info["value"],
        experience.returns,
    )
    for row, column in zip(data, columns, strict=True):
        row[:count] = items(column)
    valid = np.zeros(size, bool)
    valid[:count] = True
    return pad(trajectory.observation), action, data, valid


class CompiledUpdate:
    """The PPO minibatch update as ``torch.compile``-d functions, one per padded size (see the module docstring).

    A copy (``copy.deepcopy`` of its agent) follows the copied network and optimizer and
    compiles again on its first call.
    """

    def __init__(
        self,
        network: ActorCriticNetwork,
        optimizer: torch.optim.Optimizer,
        *,
        value_clip: float | None,
        vf_coef: float,
        ent_coef: float,
        normalize_advantages: bool,
        max_grad_norm: float | None,
        owner: str,
    ):
        if network.recurrent:
            raise ValueError(
                f"{owner}: compile=True supports feed-forward networks only, not a recurrent core"
            )
        settings = (value_clip, float(vf_coef), float(ent_coef), bool(normalize_advantages), max_grad_norm)
        self._setup(network, optimizer, settings, owner)

    def _setup(
        self,
        network: ActorCriticNetwork,
        optimizer: torch.optim.Optimizer,
        settings: tuple[float | None, float, float, bool, float | None],
        owner: str,
    ) -> None:
        self._network, self._torch_optimizer = network, optimizer
        self._settings, self._owner = settings, owner
        named = [(n, p) for n, p in network.named_parameters() if p.requires_grad]
        self._names = [n for n, _ in named]
        self._params = [p.detach() for _, p in named]
        frozen = {n: p.detach() for n, p in network.named_parameters() if not p.requires_grad}
        frozen.update({n: b.detach() for n, b in network.named_buffers()})
        self._frozen = frozen
        self._optimizer = FunctionalOptimizer(optimizer, [p for _, p in named], owner)
        self._steps: dict[int, Callable[..., torch.Tensor]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {
            "network": self._network,
            "optimizer": self._torch_optimizer,
            "settings": self._settings,
            "owner": self._owner,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(**state)

    def __call__(
        self,
        observation: torch.Tensor,
        action: torch.Tensor,
        data: torch.Tensor,
        valid: torch.Tensor,
        *,
        clip_ratio: float,
    ) -> torch.Tensor:
        """One update (in place unless the loss is not finite); returns the packed float32 ``[7]``."""
        size = int(valid.shape[0])
        step = self._steps.get(size)
        if step is None:  # a code object per size: each compiles once, no recompilation limit
            function = _make_step(self._network, self._names, self._optimizer, self._settings)
            step = compile_update(function, data.device)
            self._steps[size] = step
        clip = torch.tensor(float(clip_ratio), dtype=torch.float64, device=data.device)
        packed: torch.Tensor = step(
            self._params,
            self._frozen,
            self._optimizer.state(),
            self._optimizer.scalars(),
            observation,
            action,
            data,
            valid,
            clip,
        )
        return packed


def _make_step(
    network: ActorCriticNetwork,
    names: list[str],
    optimizer: FunctionalOptimizer,
    settings: tuple[float | None, float, float, bool, float | None],
) -> Callable[..., torch.Tensor]:
    """The update as a function of tensors, for ``torch.compile``; ``settings``: ``(value_clip,
    vf_coef, ent_coef, normalize_advantages, max_grad_norm)``."""
    value_clip, vf_coef, ent_coef, normalize_advantages, max_grad_norm = settings
    continuous = network.continuous
    functional_call = functional_call_of(network)

    def loss_of(
        trainable: dict[str, torch.Tensor],
        frozen: dict[str, torch.Tensor],
        observation: torch.Tensor,
        action: torch.Tensor,
        data: torch.Tensor,
        valid: torch.Tensor,
        clip: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = functional_call(network, {**trainable, **frozen}, (observation,))
        if continuous:
            log_std = trainable["log_std"]
            log_prob = gaussian_log_prob(out.mean, log_std, action)
            entropy = gaussian_entropy(log_std, out.mean.shape[:-1])
        else:
            log_prob, entropy = categorical_log_prob_and_entropy(out.logits, action)
        old_log_prob, advantages, old_value, returns = data.unbind()
        terms = ppo_loss(
            log_prob,
            old_log_prob,
            advantages,
            out.value,
            old_value,
            returns,
            entropy,
            valid,
            clip_ratio=clip,
            value_clip=value_clip,
            vf_coef=vf_coef,
            ent_coef=ent_coef,
            normalize_advantages=normalize_advantages,
        )
        parts = [terms.policy_loss, terms.value_loss, terms.entropy, terms.approx_kl, terms.clip_fraction]
        return terms.loss, torch.stack(parts)

    grad_and_loss = torch.func.grad_and_value(loss_of, has_aux=True)

    def step(
        params: list[torch.Tensor],
        frozen: dict[str, torch.Tensor],
        optimizer_state: State,
        scalars: torch.Tensor,
        observation: torch.Tensor,
        action: torch.Tensor,
        data: torch.Tensor,
        valid: torch.Tensor,
        clip: torch.Tensor,
    ) -> torch.Tensor:
        trainable = dict(zip(names, params, strict=True))
        grads_by_name, (loss, parts) = grad_and_loss(
            trainable, frozen, observation, action, data, valid, clip
        )
        grads = [grads_by_name[n] for n in names]
        norm = optimizer.clipped_update(
            params, grads, optimizer_state, scalars, max_grad_norm, enabled=torch.isfinite(loss)
        )
        assert norm is not None
        return torch.cat([torch.stack([loss, norm]), parts])

    return step
