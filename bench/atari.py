"""Atari: random-policy warm-up speed (driver + replay) vs a bare loop, and 1M-transition replay memory.

Part 1 -- agent steps per second (``num_envs`` x batched steps per second) on Breakout
with the DQN-2015 preprocessing (``make_atari`` defaults), for each backend and batch size:

(a) ``bare``: the same preprocessed environments without drivetrain -- for ``gymnasium``
    a Python loop over ``n`` ``AtariFactory`` chains (ALE + AtariPreprocessing + frame
    stack), reset when a game ends; for ``envpool`` ``pool.step`` on its own ``dm_env``
    interface -- both with random actions;
(b) ``warm-up``: ``make_atari`` + ``StepDriver`` + ``RandomPolicy`` with the four training
    metrics and ``UniformReplay.add_batch`` (capacity 100k, frames de-duplicated) as
    observers: the 20,000-step random warm-up of ``breakout-dqn``.

Both run in one process in short interleaved chunks over ``--rounds`` rounds; medians of
steps/s and of the per-round ratio (b)/(a) are reported, per wall-clock second and per
CPU second of the process (EnvPool's worker threads included): on a shared machine the
CPU clock is the steadier one.

Part 2 -- memory of a 1M-transition buffer: ``UniformReplay(spec, 1_000_000, 8)`` with
the Atari trajectory spec; its ``nbytes`` (every array it allocates, once full); then
``--fill`` transitions of real Breakout frames (8 envs, random policy, recorded once and
added round-robin) and the growth of the process's resident memory (``/proc/self/statm``).
NumPy allocates lazily, so resident memory grows with what was written; the 1M figure is
extrapolated linearly: ``(RSS after fill - RSS before) / fill * 1M`` plus the fixed
part (per-item index arrays, touched up front), and compared with ``nbytes``. With
``--fill 1000000`` nothing is extrapolated (needs ~7.5 GB free).

Part 3 -- the full ``breakout-dqn`` training loop on CPU (``drivetrain.train.train``: the
20,000-step random warm-up shortened to ``--train-warmup``, then ``--train-steps`` agent
steps of collection with one ``agent.train`` on 64 windows per 4 steps; no evaluation
during training, one final evaluation episode): agent steps/s of the collect + train
phase and where its time goes. Usage::

    python -m bench.atari [--steps 800] [--rounds 8] [--num-envs 1 8] [--fill 200000] [--train-steps 2000]

``--random-episodes N [--preset P] [--seed S] [--game G]`` scores a random policy under the preset's
evaluation protocol: the baseline of the bounded learning check in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import drivetrain as dt
from drivetrain.core import metrics
from drivetrain.envs.atari import AtariConfig, make_atari
from drivetrain.envs.atari_games import envpool_task_id, gymnasium_id, resolve_game
from drivetrain.envs.atari_gymnasium import AtariFactory
from drivetrain.policies import RandomPolicy
from drivetrain.replay import UniformReplay

GAME = "Breakout"
Run = Callable[[int], int]


def bare_gymnasium(n: int) -> Run:
    """(a) n preprocessed Gymnasium chains in a Python loop, random actions, reset at game end."""
    envs = [AtariFactory(gymnasium_id(resolve_game(GAME)), AtariConfig())() for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    rng = np.random.default_rng(0)
    num_actions = int(envs[0].action_space.n)  # type: ignore[attr-defined]

    def run(calls: int) -> int:
        for _ in range(calls):
            for env, a in zip(envs, rng.integers(0, num_actions, n), strict=True):
                _, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    env.reset()
        return calls * n

    return run


def bare_envpool(n: int) -> Run:
    """(a) EnvPool's own dm_env loop (it resets finished games itself), random actions."""
    import envpool

    pool = envpool.make(envpool_task_id(resolve_game(GAME)), env_type="dm", num_envs=n, seed=0)
    pool.reset()
    rng = np.random.default_rng(0)
    num_actions = int(pool.action_spec().num_values)

    def run(calls: int) -> int:
        for _ in range(calls):
            pool.step(rng.integers(0, num_actions, n).astype(np.int32))
        return calls * n

    return run


