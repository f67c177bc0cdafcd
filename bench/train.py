"""The whole ``cartpole-dqn`` training run: env steps/s and where the time goes.

Runs ``drivetrain.train.train`` on the ``cartpole-dqn`` preset for the whole budget
(progress bar off, no periodic evaluation and so no early stop, checkpoints and logs as
usual) and reports its wall time split into
warm-up, collection (the collect driver: policy, environment, replay, metrics), training
(sampling + ``agent.train``), final evaluation and the rest (logging, checkpoints, plots,
setup), in wall-clock seconds, and the CPU seconds of the whole run (the machine may be
shared: CPU time is what the run itself used). In the same run, a minimal hand-written loop does the same work (same budgets,
schedule, network, optimizer and loss; a NumPy ring buffer, one-step transitions; no
logging, checkpoints or evaluation) as the baseline of the collect + train time. After an
untimed warm-up run of each (2,000 env steps: lazy imports such as ``torch._dynamo``, which
``torch.optim.Adam`` loads, and first calls, which either side would otherwise pay for the
other), the two alternate ``--repeats`` times (the order flips every repeat) and the
median is reported.

    python bench/train.py [--steps 50000] [--repeats 1] [--threads 1] [--no-baseline] [--compile]
                          [--baseline-fused]

drivetrain's Adam is fused (one kernel for all parameters, ``agents.optimizers.adam``); the
hand-written loop uses ``torch.optim.Adam`` as CleanRL writes it, unless ``--baseline-fused``
(then the comparison shows what the rest of the library costs).

``--compile`` runs drivetrain with ``agent.compile=True`` (each update one compiled
function). The untimed warm-up run then compiles it once, and the timed runs find the
compiled kernels in torch's on-disk cache and only trace again: the first run on a new
machine pays the full compilation once (bench/train_update.py reports it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import gymnasium
import numpy as np
import torch
from torch import nn
from torch.nn import functional

from drivetrain.train import apply_overrides, get_preset, train


def drivetrain_run(steps: int, seed: int, threads: int, compile: bool = False) -> dict[str, float]:
    config = get_preset("cartpole-dqn").build()
    config = apply_overrides(
        config,
        [
            ("total_env_steps", steps),
            ("eval_interval", 0),
            ("stop_at_return", None),
            ("progress_bar", False),
            ("seed", seed),
            ("compile", compile),
            ("torch_threads", threads),
        ],
    )
    compiled_before = compile_seconds()
    with tempfile.TemporaryDirectory() as run_dir:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(config, run_dir, verbose=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    loop_time = result.collect_seconds + result.train_seconds
    return {
        "wall": wall,
        "cpu": cpu,
        "collect": result.collect_seconds,
        "train": result.train_seconds,
        "eval": result.eval_seconds,
        "warmup": result.warmup_seconds,
        "rest": result.wall_seconds - result.warmup_seconds - loop_time - result.eval_seconds,
        "setup": wall - result.wall_seconds,
        "loop": loop_time,
        "env_steps": result.env_steps,
        "train_steps": result.train_steps,
        "final_return": result.evaluation.mean_return,
        "compile": compile_seconds() - compiled_before,
    }


def compile_seconds() -> float:
    """Seconds this process has spent in ``torch.compile``'s compilations so far."""
    from torch._dynamo.utils import compilation_time_metrics

    return float(sum(compilation_time_metrics.get("_compile.compile_inner", [])))


