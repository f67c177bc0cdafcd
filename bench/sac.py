"""The ``pendulum-sac`` run and ``agent.train`` vs a minimal hand-written CleanRL-style SAC (issue 12).

Two measurements, each against a hand-written SAC in this file doing the same work:

1. **Whole run.** (a) ``drivetrain``: ``drivetrain.train.train`` on the ``pendulum-sac``
   preset (one Pendulum-v1, 100 steps of uniformly random actions, then one update of batch
   256 per environment step; twin [256, 256] ReLU critics, a [256, 256] squashed-Gaussian
   actor, three Adam optimizers at 1e-3, τ 0.005 every step, automatic temperature from
   α = 1 towards -|A|) with periodic evaluations off (``loop.eval_interval 0``,
   ``loop.stop_at_return None``), no progress bar, TensorBoard off and a checkpoint only at
   the end. Its final greedy evaluation (which cannot be turned off) is timed apart and left
   out of the comparison. (b) ``hand-written``: a CleanRL-style loop (``sac_continuous_action.py``)
   with the same numbers: one ``gymnasium.make("Pendulum-v1")``, NumPy replay arrays
   (``obs, next_obs, action, reward, termination``; a truncation stores the final
   observation, so it bootstraps as drivetrain's does) sampled with ``rng.integers``, the
   same networks (orthogonal init, gain √2 in the torsos, 0.01 for the actor's heads, 1 for
   the critics'; ``log_std`` clamped to [-20, 2]; critics on unit actions), the same losses
   (½ Σ critic MSE, the actor through the critics' minimum with their weights frozen by
   ``requires_grad_``, ``-log α (log π + target entropy)``), the same optimizers and Polyak
   averaging; noise from ``torch.randn``, CleanRL's logging every 100 steps (``.item()``), no
   checkpoints or evaluation. Both take the same environment steps and make the same number
   of updates (the script checks).
2. **Update alone.** ``agent.train`` on one fixed batch of windows ``[256, 2]`` sampled once
   from a drivetrain ``UniformReplay`` filled by the agent's collect policy, vs the
   hand-written update step on the same batch as tensors (converted once), starting from the
   agent's initial weights; blocks of updates alternate and the median µs per update is
   reported. ``agent.train`` does everything it does in training (the windows' 1-step
   transitions, weights over the valid windows, the gradient norms, the loss statistics).

Both run with ``torch.set_num_threads(1)`` (the preset's ``loop.torch_threads``), in one
process, after an untimed warm-up of each, alternating over ``--rounds`` rounds (the order
flips every round). Reported: median wall and CPU seconds, the ratio hand-written /
drivetrain (drivetrain's speed relative to the hand-written loop; target ≥ 0.9 for each
measurement) and where the time goes: for drivetrain the random warm-up, collection and
training phase from ``TrainResult``, and inside training ``agent.train`` (timed by a thin
wrapper) and the rest (sampling the windows, loss statistics). The output is markdown.

The preset runs 20,000 env steps; an update takes milliseconds on one thread, so the default
here is shorter (``--total-steps 20000`` is the preset's whole run).

    python bench/sac.py [--total-steps 3000] [--rounds 3] [--seed 0] [--threads 1]
                        [--updates 25] [--blocks 15] [--compile]

``--compile`` runs drivetrain with ``agent.compile=True`` (each update one compiled
function; the hand-written side stays eager). The untimed warm-up run compiles it once;
every timed run builds a new agent, which traces again and finds the compiled kernels in
torch's on-disk cache (seconds, inside that run's training phase); the update-alone
measurement compiles before its warm-up, so it times the compiled update alone.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import nn

import drivetrain as dt
from drivetrain.agents.continuous import OffPolicyActorCritic
from drivetrain.agents.sac import SAC, make_sac
from drivetrain.replay import UniformReplay, n_step_transitions
from drivetrain.train import apply_overrides, get_preset, train

TARGET = 0.9
PRESET = "pendulum-sac"
LOG_EVERY = 100  # CleanRL's logging period (steps)


# ---------------------------------------------------------------------- (a) drivetrain
@contextlib.contextmanager
def _timed(owner: Any, name: str, totals: dict[str, float], key: str) -> Iterator[None]:
    """Replaces ``owner.name`` (defined in that class) by a wrapper adding its wall time to ``totals[key]``."""
    original = vars(owner)[name]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    setattr(owner, name, wrapper)
    try:
        yield
    finally:
        setattr(owner, name, original)


def drivetrain_run(steps: int, seed: int, threads: int, compile: bool = False) -> dict[str, float]:
    config = apply_overrides(
        get_preset(PRESET).build(),
        [
            ("agent.compile", compile),
            ("loop.total_env_steps", steps),
            ("loop.eval_interval", 0),
            ("loop.stop_at_return", None),
            ("loop.progress_bar", False),
            ("loop.tensorboard", False),
            ("loop.checkpoint_interval", 0),
            ("loop.torch_threads", threads),
            ("seed", seed),
        ],
    )
    parts = {"update": 0.0}
    with _timed(SAC, "train", parts, "update"), tempfile.TemporaryDirectory() as run_dir:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(config, run_dir, verbose=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    wall -= result.eval_seconds
    return {
        "wall": wall,
        "cpu": cpu,  # includes the final evaluation's CPU time (a small share; reported apart)
        "final_eval": result.eval_seconds,
        "warmup": result.warmup_seconds,
        "collect": result.collect_seconds,
        "train": result.train_seconds,
        "update": parts["update"],
        "sample": result.train_seconds - parts["update"],
        "rest": wall - result.warmup_seconds - result.collect_seconds - result.train_seconds,
        "env_steps": result.env_steps,
        "train_steps": result.train_steps,
        "final_return": result.evaluation.mean_return,
    }


# ---------------------------------------------------------------------- (b) hand-written
def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class Actor(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, log_std_min: float, log_std_max: float):
        super().__init__()
        root2 = math.sqrt(2.0)
        self.fc1, self.fc2 = _layer(obs_dim, 256, root2), _layer(256, 256, root2)
        self.fc_mean, self.fc_logstd = _layer(256, act_dim, 0.01), _layer(256, act_dim, 0.01)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.fc2(torch.relu(self.fc1(x))))
        return self.fc_mean(x), self.fc_logstd(x).clamp(self.log_std_min, self.log_std_max)

    def get_action(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterized unit action ``tanh(mean + std ε)`` and its log-probability."""
        mean, log_std = self(x)
        eps = torch.randn_like(mean)
        u = mean + log_std.exp() * eps
        y = torch.tanh(u)
        log_prob = -0.5 * eps * eps - log_std - 0.5 * math.log(2 * math.pi) - torch.log(1 - y * y + 1e-6)
        return y, log_prob.sum(-1)


class SoftQNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        root2 = math.sqrt(2.0)
        self.fc1, self.fc2 = _layer(obs_dim + act_dim, 256, root2), _layer(256, 256, root2)
        self.fc3 = _layer(256, 1, 1.0)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc2(torch.relu(self.fc1(torch.cat([x, a], 1)))))
        return self.fc3(x).squeeze(1)


class HandSAC:
    """CleanRL's SAC update (one actor update per critic update, as the preset)."""

    def __init__(self, obs_dim: int, act_dim: int, agent_config: Any):
        c = agent_config
        self.actor = Actor(obs_dim, act_dim, c.log_std_min, c.log_std_max)
        self.qf1, self.qf2 = SoftQNetwork(obs_dim, act_dim), SoftQNetwork(obs_dim, act_dim)
        self.qf1_target, self.qf2_target = copy.deepcopy(self.qf1), copy.deepcopy(self.qf2)
        self.q_params = [*self.qf1.parameters(), *self.qf2.parameters()]
        self.target_params = [*self.qf1_target.parameters(), *self.qf2_target.parameters()]
        self.q_optimizer = torch.optim.Adam(self.q_params, lr=c.critic_learning_rate, eps=c.adam_eps)
        self.actor_optimizer = torch.optim.Adam(
            self.actor.parameters(), lr=c.actor_learning_rate, eps=c.adam_eps
        )
        self.target_entropy = -float(act_dim)
        self.log_alpha = torch.zeros((), requires_grad=True)
        with torch.no_grad():
            self.log_alpha.fill_(math.log(c.initial_alpha))
        self.a_optimizer = torch.optim.Adam([self.log_alpha], lr=c.alpha_learning_rate, eps=c.adam_eps)
        self.alpha = self.log_alpha.exp().item()
        self.gamma, self.tau = c.gamma, c.tau

    def update(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        next_obs: torch.Tensor,
        dones: torch.Tensor,
        log: bool = False,
    ) -> None:
        """One update on unit actions; ``dones`` are terminations (1.0) as float."""
        with torch.no_grad():
            next_actions, next_log_pi = self.actor.get_action(next_obs)
            min_next = torch.min(
                self.qf1_target(next_obs, next_actions), self.qf2_target(next_obs, next_actions)
            )
            next_q = rewards + (1 - dones) * self.gamma * (min_next - self.alpha * next_log_pi)
        qf1_a, qf2_a = self.qf1(obs, actions), self.qf2(obs, actions)
        qf_loss = 0.5 * (((qf1_a - next_q) ** 2).mean() + ((qf2_a - next_q) ** 2).mean())
        self.q_optimizer.zero_grad(set_to_none=True)
        qf_loss.backward()
        self.q_optimizer.step()

        pi, log_pi = self.actor.get_action(obs)
        for p in self.q_params:  # the actor's gradient only
            p.requires_grad_(False)
        min_qf_pi = torch.min(self.qf1(obs, pi), self.qf2(obs, pi))
        for p in self.q_params:
            p.requires_grad_(True)
        actor_loss = (self.alpha * log_pi - min_qf_pi).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_optimizer.step()

        alpha_loss = (-self.log_alpha * (log_pi.detach() + self.target_entropy)).mean()
        self.a_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.a_optimizer.step()
        self.alpha = self.log_alpha.exp().item()

        with torch.no_grad():
            for t, o in zip(self.target_params, self.q_params, strict=True):
                t.lerp_(o, self.tau)
        if log:  # CleanRL writes these to TensorBoard every 100 steps
            _ = (
                qf1_a.mean().item(),
                qf2_a.mean().item(),
                qf_loss.item(),
                actor_loss.item(),
                alpha_loss.item(),
            )


