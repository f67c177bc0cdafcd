"""``agent.train`` updates/s against a minimal hand-written PyTorch DQN update, in the same run.

Both sides update the same network (a ``QNetwork`` with the same initial weights; CartPole:
observations (4,), 2 actions, MLP [256, 256]) with the same loss (Huber, δ = 1), the same
optimizer (Adam, lr 2.3e-3: ``torch.optim.Adam`` as CleanRL writes it for the baseline,
``drivetrain.agents.optimizers.adam`` -- fused -- as the presets build it for the agent) and a
hard target update every 10 updates, on the same data.
The baseline gets what a hand-written replay buffer would give it (NumPy arrays of
``obs, action, reward, done, next_obs``) and converts them with ``torch.from_numpy``;
``agent.train`` gets the sampled windows ``[B, n_step + 1]`` and does everything it
does in training (n-step transitions, boundary masks, statistics, TD errors).
With ``--gradient-clipping 10`` (the cartpole-dqn preset) both clip the global gradient
norm. Blocks of updates alternate between the two and the median block time is
reported (wall clock and process CPU time), so that load from other processes hits
both alike.

    python bench/train_update.py [--threads 1] [--batch-size 64] [--gradient-clipping 10]
                                 [--updates 300] [--blocks 11] [--compile]

``--compile`` builds the agent with ``compile=True`` (the whole update as one
``torch.compile``-d function) and reports the time of its first call (the compilation).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch
from torch.nn import functional

from drivetrain.agents import DQN
from drivetrain.agents.optimizers import adam
from drivetrain.core import specs, types
from drivetrain.networks import QNetwork

OBS_SPEC = specs.ArraySpec((4,), np.float32, "observation")
ACTION_SPEC = specs.BoundedArraySpec((), np.int64, 0, 1, "action")
GAMMA = 0.99
TARGET_PERIOD = 10
LR = 2.3e-3


def make_windows(rng: np.random.Generator, batch: int, length: int, num: int) -> list[types.Trajectory]:
    """``num`` random CartPole-like window batches ``[batch, length]`` with ~2% episode ends."""
    out = []
    for _ in range(num):
        ends = rng.random((batch, length)) < 0.02
        step_type = np.where(np.roll(ends, 1, axis=1), 2, 1).astype(np.int32)
        step_type[:, 0] = 1
        out.append(
            types.Trajectory(
                step_type=step_type,
                observation=rng.standard_normal((batch, length, 4)).astype(np.float32),
                action=rng.integers(0, 2, (batch, length)),
                policy_info={"q_values": np.zeros((batch, length, 2), np.float32)},
                next_step_type=np.where(ends, 2, 1).astype(np.int32),
                reward=np.ones((batch, length), np.float32),
                discount=np.where(ends, 0.0, 1.0).astype(np.float32),
            )
        )
    return out


def to_transitions(w: types.Trajectory) -> tuple[np.ndarray, ...]:
    """The 1-step transitions a hand-written replay would store for the same data."""
    return (
        w.observation[:, 0],
        w.action[:, 0],
        w.reward[:, 0],
        1.0 - w.discount[:, 0],
        w.observation[:, 1],
    )


class Baseline:
    """A minimal CleanRL-style DQN update."""

    def __init__(self, net: torch.nn.Module, max_grad_norm: float | None):
        self.q = net
        self.max_grad_norm = max_grad_norm
        self.target = copy.deepcopy(net)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=LR)
        self.steps = 0

    def update(
        self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, done: np.ndarray, nxt: np.ndarray
    ) -> None:
        obs_t, nxt_t = torch.from_numpy(obs), torch.from_numpy(nxt)
        act_t, rew_t, done_t = torch.from_numpy(act), torch.from_numpy(rew), torch.from_numpy(done)
        with torch.no_grad():
            target = rew_t + GAMMA * (1.0 - done_t) * self.target(nxt_t).max(dim=1).values
        q = self.q(obs_t).gather(1, act_t.unsqueeze(1)).squeeze(1)
        loss = functional.smooth_l1_loss(q, target)
        self.opt.zero_grad()
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), self.max_grad_norm)
        self.opt.step()
        self.steps += 1
        if self.steps % TARGET_PERIOD == 0:
            self.target.load_state_dict(self.q.state_dict())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gradient-clipping", type=float, default=None, help="max global gradient norm")
    parser.add_argument("--updates", type=int, default=300, help="updates per timed block")
    parser.add_argument("--blocks", type=int, default=11, help="timed blocks per side (alternating)")
    parser.add_argument("--compile", action="store_true", help="agent.train runs the compiled update")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    net = QNetwork(OBS_SPEC, ACTION_SPEC, fc_layers=(256, 256), seed=0)
    baseline = Baseline(copy.deepcopy(net), args.gradient_clipping)
    agent_net = copy.deepcopy(net)
    agent = DQN(
        types.time_step_spec(OBS_SPEC),
        ACTION_SPEC,
        agent_net,
        adam(agent_net.parameters(), lr=LR),  # as the presets build it: fused where it can be
        gamma=GAMMA,
        target_update_period=TARGET_PERIOD,
        loss="huber",
        gradient_clipping=args.gradient_clipping,
        seed=0,
        compile=args.compile,
    )
    rng = np.random.default_rng(0)
    windows = make_windows(rng, args.batch_size, agent.train_sequence_length, 64)
    transitions = [to_transitions(w) for w in windows]

    def run_agent() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(args.updates):
            agent.train(windows[i % len(windows)])
        return time.perf_counter() - wall, time.process_time() - cpu

    def run_baseline() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(args.updates):
            baseline.update(*transitions[i % len(transitions)])
        return time.perf_counter() - wall, time.process_time() - cpu

    first = time.perf_counter()
    agent.train(windows[0])  # with --compile: the compilation
    first_call = time.perf_counter() - first
    run_agent(), run_baseline()  # warm-up
    agent_times, baseline_times = [], []
    for _ in range(args.blocks):
        agent_times.append(run_agent())
        baseline_times.append(run_baseline())
    print(
        f"threads={args.threads} batch={args.batch_size} gradient_clipping={args.gradient_clipping} "
        f"network=MLP[256,256] optimizer=Adam loss=huber updates={args.updates}x{args.blocks} blocks "
        f"compile={args.compile} (first agent.train call: {first_call:.2f} s)"
    )
    for i, clock in enumerate(("wall", "cpu")):
        agent_rate = args.updates / statistics.median(t[i] for t in agent_times)
        baseline_rate = args.updates / statistics.median(t[i] for t in baseline_times)
        ratio = agent_rate / baseline_rate
        print(
            f"[{clock:4}] hand-written PyTorch update: {baseline_rate:7.0f} updates/s   "
            f"agent.train: {agent_rate:7.0f} updates/s   ratio {ratio:.2f}x (target >= 0.80x) "
            f"{'OK' if ratio >= 0.8 else 'BELOW TARGET'}"
        )


if __name__ == "__main__":
    main()
