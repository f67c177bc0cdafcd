"""Where does ``agent.compile`` pay? Each preset's update eager and compiled, and its compilation.

For every preset named, three fresh processes train it for about ``--updates`` updates (a
shortened run: evaluation, checkpoints, TensorBoard and the progress bar off; the warm-up cut
to ``--warmup`` env steps, which changes nothing of an update's cost; 1 torch thread):

- eager (``agent.compile=False``);
- compiled with an empty inductor cache (``TORCHINDUCTOR_CACHE_DIR`` a new directory: the
  first run of this network on a machine);
- compiled again with that cache (every later run on the machine).

Each reports its train seconds (sampling and ``agent.train``) and updates; a compiled run's
compilation (``torch._dynamo``'s ``compile_inner`` time, the first update's) is taken out of
its train seconds to give the time per update. The break-even is the compilation divided by
what an update saves; the preset pays ("yes") when its whole run (``total_env_steps`` as the
preset sets it) makes at least ``MARGIN`` times that many updates with an empty cache (so that
the noise of one measurement cannot decide it), "with a warm cache" when only a warm cache
does. The presets that pay set ``agent.compile="auto"`` (``docs/benchmarks.md``).

    python bench/compile_pays.py [--presets lunarlander-ppo pendulum-sac ...] [--updates 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

MARGIN = 1.5
DEFAULT_PRESETS = (
    "cartpole-dqn",
    "cartpole-ppo",
    "acrobot-ppo",
    "cartpole-masked-ppo",
    "cartpole-masked-rdqn",
    "pendulum-ppo",
    "lunarlander-ppo",
    "pendulum-sac",
    "pendulum-td3",
    "lunarlander-continuous-sac",
    "halfcheetah-sac",
    "halfcheetah-td3",
    "breakout-dqn-nature",
)


def planned_updates(config: Any, total_env_steps: int | None = None) -> int:
    """Updates (train steps) a run of ``config`` makes in ``total_env_steps`` (the preset's by default)."""
    loop, agent = config.loop, config.agent
    total = loop.total_env_steps if total_env_steps is None else total_env_steps
    if hasattr(agent, "num_minibatches"):  # PPO: epochs x minibatches per rollout of all environments
        rollout = config.env.num_envs * agent.rollout_steps
        return (total // rollout) * agent.num_epochs * agent.num_minibatches
    return max(0, (total - loop.learning_starts) // loop.update_period) * loop.gradient_steps


def shortened(preset: str, updates: int, warmup: int, compile: bool) -> Any:
    """The preset with a run of about ``updates`` updates (see the module docstring)."""
    from drivetrain.train import apply_overrides, get_preset

    config = get_preset(preset).build()
    overrides: list[tuple[str, Any]] = [
        ("eval_interval", 0),
        ("stop_at_return", None),
        ("progress_bar", False),
        ("tensorboard", False),
        ("checkpoint_interval", 0),
        ("final_eval_episodes", 1),
        ("torch_threads", 1),
        ("compile", compile),
    ]
    if hasattr(config.agent, "num_minibatches"):
        rollout = config.env.num_envs * config.agent.rollout_steps
        per_rollout = config.agent.num_epochs * config.agent.num_minibatches
        steps = max(1, -(-updates // per_rollout)) * rollout
    else:
        learning_starts = min(config.loop.learning_starts, warmup)
        overrides.append(("learning_starts", learning_starts))
        periods = -(-updates // config.loop.gradient_steps)
        steps = learning_starts + periods * config.loop.update_period
    overrides.append(("total_env_steps", steps))
    if getattr(config, "replay", None) is not None and not hasattr(config.agent, "num_minibatches"):
        overrides.append(("replay.capacity", max(steps, 10_000)))  # the Atari presets' 1M: memory
    return apply_overrides(config, overrides)


def child(preset: str, updates: int, warmup: int, compile: bool) -> None:
    """One run; prints ``RESULT {json}``."""
    from torch._dynamo.utils import compilation_time_metrics

    from drivetrain.train import train

    config = shortened(preset, updates, warmup, compile)
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(config, run_dir, verbose=False)
    compiled = float(sum(compilation_time_metrics.get("_compile.compile_inner", [])))
    out = {"train_seconds": result.train_seconds, "updates": result.train_steps, "compile_seconds": compiled}
    print("RESULT " + json.dumps(out), flush=True)


def run(preset: str, updates: int, warmup: int, compile: bool, cache: str) -> dict[str, float]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", TORCHINDUCTOR_CACHE_DIR=cache)
    command = [sys.executable, __file__, "--child", preset, str(updates), str(warmup), str(int(compile))]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return dict(json.loads(out.stdout.split("RESULT ", 1)[1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_PRESETS))
    parser.add_argument("--updates", type=int, default=2000, help="updates per measured run (about)")
    parser.add_argument("--warmup", type=int, default=1000, help="env steps of random warm-up at most")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, updates, warmup, compile = args.child
        child(preset, int(updates), int(warmup), bool(int(compile)))
        return

    from drivetrain.train import get_preset

    print(f"`python {' '.join(sys.argv)}`; load average {os.getloadavg()[0]:.1f}\n")
    print(
        "| preset | eager ms/update | compiled ms/update | speed-up | compilation s: empty cache / warm "
        "| pays from (updates): empty / warm | the preset's updates | pays |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as cache:
            eager = run(preset, args.updates, args.warmup, False, cache)
            cold = run(preset, args.updates, args.warmup, True, cache)
            warm = run(preset, args.updates, args.warmup, True, cache)
        t_eager = eager["train_seconds"] / eager["updates"]
        t_comp = (warm["train_seconds"] - warm["compile_seconds"]) / warm["updates"]
        saved = t_eager - t_comp
        total = planned_updates(get_preset(preset).build())

        def pays_from(seconds: float, saved: float = saved) -> float:
            return seconds / saved if saved > 0 else float("inf")

        cold_from, warm_from = pays_from(cold["compile_seconds"]), pays_from(warm["compile_seconds"])
        verdict = (
            "yes"
            if total >= MARGIN * cold_from
            else ("with a warm cache" if total >= MARGIN * warm_from else "no")
        )
        print(
            f"| `{preset}` | {t_eager * 1e3:.2f} | {t_comp * 1e3:.2f} | {t_eager / t_comp:.2f}x | "
            f"{cold['compile_seconds']:.1f} / {warm['compile_seconds']:.1f} | {cold_from:,.0f} / {warm_from:,.0f} | "
            f"{total:,} | {verdict} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