def baseline_run(steps: int, seed: int, fused: bool = False) -> dict[str, float]:
    """A CleanRL-style DQN loop with the preset's numbers; times its collect and train parts.
    ``fused``: its Adam fused too (``torch.optim.Adam(..., fused=True)``), as drivetrain's is."""
    preset = get_preset("cartpole-dqn").build()
    loop, agent = preset.loop, preset.agent
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    env = gymnasium.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)

    def mlp() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))

    q, target = mlp(), mlp()
    target.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=agent.learning_rate, fused=fused or None)
    cap = preset.replay.capacity
    buf_obs = np.zeros((cap, 4), np.float32)
    buf_next = np.zeros((cap, 4), np.float32)
    buf_act = np.zeros(cap, np.int64)
    buf_rew = np.zeros(cap, np.float32)
    buf_done = np.zeros(cap, np.float32)
    size = 0
    train_steps = 0
    collect_time = train_time = 0.0

    def step(action: int) -> None:
        nonlocal obs, size
        next_obs, reward, terminated, truncated, _ = env.step(action)
        i = size % cap
        buf_obs[i], buf_next[i], buf_act[i], buf_rew[i], buf_done[i] = (
            obs,
            next_obs,
            action,
            reward,
            terminated,
        )
        size += 1
        obs = next_obs if not (terminated or truncated) else env.reset()[0]

    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(loop.learning_starts):
        step(int(rng.integers(2)))
    warmup = time.perf_counter() - start
    env_steps = loop.learning_starts
    while env_steps < steps:
        n = min(loop.update_period, steps - env_steps)
        t0 = time.perf_counter()
        frac = min(train_steps / agent.epsilon_decay_steps, 1.0)
        eps = agent.epsilon_start + (agent.epsilon_end - agent.epsilon_start) * frac
        for _ in range(n):
            if rng.random() < eps:
                action = int(rng.integers(2))
            else:
                with torch.inference_mode():
                    action = int(q(torch.from_numpy(obs).unsqueeze(0)).argmax())
            step(action)
        env_steps += n
        t1 = time.perf_counter()
        for _ in range(-(-loop.gradient_steps * n // loop.update_period)):
            idx = rng.integers(0, min(size, cap), loop.batch_size)
            o, o2 = torch.from_numpy(buf_obs[idx]), torch.from_numpy(buf_next[idx])
            a, r, d = (
                torch.from_numpy(buf_act[idx]),
                torch.from_numpy(buf_rew[idx]),
                torch.from_numpy(buf_done[idx]),
            )
            with torch.no_grad():
                y = r + agent.gamma * (1 - d) * target(o2).max(1).values
            value = q(o).gather(1, a.unsqueeze(1)).squeeze(1)
            loss = functional.huber_loss(value, y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(q.parameters(), agent.gradient_clipping or float("inf"))
            opt.step()
            train_steps += 1
            if train_steps % agent.target_update_period == 0:
                target.load_state_dict(q.state_dict())
        train_time += time.perf_counter() - t1
        collect_time += t1 - t0
    env.close()
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - start
    return {
        "wall": wall,
        "cpu": cpu,
        "warmup": warmup,
        "collect": collect_time,
        "train": train_time,
        "loop": collect_time + train_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=50_000, help="env steps of each run (the preset: 50,000)"
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (the preset uses 1)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--compile", action="store_true", help="agent.compile=True (the compiled update)")
    parser.add_argument(
        "--baseline-fused", action="store_true", help="the hand-written loop's Adam fused too"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    drivetrain_run(
        2_000, args.seed, args.threads, args.compile
    )  # untimed warm-up of each: lazy imports and first calls
    if not args.no_baseline:
        baseline_run(2_000, args.seed, args.baseline_fused)
    for i in range(args.repeats):
        if i % 2 and not args.no_baseline:  # the order flips every repeat
            base.append(baseline_run(args.steps, args.seed, args.baseline_fused))
        ours.append(drivetrain_run(args.steps, args.seed, args.threads, args.compile))
        if not i % 2 and not args.no_baseline:
            base.append(baseline_run(args.steps, args.seed, args.baseline_fused))

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    steps = med(ours, "env_steps")
    collected = steps - get_preset("cartpole-dqn").build().loop.learning_starts
    train_steps = med(ours, "train_steps")
    report = {
        "env_steps": steps,
        "train_steps": train_steps,
        "torch_threads": args.threads,
        "compile": args.compile,
        "baseline_fused_adam": args.baseline_fused,
        "drivetrain": {
            "wall_s": med(ours, "wall"),
            "cpu_s": med(ours, "cpu"),
            "env_steps_per_s": steps / med(ours, "wall"),
            "env_steps_per_cpu_s": steps / med(ours, "cpu"),
            "collect_s": med(ours, "collect"),
            "train_s": med(ours, "train"),
            "final_eval_s": med(ours, "eval"),
            "warmup_s": med(ours, "warmup"),
            "logging_checkpoints_s": med(ours, "rest"),
            "setup_s": med(ours, "setup"),
            "collect_steps_per_s": collected / med(ours, "collect"),
            "updates_per_s": train_steps / med(ours, "train"),
            "final_greedy_return": med(ours, "final_return"),
            "compilation_s": med(ours, "compile"),
        },
    }
    if base:
        report["baseline"] = {
            "wall_s": med(base, "wall"),
            "cpu_s": med(base, "cpu"),
            "env_steps_per_cpu_s": steps / med(base, "cpu"),
            "warmup_s": med(base, "warmup"),
            "collect_s": med(base, "collect"),
            "train_s": med(base, "train"),
            "collect_steps_per_s": collected / med(base, "collect"),
            "updates_per_s": train_steps / med(base, "train"),
        }
        report["ratio_cpu_speed_whole_run"] = med(base, "cpu") / med(ours, "cpu")
        report["ratio_loop_speed_drivetrain_over_baseline"] = med(base, "loop") / med(ours, "loop")
        report["ratio_collect_speed"] = med(base, "collect") / med(ours, "collect")
        report["ratio_train_speed"] = med(base, "train") / med(ours, "train")
        if args.compile:  # the same, had the compilation cost nothing (informative only)
            report["ratio_cpu_speed_whole_run_without_compilation"] = med(base, "cpu") / (
                med(ours, "cpu") - med(ours, "compile")
            )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