def warmup(n: int, backend: str) -> Run:
    """(b) StepDriver + RandomPolicy + 4 metrics + UniformReplay on make_atari."""
    env = make_atari(GAME, num_envs=n, seed=0, backend=backend)  # type: ignore[arg-type]
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    episodes, env_steps = metrics.NumberOfEpisodes(), metrics.EnvironmentSteps()
    replay = UniformReplay(policy.trajectory_spec, 100_000, n, seed=0)
    observers: list[Callable[[dt.Trajectory], object]] = [
        episodes,
        env_steps,
        metrics.AverageReturn(),
        metrics.AverageEpisodeLength(),
        replay.add_batch,
    ]
    state = {"time_step": env.reset(), "policy_state": None}

    def run(calls: int) -> int:
        # Boundary steps (LAST -> FIRST) are env.step calls too: count them like the bare loop.
        before = env_steps.result() + episodes.result()
        driver = dt.StepDriver(env, policy, observers, num_steps=calls * n)
        state["time_step"], state["policy_state"] = driver.run(state["time_step"], state["policy_state"])
        return env_steps.result() + episodes.result() - before

    return run


def measure(run: Run, calls: int) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second of this process, EnvPool's threads included)."""
    wall, cpu = time.perf_counter(), time.process_time()
    steps = run(calls)
    return steps / (time.perf_counter() - wall), steps / max(time.process_time() - cpu, 1e-9)