def baseline_run(steps: int, seed: int) -> dict[str, float]:
    """CleanRL-style SAC with the preset's numbers; times its collection and updates."""
    start, cpu_start = time.perf_counter(), time.process_time()
    preset = get_preset(PRESET).build()
    loop, c = preset.loop, preset.agent
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    env = gymnasium.make("Pendulum-v1")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low, env.action_space.high
    scale, bias = (high - low) / 2.0, (high + low) / 2.0
    sac = HandSAC(obs_dim, act_dim, c)
    capacity = min(preset.replay.capacity, steps)
    b_obs = np.zeros((capacity, obs_dim), np.float32)
    b_next = np.zeros((capacity, obs_dim), np.float32)
    b_act = np.zeros((capacity, act_dim), np.float32)  # environment actions
    b_rew = np.zeros(capacity, np.float32)
    b_done = np.zeros(capacity, np.float32)
    t_scale, t_bias = torch.from_numpy(scale), torch.from_numpy(bias)
    size = pos = 0
    obs, _ = env.reset(seed=seed)
    episode_return, returns = 0.0, []
    updates = 0
    collect_s = update_s = 0.0
    for step in range(steps):
        t0 = time.perf_counter()
        if step < loop.learning_starts:
            action = rng.uniform(low, high).astype(np.float32)
        else:
            with torch.inference_mode():
                unit, _ = sac.actor.get_action(torch.from_numpy(obs).unsqueeze(0))
            action = (unit[0].numpy() * scale + bias).astype(np.float32)
        next_obs, reward, term, trunc, _ = env.step(action)
        b_obs[pos], b_next[pos], b_act[pos], b_rew[pos], b_done[pos] = obs, next_obs, action, reward, term
        pos, size = (pos + 1) % capacity, min(size + 1, capacity)
        episode_return += float(reward)
        if term or trunc:
            returns.append(episode_return)
            episode_return = 0.0
            obs, _ = env.reset()
        else:
            obs = next_obs
        t1 = time.perf_counter()
        collect_s += t1 - t0
        if step >= loop.learning_starts:
            idx = rng.integers(0, size, loop.batch_size)
            sac.update(
                torch.from_numpy(b_obs[idx]),
                (torch.from_numpy(b_act[idx]) - t_bias) / t_scale,
                torch.from_numpy(b_rew[idx]),
                torch.from_numpy(b_next[idx]),
                torch.from_numpy(b_done[idx]),
                log=step % LOG_EVERY == 0,
            )
            updates += 1
            update_s += time.perf_counter() - t1
    env.close()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "wall": wall,
        "cpu": cpu,
        "collect": collect_s,
        "update": update_s,
        "rest": wall - collect_s - update_s,
        "env_steps": steps,
        "train_steps": updates,
        "last_returns": float(np.mean(returns[-10:])) if returns else float("nan"),
    }


