"""Scaling out on Ray: collection throughput, learner updates/s, object store and weight broadcast (issue 13).

Every variant is one training run of the preset (``breakout-dqn`` by default, ``cartpole-dqn``
with ``--env cartpole``) through the library's own entry points, so that the steps and the
seconds are counted as the runs count them (:class:`~drivetrain.train.runs.TrainResult`):

- ``local``: :func:`drivetrain.train.train` (``execution.backend = "local"``) over ``n``
  environments (``env.num_envs``). Its warm-up is the driver playing the random warm-up policy
  into the replay (``StepDriver`` + ``UniformReplay``, the loop's observers): the same work as
  the collectors' warm-up, reached through the same run machinery, so neither side is
  measured without the overhead the other pays.
- ``ray``: :func:`drivetrain.distributed.runner.train_distributed` (``execution.backend = "ray"``)
  with ``C`` collector actors of ``E`` environments each (``--collectors``, ``--envs-per-collector``),
  a replay actor and the learner in this process. The local rows use the same totals ``C x E``.
- ``threads``: the same with ``execution.backend = "threads"``: the collectors in threads of this
  process, stepping while the learner trains (no object store, no broadcast).

Each run has two phases, measured separately:

1. **Collection** (``loop.learning_starts`` env steps of the random warm-up policy): env steps
   per second = ``learning_starts / TrainResult.warmup_seconds`` (boundaries LAST -> FIRST not
   counted; each run overshoots by less than one batch per collector). On Ray a collect call
   gathers ``execution.fragment_steps`` env steps (a *fragment*: ``--fragment-steps``, default
   the preset's ``loop.update_period``), which then travel through the object store to the
   replay actor; the local run then trains after every ``--fragment-steps`` env steps, with as
   many updates per env step.
2. **Learning** (past ``learning_starts``, the preset's updates per env step and batch size):
   updates/s = ``TrainResult.train_steps / TrainResult.train_seconds``, the learner's train
   phase (local: sampling + ``agent.train``; Ray: the insert, the sample calls to the replay
   actor — the next one sent before the batches of the last train — ``agent.train`` and the
   weight broadcasts, while the collectors keep collecting).

On Ray it also records the object store in use (``ray.cluster_resources()`` minus
``ray.available_resources()`` for ``object_store_memory``, the public resource API, which
ray 2.60 updates with what the store holds; the state API ``ray.util.state`` needs the
dashboard of ``ray[default]``), sampled every 0.1 s during the run (peak reported), and the
weight broadcast: the learner's share of each of the run's broadcasts (``ray.put`` of the
weights + one ``set_weights.remote`` per collector, as ``RayTransport.set_weights`` does it),
and, once the run ended with the collectors idle, the same calls waited for until every
collector loaded the weights (median of 5).

A first untimed run of each variant sizes the timed ones to about ``--seconds`` per phase; the
timed runs follow in ``--rounds`` interleaved rounds (the order rotates each round). Medians
over the rounds, wall time (the variants run in several processes). Evaluations are off but
for the final one (1 episode, timed apart by the run); checkpoints only at the end, without
the replay; ``replay.capacity`` is raised where a run collects more than the preset holds.

    python bench/distributed.py [--env breakout|cartpole] [--collectors 1 2] [--envs-per-collector 4]
                                [--seconds 20] [--rounds 2] [--fragment-steps N] [--backends ray threads]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

import ray

from drivetrain.distributed.ray_topology import RayTransport
from drivetrain.distributed.runner import train_distributed
from drivetrain.distributed.thread_topology import ThreadTransport
from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.config import ExperimentConfig
from drivetrain.train.runs import TrainResult

PRESETS = {"breakout": "breakout-dqn", "cartpole": "cartpole-dqn"}
CALIBRATION = {"breakout": (1_000, 64), "cartpole": (2_000, 512)}
"""Env steps of the untimed first run: (collection, learning) per env."""
BROADCASTS = 5


@dataclasses.dataclass(frozen=True)
class Variant:
    backend: str  # "local" | "ray" | "threads"
    collectors: int  # 0 for local
    envs: int  # environments in all
    env_backend: str  # EnvConfig.backend: "sync" (Gymnasium / ale-py) | "envpool"

    @property
    def label(self) -> str:
        impl = "EnvPool" if self.env_backend == "envpool" else "Gymnasium"
        return f"{self.backend} ({impl})"


@dataclasses.dataclass
class Measured:
    collect_rate: float  # env steps/s in the warm-up
    update_rate: float  # updates/s of the train phase
    post_rate: float  # env steps/s past the warm-up (collect + train phases)
    result: TrainResult
    store_peak_mb: float = math.nan
    put_ms: float = math.nan  # learner's share of a broadcast in the run (median)
    broadcast_ms: float = math.nan  # put + set_weights on every collector, waited (median)
    broadcasts: int = 0
    restarts: int = 0


class StoreMonitor:
    """Samples the object store's bytes in use every ``period`` s in a thread; ``peak`` in bytes."""

    def __init__(self, period: float = 0.1):
        self.period, self.peak = period, 0.0
        self._total = float(ray.cluster_resources().get("object_store_memory", 0.0))  # type: ignore[no-untyped-call]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def used(self) -> float:
        free = float(ray.available_resources().get("object_store_memory", self._total))  # type: ignore[no-untyped-call]
        return self._total - free

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, self.used())

    def __enter__(self) -> StoreMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class TimedRayTransport(RayTransport):
    """RayTransport timing its weight broadcasts; before it closes, it times ``BROADCASTS`` more,
    each waited for until every (idle) collector applied it."""

    def __init__(self) -> None:
        super().__init__()
        self.put_ms: list[float] = []
        self.full_ms: list[float] = []
        self._latest: tuple[int, Any] | None = None

    def set_weights(self, version: int, weights: Any) -> None:
        start = time.perf_counter()
        super().set_weights(version, weights)
        self.put_ms.append(1e3 * (time.perf_counter() - start))
        self._latest = (version, weights)

    def close(self) -> None:
        actors = self._actors  # the run's collector actors (RayTransport keeps them private)
        if actors and self._latest is not None:
            version, weights = self._latest
            for i in range(1, BROADCASTS + 1):  # newer versions, so that every collector applies them
                start = time.perf_counter()
                ref = ray.put(weights)
                applied = ray.get([a.set_weights.remote(version + i, ref) for a in actors])
                self.full_ms.append(1e3 * (time.perf_counter() - start))
                assert all(applied), "a collector refused a newer version"
        super().close()


