"""Replay buffer speed and memory: drivetrain.replay against plain NumPy in the same run.

For a CartPole data spec (observation float32 (4,)) and an Atari one (84x84x4 uint8
stacked frames, stored one frame each), measures

- **add rate** (transitions/s) of ``UniformReplay.add_batch`` with ``num_envs`` 1 and 8,
  into full buffers (every page written once: the steady state), against the limit:
  plain NumPy assignments of the same leaves into preallocated per-env rings (for Atari: the newest frame plus the scalar leaves, i.e. the bytes
  the de-duplicated buffer keeps; a naive buffer copying whole stacks is shown too);
- **sample rate** (batches/s) of ``sample(64, 2)`` for CartPole and ``sample(32, 2)`` for
  Atari, uniform and prioritized, against the limit: ``ndarray.take`` of the same rows
  from preallocated arrays at random indices (for Atari: whole stacks from a
  ``[N, 84, 84, 4]`` array, i.e. the same bytes out);
- **memory**: bytes per Atari transition, the size of a 1M-transition Atari buffer
  (against the 7.06 GB floor of one 84x84 frame per transition, and 28.2 GB for whole
  stacks), and the resident memory a buffer filled with ``--fill`` real stacks takes.

Variants run interleaved in short chunks, ``--rounds`` times; the medians of the rates
and of the per-round ratios to the limit are reported.
Usage::

    python bench/replay.py [--rounds 15] [--fill 100000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from drivetrain.core import specs, types
from drivetrain.replay import PrioritizedReplay, UniformReplay

CAPACITY = 50_000
ATARI = specs.StackedFramesSpec((84, 84, 4), np.uint8, 0, 255, "observation")
CARTPOLE = specs.ArraySpec((4,), np.float32, "observation")
ACTION = specs.BoundedArraySpec((), np.int64, 0, 3, "action")


def data_spec(observation: specs.ArraySpec) -> types.Trajectory:
    return types.trajectory_spec(types.time_step_spec(observation), ACTION, {})


def trajectories(
    observation: specs.ArraySpec, num_envs: int, count: int, seed: int = 0
) -> list[types.Trajectory]:
    """``count`` consecutive batched trajectories; episodes of ~200 steps; stacks shift by one frame."""
    rng = np.random.default_rng(seed)
    out = []
    stack = np.zeros((num_envs, *observation.shape), observation.dtype)
    step_type = np.zeros(num_envs, np.int32)
    for i in range(count):
        end = (i + 1 + 37 * np.arange(num_envs)) % 200 == 0
        boundary = step_type == 2
        next_step_type = np.where(boundary, 0, np.where(end, 2, 1)).astype(np.int32)
        if observation.dtype == np.uint8:
            frame = rng.integers(0, 256, (num_envs, 84, 84), dtype=np.uint8)
            stack = np.concatenate([stack[..., 1:], frame[..., None]], axis=-1)
            first = step_type == 0
            stack[first, ..., :-1] = stack[first, ..., -1:]  # an episode starts with 4 copies
            obs = stack
        else:
            obs = rng.standard_normal((num_envs, 4)).astype(np.float32)
        reward = rng.random(num_envs).astype(np.float32)
        discount = np.where(end, 0.0, 1.0).astype(np.float32)
        action = rng.integers(0, 4, num_envs)
        out.append(types.Trajectory(step_type, obs.copy(), action, {}, next_step_type, reward, discount))
        step_type = next_step_type
    return out


def rate(fn: Callable[[int], None], count: int) -> float:
    start = time.perf_counter()
    fn(count)
    return count / (time.perf_counter() - start)


def interleaved(
    variants: dict[str, Callable[[int], None]], count: int, rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median rate of each variant over ``rounds`` rotating rounds, and the median per-round
    ratio of each to the ``"numpy"`` limit (robust to load changing between rounds)."""
    names = list(variants)
    for fn in variants.values():
        fn(max(1, count // 4))  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            rates[name].append(rate(variants[name], count))
    ratios = {
        k: statistics.median(a / b for a, b in zip(v, rates["numpy"], strict=True)) for k, v in rates.items()
    }
    return {k: statistics.median(v) for k, v in rates.items()}, ratios


# ---------------------------------------------------------------------- adding
def add_variants(
    observation: specs.ArraySpec, num_envs: int, capacity: int
) -> dict[str, Callable[[int], None]]:
    """Adding into full buffers (the steady state: every memory page already written once)."""
    trajs = trajectories(observation, num_envs, 512)
    replay = UniformReplay(data_spec(observation), capacity, num_envs)
    per_env = capacity // num_envs
    for i in range(per_env + 16):
        replay.add_batch(trajs[i % 512])
    atari = observation.dtype == np.uint8
    # The limit: the same leaves (for Atari: only the newest frame) into plain per-env rings.
    stored = [t._replace(observation=t.observation[..., -1]) if atari else t for t in trajs]
    leaves = [[x for x in t if isinstance(x, np.ndarray)] for t in stored]
    rings = [np.ones((num_envs, per_env, *x.shape[1:]), x.dtype) for x in leaves[0]]
    naive = np.ones((num_envs, per_env, *observation.shape), observation.dtype) if atari else None

    def drivetrain(n: int) -> None:
        add = replay.add_batch
        for i in range(n):
            add(trajs[i % 512])

    count = {"numpy": 0, "whole": 0}  # the plain loops move on through their rings, as the buffer does

    def limit(n: int) -> None:
        start = count["numpy"]
        for i in range(start, start + n):
            pos = i % per_env
            for ring, x in zip(rings, leaves[i % 512], strict=True):
                ring[:, pos] = x
        count["numpy"] += n

    variants = {"drivetrain": drivetrain, "numpy": limit}
    if naive is not None:

        def whole_stacks(n: int) -> None:
            start = count["whole"]
            for i in range(start, start + n):
                pos = i % per_env
                for ring, x in zip(rings[1:], leaves[i % 512][1:], strict=True):
                    ring[:, pos] = x
                naive[:, pos] = trajs[i % 512].observation
            count["whole"] += n

        variants["numpy, whole stacks"] = whole_stacks
    return variants


# ---------------------------------------------------------------------- sampling
def sample_variants(
    observation: specs.ArraySpec, batch_size: int, capacity: int
) -> dict[str, Callable[[int], None]]:
    trajs = trajectories(observation, 1, 512)
    uniform = UniformReplay(data_spec(observation), capacity, 1, seed=0)
    prioritized = PrioritizedReplay(data_spec(observation), capacity, 1, seed=0)
    for i in range(capacity + 100):
        uniform.add_batch(trajs[i % 512])
        prioritized.add_batch(trajs[i % 512])
    _, info = prioritized.sample(capacity // 2, 1)
    prioritized.update_priorities(info.ids, np.random.default_rng(0).random(info.ids.size))
    # The limit: take the same rows (whole stacks for Atari) from preallocated arrays, filled
    # (pages that were never written would all read the one shared zero page).
    arrays = [
        np.ones((capacity, *np.shape(x)[1:]), np.asarray(x).dtype)
        for x in trajs[0]
        if isinstance(x, np.ndarray)
    ]
    rng = np.random.default_rng(0)

    def limit(n: int) -> None:
        for _ in range(n):
            start = (rng.random(batch_size) * (capacity - 2)).astype(np.int64)  # cheaper than rng.integers
            index = start[:, None] + np.arange(2)
            for a in arrays:
                a.take(index, axis=0)

    def of(replay: UniformReplay | PrioritizedReplay) -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                replay.sample(batch_size, 2)

        return run

    return {"uniform": of(uniform), "prioritized": of(prioritized), "numpy": limit}


# ---------------------------------------------------------------------- memory
def resident_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def memory(fill: int) -> None:
    spec = data_spec(ATARI)
    million = UniformReplay.estimate_nbytes(spec, 1_000_000)
    whole = UniformReplay.estimate_nbytes(spec, 1_000_000, dedup_frames=False)
    floor = 1_000_000 * 84 * 84
    print("Atari 84x84x4 memory")
    print(
        f"  1M transitions, de-duplicated : {million / 1e9:6.2f} GB ({million / 1e6:.0f} bytes per transition)"
    )
    print(f"  floor, one frame each         : {floor / 1e9:6.2f} GB;  target <= 7.5 GB")
    print(f"  whole stacks (dedup_frames=False): {whole / 1e9:6.2f} GB")
    if fill <= 0:
        return
    trajs = trajectories(ATARI, 1, 512, seed=1)
    before = resident_bytes()
    replay = UniformReplay(spec, fill, 1)
    for i in range(fill):
        replay.add_batch(trajs[i % 512])
    grown = resident_bytes() - before
    print(
        f"  filled with {fill} stacks     : resident +{grown / 1e9:.3f} GB = {grown / fill:.0f} bytes per "
        f"transition -> {grown / fill * 1e6 / 1e9:.2f} GB per 1M (nbytes says {replay.nbytes / fill:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (medians reported)")
    parser.add_argument("--adds", type=int, default=1_000, help="add_batch calls per variant and round")
    parser.add_argument("--samples", type=int, default=100, help="sample calls per variant and round")
    parser.add_argument(
        "--fill", type=int, default=100_000, help="Atari stacks for the resident-memory check"
    )
    args = parser.parse_args()

    print(f"add rate (transitions/s into full buffers; medians of {args.rounds} rounds; ratio to the limit)")
    for name, obs, capacity in (("CartPole", CARTPOLE, CAPACITY), ("Atari", ATARI, 10_000)):
        for num_envs in (1, 8):
            med, ratio = interleaved(add_variants(obs, num_envs, capacity), args.adds, args.rounds)
            med = {k: v * num_envs for k, v in med.items()}
            extra = "".join(
                f", {k} {v:,.0f} ({ratio[k]:.2f})" for k, v in med.items() if k not in ("drivetrain", "numpy")
            )
            print(
                f"  {name:8s} num_envs={num_envs}: drivetrain {med['drivetrain']:10,.0f} ({ratio['drivetrain']:.2f})"
                f"  numpy limit {med['numpy']:10,.0f}{extra}"
            )
    print(f"sample rate (batches/s of [B, 2] windows; medians of {args.rounds} rounds; ratio to the limit)")
    for name, obs, batch, capacity in (("CartPole", CARTPOLE, 64, CAPACITY), ("Atari", ATARI, 32, 20_000)):
        med, ratio = interleaved(sample_variants(obs, batch, capacity), args.samples, args.rounds)
        print(
            f"  {name:8s} {batch}x2 (capacity {capacity}): uniform {med['uniform']:7,.0f} ({ratio['uniform']:.2f})"
            f"  prioritized {med['prioritized']:7,.0f} ({ratio['prioritized']:.2f})  numpy limit {med['numpy']:7,.0f}"
        )
    memory(args.fill)


if __name__ == "__main__":
    main()