# ---------------------------------------------------------------------- 2. the update alone
def update_bench(seed: int, updates: int, blocks: int, compile: bool = False) -> dict[str, Any]:
    """Median µs per update of ``agent.train`` and of ``HandSAC.update`` on one fixed batch."""
    preset = get_preset(PRESET).build()
    env = dt.envs.make("Pendulum-v1", 1, seed=seed)
    config = dataclasses.replace(preset.agent, compile=compile)
    agent = make_sac(config, env.time_step_spec(), env.action_spec(), seed=seed)
    replay = UniformReplay(agent.collect_data_spec, 10_000, 1, seed=seed)
    dt.StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=2_000).run()
    env.close()
    batch, _ = replay.sample(preset.loop.batch_size, num_steps=agent.train_sequence_length)

    obs_dim = int(np.prod(env.time_step_spec().observation.shape))
    act_dim = int(env.action_spec().shape[0])
    hand = HandSAC(obs_dim, act_dim, preset.agent)
    # the agent's initial weights (same layer order: torso, then heads / per critic)
    actor_src = [*agent.networks["actor"].parameters()]
    for dst, src in zip(hand.actor.parameters(), actor_src, strict=True):
        dst.data.copy_(src.data)
    for dst, src in zip(hand.q_params, agent.networks["critic"].parameters(), strict=True):
        dst.data.copy_(src.data)
    for dst, src in zip(hand.target_params, hand.q_params, strict=True):
        dst.data.copy_(src.data)
    nstep = n_step_transitions(batch, preset.agent.gamma, 1)
    scale = agent.scale
    tensors = (
        torch.from_numpy(np.asarray(nstep.observation, np.float32)),
        scale.to_unit(torch.from_numpy(np.asarray(nstep.action, np.float32))),
        torch.from_numpy(np.asarray(nstep.reward, np.float32)),
        torch.from_numpy(np.asarray(nstep.next_observation, np.float32)),
        torch.from_numpy((np.asarray(nstep.discount) == 0).astype(np.float32)),
    )

    parts = {"transitions": 0.0, "step": 0.0, "targets": 0.0}

    def run_agent() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(updates):
            agent.train(batch)
        return time.perf_counter() - start, time.process_time() - cpu

    def run_hand() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(updates):
            hand.update(*tensors, log=i % LOG_EVERY == 0)
        return time.perf_counter() - start, time.process_time() - cpu

    for run in (run_agent, run_hand):  # warm-up
        run()
    ours, base = [], []
    for b in range(blocks):
        for name, run in (
            (("a", run_agent), ("h", run_hand)) if b % 2 == 0 else (("h", run_hand), ("a", run_agent))
        ):
            (ours if name == "a" else base).append(run())
    # where agent.train's time goes (a separate pass, so the wrappers do not touch the comparison)
    with contextlib.ExitStack() as patches:
        patches.enter_context(_timed(OffPolicyActorCritic, "transitions", parts, "transitions"))
        patches.enter_context(_timed(OffPolicyActorCritic, "_step", parts, "step"))
        patches.enter_context(_timed(OffPolicyActorCritic, "update_targets", parts, "targets"))
        wall, _ = run_agent()
    per = 1e6 / updates
    return {
        "agent_us": statistics.median(w for w, _ in ours) * per,
        "hand_us": statistics.median(w for w, _ in base) * per,
        "agent_cpu_us": statistics.median(c for _, c in ours) * per,
        "hand_cpu_us": statistics.median(c for _, c in base) * per,
        "parts_us": {k: v * per for k, v in parts.items()},
        "profiled_us": wall * per,
        "num_valid": int(nstep.valid.sum()),
    }


