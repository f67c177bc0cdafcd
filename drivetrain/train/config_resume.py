"""What a resumed run may change: the config fields fixed by a run's checkpoint, and the check.

:data:`CHANGEABLE_ON_RESUME` lists the loop's, the replay's and the execution's changeable keys;
each agent builder's ``changeable_on_resume`` lists its config's
(:func:`changeable_on_resume` joins them). :func:`check_resume` compares a resumed run's config
with the run's own and names every change, refusing one to a fixed field (ConfigError).
"""

from __future__ import annotations

import os
from typing import Any

from drivetrain.agents import builder_for
from drivetrain.distributed import config as execution_config
from drivetrain.train import fields
from drivetrain.train.config import ExperimentConfig

__all__ = ["CHANGEABLE_ON_RESUME", "changeable_on_resume", "check_resume"]


CHANGEABLE_ON_RESUME: frozenset[str] = frozenset(
    {
        # the loop: budgets, intervals, evaluation, logging, checkpoints
        *(
            f"loop.{name}"
            for name in (
                "total_env_steps",
                "update_period",
                "gradient_steps",
                "batch_size",
                "eval_interval",
                "eval_episodes",
                "final_eval_episodes",
                "eval_num_envs",
                "stop_at_return",
                "eval_epsilon",
                "video_every",
                "log_interval",
                "checkpoint_interval",
                "keep_checkpoints",
                "checkpoint_replay",
                "progress_bar",
                "tensorboard",
                "track",
                "track_project",
                "torch_threads",
            )
        ),
        # the replay's sampling (not its layout: capacity, prioritized, alpha)
        "replay.beta",
        "replay.beta_final",
        "replay.priority_epsilon",
        "replay.prefetch",
        # the execution: how often weights travel, where Ray runs, the collectors' exploration
        *execution_config.CHANGEABLE_ON_RESUME,
    }
)
"""Loop, replay and execution keys that a resumed run may change, and then uses; the agent's are its
builder's ``changeable_on_resume`` (:func:`changeable_on_resume`). Every other key is fixed by
the run's checkpoint: the environments (their number and state), the seed, the warm-up, the
metrics' window, the networks' shapes, the optimizer's kind and the layout of its state
(``rmsprop_centered``, ``rmsprop_momentum``), the replay's layout (capacity, prioritized,
alpha), the execution's backend, collectors and rate limiter. A key missing here (a new field)
is fixed until it is classified."""


def changeable_on_resume(config: ExperimentConfig) -> frozenset[str]:
    """The keys of ``config`` that a resume may change: the loop's, replay's and execution's, and the agent's."""
    agent = builder_for(config.agent).changeable_on_resume
    return CHANGEABLE_ON_RESUME | {f"agent.{name}" for name in agent}


def check_resume(
    saved: ExperimentConfig, new: ExperimentConfig, run_dir: str | os.PathLike[str]
) -> list[str]:
    """The changes from ``saved`` (the run's config) to ``new`` that a resume applies, as
    ``"key: old -> new"``; ConfigError naming the changed fixed keys and every fixed key."""
    old = {f.key: f.value for f in fields.fields_of(saved)}
    now = {f.key: f.value for f in fields.fields_of(new)}
    keys = list(dict.fromkeys([*now, *old]))
    changeable = changeable_on_resume(saved)
    fixed = {k for k in keys if k not in changeable}
    changed = {k: f"{k}: {_shown(old, k)} -> {_shown(now, k)}" for k in keys if old.get(k) != now.get(k)}
    if type(saved.agent) is not type(new.agent):
        fixed.add("agent")
        changed = {"agent": f"agent: {type(saved.agent).__name__} -> {type(new.agent).__name__}", **changed}
    refused = [text for key, text in changed.items() if key in fixed]
    if refused:
        raise fields.ConfigError(
            f"cannot resume {run_dir} with these changes: {'; '.join(refused)}. "
            f"Fixed on resume: {', '.join(_collapse(keys, fixed))}. "
            "Start a new run (another --run-dir, or --force) to change them."
        )
    return list(changed.values())


def _shown(values: dict[str, Any], key: str) -> str:
    return repr(values[key]) if key in values else "(no such field)"


def _collapse(keys: list[str], fixed: set[str]) -> list[str]:
    """``fixed`` keys in order, a section written ``section.*`` when all its keys are fixed."""
    out: list[str] = []
    for key in keys:
        if key not in fixed:
            continue
        parts = key.split(".")
        name = key
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i]) + "."
            if all(k in fixed for k in keys if k.startswith(prefix)):
                name = prefix + "*"
                break
        if name not in out:
            out.append(name)
    return out
