"""The ``drivetrain`` command line (also ``python -m drivetrain``).

::

    drivetrain train [PRESET | FILE.yaml] [--seed N] [--run-dir DIR] [--resume | --force] [--key value ...]
    drivetrain eval RUN_DIR [--episodes N] [--seed N] [--json]
    drivetrain play RUN_DIR --video FILE [--episodes N] [--fps N]
    drivetrain presets [--show PRESET [--format yaml|json]]
    drivetrain export RUN_DIR FILE
    drivetrain tune PRESET --trials N [--param KEY=DIST ...] [--run-dir DIR] [--key value ...]

``train PRESET --help`` lists every config field of the preset with its type, value and
docstring; any of them can be set with ``--section.field value`` (or ``--field value``
when that name is unique).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_TRAIN_USAGE = (
    "drivetrain train [PRESET] [--seed N | --seeds SPEC [--parallel N]] [--run-dir DIR] [--resume | --force] "
    "[--quiet | --verbose] [--key value ...]"
)
_TRAIN_FLAGS = {"--resume", "--force", "--quiet", "--verbose", "-h", "--help"}
_TRAIN_OPTIONS = {"--run-dir", "--seeds", "--parallel"}


class CommandError(Exception):
    """A user error: printed without a traceback, exit status 2."""


# ---------------------------------------------------------------------- train
def _split_train_args(
    argv: Sequence[str], flags: set[str] = _TRAIN_FLAGS, options: set[str] = _TRAIN_OPTIONS
) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Separates the command's own arguments (``flags``, and ``options`` with a value) from
    ``--key value`` config overrides.

    A value is the next token unless that starts with ``--`` (``--reward_clip -1``); without
    one the key is a bare flag (value None: true, for a bool field). A list value may be one
    token (``--fc_layers 64,64``) or several: the tokens after the first that are numbers or
    tuple/list literals join it, comma-separated (``--fc_layers 64 64`` is ``64,64``), and
    a field that takes one value then refuses the list by its type.
    """
    own: list[str] = []
    overrides: list[tuple[str, str | None]] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, value = token.partition("=")
        if name in flags or name in options:
            own.append(token)
            if name in options and not eq and i + 1 < len(argv):
                own.append(argv[i + 1])
                i += 1
        elif token.startswith("--") and len(token) > 2:
            if eq:
                overrides.append((name[2:], value))
            elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                items = [argv[i + 1]]
                i += 1
                while i + 1 < len(argv) and _is_list_item(argv[i + 1]):
                    items.append(argv[i + 1])
                    i += 1
                overrides.append((name[2:], ",".join(items)))
            else:
                overrides.append((name[2:], None))  # a bare flag: true, for a bool field
        else:
            own.append(token)
        i += 1
    return own, overrides


def _is_list_item(token: str) -> bool:
    """A further item of a list value: a number (``64``, ``-1``, ``1e-3``) or a tuple/list literal."""
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return False
    return isinstance(value, (int, float, tuple, list)) and not isinstance(value, bool)


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drivetrain train", usage=_TRAIN_USAGE, add_help=False, allow_abbrev=False
    )
    p.add_argument(
        "preset",
        nargs="?",
        default=None,
        help="preset name (default: cartpole-dqn; see `drivetrain presets`) or preset file (.yaml/.yml/.json)",
    )
    p.add_argument("--run-dir", default=None, help="run directory (default: runs/<preset>-<seed>)")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --run-dir from its latest checkpoint"
    )
    p.add_argument("--force", action="store_true", help="delete the run already in --run-dir and start over")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no messages: only the result line (one per seed with --seeds)",
    )
    p.add_argument(
        "--verbose", action="store_true", help="print the whole config before training (else one line)"
    )
    p.add_argument("-h", "--help", action="store_true", help="show this help with the preset's config fields")
    from drivetrain.train.seeds import add_seeds_arguments

    add_seeds_arguments(p)
    return p


def _resolve_overrides(config: Any, overrides: list[tuple[str, str | None]]) -> Any:
    from drivetrain.train import fields

    pairs: list[tuple[str, str]] = []
    for key, value in overrides:
        if value is None:
            full = fields.resolve_key(config, key)
            tp = {f.key: f.type for f in fields.fields_of(config)}[full]
            if tp is not bool:
                raise CommandError(f"--{key} needs a value (--{full} VALUE)")
            value = "true"
        pairs.append((key, value))
    try:
        return fields.apply_overrides(config, pairs)
    except ValueError as e:  # ConfigError, or a config's own check (e.g. DQNConfig.__post_init__)
        raise CommandError(str(e)) from None


