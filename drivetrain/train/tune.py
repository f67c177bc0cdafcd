"""``drivetrain tune``: a hyperparameter search with Optuna, each trial a normal training run.

::

    drivetrain tune PRESET_OR_FILE --trials N [--param KEY=DIST ...] [--run-dir DIR]
                    [--metric final|best] [--seed S] [--quiet] [--key value ...]

The preset (a name or a preset file, :mod:`~drivetrain.train.preset_files`) with the
``--key value`` overrides is the base config; each trial draws the searched keys
(:mod:`~drivetrain.train.search_space`; without ``--param``, the agent's default space) and
trains it with :func:`~drivetrain.train.train` in ``RUN_DIR/trial-K``. The run directory
(default ``runs/tune-<preset>-<seed>``) holds::

    study.db     the Optuna study (SQLite): the same command again resumes it
    trial-K/     trial K's run directory (drivetrain eval/play/compare read it)
    best.yaml    the best complete trial's config as a preset file: drivetrain train RUN_DIR/best.yaml
    .lock        while a process tunes here

Protocol:

- The objective is the trial's final evaluation (``eval.json``'s mean return), or with
  ``--metric best`` the best of its periodic evaluations and the final one; maximized.
- Each periodic evaluation's mean return is reported to Optuna at its env step
  (``train(..., on_evaluation=...)``); a median pruner (``optuna.pruners.MedianPruner``,
  from the third trial on: :data:`STARTUP_TRIALS`) ends a trial whose evaluation is below the
  median of the earlier trials' at the same step. A pruned trial's run directory is
  complete (final evaluation, checkpoint, ``eval.json``). Without periodic evaluations
  (``loop.eval_interval 0``) nothing is pruned.
- Every trial trains with the config's seed; the TPE sampler is seeded with the seed plus the
  number of trials already in the study, so a study and its resumptions are reproducible.
- The command runs trials until N are finished (complete or pruned). A re-run resumes: the
  finished trials are kept, a trial that was running when its process died is marked failed
  and does not count. A failed trial (a diverged run, a sampled config that does not fit)
  does not count either; three failures in a row stop the command.
- The study remembers its base config, space and metric: a re-run with others is refused.
- ``best.yaml`` is rewritten after each trial that improves the best.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivetrain.train.fields import ConfigError

if TYPE_CHECKING:
    import optuna

    from drivetrain.train.config import ExperimentConfig
    from drivetrain.train.search_space import Param

__all__ = ["STARTUP_TRIALS", "TuneError", "TuneResult", "add_tune_parser", "cmd_tune", "trial_table", "tune"]

STARTUP_TRIALS = 2
"""Trials that finish before the median pruner prunes any."""
MAX_FAILURES_IN_A_ROW = 3
_STUDY = "drivetrain"
_USAGE = (
    "drivetrain tune PRESET_OR_FILE --trials N [--param KEY=DIST ...] [--run-dir DIR] "
    "[--metric final|best] [--seed S] [--quiet] [--key value ...]"
)


class TuneError(ConfigError):
    """A tuning study cannot run as asked (a refused resume, failing trials)."""


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` leaves: the Optuna study and the best trial's preset file (None if no
    trial completed)."""

    study: optuna.Study
    best_file: Path | None


def tune(
    config: ExperimentConfig,
    run_dir: str | Path,
    trials: int,
    space: list[Param],
    metric: str = "final",
    verbose: bool = True,
) -> TuneResult:
    """Runs (or resumes) the study in ``run_dir`` until ``trials`` trials are finished; see the module."""
    try:
        import optuna
    except ImportError:
        raise TuneError("drivetrain tune needs Optuna: pip install 'drivetrain[optuna]'") from None

    from drivetrain.train.rundir import RunDir

    _check(config, trials, space, metric)
    run_dir = Path(run_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with RunDir(run_dir).lock():
        db = run_dir / "study.db"
        if not db.exists() and any(run_dir.glob("trial-*")):
            raise TuneError(f"{run_dir} holds trial folders but no study.db: tune into another --run-dir")
        storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
        study = optuna.create_study(
            storage=storage, study_name=_STUDY, direction="maximize", load_if_exists=True
        )
        _check_same_study(study, config, space, metric, run_dir)
        _fail_stale(study, storage, verbose)
        study.sampler = optuna.samplers.TPESampler(seed=config.seed + len(study.trials))
        study.pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS)
        say = print if verbose else _quiet
        say(
            f"study {db}: {_finished(study)} of {trials} trials finished; searching {', '.join(map(str, space))}"
        )
        best_file = _optimize(study, config, run_dir, trials, space, metric, say)
    return TuneResult(study, best_file)


