"""drivetrain against Stable-Baselines3 on the same settings and seeds: wall time and returns (issue 14).

Stable-Baselines3 is not a dependency: the script makes its own virtual environment
(``--venv``, default ``bench/.peers-venv``, ignored by git) with ``torch==2.13.0`` (the CPU
build on this machine), ``stable-baselines3`` and the Gymnasium / ale-py versions installed
here, the first time it runs. Every run is a fresh process, timed from the outside (so both
sides pay their imports), the two libraries alternating run by run; each uses the same number of torch threads (``--threads``).

Tasks (rl-baselines3-zoo's settings, which the presets follow):

- ``dqn``: ``cartpole-dqn`` (50k env steps, the whole budget: no early stop), SB3 ``DQN`` with
  rl-zoo's CartPole-v1 hyperparameters;
- ``ppo``: ``cartpole-ppo`` (100k env steps, 8 envs), SB3 ``PPO`` with rl-zoo's CartPole-v1 ones;
- ``sac``: ``pendulum-sac`` (20k env steps), SB3 ``SAC`` with rl-zoo's Pendulum-v1 ones;
- ``atari``: DQN with the Nature CNN on Breakout, 1 environment, ``--atari-steps`` agent steps,
  agent steps per second. Both sides on SB3's Atari DQN settings: ``breakout-dqn-nature``'s
  preprocessing (SB3's ``AtariWrapper``: 30 no-op starts, a lost life terminal for training
  and followed by FIRE, rewards clipped to [-1, 1]) with SB3's learner: Adam (lr 2.5e-4,
  ε 1e-8), gradients clipped to a global norm of 10, Huber loss, γ 0.99, batch 32, a replay
  of 10k, updates every 4 steps after 1,000 (a quarter of a shorter budget), the target
  network copied every 1,000 agent steps (SB3 counts env steps, drivetrain its 250 updates),
  ε-greedy at 0.05 once learning starts (SB3's schedule reaches 0.05 at 10 % of the budget,
  the end of the warm-up).

Returns: the greedy mean over 10 episodes after training (drivetrain's ``eval.json``; SB3's
``evaluate_policy(deterministic=True)`` on a fresh environment seeded alike), every seed
side by side. The target of issue 14: drivetrain's wall time ≤ 0.5× SB3's with returns no
worse; on Atari ≥ 1.5× SB3's agent steps per second.

    python bench/peers.py [--tasks dqn ppo sac atari] [--seeds 0 1 2] [--atari-steps 10000]
                          [--venv bench/.peers-venv] [--scale 1.0] [--compile] [--threads 1]
                          [--atari-execution threads]

``--atari-execution threads`` (the default) runs drivetrain's Atari task with collection beside
learning: ``--execution.backend threads --execution.collectors 1 --execution.fragment_steps 32``
(one collector thread steps the environment and acts with weights at most one fragment old
while the learner trains; the updates per env step stay the config's); ``local`` runs the
single-process loop.

``--threads`` is both sides' torch intra-op threads (``torch.set_num_threads``,
``OMP_NUM_THREADS``, drivetrain's ``loop.torch_threads``); 1 by default.

``--compile`` runs drivetrain with ``agent.compile=True``; its wall time includes the
compilation (torch's on-disk cache, warm after the first run on a machine, shortens it).

``--scale`` multiplies every budget (a quick check of the script: ``--scale 0.05``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

SB3_VERSION = "2.9.2"

SB3_SCRIPT = r"""
import json, sys, time
import gymnasium as gym, numpy as np, torch
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.env_util import make_vec_env, make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack
task, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]))
atari_starts = min(1000, steps // 4)
def lin(v):
    return lambda progress: progress * v
if task == "dqn":
    env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
    model = DQN("MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
                gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
                policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu")
    eval_env = gym.make("CartPole-v1")
elif task == "ppo":
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                n_epochs=20, ent_coef=0.0, learning_rate=lin(1e-3), clip_range=lin(0.2),
                seed=seed, device="cpu")
    eval_env = gym.make("CartPole-v1")
elif task == "sac":
    env = make_vec_env("Pendulum-v1", n_envs=1, seed=seed)
    model = SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, device="cpu")
    eval_env = gym.make("Pendulum-v1")
else:
    import ale_py
    gym.register_envs(ale_py)
    env = VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=1, seed=seed), 4)
    model = DQN("CnnPolicy", env, learning_rate=2.5e-4, batch_size=32, buffer_size=10_000,
                learning_starts=atari_starts, train_freq=4, gradient_steps=1, target_update_interval=1000,
                optimize_memory_usage=False, seed=seed, device="cpu")
    eval_env = None
start = time.perf_counter()
model.learn(total_timesteps=steps)
learn = time.perf_counter() - start
result = {"learn_seconds": learn}
if eval_env is not None:
    eval_env.reset(seed=seed + 1000)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    result["mean_return"] = float(mean)
