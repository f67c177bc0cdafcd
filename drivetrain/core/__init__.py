"""drivetrain.core: specs, time steps, trajectories, protocols, drivers, metrics.

NumPy and the standard library only: this package never imports torch or ray.
"""

from drivetrain.core import metrics, nest, schedules, seeding
from drivetrain.core.drivers import (
    DynamicEpisodeDriver,
    DynamicStepDriver,
    EpisodeDriver,
    Observer,
    StepDriver,
)
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy, is_stateful
from drivetrain.core.specs import ArraySpec, BoundedArraySpec, SpecError, StackedFramesSpec, validate
from drivetrain.core.types import (
    PolicyStep,
    StepType,
    TimeStep,
    Trajectory,
    from_transition,
    restart,
    termination,
    time_step_spec,
    trajectory_spec,
    transition,
    truncation,
)

__all__ = [
    "ArraySpec",
    "BoundedArraySpec",
    "DynamicEpisodeDriver",
    "DynamicStepDriver",
    "Environment",
    "EpisodeDriver",
    "Observer",
    "Policy",
    "PolicyStep",
    "SpecError",
    "StackedFramesSpec",
    "StepDriver",
    "StepType",
    "TimeStep",
    "Trajectory",
    "from_transition",
    "is_stateful",
    "metrics",
    "nest",
    "restart",
    "schedules",
    "seeding",
    "termination",
    "time_step_spec",
    "trajectory_spec",
    "transition",
    "truncation",
    "validate",
]
