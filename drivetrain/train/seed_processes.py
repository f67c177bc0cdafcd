"""The processes of ``drivetrain train PRESET --seeds SPEC --parallel N`` (see :mod:`drivetrain.train.seeds`).

:func:`run_parallel` starts up to N children at a time, ``python -m drivetrain.train.seed_processes
--run-dir RUN_DIR/seed-K [--resume | --force]`` with the seed's config as JSON (``config_to_dict``)
on stdin, each in its own session so that a terminal's Ctrl-C reaches only the parent, which
passes SIGINT or SIGTERM on once to every running child (:class:`_Forward`) and starts no
more. A child trains quietly, its output kept in a temporary file; its exit status says how
it ended: 0 done, 2 a one-line error (its last line, ``drivetrain: error: ...``), 128 + the
signal when it stopped with a checkpoint, anything else an unexpected error (a traceback,
whose last line is reported).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any

from drivetrain.train.seeds import SeedOutcome, SeedPlan

__all__ = ["final_return", "main", "one_line", "run_parallel"]


def final_return(folder: Path) -> float | None:
    """``mean_return`` of ``folder/eval.json``; None when it cannot be read."""
    try:
        return float(json.loads((folder / "eval.json").read_text())["mean_return"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def one_line(e: BaseException) -> str:
    """The error as one line: its message, after its type name unless it is an expected error."""
    text = " ".join(str(e).split())
    return (
        text if isinstance(e, (RuntimeError, ValueError, OSError)) and text else f"{type(e).__name__}: {text}"
    )


class _Forward:
    """While entered: SIGINT and SIGTERM are passed once to every running child and stop new starts."""

    def __init__(self, children: dict[int, subprocess.Popen[bytes]]):
        self.children = children
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        if signum == signal.SIGHUP:  # the terminal went away: the seeds stop as on SIGTERM
            signum = signal.SIGTERM
        self.received = signum
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def __enter__(self) -> _Forward:
        if _main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def run_parallel(
    plans: list[SeedPlan], force: bool, parallel: int, say: Callable[[str], None]
) -> list[SeedOutcome]:
    """Runs ``plans`` in up to ``parallel`` child processes at a time; one outcome per plan.

    ``force`` is passed to the seeds that do not resume; ``say`` reports starts and ends.
    An error in the parent itself stops the children (SIGTERM, each leaves a checkpoint).
    """
    from drivetrain.train.config import config_to_dict

    pending = list(plans)
    running: dict[int, subprocess.Popen[bytes]] = {}
    logs: dict[int, IO[bytes]] = {}
    outcomes: list[SeedOutcome] = []
    by_seed = {p.seed: p for p in plans}
    with _Forward(running) as forward, _stopped_on_error(running):
        while pending or running:
            while pending and len(running) < parallel and forward.received is None:
                plan = pending.pop(0)
                log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _outcome
                argv = [
                    sys.executable,
                    "-m",
                    "drivetrain.train.seed_processes",
                    "--run-dir",
                    str(plan.folder),
                ]
                argv += ["--resume"] if plan.resume else ["--force"] if force else []
                child = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
                assert child.stdin is not None
                child.stdin.write(json.dumps(config_to_dict(plan.config)).encode())
                child.stdin.close()
                running[plan.seed], logs[plan.seed] = child, log
                say(f"seed {plan.seed}: started in {plan.folder} (process {child.pid})")
            if forward.received is not None:
                for plan in pending:
                    outcomes.append(
                        SeedOutcome(
                            plan.seed, plan.folder, "stopped", "not started", None, 128 + forward.received
                        )
                    )
                pending.clear()
            time.sleep(0.1)
            for s, child in list(running.items()):
                if child.poll() is None:
                    continue
                del running[s]
                outcomes.append(_outcome(by_seed[s], child.returncode, logs.pop(s)))
                o = outcomes[-1]
                say(
                    f"seed {s}: {o.status}" + (f" (return {o.mean_return:.1f})" if o.status == "done" else "")
                )
                if o.status == "failed":
                    print(f"seed {s}: failed: {o.message}", file=sys.stderr)
    return outcomes


@contextlib.contextmanager
def _stopped_on_error(running: dict[int, subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for child in running.values():
            if child.poll() is None:
                child.terminate()
        for child in running.values():
            child.wait()
        raise


def _outcome(plan: SeedPlan, status: int, log: IO[bytes]) -> SeedOutcome:
    log.seek(0)
    lines = [line.strip() for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    log.close()
    last = lines[-1] if lines else f"exit status {status}"
    if status == 0:
        return SeedOutcome(plan.seed, plan.folder, "done", mean_return=final_return(plan.folder))
    if status in (128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM):
        return SeedOutcome(plan.seed, plan.folder, "stopped", last, exit_status=128 + abs(status) % 128)
    return SeedOutcome(
        plan.seed, plan.folder, "failed", last.removeprefix("drivetrain: error: "), None, status
    )


def main(argv: Sequence[str] | None = None) -> int:
    """One seed's run in its own process: the config as JSON on stdin (see the module docstring)."""
    early: list[int] = []  # a stop signal before the run's own handlers are in place
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: early.append(signum))
    _end_with_the_parent()
    p = argparse.ArgumentParser(prog="python -m drivetrain.train.seed_processes", description=main.__doc__)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    from drivetrain.train.config import config_from_dict
    from drivetrain.train.loop import train
    from drivetrain.train.session import return_name
    from drivetrain.train.signals import RunInterruptedError

    config = config_from_dict(json.loads(sys.stdin.read()))
    config = dataclasses.replace(config, loop=dataclasses.replace(config.loop, progress_bar=False))

    def stop_now(signum: int, frame: Any) -> None:  # until the run's own handlers: nothing written yet
        raise RunInterruptedError(signum, f"stopped by {signal.Signals(signum).name} before the run started")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_now)
    if early:  # read after stop_now took over, so that no signal falls between the two
        print(f"drivetrain: stopped by {signal.Signals(early[0]).name} before the run started", flush=True)
        return 128 + early[0]
    try:
        result = train(config, args.run_dir, resume=args.resume, force=args.force, verbose=True)
    except RunInterruptedError as e:
        print(f"drivetrain: {e}", flush=True)
        return e.exit_status
    except (RuntimeError, ValueError, OSError) as e:
        print(f"drivetrain: error: {one_line(e)}", flush=True)
        return 2
    finally:  # a signal the parent forwards now finds a seed that is finishing: it finishes
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    print(f"done: {return_name(config.loop.eval_epsilon)} {result.evaluation.mean_return:.1f}", flush=True)
    return 0


def _end_with_the_parent() -> None:
    """On Linux, SIGTERM when the parent process dies (a SIGKILL), so that no seed trains on alone."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
