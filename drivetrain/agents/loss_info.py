"""What ``agent.train`` returns."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["LossInfo", "NonFiniteLossError"]


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
