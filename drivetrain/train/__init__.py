"""drivetrain.train: the training loop built from the parts, checkpoints, logging, presets.

::

    from drivetrain.train import get_preset, train
    config = get_preset("cartpole-dqn").build()
    result = train(config, "runs/cartpole-dqn-0")
    result.evaluation.mean_return

Modules: ``config`` (typed configs), ``fields`` (overrides, field docs), ``presets``,
``experiment`` (building the parts), ``loop`` (the loop), ``checkpoint`` (atomic,
checksummed files), ``logger`` (CSV/JSONL/TensorBoard), ``evaluation``, ``plotting``,
``video``, ``rundir``, ``artifacts`` (loading a run's agent).

The names are imported on first use: the configs and presets need no PyTorch, Gymnasium,
TensorBoard or matplotlib; ``train``, ``evaluate`` and the checkpoint loaders do.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.train import presets
    from drivetrain.train.artifacts import LoadedAgent, evaluate_run, load_agent
    from drivetrain.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from drivetrain.train.config import (
        EnvConfig,
        ExperimentConfig,
        LoopConfig,
        ReplayConfig,
        load_config,
        save_config,
    )
    from drivetrain.train.evaluation import EvalResult, evaluate
    from drivetrain.train.fields import ConfigError, apply_overrides
    from drivetrain.train.loop import TrainResult, train
    from drivetrain.train.presets import UnknownPresetError, get_preset, preset_names

__all__ = [
    "CheckpointError",
    "ConfigError",
    "EnvConfig",
    "EvalResult",
    "ExperimentConfig",
    "LoadedAgent",
    "LoopConfig",
    "ReplayConfig",
    "TrainResult",
    "UnknownPresetError",
    "apply_overrides",
    "evaluate",
    "evaluate_run",
    "get_preset",
    "load_agent",
    "load_checkpoint",
    "load_config",
    "preset_names",
    "presets",
    "save_checkpoint",
    "save_config",
    "train",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".artifacts": ("LoadedAgent", "evaluate_run", "load_agent"),
        ".checkpoint": ("CheckpointError", "load_checkpoint", "save_checkpoint"),
        ".config": (
            "EnvConfig",
            "ExperimentConfig",
            "LoopConfig",
            "ReplayConfig",
            "load_config",
            "save_config",
        ),
        ".evaluation": ("EvalResult", "evaluate"),
        ".fields": ("ConfigError", "apply_overrides"),
        ".loop": ("TrainResult", "train"),
        ".presets": ("UnknownPresetError", "get_preset", "preset_names"),
    },
    submodules=(
        "artifacts",
        "atari_presets",
        "checkpoint",
        "config",
        "config_resume",
        "continuous_presets",
        "evaluation",
        "experiment",
        "fields",
        "logger",
        "loop",
        "plotting",
        "policy_gradient_presets",
        "presets",
        "recurrent_presets",
        "resume",
        "rundir",
        "runs",
        "session",
        "signals",
        "video",
    ),
)