print("RESULT " + json.dumps(result))
"""

PRESETS = {
    "dqn": "cartpole-dqn",
    "ppo": "cartpole-ppo",
    "sac": "pendulum-sac",
    "atari": "breakout-dqn-nature",
}
BUDGETS = {"dqn": 50_000, "ppo": 100_000, "sac": 20_000}


def drivetrain_command(
    task: str,
    seed: int,
    steps: int,
    run_dir: str,
    compile: bool = False,
    threads: int = 1,
    atari_execution: str = "threads",
) -> list[str]:
    overrides = [
        "--seed", str(seed), "--loop.total_env_steps", str(steps), "--loop.eval_interval", "0",
        "--loop.stop_at_return", "none", "--loop.torch_threads", str(threads),
    ]  # fmt: skip
    overrides += ["--agent.compile", "true" if compile else "false"]  # presets may say "auto"
    if task == "atari":  # SB3's DQN on the Nature preset's preprocessing (the module's docstring)
        overrides += [
            "--loop.learning_starts", str(min(1000, steps // 4)), "--loop.batch_size", "32",
            "--replay.capacity", "10000", "--agent.target_update_period", "250",
            "--agent.optimizer", "adam", "--agent.learning_rate", "2.5e-4", "--agent.adam_eps", "1e-8",
            "--agent.gradient_clipping", "10", "--agent.epsilon_start", "0.05", "--agent.epsilon_end", "0.05",
            "--env.atari.fire_on_life_loss", "true", "--loop.final_eval_episodes", "1",
            "--env.atari.max_episode_steps", "2000", "--loop.checkpoint_interval", "0",
        ]  # fmt: skip
        if atari_execution == "threads":  # collection beside learning
            overrides += [
                "--execution.backend", "threads", "--execution.collectors", "1",
                "--execution.fragment_steps", "32",
            ]  # fmt: skip
    return [
        sys.executable,
        "-m",
        "drivetrain",
        "train",
        PRESETS[task],
        "--run-dir",
        run_dir,
        "--quiet",
        *overrides,
    ]


def make_venv(venv: Path) -> Path:
    """The peers' interpreter: ``venv`` made and filled on first use."""
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"making {venv} (torch 2.13.0 CPU, stable-baselines3 {SB3_VERSION}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"{name}=={metadata.version(name)}" for name in ("gymnasium", "ale-py", "numpy")]
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, f"stable-baselines3=={SB3_VERSION}", "opencv-python-headless", *pins], check=True)
    return python


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - start, out.stdout


def run_pair(
    task: str,
    seed: int,
    steps: int,
    peers: Path,
    env: dict[str, str],
    compile: bool = False,
    threads: int = 1,
    atari_execution: str = "threads",
) -> dict[str, float]:
    """One run of each (in an order that flips with the seed); wall seconds and returns."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sides = ["drivetrain", "sb3"] if seed % 2 == 0 else ["sb3", "drivetrain"]
        for side in sides:
            if side == "drivetrain":
                wall, _ = timed(
                    drivetrain_command(task, seed, steps, f"{tmp}/run", compile, threads, atari_execution),
                    env,
                )
                evaluation = json.loads(Path(f"{tmp}/run/eval.json").read_text())
                out["drivetrain_wall"] = wall
                out["drivetrain_return"] = evaluation["mean_return"]
            else:
                wall, stdout = timed(
                    [str(peers), "-c", SB3_SCRIPT, task, str(seed), str(steps), str(threads)], env
                )
                result = json.loads(stdout.split("RESULT ", 1)[1])
                out["sb3_wall"] = wall
                out["sb3_return"] = result.get("mean_return", float("nan"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=["dqn", "ppo", "sac", "atari"], choices=sorted(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--atari-steps", type=int, default=10_000)
    parser.add_argument("--venv", type=Path, default=Path(__file__).parent / ".peers-venv")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every budget (quick checks)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="drivetrain with agent.compile=True (its wall time includes the compilation)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, both sides")
    parser.add_argument(
        "--atari-execution",
        choices=["threads", "local"],
        default="threads",
        help="drivetrain's Atari run: collection beside learning (threads) or the single-process loop",
    )
    args = parser.parse_args()
    peers = make_venv(args.venv)
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, MPLBACKEND="Agg")
    print(f"`python {' '.join(sys.argv)}`; {os.cpu_count()} CPUs; stable-baselines3 {SB3_VERSION}\n")
    print(
        "| task | seed | drivetrain s | SB3 s | time ratio (drivetrain / SB3) | drivetrain return | SB3 return |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for task in args.tasks:
        steps = int((args.atari_steps if task == "atari" else BUDGETS[task]) * args.scale)
        ratios = []
        for seed in args.seeds:
            r = run_pair(task, seed, steps, peers, env, args.compile, args.threads, args.atari_execution)
            ratios.append(r["drivetrain_wall"] / r["sb3_wall"])
            print(
                f"| {task} ({steps:,} steps) | {seed} | {r['drivetrain_wall']:.1f} | {r['sb3_wall']:.1f} | "
                f"{ratios[-1]:.2f} | {r['drivetrain_return']:.1f} | {r['sb3_return']:.1f} |",
                flush=True,
            )
        load = os.getloadavg()[0]
        print(
            f"| {task}: median time ratio | | | | **{statistics.median(ratios):.2f}** | | load {load:.1f} |"
        )


if __name__ == "__main__":
    main()
