"""Several seeds of one config: ``drivetrain train PRESET --seeds 0-4 [--parallel N]``.

Layout: one run directory per seed, side by side in the multi-seed run directory::

    runs/cartpole-dqn/          RUN_DIR (default: runs/<preset>)
      seed-0/                   an ordinary run directory (see drivetrain.train.rundir)
      seed-1/
      ...

Each seed's config is the given config with ``seed`` replaced. ``--resume`` and ``--force``
mean what they mean for one run, seed by seed: without either, the command is refused (before
any seed starts) if a seed's folder already holds a run; ``--force`` starts every seed over;
``--resume`` continues each seed from its latest checkpoint, skips a seed whose ``eval.json``
already reached the budget, and starts a seed that has no ``config.json`` yet (it never
started). A resumed seed takes its own saved config with the command line's overrides
applied again, as a resumed single run does.

Seeds run one after another in this process by default; ``--parallel N`` runs up to N at a
time, each in its own quiet process (:mod:`drivetrain.train.seed_processes`), its output
kept and its last line reported if it fails. A seed that fails
never stops or touches the others (each writes only into its own folder, under its own
lock); the exit status is 0 when every seed finished, 1 when some failed (the error message
names them and why), 128 + the signal when SIGINT or SIGTERM stopped the runs (each running
seed gets the signal once, stops at a safe point with a checkpoint, and ``--resume``
continues them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drivetrain.train.config import ExperimentConfig

__all__ = [
    "SeedOutcome",
    "SeedsSpecError",
    "add_seeds_arguments",
    "default_run_dir",
    "parse_seeds",
    "run_seeds",
    "run_seeds_command",
    "seed_dir",
]

SEED_PREFIX = "seed-"


class SeedsSpecError(ValueError):
    """A ``--seeds`` value that is not a list of seeds (the message names the option and the value)."""


@dataclasses.dataclass(frozen=True)
class SeedOutcome:
    """How one seed's run ended: ``status`` is ``done``, ``skipped`` (already finished),
    ``failed`` or ``stopped`` (by a signal, with a checkpoint)."""

    seed: int
    run_dir: Path
    status: str
    message: str = ""
    mean_return: float | None = None
    exit_status: int = 0
    """The seed's process exit status (128 + the signal for ``stopped``; 0 in-process)."""