def schedule(args: argparse.Namespace) -> tuple[int, int]:
    """``(loop.update_period, loop.gradient_steps)``: the preset's, or ``--fragment-steps`` with
    as many updates per env step."""
    loop = get_preset(PRESETS[args.env]).build().loop
    if args.fragment_steps is None:
        return loop.update_period, loop.gradient_steps
    return args.fragment_steps, loop.gradient_steps * args.fragment_steps // loop.update_period


def build_config(args: argparse.Namespace, v: Variant, warmup: int, post: int) -> ExperimentConfig:
    preset = get_preset(PRESETS[args.env]).build()
    period, gradient_steps = schedule(args)
    post = period * max(1, math.ceil(post / period))
    per_collector = v.envs // max(v.collectors, 1)
    capacity = max(preset.replay.capacity, math.ceil(1.25 * (warmup + post)) + v.envs)
    if v.backend != "local":  # the preset's schedule, collected in fragments of `period` env steps
        schedule_overrides: list[tuple[str, Any]] = [("execution.fragment_steps", period)]
    else:  # the same updates per env step, trained after every `period` env steps
        schedule_overrides = [("loop.update_period", period), ("loop.gradient_steps", gradient_steps)]
    overrides: list[tuple[str, Any]] = [
        ("env.backend", v.env_backend),
        ("env.num_envs", per_collector),
        *schedule_overrides,
        ("loop.learning_starts", warmup),
        ("loop.total_env_steps", warmup + post),
        ("loop.eval_interval", 0),
        ("loop.stop_at_return", None),
        ("loop.final_eval_episodes", 1),
        ("loop.progress_bar", False),
        ("loop.tensorboard", False),
        ("loop.checkpoint_interval", 0),
        ("loop.checkpoint_replay", False),
        ("replay.capacity", capacity),
        ("execution.backend", v.backend),
        ("agent.compile", False),  # the eager update on every variant (Atari presets say "auto")
    ]
    if v.backend != "local":
        overrides += [("execution.collectors", v.collectors), ("execution.envs_per_collector", per_collector)]
    config: ExperimentConfig = apply_overrides(preset, overrides)
    return config


