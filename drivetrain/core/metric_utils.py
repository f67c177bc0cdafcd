"""``log_metrics``: each metric's name and result in one log record (TF-Agents' ``metric_utils``).

::

    import logging
    logging.basicConfig(level=logging.INFO)   # the standard library prints INFO records then
    dt.metric_utils.log_metrics(train_metrics)
    # INFO:drivetrain.metrics:
    #          NumberOfEpisodes = 3
    #          EnvironmentSteps = 412
    #          ...

A metric is anything with ``result()``; its name is its ``name`` attribute, or its class name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["log_metrics", "metrics_summary"]

LOGGER = logging.getLogger("drivetrain.metrics")


def metrics_summary(metrics: Iterable[Any]) -> list[str]:
    """``"name = result"`` for each metric, in order."""
    lines = []
    for metric in metrics:
        result = getattr(metric, "result", None)
        if not callable(result):
            raise TypeError(f"log_metrics: {metric!r} is not a metric (it has no result())")
        lines.append(f"{getattr(metric, 'name', type(metric).__name__)} = {result()}")
    return lines


def log_metrics(metrics: Iterable[Any], prefix: str = "", logger: logging.Logger | None = None) -> str:
    """Logs ``prefix`` and one ``name = result`` line per metric at INFO level; returns the text."""
    text = "\n\t\t ".join(metrics_summary(metrics))
    (logger or LOGGER).info("%s \n\t\t %s", prefix, text)
    return f"{prefix} \n\t\t {text}"
