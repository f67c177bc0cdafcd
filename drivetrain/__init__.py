"""drivetrain: environments -> time steps -> policies -> drivers -> trajectories -> observers.

``import drivetrain as dt`` gives the core vocabulary at the top level; the subpackages
that need PyTorch (``agents``, ``networks``, ``train``, ``export``) are imported on
first use, so ``import drivetrain`` works without it.
"""

from __future__ import annotations

import importlib
from typing import Any

from drivetrain.core import (
    ArraySpec,
    BoundedArraySpec,
    DynamicEpisodeDriver,
    DynamicStepDriver,
    Environment,
    EpisodeDriver,
    Policy,
    PolicyStep,
    SpecError,
    StackedFramesSpec,
    StepDriver,
    StepType,
    TimeStep,
    Trajectory,
)

__version__ = "0.1.0"

_LAZY = {
    "agents",
    "core",
    "envs",
    "export",
    "metric_utils",
    "metrics",
    "networks",
    "observers",
    "policies",
    "replay",
    "specs",
    "train",
}

__all__ = [
    "ArraySpec",
    "BoundedArraySpec",
    "DynamicEpisodeDriver",
    "DynamicStepDriver",
    "Environment",
    "EpisodeDriver",
    "Policy",
    "PolicyStep",
    "SpecError",
    "StackedFramesSpec",
    "StepDriver",
    "StepType",
    "TimeStep",
    "Trajectory",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        target = {
            "metric_utils": "drivetrain.core.metric_utils",
            "metrics": "drivetrain.core.metrics",
            "specs": "drivetrain.core.specs",
        }.get(name, f"drivetrain.{name}")
        module = importlib.import_module(target)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'drivetrain' has no attribute {name!r}")
