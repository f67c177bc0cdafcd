"""What ``agent.train`` returns."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["LossInfo"]


class LossInfo(NamedTuple):
    """The scalar ``loss`` of one training step and ``extra`` diagnostics (floats and NumPy arrays)."""

    loss: float
    extra: dict[str, Any]
