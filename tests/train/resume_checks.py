"""What the resume tests share: a crash in the middle of an iteration, and two runs compared."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from drivetrain.train import load_checkpoint
from drivetrain.train import loop as loop_lib
from drivetrain.train.logger import read_progress

TIMING = ("steps_per_second", "wall_seconds")


class CrashError(Exception):
    pass


def crash_at_train_phase(monkeypatch, n: int) -> None:
    """Makes the n-th training phase raise CrashError, as if the process died mid-iteration."""
    real = loop_lib._train_phase
    calls = {"n": 0}

    def phase(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise CrashError
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_lib, "_train_phase", phase)


def comparable(rows: list[dict]) -> list[dict]:
    """progress.csv rows without their timing columns."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def assert_same_run(a_dir: Path, b_dir: Path) -> None:
    """Same progress.csv (timings aside), same eval.json and bit-identical final weights."""
    rows_a, rows_b = read_progress(a_dir / "progress.csv"), read_progress(b_dir / "progress.csv")
    assert [r["env_steps"] for r in rows_b] == [r["env_steps"] for r in rows_a]  # no gap, no repeat
    assert comparable(rows_b) == comparable(rows_a)  # returns, losses, q-values, epsilon, evaluations
    eval_a, eval_b = (json.loads((d / "eval.json").read_text()) for d in (a_dir, b_dir))
    assert eval_b == eval_a
    agents = [load_checkpoint(d / "agent.pkl")["agent"] for d in (a_dir, b_dir)]
    key = "q_network" if "q_network" in agents[0] else "network"  # Q-learning or actor-critic agents
    weights_a, weights_b = (agent[key] for agent in agents)
    assert weights_a.keys() == weights_b.keys()
    for name, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[name]), name
