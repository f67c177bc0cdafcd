"""Breakout DQN's speed on a GPU: agent steps per second including the updates.

Runs the ``breakout-dqn-nature`` preset (Nature CNN, one update of 32 windows per 4 agent
steps, 1M-transition replay) through ``drivetrain.train`` with the network on ``--device``
(CUDA when there is one), the games in EnvPool on all the machine's cores (``--num-envs``
defaults to ``os.cpu_count()``) and the compiled update, for ``--steps`` agent steps after a
random warm-up of ``--warmup`` steps, or until ``--seconds`` have passed (the run then stops
as on SIGINT). The rate is read from the run's ``progress.csv`` between its first row with
updates (the warm-up and the compilation behind it) and its last, with the hours a
10M-step run would take at that rate against the issue's target (10M steps in 1 hour, ≥ 2,778
agent steps/s; CleanRL's DQN takes about 6 hours). ``--execution threads`` steps the games in a
collector thread beside the learner. It runs on a CPU too, at any size (a dry run of the
script). Usage (from the repository root)::

    python bench/breakout_gpu.py [--steps 200000] [--warmup 20000] [--seconds S] [--num-envs N]
                                 [--device cuda] [--backend envpool] [--execution local|threads]
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import tempfile
import threading
import time
from typing import Any

import torch

from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.logger import read_progress
from drivetrain.train.signals import RunInterruptedError

TARGET = 10_000_000 / 3600  # agent steps per second: 10M in an hour


def config_for(args: argparse.Namespace) -> Any:
    preset = get_preset("breakout-dqn-nature").build()
    # A collect phase is a whole number of batched steps: the period grows to a multiple of the
    # environments and the updates per phase with it (one update per 4 agent steps, as the preset).
    period = math.lcm(preset.loop.update_period, args.num_envs)
    gradient_steps = preset.loop.gradient_steps * period // preset.loop.update_period
    overrides: list[tuple[str, object]] = [
        ("loop.update_period", period),
        ("loop.gradient_steps", gradient_steps),
        ("agent.device", args.device),
        ("agent.compile", args.compile),
        ("env.backend", args.backend),
        ("env.num_envs", args.num_envs),
        ("loop.total_env_steps", args.warmup + args.steps),
        ("loop.learning_starts", args.warmup),
        ("loop.log_interval", args.log_interval or max(args.steps // 10, period)),
        ("loop.eval_interval", 0),
        ("loop.final_eval_episodes", 1),
        ("loop.checkpoint_interval", 0),
        ("loop.checkpoint_replay", False),  # a stop on --seconds writes a checkpoint: not the 1M replay
        ("loop.progress_bar", False),
        ("loop.tensorboard", False),
        ("loop.torch_threads", args.torch_threads),
        ("env.atari.max_episode_steps", 4_500),
    ]
    if args.capacity is not None:
        overrides.append(("replay.capacity", args.capacity))
    if args.execution == "threads":
        overrides += [("execution.backend", "threads"), ("execution.collectors", 1)]
    return apply_overrides(preset, overrides)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=200_000, help="agent steps measured after the warm-up")
    parser.add_argument("--warmup", type=int, default=20_000, help="random agent steps before learning")
    parser.add_argument("--num-envs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", default="envpool", choices=["envpool", "gymnasium", "sync"])
    parser.add_argument("--execution", default="local", choices=["local", "threads"])
    parser.add_argument("--compile", default="true", choices=["true", "false"])
    parser.add_argument(
        "--capacity", type=int, default=None, help="replay capacity (the preset's 1M if unset)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop the run (as SIGINT does) after this long; rows so far count",
    )
    parser.add_argument(
        "--log-interval", type=int, default=None, help="agent steps between rows (default steps / 10)"
    )
    parser.add_argument("--torch-threads", type=int, default=None, help="the preset's choice if unset")
    args = parser.parse_args()
    args.compile = args.compile == "true"
    config = config_for(args)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"breakout-dqn-nature on {args.device} ({name}), {args.num_envs} envs ({args.backend}, "
        f"{os.cpu_count()} cores), execution {args.execution}, compile {args.compile}: "
        f"{args.warmup} warm-up + {args.steps} agent steps",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        timer = threading.Timer(args.seconds or 0.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.daemon = True
        if args.seconds is not None:
            timer.start()
        try:
            train(config, run_dir, verbose=False)
        except RunInterruptedError:
            print(f"  stopped after {args.seconds:.0f} s (--seconds)")
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        rows = [r for r in read_progress(os.path.join(run_dir, "progress.csv")) if "wall_seconds" in r]
    trained = [r for r in rows if "loss" in r]  # rows written after updates (and their compilation)
    if len(trained) < 2:
        raise SystemExit(
            f"too few rows with updates in progress.csv ({len(trained)}) to measure: raise --steps"
        )
    first, last = trained[0], trained[-1]
    rate = (last["env_steps"] - first["env_steps"]) / (last["wall_seconds"] - first["wall_seconds"])
    updates = rate * config.loop.gradient_steps / config.loop.update_period
    print(f"  the run: {wall:.1f} s, {int(last['env_steps'])} agent steps logged")
    print(
        f"  steady state (rows {int(first['env_steps'])}..{int(last['env_steps'])}): {rate:,.0f} agent steps/s "
        f"including {updates:,.0f} updates/s"
    )
    print(
        f"  10M agent steps: {10_000_000 / rate / 3600:.2f} h "
        f"({rate / TARGET:.2f}x the target of {TARGET:,.0f} steps/s, 10M in 1 h)"
    )


if __name__ == "__main__":
    main()