def _check(config: ExperimentConfig, trials: int, space: list[Param], metric: str) -> None:
    if trials < 1:
        raise TuneError(f"--trials must be at least 1, got {trials}")
    if metric not in ("final", "best"):
        raise TuneError(f"--metric must be 'final' or 'best', got {metric!r}")
    if config.execution.backend != "local":
        raise TuneError("drivetrain tune trains its trials locally: execution.backend must be 'local'")
    if not space:
        raise TuneError("the search space is empty: give --param KEY=DIST")
    from drivetrain.train.config import check_config

    check_config(config)  # the base config: ConfigError naming the field, before any trial


def _check_same_study(
    study: Any, config: ExperimentConfig, space: list[Param], metric: str, run_dir: Path
) -> None:
    from drivetrain.train import fields
    from drivetrain.train.config import config_from_dict, config_to_dict

    saved = study.user_attrs.get("drivetrain")
    spec: dict[str, Any] = {
        "config": config_to_dict(config),
        "space": [str(p) for p in space],
        "metric": metric,
    }
    if saved is None:
        study.set_user_attr("drivetrain", spec)
        return
    problems = []
    old = {f.key: f.value for f in fields.fields_of(config_from_dict(saved["config"]))}
    now = {f.key: f.value for f in fields.fields_of(config)}
    problems += [
        f"{k}: {old.get(k)!r} -> {now.get(k)!r}"
        for k in dict.fromkeys([*old, *now])
        if old.get(k) != now.get(k)
    ]
    if saved["config"].get("agent_kind") != spec["config"]["agent_kind"]:
        problems.append(f"agent: {saved['config'].get('agent_kind')} -> {spec['config']['agent_kind']}")
    if saved["space"] != spec["space"]:
        problems.append(f"--param: {' '.join(saved['space'])} -> {' '.join(spec['space'])}")
    if saved["metric"] != metric:
        problems.append(f"--metric: {saved['metric']} -> {metric}")
    if problems:
        raise TuneError(
            f"{run_dir} holds a study of another search: {'; '.join(problems)}. "
            "Resume it with the same command, or tune into another --run-dir"
        )


