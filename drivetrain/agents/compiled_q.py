"""A Q-learning agent's whole update as one compiled step: what DQN and R2D2 share.

Protocol::

    update = CompiledQUpdate(q_network, target_network, optimizer, make_step, owner="DQN", **settings)
    packed = update(*batch_tensors, num_valid=n)   # the step's one output tensor (statistics)

``make_step(q_network, (trainable_names, all_names), functional_optimizer, **settings)``
returns the update as a function of tensors::

    step(params, frozen, target, optimizer_state, scalars, *batch_tensors, count) -> Tensor

``params``: the q-network's trainable parameters (in ``trainable_names``' order), ``frozen``:
its other parameters and buffers by name, ``target``: the target network's parameters and
buffers (``all_names``' order), ``optimizer_state`` and ``scalars``: the
:class:`~drivetrain.agents.functional_optim.FunctionalOptimizer`'s, ``count``: a scalar
tensor of ``max(num_valid, 1)``. It updates ``params``, the optimizer's state and (a Polyak
or hard target update after every step, if it does one) ``target`` in place: they are the
networks' and the optimizer's own tensors, so checkpoints keep their format and a run may
switch between the eager and the compiled update at a checkpoint.

The step is compiled with ``torch.compile(fullgraph=True, dynamic=False)`` on the first
call (a new batch shape compiles again); it guards on the input tensors only
(:func:`~drivetrain.agents.compiling.compile_update`), so the networks must keep their
structure and attributes (their weights change, in place).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from drivetrain.agents.compiling import compile_update
from drivetrain.agents.functional_optim import FunctionalOptimizer

__all__ = ["CompiledQUpdate", "StepFactory", "move_targets", "optimizer_and_target_step"]

StepFactory = Callable[..., Callable[..., torch.Tensor]]
"""``make_step(q_network, (trainable_names, all_names), optimizer, **settings) -> step``."""


class CompiledQUpdate:
    """A Q-learning update as one ``torch.compile``-d function (see the module docstring)."""

    def __init__(
        self,
        q_network: nn.Module,
        target_network: nn.Module,
        optimizer: torch.optim.Optimizer,
        make_step: StepFactory,
        *,
        owner: str,
        **settings: Any,
    ):
        self._networks = (q_network, target_network, optimizer)
        self._recipe = (make_step, owner, settings)
        named = [(n, p) for n, p in q_network.named_parameters() if p.requires_grad]
        names = [n for n, _ in named]
        self._params = [p.detach() for _, p in named]
        frozen = {n: p.detach() for n, p in q_network.named_parameters() if not p.requires_grad}
        frozen.update({n: b.detach() for n, b in q_network.named_buffers()})
        self._frozen = frozen
        target = [*target_network.named_parameters(), *target_network.named_buffers()]
        self._target = [t.detach() for _, t in target]
        self._optimizer = FunctionalOptimizer(optimizer, [p for _, p in named], owner)
        self._counts: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}
        step = make_step(q_network, (names, [n for n, _ in target]), self._optimizer, **settings)
        self._step = compile_update(step, self._params[0].device)
        # Dynamo refuses to trace into modules that hold an nn.LSTM/GRU unless told it may; the
        # recurrent cores' stepwise forward only reads their weights.
        recurrent = any(isinstance(m, nn.RNNBase) for m in q_network.modules())
        self._tracing = torch._dynamo.config.patch(allow_rnn=True) if recurrent else contextlib.nullcontext()

    # A copy (``copy.deepcopy`` of its agent) updates the copied networks and optimizer, and
    # compiles again on its first call: the tensors it holds are views of the originals'.
    def __getstate__(self) -> dict[str, Any]:
        return {"networks": self._networks, "recipe": self._recipe}

    def __setstate__(self, state: dict[str, Any]) -> None:
        make_step, owner, settings = state["recipe"]
        self.__init__(*state["networks"], make_step, owner=owner, **settings)  # type: ignore[misc]

    def __call__(self, *batch: Any, num_valid: int) -> torch.Tensor:
        """One update (in place) on ``batch``'s tensors; returns the step's statistics tensor."""
        like = self._params[0]
        key = (max(num_valid, 1), like.dtype, like.device)
        count = self._counts.get(key)
        if count is None:  # one tensor per count: most batches have the same
            count = self._counts[key] = torch.full((), float(key[0]), dtype=like.dtype, device=like.device)
        with self._tracing:
            packed: torch.Tensor = self._step(
                self._params,
                self._frozen,
                self._target,
                self._optimizer.state(),
                self._optimizer.scalars(),
                *batch,
                count,
            )
        return packed


def move_targets(targets: Sequence[torch.Tensor], online: Sequence[torch.Tensor], tau: float) -> None:
    """``target <- tau * online + (1 - tau) * target`` in place, pairwise (a copy for ``tau == 1``
    and for tensors that are not floating point): the eager target update and the compiled one."""
    for t, o in zip(targets, online, strict=True):
        if tau == 1.0 or not t.is_floating_point():
            t.copy_(o)
        else:
            t.lerp_(o, tau)


def optimizer_and_target_step(
    optimizer: FunctionalOptimizer,
    names: tuple[list[str], list[str]],
    gradient_clipping: float | None,
    polyak_tau: float | None,
) -> Callable[..., torch.Tensor]:
    """What a compiled Q-learning step does after its gradients, as the eager update does after
    its backward pass: ``apply(params, grads_by_name, optimizer_state, scalars, target_list,
    online, enabled)`` clips the gradients, steps the optimizer, moves the target (``polyak_tau``:
    a target update after every step) and returns the gradients' norm before clipping; where the
    0-dim bool ``enabled`` (the loss is finite) is false it changes nothing."""
    trainable_names, all_names = names

    def apply(
        params: list[torch.Tensor],
        grads_by_name: dict[str, torch.Tensor],
        optimizer_state: dict[str, list[torch.Tensor]],
        scalars: torch.Tensor,
        target_list: list[torch.Tensor],
        online: dict[str, torch.Tensor],
        enabled: torch.Tensor,
    ) -> torch.Tensor:
        grads = [grads_by_name[n] for n in trainable_names]
        norm = optimizer.clipped_update(params, grads, optimizer_state, scalars, gradient_clipping, enabled)
        assert norm is not None
        if polyak_tau is not None:
            moved = [t.clone() for t in target_list]
            move_targets(moved, [online[n] for n in all_names], polyak_tau)
            for t, new in zip(target_list, moved, strict=True):
                t.copy_(torch.where(enabled, new, t))
        return norm

    return apply
