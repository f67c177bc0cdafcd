"""NumPy <-> PyTorch conversion for torch-backed policies and agents.

Arrays are shared, not copied, where PyTorch allows it (``torch.from_numpy`` on a
writeable array with non-negative strides, e.g. the view ``window[:, 1]``); anything
else is copied once. Tensors then move to
the target device in one transfer per leaf.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from drivetrain.core import nest, specs

__all__ = ["example_observation", "to_torch"]


def _leaf(value: Any, device: torch.device) -> torch.Tensor:
    array = np.asarray(value)
    if not array.flags.writeable:
        array = np.array(array, order="C")
    try:
        tensor = torch.from_numpy(array)
    except ValueError:  # negative strides
        tensor = torch.from_numpy(np.array(array, order="C"))
    if device.type != "cpu":
        tensor = tensor.to(device, non_blocking=True)
    return tensor


def to_torch(value: Any, device: torch.device) -> Any:
    """A nest of NumPy arrays -> the same nest of tensors on ``device``."""
    if isinstance(value, np.ndarray):
        return _leaf(value, device)
    return nest.map_structure(lambda x: _leaf(x, device), value)


def example_observation(observation_spec: Any, batch_size: int = 1) -> Any:
    """A valid batched observation of ``observation_spec`` (the minimum of bounded specs, else zeros)."""

    def leaf(spec: specs.ArraySpec) -> np.ndarray:
        if isinstance(spec, specs.BoundedArraySpec):
            return np.broadcast_to(spec.minimum, (batch_size, *spec.shape)).astype(spec.dtype)
        return spec.zeros((batch_size,))

    return nest.map_structure(leaf, observation_spec)