def parse_seeds(spec: str) -> tuple[int, ...]:
    """Seeds from ``"3"``, ``"0-4"`` (inclusive), ``"0,2,5"`` or a mix (``"0-2,7"``); in the order given.

    SeedsSpecError names ``--seeds`` and what is wrong: an empty item, a negative or
    non-integer seed, a range that runs backwards, a seed given twice.
    """
    seeds: list[int] = []
    items = [item.strip() for item in str(spec).split(",")]
    for item in items:
        if not item:
            raise SeedsSpecError(f"--seeds {spec!r}: an empty item; give e.g. 0-4, 0,2,5 or 3")
        first, dash, last = item.partition("-")
        try:
            lo = int(first)
            hi = int(last) if dash else lo
        except ValueError:
            raise SeedsSpecError(
                f"--seeds {spec!r}: {item!r} is not a seed or a range of seeds (non-negative integers: "
                "0-4, 0,2,5 or 3)"
            ) from None
        if hi < lo:
            raise SeedsSpecError(f"--seeds {spec!r}: the range {item!r} runs backwards; write {hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise SeedsSpecError(f"--seeds {spec!r}: seed {', '.join(map(str, twice))} given twice")
    return tuple(seeds)


def seed_dir(run_dir: str | os.PathLike[str], seed: int) -> Path:
    """The run directory of ``seed`` inside a multi-seed run directory: ``RUN_DIR/seed-<seed>``."""
    return Path(run_dir) / f"{SEED_PREFIX}{seed}"


def default_run_dir(config: ExperimentConfig) -> Path:
    """``runs/<preset>`` (or ``runs/<environment>`` for a config that names no preset)."""
    return Path("runs") / (config.preset or config.env.name)


def add_seeds_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--seeds SPEC`` and ``--parallel N`` to the ``train`` command's parser."""
    parser.add_argument(
        "--seeds",
        default=None,
        metavar="SPEC",
        help="train several seeds (0-4, 0,2,5 or 3) into RUN_DIR/seed-K (default RUN_DIR: runs/<preset>)",
    )
    parser.add_argument(
        "--parallel",
        type=int,
        default=None,
        metavar="N",
        help="with --seeds: run up to N seeds at a time, each in its own process (default: one after another)",
    )


def _seed_config(
    config: ExperimentConfig,
    folder: Path,
    seed: int,
    resume: bool,
    overrides: Sequence[tuple[str, str | None]] | None,
) -> ExperimentConfig:
    """The config of one seed: ``config`` with ``seed`` replaced, or for a seed that resumes, its
    saved config with ``overrides`` applied again; RunDirError when that run is of another preset."""
    from drivetrain.train.config import load_config
    from drivetrain.train.fields import apply_overrides
    from drivetrain.train.rundir import RunDirError

    if resume and overrides is not None and (folder / "config.json").is_file():
        saved = load_config(folder / "config.json")
        if config.preset and saved.preset and saved.preset != config.preset:
            raise RunDirError(f"{folder} holds a run of preset {saved.preset!r}, not {config.preset!r}")
        pairs = [(key, "true" if value is None else value) for key, value in overrides]
        config = apply_overrides(saved, pairs)
    return dataclasses.replace(config, seed=seed)


def _finished(folder: Path, config: ExperimentConfig) -> float | None:
    """The final return of a seed whose ``eval.json`` reached the budget; None otherwise."""
    try:
        result = json.loads((folder / "eval.json").read_text())
        if int(result["env_steps"]) >= config.loop.total_env_steps:
            return float(result["mean_return"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


@dataclasses.dataclass(frozen=True)
class SeedPlan:
    """What one seed will do: train ``config`` in ``folder``, resuming or not."""

    seed: int
    folder: Path
    config: ExperimentConfig
    resume: bool


def _plan(
    config: ExperimentConfig,
    run_dir: Path,
    seeds: Sequence[int],
    resume: bool,
    force: bool,
    overrides: Sequence[tuple[str, str | None]] | None,
) -> tuple[list[SeedPlan], list[SeedOutcome]]:
    """What each seed will do; RunDirError (nothing written) when the command is refused."""
    from drivetrain.train.rundir import RunDir, RunDirError

    if RunDir(run_dir).config.is_file():
        raise RunDirError(
            f"{run_dir} holds a single run (it has a config.json); --seeds needs a folder for "
            f"{SEED_PREFIX}K run directories: choose another --run-dir"
        )
    if resume and not any(RunDir(seed_dir(run_dir, s)).config.is_file() for s in seeds):
        raise RunDirError(
            f"nothing to resume in {run_dir}: no {SEED_PREFIX}K/config.json for seeds "
            f"{', '.join(map(str, seeds))}; start the runs without --resume (or check --run-dir)"
        )
    if not resume and not force:
        held = [seed_dir(run_dir, s) for s in seeds if RunDir(seed_dir(run_dir, s)).has_run()]
        if held:
            raise RunDirError(
                f"{', '.join(map(str, held))} already hold{'s' if len(held) == 1 else ''} a run; pass "
                "--resume to continue, --force to delete and start over, or --run-dir to choose another folder"
            )
    plans, skipped = [], []
    # A seed that never started, in a resumed set, trains as its siblings do: from the first
    # started seed's saved config, with the command's overrides applied again.
    started = next(
        (seed_dir(run_dir, s) for s in seeds if RunDir(seed_dir(run_dir, s)).config.is_file()), None
    )
    for s in seeds:
        folder = seed_dir(run_dir, s)
        again = resume and RunDir(folder).config.is_file()
        source = folder if again or started is None else started
        seed_config = _seed_config(config, source, s, resume, overrides)
        done = _finished(folder, seed_config) if again else None
        if done is not None:
            skipped.append(SeedOutcome(s, folder, "skipped", "already finished", done))
        else:
            plans.append(SeedPlan(s, folder, seed_config, again))
    return plans, skipped


def run_seeds(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str],
    seeds: Sequence[int],
    *,
    parallel: int | None = None,
    resume: bool = False,
    force: bool = False,
    verbose: bool = True,
    overrides: Sequence[tuple[str, str | None]] | None = None,
) -> list[SeedOutcome]:
    """Trains ``config`` once per seed into ``run_dir/seed-K`` (see the module docstring).

    Returns one :class:`SeedOutcome` per seed, in the order of ``seeds``. Raises RunDirError
    before any seed starts when the command is refused; in sequential mode a stop signal
    raises RunInterruptedError after the seed it stopped (the next seeds do not start).
    """
    if not seeds:
        raise SeedsSpecError("--seeds: no seeds given")
    if parallel is not None and parallel < 1:
        raise SeedsSpecError(f"--parallel must be at least 1, got {parallel}")
    run_dir = Path(run_dir)
    plans, outcomes = _plan(config, run_dir, seeds, resume, force, overrides)
    say = print if verbose else _quiet
    for o in outcomes:
        say(f"seed {o.seed}: {o.run_dir} already finished (return {o.mean_return:.1f}); skipped")
    if parallel is None:
        outcomes += _run_sequential(plans, force, verbose)
    else:
        from drivetrain.train.seed_processes import run_parallel

        outcomes += run_parallel(plans, force, parallel, say)
    order = {s: i for i, s in enumerate(seeds)}
    return sorted(outcomes, key=lambda o: order[o.seed])


def _quiet(*args: object) -> None:
    del args


def _run_sequential(plans: list[SeedPlan], force: bool, verbose: bool) -> list[SeedOutcome]:
    from drivetrain.train.loop import train
    from drivetrain.train.seed_processes import one_line
    from drivetrain.train.session import return_name
    from drivetrain.train.signals import RunInterruptedError

    outcomes = []
    for i, plan in enumerate(plans):
        config = plan.config
        if not verbose:
            config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, progress_bar=False))
        else:
            print(f"seed {plan.seed} ({i + 1} of {len(plans)}): run directory {plan.folder}")
        try:
            result = train(config, plan.folder, resume=plan.resume, force=force, verbose=verbose)
        except RunInterruptedError:
            later = [p.seed for p in plans[i + 1 :]]
            print(
                f"seed {plan.seed} stopped; --resume continues it"
                + (f" and runs seeds {', '.join(map(str, later))}" if later else ""),
                file=sys.stderr,
            )
            raise
        except Exception as e:
            if verbose and not isinstance(e, (RuntimeError, ValueError, OSError)):
                traceback.print_exc()
            outcomes.append(SeedOutcome(plan.seed, plan.folder, "failed", one_line(e)))
            print(f"seed {plan.seed}: failed: {one_line(e)}", file=sys.stderr)
            continue
        ret = result.evaluation.mean_return
        outcomes.append(SeedOutcome(plan.seed, plan.folder, "done", mean_return=ret))
        if verbose:
            print(
                f"seed {plan.seed}: {return_name(config.loop.eval_epsilon)} {ret:.1f} ± {result.evaluation.std_return:.1f}"
            )
    return outcomes