def _fail_stale(study: Any, storage: Any, verbose: bool) -> None:
    """Marks the trials left RUNNING by a process that died as failed (this process holds the lock)."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, "note", "its process ended while it ran")
        storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        if verbose:
            print(f"trial {trial.number} was running when its process ended: marked failed, not counted")


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _optimize(
    study: Any,
    config: ExperimentConfig,
    run_dir: Path,
    trials: int,
    space: list[Param],
    metric: str,
    say: Any,
) -> Path | None:
    import optuna

    from drivetrain.train.runs import RunSetupError, TrainingDivergedError
    from drivetrain.train.signals import RunInterruptedError

    errors: list[BaseException] = []
    objective = _objective(config, run_dir, space, metric, errors)
    best_file = run_dir / "best.yaml"
    failures = 0
    while _finished(study) < trials:
        try:
            study.optimize(objective, n_trials=1, catch=(ConfigError, RunSetupError, TrainingDivergedError))
        except _TrialInterruptedError as wrapped:  # the trial is failed; the study resumes with a new one
            e = wrapped.interrupted
            raise RunInterruptedError(
                e.signal,
                f"tuning stopped by {e.signal.name}: the same command resumes the study in {run_dir}",
            ) from e
        last = study.trials[-1]
        say(trial_table([last], header=False))
        if last.state == optuna.trial.TrialState.FAIL:
            failures += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise TuneError(
                    f"{failures} trials failed in a row; the last: {errors[-1] if errors else '?'}"
                )
            continue
        failures = 0
        if last.state == optuna.trial.TrialState.COMPLETE and study.best_trial.number == last.number:
            _write_best(study, config, run_dir, metric, best_file)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete and not best_file.exists():
        _write_best(study, config, run_dir, metric, best_file)
    say(trial_table(study.trials))
    if not complete:
        say("no trial completed (all were pruned or failed): no best.yaml")
        return None
    say(f"best: trial {study.best_trial.number}, {metric} return {study.best_value:.2f}; wrote {best_file}")
    return best_file


class _TrialInterruptedError(Exception):
    """A stop signal inside a trial, as an Exception: Optuna fails the trial and passes it on."""

    def __init__(self, interrupted: Any):
        super().__init__(str(interrupted))
        self.interrupted = interrupted


def _objective(
    config: ExperimentConfig, run_dir: Path, space: list[Param], metric: str, errors: list[BaseException]
) -> Any:
    import optuna

    from drivetrain.train import fields
    from drivetrain.train.config import config_to_dict
    from drivetrain.train.loop import train
    from drivetrain.train.signals import RunInterruptedError

    def objective(trial: optuna.Trial) -> float:
        try:
            trial_config = fields.apply_overrides(config, [p.suggest(trial) for p in space])
            trial.set_user_attr("config", config_to_dict(trial_config))
            evaluations: list[float] = []
            pruned_at: list[int] = []

            def on_evaluation(evaluation: Any, env_steps: int) -> bool:
                evaluations.append(evaluation.mean_return)
                trial.report(evaluation.mean_return, env_steps)
                if trial.should_prune():
                    pruned_at.append(env_steps)
                    return True
                return False

            quiet = dataclasses.replace(
                trial_config, loop=dataclasses.replace(trial_config.loop, progress_bar=False)
            )
            result = train(
                quiet, run_dir / f"trial-{trial.number}", verbose=False, on_evaluation=on_evaluation
            )
        except RunInterruptedError as e:  # an Exception for Optuna, so that it fails the trial
            raise _TrialInterruptedError(e) from e
        except Exception as e:
            errors.append(e)
            raise
        if pruned_at:
            raise optuna.TrialPruned(f"pruned at env step {pruned_at[0]}")
        final = result.evaluation.mean_return
        return final if metric == "final" else max([*evaluations, final])

    return objective


def _write_best(study: Any, config: ExperimentConfig, run_dir: Path, metric: str, path: Path) -> None:
    from drivetrain.train.config import config_from_dict
    from drivetrain.train.preset_files import write_preset_file

    best = study.best_trial
    params = ", ".join(f"{k}={_short(v)}" for k, v in best.params.items())
    doc = (
        f"The best trial of `drivetrain tune` in {run_dir}: trial {best.number}, {metric} return "
        f"{best.value:.2f}, with {params}.\n\nBase preset: {config.preset or config.env.name}."
    )
    best_config = dataclasses.replace(config_from_dict(best.user_attrs["config"]), preset=config.preset)
    write_preset_file(best_config, path, name=f"{config.preset or 'tuned'}-tuned", doc=doc)


def trial_table(trials: Sequence[Any], header: bool = True) -> str:
    """A table of trials: number, state, value, params (a trial per line)."""
    lines = [f"{'trial':>5}  {'state':<8}  {'value':>9}  params"] if header else []
    for t in trials:
        value = "" if t.value is None else f"{t.value:.2f}"
        params = " ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        lines.append(f"{t.number:>5}  {t.state.name.lower():<8}  {value:>9}  {params}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _quiet(message: str) -> None:
    del message


# ---------------------------------------------------------------------- the command
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drivetrain tune", usage=_USAGE, add_help=False, allow_abbrev=False)
    p.add_argument(
        "preset", nargs="?", default=None, help="preset name or preset file (default: cartpole-dqn)"
    )
    p.add_argument(
        "--trials", type=int, default=None, metavar="N", help="finished trials wanted in the study"
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=DIST",
        help="a searched key: loguniform(a,b), uniform(a,b), int(a,b) or choice(x,y,...); repeatable "
        "(default: the agent's default space)",
    )
    p.add_argument("--run-dir", default=None, help="the study's folder (default: runs/tune-<preset>-<seed>)")
    p.add_argument(
        "--metric",
        choices=("final", "best"),
        default="final",
        help="a trial's value: its final evaluation (default), or the best of all its evaluations",
    )
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.add_argument("-h", "--help", action="store_true", help="show this help and the preset's default space")
    return p


def add_tune_parser(sub: Any) -> None:
    """Lists ``tune`` among the ``drivetrain`` commands; :func:`cmd_tune` parses its arguments."""
    sub.add_parser("tune", help="search hyperparameters with Optuna (tune PRESET --help)", add_help=False)


def cmd_tune(argv: Sequence[str]) -> int:
    """``drivetrain tune``: runs the study, prints its trials, writes ``best.yaml``."""
    from drivetrain.cli import CommandError, _resolve_overrides, _split_train_args
    from drivetrain.train import presets
    from drivetrain.train.config import config_to_dict
    from drivetrain.train.preset_files import find_preset
    from drivetrain.train.search_space import default_space, parse_space

    own, overrides = _split_train_args(
        argv, flags={"--quiet", "-h", "--help"}, options={"--trials", "--param", "--run-dir", "--metric"}
    )
    parser = _parser()
    args = parser.parse_args(own)
    preset = find_preset(args.preset or presets.DEFAULT_PRESET)
    config = _resolve_overrides(preset.build(), overrides)
    kind = config_to_dict(config)["agent_kind"]
    space = parse_space(args.param, config) if args.param else default_space(config, kind)
    if args.help:
        print(parser.format_help())
        print(f"preset {preset.name}; searched: {' '.join(str(p) for p in space)}")
        return 0
    if args.trials is None:
        raise CommandError("--trials N is required: the number of finished trials wanted")
    if config.loop.eval_interval == 0 and not args.quiet:
        print("note: loop.eval_interval is 0: no periodic evaluations, so no trial is pruned")
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"tune-{preset.name}-{config.seed}"
    tune(config, run_dir, args.trials, space, args.metric, verbose=not args.quiet)
    return 0