def _saved_seed_config(folder: Path) -> Any:
    """The saved config of the first seed of a ``--seeds`` folder; None when it has none."""
    from drivetrain.train import load_config
    from drivetrain.train.seeds import SEED_PREFIX

    saved = sorted(folder.glob(f"{SEED_PREFIX}*/config.json"))
    return load_config(saved[0]) if saved else None


def _resumed_config(args: argparse.Namespace, preset: Any, run_dir: Path, overrides: list[Any]) -> Any:
    """The saved config of the run in ``run_dir`` with ``overrides``; CommandError when ``args``
    named another preset, ConfigError for a field that cannot change on resume."""
    from drivetrain.train import load_config
    from drivetrain.train.config_resume import check_resume
    from drivetrain.train.rundir import RunDir

    saved = load_config(RunDir(run_dir).config)
    if args.preset and saved.preset and saved.preset != preset.name:
        raise CommandError(f"{run_dir} holds a run of preset {saved.preset!r}, not {preset.name!r}")
    config = _resolve_overrides(saved, overrides)
    for change in check_resume(saved, config, run_dir):  # ConfigError for a fixed field
        print(f"config change on resume: {change}")
    return config


def cmd_train(argv: Sequence[str]) -> int:
    from drivetrain.train import presets
    from drivetrain.train.preset_files import find_preset

    own, overrides = _split_train_args(argv)
    parser = _train_parser()
    args = parser.parse_args(own)
    preset = find_preset(args.preset or presets.DEFAULT_PRESET)  # a name, or a preset file
    if args.help:
        from drivetrain.train.console import config_help, plain_text

        print(parser.format_help())
        print(f"preset {preset.name}: {plain_text(preset.doc)}\n")
        print(config_help(preset.build()))
        return 0
    if args.resume and args.force:
        raise CommandError("--resume and --force contradict each other: pick one")
    if args.quiet and args.verbose:
        raise CommandError("--quiet and --verbose contradict each other: pick one")
    from drivetrain.train import train
    from drivetrain.train.rundir import RunDir

    seeds = args.seeds is not None or args.parallel is not None
    given = Path(args.run_dir) if args.run_dir else None
    if not seeds and args.resume and given is not None and RunDir(given).config.is_file():
        # the overrides apply to the run's own config, whichever preset it came from
        run_dir, config = given, _resumed_config(args, preset, given, overrides)
    else:
        base = preset.build()
        if seeds and args.resume and not args.preset and given is not None:
            base = _saved_seed_config(given) or base  # the seeds' own kind of run, not the default preset
        config = _resolve_overrides(base, overrides)
        if seeds:
            from drivetrain.train.seeds import run_seeds_command

            return run_seeds_command(
                config,
                args.run_dir,
                args.seeds,
                args.parallel,
                args.resume,
                args.force,
                not args.quiet,
                overrides,
            )
        run_dir = given or Path("runs") / f"{preset.name}-{config.seed}"
        if args.resume and RunDir(run_dir).config.is_file():
            config = _resumed_config(args, preset, run_dir, overrides)
    if args.quiet:
        config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, progress_bar=False))
    else:
        from drivetrain.train.console import config_lines, config_summary

        if args.verbose:
            print("\n".join(config_lines(config)))
        hint = "" if args.verbose else " (--verbose prints the config)"
        print(config_summary(config, run_dir) + hint, flush=True)
    result = train(config, run_dir, resume=args.resume, force=args.force, verbose=not args.quiet)
    from drivetrain.train.session import return_name

    ev = result.evaluation
    print(
        f"done: {result.env_steps} env steps, {result.train_steps} train steps in {result.wall_seconds:.0f} s; "
        f"{return_name(config.loop.eval_epsilon)} {ev.mean_return:.1f} ± {ev.std_return:.1f} over {ev.episodes} episodes "
        f"({run_dir / 'eval.json'})"
    )
    return 0


