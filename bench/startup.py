"""Fixed costs of the command line: wall time of commands that do not train.

    python bench/startup.py [--runs 11]

Each command runs ``--runs`` times as a fresh subprocess, the commands interleaved round
by round so that a busy moment of the machine hits all of them; the table gives the median
and the fastest run of each, next to the floor measured in the same rounds (``python -c
pass``, and ``import numpy``, which every command that reads a config pays) and the
modules each command imported that a command which trains would need (torch, matplotlib,
TensorBoard, Gymnasium). The target is ``drivetrain --help`` and ``drivetrain presets``
under 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "matplotlib", "tensorboard", "gymnasium", "ale_py", "ray")

COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import numpy'": ["-c", "import numpy"],
    "python -c 'import drivetrain'": ["-c", "import drivetrain"],
    "drivetrain --help": ["-m", "drivetrain", "--help"],
    "drivetrain presets": ["-m", "drivetrain", "presets"],
    "drivetrain train --help": ["-m", "drivetrain", "train", "--help"],
    "drivetrain train pendulum-sac --help": ["-m", "drivetrain", "train", "pendulum-sac", "--help"],
}

_PROBE = """
import contextlib, io, json, sys
import drivetrain.cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        drivetrain.cli.main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(%s))))
"""


def _time(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _heavy(args: list[str]) -> str:
    if args[:2] != ["-m", "drivetrain"]:
        return ""
    code = _PROBE % json.dumps(HEAVY)
    out = subprocess.run([sys.executable, "-c", code, *args[2:]], capture_output=True, text=True, check=True)
    return ", ".join(json.loads(out.stdout.splitlines()[-1])) or "none"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs of each command (median reported)")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # one unmeasured run each: the file cache
        _time(cmd)
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            times[name].append(_time(cmd))
    floor = statistics.median(times["python -c pass"])
    print(f"python {sys.version.split()[0]}, {args.runs} runs each, interleaved")
    print(f"{'command':<40} {'median s':>9} {'min s':>7} {'- floor s':>10}  heavy modules imported")
    for name, cmd in COMMANDS.items():
        median = statistics.median(times[name])
        print(f"{name:<40} {median:>9.3f} {min(times[name]):>7.3f} {median - floor:>10.3f}  {_heavy(cmd)}")


if __name__ == "__main__":
    main()