def run_variant(args: argparse.Namespace, v: Variant, warmup: int, post: int) -> Measured:
    config = build_config(args, v, warmup, post)
    with tempfile.TemporaryDirectory() as run_dir:
        if v.backend == "local":
            result, transport, peak = train(config, run_dir, verbose=False), None, math.nan
        elif v.backend == "threads":
            result = train_distributed(config, run_dir, verbose=False, transport=ThreadTransport())
            transport, peak = None, math.nan
        else:
            transport = TimedRayTransport()
            with StoreMonitor() as monitor:
                result = train_distributed(config, run_dir, verbose=False, transport=transport)
            peak = monitor.peak / 2**20
    learning_starts = config.loop.learning_starts
    post_s = result.collect_seconds + result.train_seconds
    measured = Measured(
        collect_rate=learning_starts / result.warmup_seconds,
        update_rate=result.train_steps / result.train_seconds if result.train_seconds else math.nan,
        post_rate=(result.env_steps - learning_starts) / post_s if post_s else math.nan,
        result=result,
        store_peak_mb=peak,
    )
    if transport is not None:
        measured.put_ms = statistics.median(transport.put_ms) if transport.put_ms else math.nan
        measured.broadcast_ms = statistics.median(transport.full_ms) if transport.full_ms else math.nan
        measured.broadcasts, measured.restarts = len(transport.put_ms), transport.restarts
    return measured


def variants(args: argparse.Namespace) -> list[Variant]:
    env_backends = ["sync"]
    if args.env == "breakout":
        try:
            import envpool  # noqa: F401

            env_backends.append("envpool")
        except ImportError:
            print("EnvPool: not installed (`import envpool` failed): its rows are skipped.\n")
    totals = sorted({c * args.envs_per_collector for c in args.collectors})
    out: list[Variant] = []
    for eb in env_backends:
        out += [Variant("local", 0, n, eb) for n in totals]
        for backend in ("ray", "threads"):
            if backend in args.backends:
                out += [Variant(backend, c, c * args.envs_per_collector, eb) for c in args.collectors]
    return out


