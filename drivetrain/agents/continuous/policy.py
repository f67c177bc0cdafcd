"""The policies of a continuous-control actor (SAC, TD3, DDPG), backed by PyTorch.

``ActorPolicy(..., exploration=...)`` turns the actor's unit action into the environment's
action with the agent's :class:`~drivetrain.networks.continuous.ActionScale`:

- ``"none"``: the deterministic policy, ``tanh(mean)`` (``agent.policy``: evaluation, export);
- ``"sample"``: SAC's collect policy, ``tanh(mean + std · ε)``;
- ``"gaussian"``: TD3's collect policy, ``clip(tanh(mean) + σ · ε, -1, 1)``, with ``σ`` in unit
  actions (0.1 is a tenth of the half range, as in the TD3 paper and CleanRL).

``ε`` is standard normal from the policy's own seeded NumPy generator, whose state goes into
checkpoints, so a run is reproducible and a resumed one continues bit for bit. The
policies are stateless and report no info: the replay stores the environment's action
(``collect_data_spec`` holds nothing else), and a uniformly random warm-up fills the same
buffer. ``export_module()`` gives the deterministic policy for
:func:`drivetrain.export.export_policy` (``output_name`` "mean": the pre-tanh mean).
"""

from __future__ import annotations

import copy
from typing import Any, Literal, cast

import numpy as np
import torch

from drivetrain.agents.tensors import to_torch
from drivetrain.core import seeding, types
from drivetrain.core.policy import Policy
from drivetrain.networks.continuous import ActionScale, DeterministicActor, SquashedGaussianActor

__all__ = ["ActorPolicy", "Exploration"]

Exploration = Literal["none", "sample", "gaussian"]


class ActorPolicy(Policy):
    """Actions of a continuous actor, deterministic or exploring; see the module docstring."""

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        actor: SquashedGaussianActor | DeterministicActor,
        scale: ActionScale,
        device: torch.device,
        *,
        exploration: Exploration,
        noise_std: float = 0.0,
        seed: seeding.Seed = None,
    ):
        if exploration not in ("none", "sample", "gaussian"):
            raise ValueError(
                f"ActorPolicy: exploration must be 'none', 'sample' or 'gaussian', got {exploration!r}"
            )
        if noise_std < 0:
            raise ValueError(f"ActorPolicy: noise_std must be >= 0, got {noise_std}")
        if exploration == "sample" and not isinstance(actor, SquashedGaussianActor):
            raise TypeError(
                f"ActorPolicy: sampling needs a SquashedGaussianActor, got {type(actor).__name__}"
            )
        super().__init__(time_step_spec, action_spec)
        self._actor = actor
        self._scale = scale
        self._device = device
        self._exploration = exploration
        self._noise_std = float(noise_std)
        self._rng = seeding.as_generator(seed)
        self._dtype = action_spec.dtype

    @property
    def exploration(self) -> Exploration:
        return self._exploration

    @property
    def greedy(self) -> bool:
        return self._exploration == "none"

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        eps = self._rng.standard_normal(tuple(like.shape)).astype(np.float32)
        return torch.from_numpy(eps).to(like.device)

    def _action(self, time_step: types.TimeStep, policy_state: Any) -> types.PolicyStep:
        with torch.inference_mode():
            obs = to_torch(time_step.observation, self._device)
            if self._exploration == "sample":
                mean, log_std = cast(SquashedGaussianActor, self._actor)(obs)
                unit = torch.tanh(mean + torch.exp(log_std) * self._noise(mean))
            else:
                unit = torch.tanh(self._actor.mean(obs))
                if self._exploration == "gaussian" and self._noise_std > 0:
                    unit = torch.clamp(unit + self._noise_std * self._noise(unit), -1.0, 1.0)
            action = self._scale.to_env(unit).cpu().numpy().astype(self._dtype, copy=False)
        return types.PolicyStep(action, (), {})

    def export_module(self) -> torch.nn.Module:
        """A CPU copy of the actor and the scale: ``observation -> (action, mean)``, deterministic."""
        return _DeterministicModule(copy.deepcopy(self._actor), copy.deepcopy(self._scale))

    def state_dict(self) -> dict[str, Any]:
        return {"rng": seeding.generator_state(self._rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        seeding.set_generator_state(self._rng, state["rng"])


class _DeterministicModule(torch.nn.Module):
    output_name = "mean"

    def __init__(self, actor: SquashedGaussianActor | DeterministicActor, scale: ActionScale):
        super().__init__()
        self.actor = actor.to("cpu").eval()
        self.scale = scale.to("cpu")

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.actor.mean(observation)
        return self.scale.to_env(torch.tanh(mean)), mean
