"""``drivetrain compare RUN_DIR... [--by preset]``: runs grouped, their final returns aggregated
honestly, and their learning curves drawn.

Input: run directories (with a ``config.json``), or folders whose ``seed-*`` children are run
directories (what ``drivetrain train PRESET --seeds ...`` writes). Each run gives its final
return (``mean_return`` of ``eval.json``; a run without one is named and left out of the
aggregate) and its learning curve: the greedy evaluations of ``progress.csv``
(``eval_mean_return``, ending with ``eval.json``), or, when some run of its group has fewer
than two of those, the training ``average_return``.

Groups (``--by``): ``preset`` (default: one group per preset, or per environment and agent for
configs without one), ``agent``, ``env``, or ``config`` (runs whose configs differ only in the
seed and in bookkeeping fields: logging, checkpoints, threads; labelled by the fields that set
groups of one preset apart).

Per group (see :mod:`drivetrain.train.aggregate` for the definitions): every seed's final
return, the interquartile mean with its 95% stratified percentile bootstrap interval (strata:
environments), and the mean ± standard deviation over seeds (``ddof=1``); the learning curve
is the mean over seeds on a shared grid of env steps (the range every seed covers) with a
bootstrap band. Output: a Markdown table, printed and written beside the PNG of the curves
(``--out comparison.png`` gives ``comparison.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivetrain.train.compare_runs import (
    CompareError,
    RunRecord,
    config_key,
    find_runs,
    read_run,
)

if TYPE_CHECKING:
    from drivetrain.train.aggregate import Curve, Interval

__all__ = [
    "CompareError",
    "GroupSummary",
    "RunRecord",
    "add_compare_parser",
    "cmd_compare",
    "find_runs",
    "group_runs",
    "main",
    "markdown_table",
    "read_run",
    "summarize",
]

GROUP_BY = ("preset", "agent", "env", "config")


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """The aggregate of one group of runs."""

    label: str
    runs: tuple[RunRecord, ...]
    iqm: Interval | None
    """None when no run of the group has an ``eval.json``."""
    mean: float
    std: float
    curve: Curve | None
    curve_kind: str
    """``evaluation`` or ``training`` (which returns the curve shows), or why there is none."""

    @property
    def finished(self) -> list[RunRecord]:
        return [r for r in self.runs if r.final_return is not None]


def group_runs(runs: Sequence[RunRecord], by: str = "preset") -> dict[str, list[RunRecord]]:
    """Runs by group label, groups in the order their first run came; ``by`` is one of :data:`GROUP_BY`."""
    if by not in GROUP_BY:
        raise CompareError(f"--by {by!r}: expected one of {', '.join(GROUP_BY)}")
    if by != "config":
        groups: dict[str, list[RunRecord]] = {}
        for r in runs:
            groups.setdefault(str(getattr(r, by)), []).append(r)
        return groups
    by_config: dict[str, list[RunRecord]] = {}
    for r in runs:
        by_config.setdefault(config_key(r), []).append(r)
    return {_config_label(members[0], by_config): members for members in by_config.values()}


def _config_label(run: RunRecord, by_config: dict[str, list[RunRecord]]) -> str:
    """The preset, and the fields that set this config apart from the other configs of that preset."""
    mine = json.loads(config_key(run))
    others = [json.loads(k) for k, rs in by_config.items() if rs[0].preset == run.preset and rs[0] is not run]
    differ = sorted({k for o in others for k in mine.keys() | o.keys() if mine.get(k) != o.get(k)})
    fields = " ".join(f"{k}={mine.get(k)!r}" for k in differ if k != "preset")
    return f"{run.preset} {fields}".strip()


def _curve(
    runs: Sequence[RunRecord], points: int, resamples: int, confidence: float, seed: int
) -> tuple[Curve | None, str]:
    if all(len(r.evaluations[0]) >= 2 for r in runs):
        kind, curves = "evaluation", [r.evaluations for r in runs]
    elif all(len(r.training[0]) >= 2 for r in runs):
        kind, curves = "training", [r.training for r in runs]
    elif all(len(r.evaluations[0]) >= 1 for r in runs):
        kind, curves = "evaluation", [r.evaluations for r in runs]
    else:
        return None, "no curve: a run has no evaluation and fewer than two progress rows"
    from drivetrain.train.aggregate import curve_band

    try:
        band = curve_band(curves, points=points, resamples=resamples, confidence=confidence, seed=seed)
    except ValueError as e:
        return None, f"no curve: {e}"
    return band, kind


def summarize(
    groups: dict[str, list[RunRecord]],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    points: int = 100,
) -> list[GroupSummary]:
    """One :class:`GroupSummary` per group (bootstrap seeded with ``seed`` for every group)."""
    import numpy as np

    from drivetrain.train.aggregate import iqm_interval

    out = []
    for label, runs in groups.items():
        finished = [r for r in runs if r.final_return is not None]
        finals = np.array([r.final_return for r in finished], dtype=np.float64)
        interval = None
        if finished:
            interval = iqm_interval(
                finals,
                strata=[r.env for r in finished],
                resamples=resamples,
                confidence=confidence,
                seed=seed,
            )
        mean = float(finals.mean()) if finished else math.nan
        std = float(finals.std(ddof=1)) if len(finished) > 1 else math.nan
        curve, kind = _curve(runs, points, min(resamples, 2_000), confidence, seed)
        out.append(GroupSummary(label, tuple(runs), interval, mean, std, curve, kind))
    return out


def _num(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.1f}"


def markdown_table(summaries: Sequence[GroupSummary]) -> str:
    """The Markdown table of the groups, with a line saying how the figures were computed."""
    first = next((s.iqm for s in summaries if s.iqm is not None), None)
    pct = round(100 * (first.confidence if first else 0.95))
    lines = [
        f"| group | seeds | final return per seed | IQM [{pct}% CI] | mean ± std |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in summaries:
        per_seed = ", ".join(
            f"{r.seed}: {_num(r.final_return) if r.final_return is not None else '—'}" for r in s.runs
        )
        n = len(s.finished)
        seeds = f"{n}" if n == len(s.runs) else f"{n} of {len(s.runs)} finished"
        iqm = "n/a" if s.iqm is None else f"{s.iqm.value:.1f} [{s.iqm.low:.1f}, {s.iqm.high:.1f}]"
        lines.append(f"| {s.label} | {seeds} | {per_seed} | {iqm} | {_num(s.mean)} ± {_num(s.std)} |")
    lines.append("")
    lines.append(
        "Final return: `mean_return` of each run's `eval.json`. IQM: mean of the middle 50% of the seeds' "
        "final returns (`scipy.stats.trim_mean(x, 0.25)`: floor(n/4) dropped at each end); interval: "
        f"{pct}% stratified percentile bootstrap over seeds"
        + (f" ({first.resamples} resamples)" if first else "")
        + "; std over seeds with ddof=1."
    )
    missing = [r.path for s in summaries for r in s.runs if r.final_return is None]
    if missing:
        lines.append(f"Left out of the aggregates (no eval.json yet): {', '.join(map(str, missing))}.")
    lines.extend(pooling_notes(summaries))
    return "\n".join(lines) + "\n"


def pooling_notes(summaries: Sequence[GroupSummary]) -> list[str]:
    """What a group pools that may not belong together: runs of other configs, a seed twice."""
    notes = []
    for s in summaries:
        configs = [json.loads(config_key(r)) for r in s.runs]
        differ = sorted(
            {k for c in configs for k in c.keys() | configs[0].keys() if c.get(k) != configs[0].get(k)}
        )
        if differ:
            shown = ", ".join(differ[:6]) + (", ..." if len(differ) > 6 else "")
            notes.append(
                f"Note: {s.label} pools runs of different configs ({shown}); `--by config` sets them apart."
            )
        seeds = [r.seed for r in s.runs]
        twice = sorted({x for x in seeds if seeds.count(x) > 1})
        if twice:
            notes.append(f"Note: {s.label} holds seed {', '.join(map(str, twice))} more than once.")
    return notes


def add_compare_parser(sub: Any) -> None:
    """Adds the ``compare`` command to the ``drivetrain`` subparsers ``sub`` (its func: :func:`cmd_compare`)."""
    p = sub.add_parser("compare", help="aggregate runs over seeds: IQM table and mean learning curves")
    _add_arguments(p)
    p.set_defaults(func=cmd_compare)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="run directories, or folders of seed-* runs"
    )
    p.add_argument(
        "--by",
        choices=GROUP_BY,
        default="preset",
        help="group runs by preset (default), agent, env or config",
    )
    p.add_argument(
        "--out",
        default="comparison.png",
        metavar="FILE.png",
        help="the learning curves' PNG; the Markdown table goes beside it as .md (default: comparison.png)",
    )
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default: 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    p.add_argument(
        "--points", type=int, default=100, help="env-step grid points of the curves (default: 100)"
    )


def cmd_compare(args: argparse.Namespace) -> int:
    """``drivetrain compare``: prints the table, writes the PNG and the ``.md``; 2 with one line on bad input."""
    from drivetrain.train.checkpoint import atomic_write_text
    from drivetrain.train.compare_plot import plot_comparison

    try:
        if args.resamples < 1 or args.points < 1 or not 0 < args.confidence < 1:
            raise CompareError(
                "--resamples and --points must be at least 1 and --confidence in (0, 1); got "
                f"{args.resamples}, {args.points}, {args.confidence}"
            )
        png = Path(args.out)
        if png.suffix.lower() != ".png":
            raise CompareError(f"--out {args.out}: expected a .png file name")
        groups = group_runs(find_runs(args.run_dirs), args.by)
    except CompareError as e:
        print(f"drivetrain: error: {e}", file=sys.stderr)
        return 2
    summaries = summarize(
        groups, resamples=args.resamples, confidence=args.confidence, seed=args.seed, points=args.points
    )
    table = markdown_table(summaries)
    print(table, end="")
    plot_comparison(summaries, png)
    md = atomic_write_text(table, png.with_suffix(".md"))
    print(f"wrote {png} and {md}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m drivetrain.train.compare RUN_DIR...`` (the same as ``drivetrain compare``)."""
    p = argparse.ArgumentParser(prog="drivetrain compare", description=__doc__.split("\n\n")[0])
    _add_arguments(p)
    return cmd_compare(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
