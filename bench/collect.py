"""Collection speed: drivetrain's driver loop vs a bare Gymnasium vector-env loop (CartPole-v1).

Measures environment steps per second (``num_envs`` x batched steps per second) of

(a) ``gymnasium``: ``gymnasium.make_vec("CartPole-v1", n, vectorization_mode="sync")``
    stepped with ``envs.action_space.sample()`` -- the baseline of the target;
(b) ``raw``: a bare Python loop over ``n`` ``gymnasium.make("CartPole-v1")`` environments
    (same random actions, a reset when an episode ends) -- the floor;
(c) ``drivetrain``: ``dt.envs.make("CartPole-v1", n)`` + ``StepDriver`` + ``RandomPolicy``
    with ``NumberOfEpisodes``, ``EnvironmentSteps``, ``AverageReturn``,
    ``AverageEpisodeLength`` and ``drivetrain.replay.UniformReplay``'s
    ``add_batch`` (capacity 100_000) as observers;
(d) ``handwritten``: the same work as (c) written by hand in one plain loop over the raw
    environments (a random action, the transition written into five NumPy rings, the
    episodes' returns and lengths, the counts): what a loop that does (c)'s work and
    nothing else keeps of the floor (b).

They run in one process, in short chunks interleaved over ``--rounds`` rounds (so that
machine noise hits all alike), timed in CPU time of the process; the median steps/s are
reported with the median per-round ratio (c)/(a) against the 0.9x target, (c') = (c)
without the replay buffer shows the replay's share, and (c'') = (c) with the environment
boundary's checks of observations and rewards (``drivetrain.envs.checks``) replaced by
plain batching shows what the checks cost. ``--profile`` prints a cProfile of (c)
instead. Usage (from the repository root)::

    python -m bench.collect [--steps 2000] [--rounds 40] [--num-envs 1 8] [--profile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

import drivetrain as dt
from drivetrain.core import metrics
from drivetrain.policies import RandomPolicy
from drivetrain.replay import UniformReplay

TARGET = 0.9


def gymnasium_loop(n: int) -> Callable[[int], int]:
    """(a) A SyncVectorEnv stepped with random actions; returns env steps taken."""
    envs = gym.make_vec("CartPole-v1", n, vectorization_mode="sync")
    envs.reset(seed=0)
    envs.action_space.seed(0)

    def run(calls: int) -> int:
        step, sample = envs.step, envs.action_space.sample
        for _ in range(calls):
            step(sample())
        return calls * n

    return run


def raw_loop(n: int) -> Callable[[int], int]:
    """(b) The floor: the raw environments in a Python loop, reset when an episode ends."""
    envs = [gym.make("CartPole-v1") for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    actions = gym.vector.utils.batch_space(envs[0].action_space, n)
    actions.seed(0)

    def run(calls: int) -> int:
        sample = actions.sample
        for _ in range(calls):
            for env, a in zip(envs, sample().tolist(), strict=True):
                _, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    env.reset()
        return calls * n

    return run


def handwritten_loop(n: int) -> Callable[[int], int]:
    """(d) The same work as (c), written by hand as one plain loop: a random action, the step,
    the transition written into five NumPy rings, the episode's return and length, counts."""
    envs = [gym.make("CartPole-v1") for _ in range(n)]
    observations = [env.reset(seed=i)[0] for i, env in enumerate(envs)]
    rng = np.random.default_rng(0)
    capacity = 100_000
    obs_ring = np.zeros((capacity, n, 4), np.float32)
    action_ring = np.zeros((capacity, n), np.int64)
    reward_ring = np.zeros((capacity, n), np.float32)
    done_ring = np.zeros((capacity, n), np.bool_)
    next_ring = np.zeros((capacity, n, 4), np.float32)
    returns, lengths = [0.0] * n, [0] * n
    totals = {"pos": 0, "steps": 0, "episodes": 0, "return_sum": 0.0, "length_sum": 0}

    def run(calls: int) -> int:
        pos = totals["pos"]
        for _ in range(calls):
            actions = (rng.random(n) * 2).astype(np.int64).tolist()
            for i, (env, a) in enumerate(zip(envs, actions, strict=True)):
                obs, reward, terminated, truncated, _ = env.step(a)
                obs_ring[pos, i] = observations[i]
                action_ring[pos, i] = a
                reward_ring[pos, i] = reward
                done_ring[pos, i] = terminated
                next_ring[pos, i] = obs
                returns[i] += float(reward)
                lengths[i] += 1
                if terminated or truncated:
                    totals["episodes"] += 1
                    totals["return_sum"] += returns[i]
                    totals["length_sum"] += lengths[i]
                    returns[i], lengths[i] = 0.0, 0
                    obs = env.reset()[0]
                observations[i] = obs
            pos = (pos + 1) % capacity
            totals["steps"] += n
        totals["pos"] = pos
        return calls * n

    return run


class Unchecked:
    """Batches observations and rewards as drivetrain did before its boundary checks (for (c''))."""

    def __init__(self, spec: dt.specs.ArraySpec, n: int):
        self.shape, self.dtype = (n, *spec.shape), spec.dtype

    def batch(self, observations: list[object]) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        for i, o in enumerate(observations):
            out[i] = o
        return out

    def from_list(self, rewards: list[float]) -> np.ndarray:
        return np.array(rewards, np.float32)


