"""The PNG of ``drivetrain compare``: one line per group, the mean over seeds with its bootstrap band."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from drivetrain.train.checkpoint import atomic_write_bytes

if TYPE_CHECKING:
    from drivetrain.train.compare import GroupSummary

__all__ = ["plot_comparison"]


def plot_comparison(summaries: Sequence[GroupSummary], png: str | os.PathLike[str]) -> Path:
    """Draws every group's :class:`~drivetrain.train.aggregate.Curve` into ``png`` (written atomically).

    A group whose curve is one point is drawn as a point with an error bar; a group without
    a curve is named in the legend. The y label says whether the curves are greedy
    evaluations or training returns (both, when groups differ).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.11, top=0.92)
    ax = fig.subplots()
    kinds = set()
    for i, s in enumerate(summaries):
        color = f"C{i % 10}"
        c = s.curve
        if c is None:
            ax.plot([], [], color=color, label=f"{s.label} ({s.curve_kind})")
            continue
        kinds.add(s.curve_kind)
        label = f"{s.label} (n={c.seeds})"
        if len(c.x) == 1:
            err = [[c.mean[0] - c.low[0]], [c.high[0] - c.mean[0]]]
            ax.errorbar(c.x, c.mean, yerr=err, fmt="o", color=color, capsize=4, label=label)
        else:
            ax.plot(c.x, c.mean, color=color, label=label)
            ax.fill_between(c.x, c.low, c.high, color=color, alpha=0.2, linewidth=0)
    names = {"evaluation": "greedy evaluation return", "training": "training return (collect policy)"}
    ax.set_ylabel(" / ".join(names[k] for k in sorted(kinds)) or "episode return")
    ax.set_xlabel("environment steps")
    ax.set_title("mean over seeds, 95% bootstrap band")
    ax.grid(alpha=0.3)
    if summaries:
        ax.legend(loc="best", fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(buf.getvalue(), png)