def run_seeds_command(
    config: ExperimentConfig,
    run_dir: str | os.PathLike[str] | None,
    seeds: str | None,
    parallel: int | None = None,
    resume: bool = False,
    force: bool = False,
    verbose: bool = True,
    overrides: Sequence[tuple[str, str | None]] | None = None,
) -> int:
    """``drivetrain train PRESET --seeds SPEC``: runs the seeds, prints a summary, returns the exit status.

    ``run_dir`` None is :func:`default_run_dir`. ``overrides`` are the command line's
    ``(key, value)`` pairs (re-applied to a resumed seed's saved config); a ``seed`` among
    them contradicts ``--seeds``. A bad ``--seeds``/``--parallel`` prints one line and returns 2;
    RunDirError (a refused command) propagates, as for a single run.
    """
    try:
        if seeds is None:
            raise SeedsSpecError("--parallel needs --seeds (the seeds to run side by side)")
        if any(key in ("seed", "experiment.seed") for key, _ in overrides or ()):
            raise SeedsSpecError("--seed and --seeds contradict each other: pick one")
        chosen = parse_seeds(seeds)
        folder = default_run_dir(config) if run_dir is None else Path(run_dir)
        if verbose:
            print(f"seeds {', '.join(map(str, chosen))} into {folder}/{SEED_PREFIX}K")
        outcomes = run_seeds(
            config,
            folder,
            chosen,
            parallel=parallel,
            resume=resume,
            force=force,
            verbose=verbose,
            overrides=overrides,
        )
    except SeedsSpecError as e:
        print(f"drivetrain: error: {e}", file=sys.stderr)
        return 2
    from drivetrain.train.session import return_name

    failed = [o for o in outcomes if o.status == "failed"]
    stopped = [o for o in outcomes if o.status == "stopped"]
    for o in outcomes:
        if o.status in ("done", "skipped"):
            ret = "?" if o.mean_return is None else f"{o.mean_return:.1f}"
            print(
                f"seed {o.seed}: {o.status}, {return_name(config.loop.eval_epsilon)} {ret} ({o.run_dir / 'eval.json'})"
            )
    if stopped:
        print(
            f"drivetrain: stopped seeds {', '.join(str(o.seed) for o in stopped)}; "
            f"`drivetrain train ... --seeds {seeds} --run-dir {folder} --resume` continues them",
            file=sys.stderr,
        )
        return max(o.exit_status for o in stopped) or 128 + int(signal.SIGINT)
    if failed:
        print(
            f"drivetrain: error: {len(failed)} of {len(outcomes)} seeds failed: "
            + "; ".join(f"seed {o.seed}: {o.message}" for o in failed),
            file=sys.stderr,
        )
        return 1
    return 0
