"""drivetrain: environments -> time steps -> policies -> drivers -> trajectories -> observers.

``import drivetrain as dt`` gives the core vocabulary at the top level (``dt.StepDriver``,
``dt.TimeStep``, ...) and the subpackages (``dt.envs``, ``dt.agents``, ``dt.replay``, ...).
Every name is imported on first use: ``import drivetrain`` imports neither NumPy nor
PyTorch, and the subpackages that need PyTorch (``agents``, ``networks``, ``train``,
``export``) work only where it is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain import agents, core, envs, export, networks, observers, policies, replay, train
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
        metric_utils,
        metrics,
        specs,
    )

__version__ = "0.1.0"

_CORE_NAMES = (
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
)
_SUBMODULES = {
    **{
        name: f"drivetrain.{name}"
        for name in (
            "agents",
            "core",
            "envs",
            "export",
            "networks",
            "observers",
            "policies",
            "replay",
            "train",
        )
    },
    **{name: f"drivetrain.core.{name}" for name in ("metric_utils", "metrics", "specs")},
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
]

__getattr__, __dir__ = lazy_exports(__name__, {"drivetrain.core": _CORE_NAMES}, submodules=_SUBMODULES)