# ---------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--total-steps", type=int, default=3_000, help="env steps of each run (the preset: 20,000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant, interleaved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (the preset: 1)")
    parser.add_argument("--updates", type=int, default=25, help="updates per block (update alone)")
    parser.add_argument("--blocks", type=int, default=15, help="blocks of each (update alone), interleaved")
    parser.add_argument("--compile", action="store_true", help="agent.compile=True (the compiled update)")
    args = parser.parse_args()
    learning_starts = get_preset(PRESET).build().loop.learning_starts
    if args.total_steps <= learning_starts:
        parser.error(f"--total-steps must exceed the preset's learning_starts ({learning_starts})")
    torch.set_num_threads(args.threads)
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    runs: list[tuple[str, Callable[[int], dict[str, float]]]] = [
        ("drivetrain", lambda steps: drivetrain_run(steps, args.seed, args.threads, args.compile)),
        ("hand-written", lambda steps: baseline_run(steps, args.seed)),
    ]
    for _, run in runs:  # untimed warm-up: lazy imports (plotting, checkpoints) and first calls
        run(learning_starts + 50)
    for r in range(args.rounds):
        for name, run in runs if r % 2 == 0 else runs[::-1]:
            (ours if name == "drivetrain" else base).append(run(args.total_steps))
    upd = update_bench(args.seed, args.updates, args.blocks, args.compile)

    def med(results: list[dict[str, float]], key: str) -> float:
        return statistics.median(x[key] for x in results)

    steps, n_updates = med(ours, "env_steps"), med(ours, "train_steps")
    if (med(base, "env_steps"), med(base, "train_steps")) != (steps, n_updates):
        print(
            f"warning: the work differs: env steps {steps} / {med(base, 'env_steps')}, updates "
            f"{n_updates} / {med(base, 'train_steps')} (drivetrain / hand-written)"
        )
    ratio_wall = med(base, "wall") / med(ours, "wall")
    ratio_cpu = med(base, "cpu") / med(ours, "cpu")
    per_round = [b["wall"] / o["wall"] for o, b in zip(ours, base, strict=True)]
    ratio_update = upd["hand_us"] / upd["agent_us"]

    def verdict(x: float) -> str:
        return "meets" if x >= TARGET else "misses"

    print(
        f"`{PRESET}`, {int(steps):,} env steps, {int(n_updates):,} updates of batch 256, torch threads "
        f"{args.threads}, medians of {args.rounds} interleaved rounds (`python bench/sac.py --total-steps "
        f"{args.total_steps} --rounds {args.rounds}{' --compile' if args.compile else ''}`)"
        + (": drivetrain with `agent.compile=True`" if args.compile else "")
    )
    print()
    print(
        "| variant | wall s | CPU s | env steps/s (wall) | warm-up + collection s | updates s¹ | other s² |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    dt_collect = med(ours, "warmup") + med(ours, "collect")
    print(
        f"| drivetrain (`train`) | {med(ours, 'wall'):.2f} | {med(ours, 'cpu'):.2f} | "
        f"{steps / med(ours, 'wall'):,.0f} | {dt_collect:.2f} | {med(ours, 'train'):.2f} | "
        f"{med(ours, 'rest'):.2f} |"
    )
    print(
        f"| hand-written CleanRL-style | {med(base, 'wall'):.2f} | {med(base, 'cpu'):.2f} | "
        f"{steps / med(base, 'wall'):,.0f} | {med(base, 'collect'):.2f} | {med(base, 'update'):.2f} | "
        f"{med(base, 'rest'):.2f} |"
    )
    print(
        f"| **ratio hand-written / drivetrain** | **{ratio_wall:.2f}×** | {ratio_cpu:.2f}× | | "
        f"{med(base, 'collect') / dt_collect:.2f}× | {med(base, 'update') / med(ours, 'train'):.2f}× | |"
    )
    print()
    print(
        f"Whole run: drivetrain at **{ratio_wall:.2f}×** the hand-written loop's speed (wall; per round "
        f"{', '.join(f'{x:.2f}' for x in per_round)}), {ratio_cpu:.2f}× in CPU time: {verdict(ratio_wall)} "
        f"the {TARGET}× target. drivetrain's wall time leaves out its final greedy evaluation "
        f"({med(ours, 'final_eval'):.2f} s; it cannot be turned off and the hand-written loop has none); "
        "its CPU time includes it."
    )
    print()
    print(
        "¹ drivetrain: the training phase (`TrainResult.train_seconds`: sampling the windows and "
        "`agent.train`); hand-written: sampling and the update. "
        "² setup, config, metrics, `progress.csv` and the final checkpoint."
    )
    print()
    print("Where drivetrain's time goes (median seconds, share of the wall time):")
    print()
    print("| part | s | share | µs per env step or update |")
    print("| --- | ---: | ---: | ---: |")
    wall = med(ours, "wall")
    rows = [
        ("random warm-up (`learning_starts` steps)", med(ours, "warmup"), learning_starts),
        (
            "collection (driver: policy, environment, replay, metrics)",
            med(ours, "collect"),
            steps - learning_starts,
        ),
        ("training phase (`source.batches` + `agent.train`)", med(ours, "train"), n_updates),
        ("&nbsp;&nbsp;`agent.train` (updates)", med(ours, "update"), n_updates),
        ("&nbsp;&nbsp;rest: sampling windows, loss statistics", med(ours, "sample"), n_updates),
        ("setup, logging, final checkpoint", med(ours, "rest"), 0),
        ("whole run (final evaluation left out)", wall, 0),
    ]
    for label, seconds, count in rows:
        per = f"{1e6 * seconds / count:,.0f}" if count else ""
        print(f"| {label} | {seconds:.3f} | {100 * seconds / wall:.1f} % | {per} |")
    print(
        f"\nHand-written per env step: collection {1e6 * med(base, 'collect') / steps:,.0f} µs, per update "
        f"(sampling included) {1e6 * med(base, 'update') / n_updates:,.0f} µs."
    )
    print()
    print(
        f"Update alone (one fixed batch of 256 windows, {upd['num_valid']} valid; median of {args.blocks} "
        f"interleaved blocks of {args.updates} updates):"
    )
    print()
    print("| variant | µs / update (wall) | µs / update (CPU) |")
    print("| --- | ---: | ---: |")
    print(f"| drivetrain `agent.train` | {upd['agent_us']:,.0f} | {upd['agent_cpu_us']:,.0f} |")
    print(f"| hand-written update | {upd['hand_us']:,.0f} | {upd['hand_cpu_us']:,.0f} |")
    print(
        f"| **ratio hand-written / drivetrain** | **{ratio_update:.2f}×** | "
        f"{upd['hand_cpu_us'] / upd['agent_cpu_us']:.2f}× |"
    )
    print()
    p = upd["parts_us"]
    rest = upd["profiled_us"] - sum(p.values())
    parts = (
        f"the compiled update and its statistics {rest:,.0f} µs."
        if args.compile
        else f"the three `_step`s (backward, grad norm, Adam) {p['step']:,.0f} µs, `update_targets` "
        f"{p['targets']:,.0f} µs, the rest (forward passes, losses, statistics) {rest:,.0f} µs."
    )
    print(
        f"Update alone: drivetrain at **{ratio_update:.2f}×** the hand-written update's speed: "
        f"{verdict(ratio_update)} the {TARGET}× target. Inside `agent.train` (one timed pass, "
        f"{upd['profiled_us']:,.0f} µs/update): `transitions` (windows -> tensors) {p['transitions']:,.0f} µs, "
        + parts
    )
    print()
    print(
        f"Final greedy return of drivetrain (median): {med(ours, 'final_return'):.1f}; hand-written: mean "
        f"training return of its last 10 episodes {med(base, 'last_returns'):.1f} (a sanity check, not a "
        "learning benchmark)."
    )


if __name__ == "__main__":
    main()
