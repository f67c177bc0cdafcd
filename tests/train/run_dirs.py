"""What the run-directory tests share: tiny command-line runs and a fingerprint of a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

TINY_CLI = [
    "--total_env_steps", "600",
    "--learning_starts", "200",
    "--update_period", "100",
    "--gradient_steps", "5",
    "--agent.fc_layers", "16,16",
    "--eval_interval=0",
    "--stop_at_return", "none",
    "--final_eval_episodes", "2",
    "--checkpoint_interval", "300",
    "--log_interval", "100",
    "--tensorboard", "false",
]  # fmt: skip
"""A 600-step cartpole-dqn run: checkpoints at 300 and 600, a row every 100 steps."""


def fingerprint(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (and ``{dir/: ""}`` for folders)."""
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        key = p.relative_to(folder).as_posix()
        out[key + "/" if p.is_dir() else key] = (
            "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        )
    return out
