"""The learning-curve PNG of a run, drawn from its ``progress.csv`` (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

from drivetrain.train.checkpoint import atomic_write_bytes
from drivetrain.train.logger import read_progress

__all__ = ["plot_learning_curve"]


def _series(rows: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    xs = [r["env_steps"] for r in rows if key in r and not math.isnan(r[key])]
    ys = [r[key] for r in rows if key in r and not math.isnan(r[key])]
    return xs, ys


def plot_learning_curve(
    progress_csv: str | os.PathLike[str], png: str | os.PathLike[str], title: str = ""
) -> Path | None:
    """Draws returns (training average and greedy evaluations) and the loss against env steps.

    Returns the PNG's path, or None when there is nothing to draw yet. The file is
    replaced atomically, so a viewer never sees half a picture.
    """
    rows = read_progress(progress_csv)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6))
    # fixed margins: a layout engine would measure every label at every save (most of the cost)
    fig.subplots_adjust(left=0.1, right=0.9, bottom=0.08, top=0.94, hspace=0.08)
    ax_ret, ax_loss = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    xs, ys = _series(rows, "average_return")
    if xs:
        ax_ret.plot(xs, ys, label="training (collect policy), mean of last episodes", color="tab:blue")
    ex, ey = _series(rows, "eval_mean_return")
    if ex:
        std = {r["env_steps"]: r.get("eval_std_return", 0.0) for r in rows if "eval_mean_return" in r}
        ax_ret.errorbar(
            ex,
            ey,
            yerr=[std[x] for x in ex],
            fmt="o-",
            color="tab:orange",
            capsize=3,
            label="greedy evaluation",
        )
    ax_ret.set_ylabel("episode return")
    ax_ret.grid(alpha=0.3)
    if xs or ex:
        ax_ret.legend(loc="upper left", fontsize="small")
    lx, ly = _series(rows, "loss")
    if lx:
        ax_loss.plot(lx, ly, color="tab:red", label="loss")
        if min(ly) > 0 and max(ly) / min(ly) > 100:
            ax_loss.set_yscale("log")
    ax_loss.set_ylabel("loss")
    ax_loss.set_xlabel("environment steps")
    ax_loss.grid(alpha=0.3)
    qx, qy = _series(rows, "q_values")
    if qx:
        ax_q = ax_loss.twinx()
        ax_q.plot(qx, qy, color="tab:green", label="mean Q")
        ax_q.set_ylabel("mean Q", color="tab:green")
    if title:
        ax_ret.set_title(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(buf.getvalue(), png)