def bench_speed(backend: str, n: int, steps: int, rounds: int) -> None:
    runs = {
        "bare": bare_envpool(n) if backend == "envpool" else bare_gymnasium(n),
        "warm-up": warmup(n, backend),
    }
    calls = max(1, steps // n)
    for run in runs.values():
        run(calls)
    rates: dict[str, list[tuple[float, float]]] = {k: [] for k in runs}
    names = list(runs)
    for r in range(rounds):
        for name in names[r % 2 :] + names[: r % 2]:
            rates[name].append(measure(runs[name], calls))
    for clock, i in (("wall", 0), ("CPU", 1)):
        bare = [x[i] for x in rates["bare"]]
        warm = [x[i] for x in rates["warm-up"]]
        ratio = statistics.median(w / b for w, b in zip(warm, bare, strict=True))
        print(
            f"{GAME} {backend:9s} num_envs={n} ({clock:4s} clock): bare {statistics.median(bare):7.0f} steps/s   "
            f"warm-up (driver + replay) {statistics.median(warm):7.0f} steps/s   ratio {ratio:.2f}   "
            f"({rounds} rounds x {calls * n} steps)"
        )


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory(fill: int, capacity: int = 1_000_000, num_envs: int = 8) -> None:
    env = make_atari(GAME, num_envs=num_envs, seed=0)
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    recorded: list[dt.Trajectory] = []
    record_steps = min(fill, 16_000) // num_envs
    dt.StepDriver(env, policy, [recorded.append], num_steps=record_steps * num_envs).run()
    env.close()
    before = rss_bytes()
    replay = UniformReplay(policy.trajectory_spec, capacity, num_envs, seed=0)
    allocated = rss_bytes()
    start = time.perf_counter()
    for i in range(fill // num_envs):
        replay.add_batch(recorded[i % len(recorded)])
    seconds = time.perf_counter() - start
    after = rss_bytes()
    per_item = (after - allocated) / fill
    estimate = (allocated - before) + per_item * capacity
    naive = UniformReplay.estimate_nbytes(policy.trajectory_spec, capacity, num_envs, dedup_frames=False)
    print(
        f"replay of {capacity:,} Atari transitions ({num_envs} envs): nbytes {replay.nbytes / 1e9:.2f} GB "
        f"(4 frames per item: {naive / 1e9:.2f} GB; floor 84*84*1M = 7.06 GB)"
    )
    print(
        f"  filled {fill:,} transitions of {len(recorded) * num_envs:,} real frames (round robin) in {seconds:.1f} s "
        f"({fill / seconds:,.0f} adds/s): RSS +{(after - before) / 1e9:.2f} GB, "
        f"{per_item:,.0f} B per transition -> 1M transitions ≈ {estimate / 1e9:.2f} GB resident"
        + ("" if fill < capacity else " (measured, not extrapolated)")
    )


def bench_training(steps: int, warmup_steps: int, threads: int | None) -> None:
    import tempfile

    import torch

    from drivetrain.train import apply_overrides, get_preset, train

    if threads is not None:
        torch.set_num_threads(threads)
    config = get_preset("breakout-dqn").build()
    overrides = [
        ("total_env_steps", warmup_steps + steps),
        ("learning_starts", warmup_steps),
        ("eval_interval", 0),
        ("final_eval_episodes", 1),
        ("progress_bar", False),
        ("checkpoint_interval", 0),
        ("torch_threads", threads),
        ("env.atari.max_episode_steps", 2_000),  # keeps the final evaluation episode short
        ("agent.compile", False),  # the eager update, as these figures were measured
    ]
    config = apply_overrides(config, overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        r = train(config, run_dir, verbose=False)
    loop = r.collect_seconds + r.train_seconds
    print(
        f"breakout-dqn training loop (CPU, torch threads {threads or torch.get_num_threads()}): "
        f"{steps / loop:.1f} agent steps/s collect + train ({r.train_steps} train steps of batch 64: "
        f"{r.train_seconds / max(r.train_steps, 1) * 1e3:.0f} ms each, {r.train_seconds / loop:.0%} of the time); "
        f"warm-up {warmup_steps / r.warmup_seconds:.0f} steps/s"
    )


def random_baseline(
    preset: str, episodes: int, seed: int, game: str | None = None, fire_on_life_loss: bool = False
) -> None:
    """The score of a uniformly random policy under the preset's evaluation protocol (the
    baseline of the bounded learning check): the environment, seed and episode count of the
    run's final evaluation (``eval.json``), as ``drivetrain eval RUN_DIR --episodes N`` plays
    them; ``game`` replaces the preset's game (``--env.name``), ``fire_on_life_loss`` sets
    ``--env.atari.fire_on_life_loss true`` as the run did."""
    import dataclasses

    from drivetrain.train import get_preset
    from drivetrain.train.evaluation import evaluate
    from drivetrain.train.experiment import make_env, run_seeds

    config = get_preset(preset).build()
    if game is not None:
        config = dataclasses.replace(config, env=dataclasses.replace(config.env, name=game))
    if fire_on_life_loss:
        atari = dataclasses.replace(config.env.atari, fire_on_life_loss=True)
        config = dataclasses.replace(config, env=dataclasses.replace(config.env, atari=atari))
    env_seed = run_seeds(seed).final_eval
    with make_env(config.env, config.loop.eval_num_envs, env_seed, evaluation=True) as env:
        result = evaluate(env, RandomPolicy(env.time_step_spec(), env.action_spec(), seed=seed), episodes)
    print(
        f"random policy, {config.env.name} under the {preset} evaluation protocol (run seed {seed}): "
        f"{result.mean_return:.2f} ± {result.std_return:.2f} over {result.episodes} episodes "
        f"(mean length {result.mean_length:.0f}); returns {list(result.returns)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=800, help="agent steps per variant and round")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds (medians reported)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--backends", nargs="*", default=["gymnasium", "envpool"], help="none: memory only")
    parser.add_argument("--fill", type=int, default=200_000, help="transitions written into the 1M buffer")
    parser.add_argument(
        "--train-steps", type=int, default=2_000, help="agent steps of the training loop; 0 skips"
    )
    parser.add_argument("--train-warmup", type=int, default=2_000, help="random warm-up steps before them")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    parser.add_argument("--random-episodes", type=int, default=0, help="score a random policy (0: skip)")
    parser.add_argument("--preset", default="breakout-dqn", help="preset of --random-episodes")
    parser.add_argument("--seed", type=int, default=0, help="run seed of --random-episodes")
    parser.add_argument("--game", default=None, help="game of --random-episodes (default: the preset's)")
    parser.add_argument(
        "--fire-on-life-loss", action="store_true", help="--random-episodes with env.atari.fire_on_life_loss"
    )
    args = parser.parse_args()
    for backend in args.backends:
        if backend == "envpool":
            try:
                import envpool  # noqa: F401
            except ImportError:
                print("envpool: not installed, skipped (pip install envpool)")
                continue
        for n in args.num_envs:
            bench_speed(backend, n, args.steps, args.rounds)
    if args.fill > 0:
        bench_memory(args.fill)
    if args.train_steps > 0:
        bench_training(args.train_steps, args.train_warmup, args.threads)
    if args.random_episodes > 0:
        random_baseline(args.preset, args.random_episodes, args.seed, args.game, args.fire_on_life_loss)


if __name__ == "__main__":
    main()