def drivetrain_loop(
    n: int, with_replay: bool = True, checks: bool = True
) -> tuple[Callable[[int], int], str]:
    """(c) StepDriver + RandomPolicy + four metrics (+ replay) on dt.envs.make."""
    env = dt.envs.make("CartPole-v1", num_envs=n, seed=0)
    if not checks:  # the observation and reward checks of GymnasiumEnv replaced by plain batching
        env._observations = env._rewards = Unchecked(env.observation_spec(), n)  # type: ignore[attr-defined]
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    episodes, env_steps = metrics.NumberOfEpisodes(), metrics.EnvironmentSteps()
    observers: list[Callable[[dt.Trajectory], object]] = [
        episodes,
        env_steps,
        metrics.AverageReturn(),
        metrics.AverageEpisodeLength(),
    ]
    what = "RandomPolicy + 4 metrics"
    if with_replay:
        replay = UniformReplay(policy.trajectory_spec, 100_000, n)
        observers.append(replay.add_batch)
        what += " + UniformReplay.add_batch"
    state = {"time_step": env.reset(), "policy_state": None}

    def run(calls: int) -> int:
        # Boundary transitions (LAST -> FIRST) are env.step calls too, but not counted by
        # num_steps; count both so that (a), (b) and (c) measure the same unit.
        before = env_steps.result() + episodes.result()
        driver = dt.StepDriver(env, policy, observers, num_steps=calls * n)
        state["time_step"], state["policy_state"] = driver.run(state["time_step"], state["policy_state"])
        return env_steps.result() + episodes.result() - before

    return run, what


def measure(run: Callable[[int], int], calls: int) -> float:
    """Steps per second of CPU time of this process (other processes on a shared machine
    preempt it; CPU time does not count the time it waits)."""
    start = time.process_time()
    steps = run(calls)
    return steps / (time.process_time() - start)


def bench(n: int, steps: int, rounds: int) -> float:
    """Prints the table for ``n`` environments; returns the ratio (c)/(a)."""
    dt_run, what = drivetrain_loop(n)
    runs = {
        "gymnasium": gymnasium_loop(n),
        "raw": raw_loop(n),
        "drivetrain": dt_run,
        "handwritten": handwritten_loop(n),
    }
    labels = {
        "gymnasium": "(a) gymnasium SyncVectorEnv loop",
        "raw": "(b) raw envs loop (floor)",
        "drivetrain": f"(c) drivetrain StepDriver [{what}]",
        "handwritten": "(d) the same work written by hand (rings, counts)",
    }
    runs["no_replay"], labels["no_replay"] = (  # where the time goes: (c) without the replay buffer
        drivetrain_loop(n, with_replay=False)[0],
        "(c') (c) without the replay",
    )
    runs["unchecked"], labels["unchecked"] = (
        drivetrain_loop(n, checks=False)[0],
        "(c'') (c) without the observation and reward checks",
    )
    calls = max(1, steps // n)
    for run in runs.values():  # warm-up
        run(calls)
    rates: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for r in range(rounds):
        # Short chunks, interleaved in a rotating order: machine noise hits all variants alike.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            rates[name].append(measure(runs[name], calls))
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratios = [c / a for c, a in zip(rates["drivetrain"], rates["gymnasium"], strict=True)]
    ratio = statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    check_cost = statistics.median(
        c / u for c, u in zip(rates["drivetrain"], rates["unchecked"], strict=True)
    )
    print(f"CartPole-v1, num_envs={n}: {rounds} rounds x {calls * n} env steps per variant")
    print("  median environment steps per CPU second:")
    for name, label in labels.items():
        print(f"  {label:<72} {med[name]:9.0f}  ({med[name] / med['gymnasium']:.2f}x (a))")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(
        f"  (c)/(a) = {ratio:.2f} (median of per-round ratios; quartiles {q1:.2f}..{q3:.2f}) -> {verdict} "
        f"the {TARGET}x target"
    )
    for other, label in (("raw", "(b)"), ("handwritten", "(d)")):
        per_round = [c / o for c, o in zip(rates["drivetrain"], rates[other], strict=True)]
        print(f"  (c)/{label} = {statistics.median(per_round):.2f} (median of per-round ratios)")
    hand = statistics.median(d / b for d, b in zip(rates["handwritten"], rates["raw"], strict=True))
    print(f"  (d)/(b) = {hand:.2f}: the speed of the floor that the same work by hand keeps")
    print(f"  (c)/(c'') = {check_cost:.3f}: the speed kept with the boundary checks (median per-round ratio)")
    return ratio


def profile(n: int, steps: int) -> None:
    """cProfile of (c): where drivetrain's time goes."""
    import cProfile
    import pstats

    run, what = drivetrain_loop(n)
    run(max(1, 1000 // n))
    profiler = cProfile.Profile()
    profiler.runcall(run, max(1, steps // n))
    print(f"cProfile of (c) [{what}], num_envs={n}, {steps} env steps:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2_000, help="environment steps per variant and round")
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (medians reported)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--profile", action="store_true", help="profile (c) with cProfile instead")
    args = parser.parse_args()
    for n in args.num_envs:
        if args.profile:
            profile(n, args.steps * 10)
        else:
            bench(n, args.steps, args.rounds)


if __name__ == "__main__":
    main()
