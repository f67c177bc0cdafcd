"""Export an agent's greedy (deterministic) policy for inference without the training code.

``export_policy(agent_or_policy, path)`` writes the policy's network and its action
selection as a ``torch.export`` program (a ``.pt2`` file; TorchScript is deprecated in
PyTorch 2.x and ONNX would need extra dependencies), with the observation and action specs
as JSON metadata. Any policy that provides ``export_module()`` can be exported: a
``QPolicy`` (DQN: argmax of the q-values) and an ``ActorCriticPolicy`` (REINFORCE, PPO: the
most likely action, or the clipped mean for continuous actions); wrappers
(``GreedyPolicy``, ``EpsilonGreedyPolicy``) export their greedy part, and stateful
(recurrent) policies are refused. ``load_exported_policy(path)`` needs only PyTorch and NumPy::

    export_policy(agent, "cartpole.pt2")
    policy = load_exported_policy("cartpole.pt2")
    actions = policy.action(observations)          # [B, ...] -> [B, ...], the action spec's dtype
    policy.outputs(observations)                   # q-values, logits or means (policy.output_name)

Outside drivetrain the file is a plain ``torch.export`` program:
``torch.export.load(path).module()(torch.from_numpy(obs))`` returns ``(actions, outputs)``.
The program runs on the CPU, for any batch size.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ExportedPolicy", "GreedyQModule", "export_policy", "load_exported_policy"]

_METADATA = "drivetrain.json"
_FORMAT = "drivetrain.exported_policy.v2"
_FORMATS = (_FORMAT, "drivetrain.exported_q_policy.v1")


class GreedyQModule(nn.Module):
    """``observation -> (argmax_a q + minimum, q)``: what an exported Q policy runs."""

    output_name = "q_values"

    def __init__(self, q_network: nn.Module, minimum: int):
        super().__init__()
        self.q_network = q_network
        self.minimum = int(minimum)

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q_network(observation).to(torch.float32)
        return q.argmax(dim=1) + self.minimum, q


def _exportable(agent_or_policy: Any) -> Any:
    candidate = getattr(agent_or_policy, "policy", agent_or_policy)
    if getattr(candidate, "stateful", False):
        raise TypeError(
            f"export_policy: {type(agent_or_policy).__name__} has a stateful (recurrent) policy; only "
            "feed-forward policies can be exported for now (the exported program takes observations "
            "alone, no state)"
        )
    while not hasattr(candidate, "export_module") and getattr(candidate, "greedy_is_wrapped", False):
        candidate = candidate.wrapped  # GreedyPolicy / EpsilonGreedyPolicy around an exportable policy
    if not hasattr(candidate, "export_module"):
        raise TypeError(
            "export_policy: expected an agent or a policy with export_module() (QPolicy, ActorCriticPolicy; "
            f"possibly in GreedyPolicy or EpsilonGreedyPolicy), got {type(candidate).__name__}: a wrapper "
            "that changes actions has to export them itself (export_module)"
        )
    return candidate


def export_policy(agent_or_policy: Any, path: str | os.PathLike[str]) -> Path:
    """Writes the greedy policy of an agent (or of an exportable policy) to ``path``; returns the path.

    See the module docstring. The ``.pt2`` suffix is customary, not required.
    """
    from drivetrain.agents.tensors import example_observation
    from drivetrain.core import specs

    policy = _exportable(agent_or_policy)
    obs_spec = policy.time_step_spec.observation
    if not isinstance(obs_spec, specs.ArraySpec):
        raise TypeError(f"export_policy: only single-array observations can be exported, got {obs_spec!r}")
    action_spec = policy.action_spec
    # no gradients: the loaded program's outputs convert with .numpy(), as the docs show; plain
    # (not channels-last) weights: torch.export warns about the latter's storage
    module = policy.export_module().to("cpu", memory_format=torch.contiguous_format).eval()
    module.requires_grad_(False)
    example = torch.from_numpy(example_observation(obs_spec, 2))
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    metadata = {
        "format": _FORMAT,
        "observation_shape": list(obs_spec.shape),
        "observation_dtype": obs_spec.dtype.str,
        "action_shape": list(action_spec.shape),
        "action_dtype": action_spec.dtype.str,
        "action_minimum": np.asarray(action_spec.minimum).tolist(),
        "action_maximum": np.asarray(action_spec.maximum).tolist(),
        "output_name": module.output_name,
    }
    out = Path(path)
    if out.is_dir():
        raise IsADirectoryError(
            f"export_policy: {out} is a folder; name a file in it, e.g. {out / 'policy.pt2'}"
        )
    # Written beside and renamed over: an interrupted export leaves no torn file under the name.
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        torch.export.save(program, os.fspath(tmp), extra_files={_METADATA: json.dumps(metadata)})
        os.replace(tmp, out)
    except RuntimeError as e:  # torch's writer reports a file it cannot open this way
        raise OSError(f"export_policy: cannot write {out}: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


class ExportedPolicy:
    """A loaded exported policy: ``action(observations)`` and ``outputs(observations)`` on NumPy batches."""

    def __init__(self, module: Any, metadata: dict[str, Any]):
        self._module = module
        self.observation_shape: tuple[int, ...] = tuple(metadata["observation_shape"])
        self.observation_dtype = np.dtype(metadata["observation_dtype"])
        self.action_shape: tuple[int, ...] = tuple(metadata.get("action_shape", ()))
        self.action_dtype = np.dtype(metadata["action_dtype"])
        self.action_minimum = np.asarray(metadata["action_minimum"])
        self.action_maximum = np.asarray(metadata["action_maximum"])
        self.output_name: str = metadata.get("output_name", "q_values")
        """What :meth:`outputs` returns: "q_values", "logits" or "mean"."""

    @property
    def num_actions(self) -> int:
        """Number of discrete actions (scalar integer actions only)."""
        if self.action_shape or not np.issubdtype(self.action_dtype, np.integer):
            raise AttributeError("num_actions: the exported policy has continuous actions")
        return int(self.action_maximum) - int(self.action_minimum) + 1

    def _run(self, observation: Any) -> tuple[torch.Tensor, torch.Tensor]:
        obs = np.asarray(observation)
        if obs.ndim != len(self.observation_shape) + 1 or obs.shape[1:] != self.observation_shape:
            raise ValueError(
                f"ExportedPolicy: expected observations of shape [B, {', '.join(map(str, self.observation_shape))}]"
                f", got {obs.shape}"
            )
        if obs.dtype != self.observation_dtype:
            raise ValueError(
                f"ExportedPolicy: expected observation dtype {self.observation_dtype}, got {obs.dtype}"
            )
        with torch.inference_mode():
            actions, q = self._module(torch.from_numpy(np.array(obs, order="C")))
        return actions, q

    def action(self, observation: Any) -> np.ndarray:
        """Greedy actions ``[B, *action_shape]`` for observations ``[B, *observation_shape]``."""
        actions, _ = self._run(observation)
        out: np.ndarray = actions.numpy().astype(self.action_dtype)
        return out

    def outputs(self, observation: Any) -> np.ndarray:
        """float32 network outputs: q-values, logits ``[B, num_actions]`` or means ``[B, d]``."""
        _, values = self._run(observation)
        out: np.ndarray = values.numpy()
        return out

    def q_values(self, observation: Any) -> np.ndarray:
        """float32 q-values ``[B, num_actions]`` (an exported Q policy)."""
        if self.output_name != "q_values":
            raise AttributeError(f"q_values: this exported policy outputs {self.output_name}, see outputs()")
        return self.outputs(observation)

    __call__ = action


def load_exported_policy(path: str | os.PathLike[str]) -> ExportedPolicy:
    """Loads what :func:`export_policy` wrote."""
    extra = {_METADATA: ""}
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load_exported_policy: no file {os.fspath(path)}")
    not_exported = (
        f"load_exported_policy: {os.fspath(path)} is not an exported program (.pt2) of export_policy"
    )
    if not zipfile.is_zipfile(path):  # e.g. a checkpoint or agent.pkl
        raise ValueError(f"{not_exported} (not a zip archive)")
    try:
        program = torch.export.load(os.fspath(path), extra_files=extra)
    except RuntimeError as e:
        raise ValueError(f"{not_exported} ({type(e).__name__}: {e})") from e
    if not extra[_METADATA]:
        raise ValueError(
            f"load_exported_policy: {os.fspath(path)} has no drivetrain metadata; was it written by export_policy?"
        )
    metadata = json.loads(extra[_METADATA])
    if metadata.get("format") not in _FORMATS:
        raise ValueError(
            f"load_exported_policy: unknown format {metadata.get('format')!r}, expected one of {_FORMATS}"
        )
    return ExportedPolicy(program.module(), metadata)
