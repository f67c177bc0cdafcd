"""What ``agent.train`` returns."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["LossInfo", "NonFiniteLossError", "host_values", "refuse_non_finite"]


class LossInfo(NamedTuple):
    """The scalar ``loss`` of one training step and ``extra`` diagnostics (floats and NumPy arrays)."""

    loss: float
    extra: dict[str, Any]


class NonFiniteLossError(FloatingPointError):
    """An agent refused a NaN or infinite loss before its optimizer step (its weights are intact).

    ``train_step`` counts train steps from 1 (the step that failed); the training loop reports
    it as a divergence, naming the last good checkpoint.
    """

    def __init__(self, message: str, train_step: int, loss: float):
        super().__init__(message)
        self.train_step, self.loss = int(train_step), float(loss)


def refuse_non_finite(owner: str, train_step: int, value: float, what: str = "loss") -> None:
    """A :class:`NonFiniteLossError` if ``value`` is NaN or infinite: ``owner``'s ``what`` at the
    train step after ``train_step`` (the one being refused, before its optimizer step)."""
    if not math.isfinite(value):
        step = train_step + 1
        raise NonFiniteLossError(f"{owner}.train: the {what} of train step {step} is {value}", step, value)


def host_values(packed: torch.Tensor) -> np.ndarray:
    """``packed`` statistics on the host in one transfer: float64 stays float64 (a finite float64
    loss must not overflow to inf on the way), anything else becomes float32."""
    import torch

    dtype = torch.float64 if packed.dtype == torch.float64 else torch.float32
    return packed.detach().to("cpu", dtype).numpy()