def med(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan


def fmt(x: float, spec: str = ",.0f") -> str:
    return "—" if math.isnan(x) else format(x, spec)


def report(
    args: argparse.Namespace, runs: dict[Variant, list[Measured]], sizes: dict[Variant, tuple[int, int]]
) -> None:
    preset = get_preset(PRESETS[args.env]).build()
    loop = preset.loop
    period, gradient_steps = schedule(args)
    cmd = "python " + " ".join(sys.argv)
    print(f"`{cmd}`\n")
    print(
        f"`{PRESETS[args.env]}` (batch {loop.batch_size}, {gradient_steps} updates per "
        f"{period} env steps; Ray: `execution.fragment_steps` = {period} env steps per collect "
        f"call; local: `loop.update_period` = {period}), {args.rounds} interleaved rounds of about {args.seconds:g} s per phase, medians; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; Ray {ray.__version__}.\n"
    )
    print(
        "| variant | collectors | envs | env steps/s | ratio to local | updates/s | object-store MB "
        "| broadcast ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    locals_ = {(v.envs, v.env_backend): v for v in runs if v.backend == "local"}
    notes: list[str] = []
    for v, ms in runs.items():
        base = locals_.get((v.envs, v.env_backend))
        ratio = (
            med([m.collect_rate / b.collect_rate for m, b in zip(ms, runs[base], strict=True)])
            if base
            else math.nan
        )
        u_ratio = (
            med([m.update_rate / b.update_rate for m, b in zip(ms, runs[base], strict=True)])
            if base
            else math.nan
        )
        broadcast = (
            f"{fmt(med([m.broadcast_ms for m in ms]), '.1f')} (learner {fmt(med([m.put_ms for m in ms]), '.2f')})"
            if v.backend == "ray"
            else "—"
        )
        print(
            f"| {v.label} | {v.collectors or '—'} | {v.envs} | {fmt(med([m.collect_rate for m in ms]))} "
            f"| {fmt(ratio, '.2f')} | {fmt(med([m.update_rate for m in ms]), ',.1f')} "
            f"| {fmt(med([m.store_peak_mb for m in ms]), ',.1f')} | {broadcast} |"
        )
        r = ms[0].result
        warm, post = sizes[v][0], r.env_steps - sizes[v][0]
        line = (
            f"{v.label}, {v.envs} envs{f', {v.collectors} collectors' if v.collectors else ''}: "
            f"{warm:,} warm-up + {post:,} learning env steps, {r.train_steps:,} updates per run "
            f"({r.train_steps / max(post, 1):.3f} per env step); "
            f"env steps/s past the warm-up {fmt(med([m.post_rate for m in ms]))}"
        )
        if v.backend == "ray":
            b = ms[0].broadcasts
            line += (
                f"; updates/s {fmt(u_ratio, '.2f')}x local's; {b} broadcasts in the run "
                f"({b / max(r.train_steps, 1):.2f} per update: when a collect starts, at "
                f"`execution.weight_publish_period` 1)"
            )
            restarts = sum(m.restarts for m in ms)
            line += f"; {restarts} collector restarts" if restarts else ""
        notes.append(line)
    print()
    print(
        "env steps/s: warm-up env steps per second of `TrainResult.warmup_seconds` (random policy into "
        "the replay; on Ray through the object store into the replay actor); ratio: Ray / local with the "
        "same environments in all, median of per-round ratios; updates/s: `train_steps / train_seconds` "
        "(the learner's train phase); object-store MB: peak in use during the Ray run; broadcast ms: "
        "`ray.put` + `set_weights` on every collector, waited for (the learner's own share, put and "
        "submit, in parentheses)."
    )
    print()
    for line in notes:
        print(f"- {line}")
    print()
    frames = " (an env step is 4 ALE frames)" if args.env == "breakout" else ""
    print(
        f"Published anchors{frames}: Ape-X ≈ 50k frames/s from 360 actors (Horgan et al. 2018, ≈ 140 "
        "frames/s per actor) with the learner on a GPU; RLlib's Ape-X with 8 workers reaches a Breakout "
        "return of ≈ 123 at 10M steps (a learning result: this script measures speed only)."
    )
    print(
        f"\nThis machine has {os.cpu_count()} CPUs: the collectors, the replay actor and the learner "
        "compete for the same cores, so Ray cannot beat the local loop here once collectors + learner "
        "outnumber the cores; scaling shows only with more cores than collectors + 1."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", choices=sorted(PRESETS), default="breakout")
    parser.add_argument("--collectors", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--backends", nargs="+", default=["ray", "threads"], choices=["ray", "threads"], help="besides local"
    )
    parser.add_argument("--envs-per-collector", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="about this long per phase and run")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each variant, interleaved")
    parser.add_argument(
        "--fragment-steps",
        type=int,
        default=None,
        help="loop.update_period (env steps per collect call) with gradient_steps scaled to match; "
        "default: the preset's",
    )
    args = parser.parse_args()
    preset_loop = get_preset(PRESETS[args.env]).build().loop
    if (
        args.fragment_steps is not None
        and (args.fragment_steps * preset_loop.gradient_steps) % preset_loop.update_period
    ):
        parser.error("--fragment-steps x gradient_steps must be a multiple of the preset's update_period")
    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        todo = variants(args)
        sizes: dict[Variant, tuple[int, int]] = {}
        cal_warm, cal_post = CALIBRATION[args.env]
        min_warm = max(cal_warm, 4 * preset_loop.batch_size)
        for v in todo:  # untimed: first-call costs, and the size of the timed runs
            m = run_variant(args, v, cal_warm, cal_post)
            warm = max(min_warm, round(m.collect_rate * args.seconds))
            post = (
                max(cal_post, round(m.post_rate * args.seconds)) if not math.isnan(m.post_rate) else cal_post
            )
            sizes[v] = (warm, post)
            who = f"{v.collectors} collectors" if v.collectors else "1 process"
            print(f"sized {v.label}, {who}, {v.envs} envs: {warm:,} + {post:,} env steps", file=sys.stderr)
        runs: dict[Variant, list[Measured]] = {v: [] for v in todo}
        for r in range(args.rounds):
            for v in todo[r % len(todo) :] + todo[: r % len(todo)]:
                runs[v].append(run_variant(args, v, *sizes[v]))
        report(args, runs, sizes)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