# ---------------------------------------------------------------------- presets
def cmd_presets(args: argparse.Namespace) -> int:
    from drivetrain.train import presets

    if args.show:
        from drivetrain.train.preset_files import show_preset

        print(show_preset(args.show, args.format), end="")
        return 0

    from drivetrain.train.console import plain_text
    from drivetrain.train.extras import BASE_EXTRA, required_extras

    width = max(len(p.name) for p in presets.presets())
    for p in presets.presets():
        default = " (default)" if p.name == presets.DEFAULT_PRESET else ""
        extras = [e for e in required_extras(p.build()) if e != BASE_EXTRA]
        needs = f" [needs drivetrain[{','.join(extras)}]]" if extras else ""
        print(f"{p.name:<{width}}  {plain_text(p.summary)}{default}{needs}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drivetrain", description="Train, evaluate and watch reinforcement-learning agents."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser(
        "train", help="train an agent from a preset (train PRESET --help lists its config)", add_help=False
    )
    from drivetrain.train.run_commands import add_run_commands

    add_run_commands(sub)  # eval, play, export
    from drivetrain.train.check_command import add_check_env_parser

    add_check_env_parser(sub)
    p = sub.add_parser(
        "presets", help="list the presets, one line each, with the extras beyond [torch] they need"
    )
    p.add_argument("--show", metavar="PRESET", help="print this preset (or preset file) as a preset file")
    p.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="--show's format (default: yaml)"
    )
    p.set_defaults(func=cmd_presets)
    from drivetrain.train.compare import add_compare_parser

    add_compare_parser(sub)
    from drivetrain.train.tune import add_tune_parser

    add_tune_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``drivetrain`` command; returns the exit status.

    Errors a user can act on (a bad key, a locked or refused run directory, a damaged
    checkpoint, a part that cannot be built, a full disk, a diverged run) are one line,
    ``drivetrain: error: ...``, with status 2; a run stopped by SIGINT or SIGTERM says
    where its checkpoint is and exits with 130 or 143; output into a closed pipe
    (``drivetrain presets | head -1``) ends quietly.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            status = _dispatch(argv)
            sys.stdout.flush()  # a closed pipe fails here, inside the try
            return status
    except _user_errors() as e:
        if isinstance(e, BrokenPipeError):
            return _closed_pipe()
        print(f"drivetrain: error: {e}", file=sys.stderr)
        return 2
    except _interrupted() as e:
        print(f"drivetrain: {e}", file=sys.stderr)
        return int(getattr(e, "exit_status", 130))
    except KeyboardInterrupt:
        print(
            "drivetrain: interrupted; `drivetrain train ... --resume` continues from the last checkpoint",
            file=sys.stderr,
        )
        return 130


# Error classes by module: a class whose module was never imported cannot have been raised,
# so the commands import only what they use (``drivetrain --help`` imports no PyTorch).
_USER_ERRORS = {
    "drivetrain.train.checkpoint": ("CheckpointError",),
    "drivetrain.train.evaluation": ("EvaluationError",),
    "drivetrain.train.fields": ("ConfigError",),
    "drivetrain.train.rundir": ("RunDirError",),
    "drivetrain.train.runs": ("RunSetupError", "TrainingDivergedError"),
}


def _raised_types(table: dict[str, tuple[str, ...]]) -> tuple[type[BaseException], ...]:
    return tuple(
        getattr(sys.modules[module], name)
        for module, names in table.items()
        if module in sys.modules
        for name in names
    )


def _user_errors() -> tuple[type[BaseException], ...]:
    """What ``main`` reports as one line with status 2 (evaluated when an error propagates)."""
    return (CommandError, OSError, *_raised_types(_USER_ERRORS))


def _interrupted() -> tuple[type[BaseException], ...]:
    """A run stopped by SIGINT or SIGTERM (status 130 or 143)."""
    return _raised_types({"drivetrain.train.signals": ("RunInterruptedError",)})


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "train":
        return cmd_train(argv[1:])
    if argv and argv[0] == "tune":
        from drivetrain.train.tune import cmd_tune

        return cmd_tune(argv[1:])
    args = _parser().parse_args(argv)
    return int(args.func(args))


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: Any = None,
) -> None:
    print(f"drivetrain: warning: {message}", file=sys.stderr if file is None else file)


def _closed_pipe() -> int:
    """The reader of stdout went away: send what is left to /dev/null so that exit does not fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 1


if __name__ == "__main__":
    sys.exit(main())
