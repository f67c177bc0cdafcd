"""PyTorch intra-op threads against the speed of the presets' networks.

    python bench/threads.py [--threads 1 2] [--presets cartpole-dqn pendulum-sac breakout-dqn-nature]
                            [--rounds 7] [--seconds 1.0] [--run-steps 0]

For each preset the run's own parts are built (``build_experiment``: the preset's network,
optimizer, loss and batch size; the replay made small) and its replay filled with a random
policy; then, for every thread count in turn, round after round (interleaved, so that load
from other processes hits every setting alike), the script times

- ``agent.train(batch)`` on batches sampled beforehand (updates/s: the learner's work), and
- ``agent.policy.action(time_step)`` (the greedy policy: the network's forward pass) on
  the preset's batch of environments (actions/s: the collect driver's inference),

each for about ``--seconds`` per round, and prints the median over rounds and the speed
relative to one thread. With ``--run-steps N`` it also times whole training runs of the
preset (``train``: ``N`` env steps after a warm-up of ``N // 4``; no evaluation, checkpoint
or TensorBoard) at each thread count, interleaved, and reports the env steps/s of the
collect-and-train phase: what the thread count does to a run, where the collect driver's
inference, the replay's sampling thread and the updates share the cores. The default of ``loop.torch_threads`` follows from these figures
(see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

from drivetrain.core.drivers import StepDriver
from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.experiment import Experiment, build_experiment

DEFAULT_PRESETS = ("cartpole-dqn", "pendulum-sac", "breakout-dqn-nature")
FILL_STEPS = 2_000
BATCHES = 16


def build(preset: str) -> tuple[Experiment, list[Any], Any]:
    """The preset's parts, ``BATCHES`` sampled training batches and a time step to act on."""
    config = apply_overrides(get_preset(preset).build(), [("agent.compile", False)])  # eager updates
    config = dataclasses.replace(
        config,
        replay=dataclasses.replace(config.replay, capacity=max(FILL_STEPS, 5_000), prefetch=0),
        loop=dataclasses.replace(config.loop, progress_bar=False, tensorboard=False),
    )
    exp = build_experiment(config)
    assert exp.warmup_policy is not None, f"{preset}: the bench needs a replay-based agent"
    time_step, _ = StepDriver(exp.env, exp.warmup_policy, [exp.source.observe], num_steps=FILL_STEPS).run()
    batches = []
    while len(batches) < BATCHES:
        batches.extend(b.experience for b in exp.source.batches(exp.update_period))
    return exp, batches[:BATCHES], time_step


def rate(work: Callable[[int], None], seconds: float) -> float:
    """Calls per second of ``work(i)``, timed for about ``seconds`` after two untimed calls."""
    work(0)
    work(1)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls < 3:
        work(calls)
        calls += 1
    return calls / elapsed


def measure(preset: str, threads: list[int], rounds: int, seconds: float) -> dict[int, tuple[float, float]]:
    """``{threads: (median updates/s, median actions/s)}``."""
    exp, batches, time_step = build(preset)
    agent, policy = exp.agent, exp.agent.policy
    state = policy.get_initial_state(exp.env.batch_size)

    def train(i: int) -> None:
        agent.train(batches[i % len(batches)])

    def act(i: int) -> None:
        del i
        policy.action(time_step, state)

    updates: dict[int, list[float]] = {n: [] for n in threads}
    actions: dict[int, list[float]] = {n: [] for n in threads}
    before = torch.get_num_threads()
    try:
        for _ in range(rounds):
            for n in threads:
                torch.set_num_threads(n)
                updates[n].append(rate(train, seconds))
                actions[n].append(rate(act, seconds / 4))
    finally:
        torch.set_num_threads(before)
        exp.close()
    return {n: (statistics.median(updates[n]), statistics.median(actions[n])) for n in threads}


def run_rate(preset: str, threads: int, steps: int) -> float:
    """Env steps/s of the collect-and-train phase of a ``steps``-step run at ``threads`` threads."""
    warmup = steps // 4
    config = apply_overrides(
        get_preset(preset).build(),
        [
            ("total_env_steps", str(warmup + steps)),
            ("learning_starts", str(warmup)),
            ("eval_interval", "0"),
            ("stop_at_return", "none"),
            ("final_eval_episodes", "1"),
            ("checkpoint_interval", "0"),
            ("tensorboard", "false"),
            ("progress_bar", "false"),
            ("replay.capacity", str(max(warmup + steps, 5_000))),
            ("agent.compile", "false"),
            ("torch_threads", str(threads)),
        ],
    )
    with tempfile.TemporaryDirectory() as folder:
        result = train(config, os.path.join(folder, "run"), verbose=False)
    return steps / (result.collect_seconds + result.train_seconds)


def measure_runs(preset: str, threads: list[int], rounds: int, steps: int) -> dict[int, float]:
    """``{threads: median env steps/s}`` of whole runs, interleaved."""
    rates: dict[int, list[float]] = {n: [] for n in threads}
    for _ in range(rounds):
        for n in threads:
            rates[n].append(run_rate(preset, n, steps))
    return {n: statistics.median(r) for n, r in rates.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to compare")
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--rounds", type=int, default=7, help="rounds (median reported)")
    parser.add_argument("--seconds", type=float, default=1.0, help="agent.train timing per round, setting")
    parser.add_argument(
        "--run-steps", type=int, default=0, help="also time whole runs of this many env steps"
    )
    parser.add_argument("--run-rounds", type=int, default=3, help="rounds of whole runs (median reported)")
    args = parser.parse_args(argv)
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, default threads {torch.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.2f}; {args.rounds} rounds, medians"
    )
    print(f"{'preset':<22} {'threads':>7} {'updates/s':>10} {'x 1st':>6} {'actions/s':>10} {'x 1st':>6}")
    for preset in args.presets:
        result = measure(preset, args.threads, args.rounds, args.seconds)
        first = result[args.threads[0]]
        for n, (u, a) in result.items():
            print(f"{preset:<22} {n:>7} {u:>10.1f} {u / first[0]:>6.2f} {a:>10.1f} {a / first[1]:>6.2f}")
    if args.run_steps:
        print(f"whole runs: {args.run_steps} env steps after a warm-up, {args.run_rounds} rounds, medians")
        print(f"{'preset':<22} {'threads':>7} {'steps/s':>10} {'x 1st':>6}")
        for preset in args.presets:
            rates = measure_runs(preset, args.threads, args.run_rounds, args.run_steps)
            for n, r in rates.items():
                print(f"{preset:<22} {n:>7} {r:>10.1f} {r / rates[args.threads[0]]:>6.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
