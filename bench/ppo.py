"""The whole ``cartpole-ppo`` training run vs a minimal hand-written CleanRL-style PPO (issue 11).

Two variants do the same work for the same budget of environment steps:

(a) ``drivetrain``: ``drivetrain.train.train`` on the ``cartpole-ppo`` preset (8 CartPole-v1
    environments, rollouts of 32 steps, GAE(0.8, 0.98), 20 epochs x 1 minibatch, Adam 1e-3
    and clip 0.2 annealed linearly), with periodic evaluations off (``loop.eval_interval 0``,
    ``loop.stop_at_return None``), no progress bar, TensorBoard off and a checkpoint only at
    the end: collection, GAE, updates, metrics, ``progress.csv``, config and the final
    checkpoint. Its final greedy evaluation (which cannot be turned off) is timed apart and
    left out of the comparison.
(b) ``hand-written``: a minimal CleanRL-style PPO in this file: a
    ``gymnasium.vector.SyncVectorEnv`` of 8 CartPole-v1 (autoreset NEXT_STEP, the mode
    drivetrain's environments follow), the same networks (two [64, 64] tanh MLPs,
    orthogonal init, gains √2 / 0.01 / 1), the same rollouts (each until it holds 256 real
    environment steps: like drivetrain's driver, the reset steps of NEXT_STEP autoreset,
    whose action is ignored, do not count; so both take the same env steps and make the
    same number of updates, which the script checks), GAE (a truncated episode
    bootstraps from the value of its final observation; the reset steps of NEXT_STEP
    autoreset are not trained on), loss (clipped surrogate, unclipped value loss x 0.5,
    per-minibatch advantage normalization, entropy computed), Adam (eps 1e-5) with the
    learning rate and the clip ratio annealed once per rollout over the same planned number of
    rollouts, gradient clipping at 0.5 and CleanRL's per-update diagnostics (approximate KL,
    clip fraction) and episode returns. NumPy rollout buffers, converted to tensors once
    per rollout; no logging, checkpoints or evaluation.

Both run with ``torch.set_num_threads(1)`` (the preset's ``loop.torch_threads``), in one
process, after an untimed warm-up run of each (lazy imports, first calls), alternating over
``--rounds`` rounds (the order flips every round, so machine noise hits both alike). Reported: median wall and CPU seconds, the ratio hand-written /
drivetrain (the speed of drivetrain relative to the hand-written loop; target ≥ 0.9), and
where the time goes: collection, GAE and updates of both; for drivetrain collection and
training from ``TrainResult``, and inside training the rollout's gather, ``agent.prepare``
(of which ``drivetrain.replay.advantages.gae``), ``agent.train``, the release and the rest
(minibatch indexing, loss bookkeeping), timed by thin wrappers around those functions
(a few microseconds per call). The output is markdown for ``docs/benchmarks.md``.

    python bench/ppo.py [--total-steps 100000] [--rounds 3] [--seed 0] [--threads 1] [--compile]

``--compile`` runs drivetrain with ``agent.compile=True`` (each minibatch update one
compiled function). The untimed warm-up run then compiles it once, and each timed run
finds the compiled kernels in torch's on-disk cache and only traces again, which its wall
time (and its updates' time) includes: the first run on a new machine pays the full
compilation once.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from torch import nn
from torch.nn import functional

import drivetrain.agents.ppo.agent as ppo_agent
from drivetrain.agents.ppo import PPO
from drivetrain.replay.rollout import RolloutBuffer
from drivetrain.train import apply_overrides, get_preset, train

TARGET = 0.9
PRESET = "cartpole-ppo"


# ---------------------------------------------------------------------- (a) drivetrain
@contextlib.contextmanager
def _timed(owner: Any, name: str, totals: dict[str, float], key: str) -> Iterator[None]:
    """Replaces ``owner.name`` (a class's or a module's) by a wrapper adding its wall time to
    ``totals[key]``; restores it."""
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
            ("loop.total_env_steps", steps),
            ("loop.eval_interval", 0),
            ("loop.stop_at_return", None),
            ("loop.progress_bar", False),
            ("loop.tensorboard", False),
            ("loop.checkpoint_interval", 0),
            ("loop.torch_threads", threads),
            ("agent.compile", compile),
            ("seed", seed),
        ],
    )
    parts = dict.fromkeys(["gather", "prepare", "gae", "update", "release", "gather_in_release"], 0.0)
    release = RolloutBuffer.release

    def release_gathers(self: RolloutBuffer, trained_now: np.ndarray) -> None:
        before = parts["gather"]  # release() gathers the rollout again: counted in release only
        release(self, trained_now)
        parts["gather_in_release"] += parts["gather"] - before

    with contextlib.ExitStack() as patches:
        # RolloutSource holds the bound method agent.prepare, so the class is patched, not the agent
        patches.enter_context(_timed(PPO, "prepare", parts, "prepare"))
        patches.enter_context(_timed(PPO, "train", parts, "update"))
        patches.enter_context(_timed(ppo_agent, "gae", parts, "gae"))  # the name prepare calls
        patches.enter_context(_timed(RolloutBuffer, "gather", parts, "gather"))
        patches.callback(setattr, RolloutBuffer, "release", release)
        RolloutBuffer.release = release_gathers  # type: ignore[method-assign]
        patches.enter_context(_timed(RolloutBuffer, "release", parts, "release"))
        with tempfile.TemporaryDirectory() as run_dir:
            start, cpu_start = time.perf_counter(), time.process_time()
            result = train(config, run_dir, verbose=False)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    train_s = result.train_seconds
    return {
        "wall": wall - result.eval_seconds,
        "cpu": cpu,  # includes the final evaluation's CPU time (a small share; reported apart)
        "final_eval": result.eval_seconds,
        "collect": result.collect_seconds,
        "train": train_s,
        "gather": parts["gather"] - parts["gather_in_release"],
        "prepare": parts["prepare"],
        "gae": parts["gae"],
        "update": parts["update"],
        "release": parts["release"],
        "rest": wall - result.eval_seconds - result.collect_seconds - train_s,
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


def _mlp(n_in: int, n_out: int, out_gain: float) -> nn.Sequential:
    root2 = math.sqrt(2.0)
    return nn.Sequential(
        _layer(n_in, 64, root2), nn.Tanh(), _layer(64, 64, root2), nn.Tanh(), _layer(64, n_out, out_gain)
    )


def baseline_run(steps: int, seed: int) -> dict[str, float]:
    """A CleanRL-style PPO with the preset's numbers; times its collection, GAE and updates."""
    start, cpu_start = time.perf_counter(), time.process_time()
    c = get_preset(PRESET).build().agent
    n_envs, n_steps = 8, c.rollout_steps
    gamma, lam = c.gamma, c.gae_lambda
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    envs = SyncVectorEnv(
        [lambda: gymnasium.make("CartPole-v1") for _ in range(n_envs)], autoreset_mode=AutoresetMode.NEXT_STEP
    )
    obs, _ = envs.reset(seed=seed)
    obs_dim, n_actions = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    actor, critic = _mlp(obs_dim, n_actions, 0.01), _mlp(obs_dim, 1, 1.0)
    params = [*actor.parameters(), *critic.parameters()]
    opt = torch.optim.Adam(params, lr=c.learning_rate, eps=c.adam_eps)
    period = n_steps * n_envs
    planned = math.ceil(steps / period)  # rollouts: the annealing steps once per rollout
    # rollout buffers [T, E]; like drivetrain's driver, a rollout runs until it holds `period`
    # real steps: the reset steps of NEXT_STEP autoreset (the action ignored) do not count
    cap = 2 * n_steps
    buf_obs = np.zeros((cap, n_envs, obs_dim), np.float32)
    buf_act = np.zeros((cap, n_envs), np.int64)
    buf_logp, buf_val, buf_rew, buf_term, buf_done = (np.zeros((cap, n_envs), np.float32) for _ in range(5))
    buf_reset = np.zeros((cap, n_envs), bool)
    reset_next = np.zeros(n_envs, bool)
    ep_return, ep_length = np.zeros(n_envs), np.zeros(n_envs, np.int64)
    episode_returns: list[float] = []
    updates = rollouts = 0
    env_steps = 0
    collect_s = gae_s = update_s = 0.0
    while env_steps < steps:
        # ---- collection
        t0 = time.perf_counter()
        target, real, t = min(period, steps - env_steps), 0, 0
        while real < target:
            if t == cap:  # a rollout with many episode ends: grow the buffers
                cap *= 2
                buf_obs, buf_act, buf_logp, buf_val, buf_rew, buf_term, buf_done, buf_reset = (
                    np.resize(b, (cap, *b.shape[1:]))
                    for b in (buf_obs, buf_act, buf_logp, buf_val, buf_rew, buf_term, buf_done, buf_reset)
                )
            with torch.inference_mode():
                o = torch.from_numpy(obs)
                log_p = functional.log_softmax(actor(o), dim=-1)
                action = torch.multinomial(log_p.exp(), 1)
                logp = log_p.gather(1, action).squeeze(1)
                value = critic(o).squeeze(1)
            act = action.squeeze(1).numpy()
            buf_obs[t], buf_act[t], buf_logp[t], buf_val[t] = obs, act, logp.numpy(), value.numpy()
            buf_reset[t] = reset_next
            obs, reward, term, trunc, _ = envs.step(act)
            done = term | trunc
            buf_rew[t], buf_term[t], buf_done[t] = reward, term, done
            ep_return += reward
            ep_length += ~reset_next
            if done.any():
                episode_returns.extend(ep_return[done].tolist())
                ep_return[done], ep_length[done] = 0.0, 0
            real += n_envs - int(reset_next.sum())
            reset_next = done
            t += 1
        t_len = t
        with torch.inference_mode():
            next_value = critic(torch.from_numpy(obs)).squeeze(1).numpy()
        env_steps += real
        t1 = time.perf_counter()
        # ---- GAE(λ); a truncation bootstraps from the final observation's value (the next item's)
        adv = np.zeros((t_len, n_envs), np.float32)
        carry = np.zeros(n_envs, np.float32)
        for t in range(t_len - 1, -1, -1):
            v_next = next_value if t == t_len - 1 else buf_val[t + 1]
            delta = buf_rew[t] + gamma * (1.0 - buf_term[t]) * v_next - buf_val[t]
            carry = delta + gamma * lam * (1.0 - buf_done[t]) * carry
            adv[t] = carry
        ret = adv + buf_val[:t_len]
        t2 = time.perf_counter()
        # ---- updates: tensors once per rollout, then epochs x minibatches of the valid items
        keep = np.flatnonzero(~buf_reset[:t_len].reshape(-1))
        b_obs = torch.from_numpy(buf_obs[:t_len].reshape(-1, obs_dim)[keep])
        b_act = torch.from_numpy(buf_act[:t_len].reshape(-1)[keep])
        b_logp = torch.from_numpy(buf_logp[:t_len].reshape(-1)[keep])
        b_adv = torch.from_numpy(adv.reshape(-1)[keep])
        b_ret = torch.from_numpy(ret.reshape(-1)[keep])
        clip_fracs = []
        frac = 1.0 - min(rollouts, planned) / planned
        lr = c.learning_rate * frac if c.anneal_learning_rate else c.learning_rate
        clip = c.clip_ratio * frac if c.anneal_clip_ratio else c.clip_ratio
        rollouts += 1
        for _ in range(c.num_epochs):
            for mb in np.array_split(rng.permutation(keep.size), c.num_minibatches):
                opt.param_groups[0]["lr"] = lr
                idx = torch.from_numpy(mb)
                o = b_obs[idx]
                log_p = functional.log_softmax(actor(o), dim=-1)
                new_logp = log_p.gather(1, b_act[idx].unsqueeze(1)).squeeze(1)
                entropy = -(log_p.exp() * log_p).sum(-1)
                value = critic(o).squeeze(1)
                log_ratio = new_logp - b_logp[idx]
                ratio = log_ratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()
                    clip_fracs.append(((ratio - 1.0).abs() > clip).float().mean().item())
                a = b_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg_loss = torch.max(-a * ratio, -a * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
                v_loss = 0.5 * ((value - b_ret[idx]) ** 2).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - c.ent_coef * entropy_loss + c.vf_coef * v_loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, c.max_grad_norm)
                opt.step()
                updates += 1
        # CleanRL logs the last minibatch's numbers once per rollout
        _ = (pg_loss.item(), v_loss.item(), entropy_loss.item(), approx_kl.item(), np.mean(clip_fracs))
        update_s += time.perf_counter() - t2
        collect_s += t1 - t0
        gae_s += t2 - t1
    envs.close()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {
        "wall": wall,
        "cpu": cpu,
        "collect": collect_s,
        "gae": gae_s,
        "update": update_s,
        "train": gae_s + update_s,
        "rest": wall - collect_s - gae_s - update_s,
        "env_steps": env_steps,
        "train_steps": updates,
        "last_returns": float(np.mean(episode_returns[-20:])) if episode_returns else float("nan"),
    }


# ---------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--total-steps", type=int, default=100_000, help="env steps of each run (the preset: 100,000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant, interleaved")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (the preset: 1)")
    parser.add_argument(
        "--compile", action="store_true", help="drivetrain with agent.compile=True (the compiled update)"
    )
    args = parser.parse_args()
    if args.total_steps % 8:
        parser.error("--total-steps must be a multiple of 8 (the number of environments)")
    torch.set_num_threads(args.threads)
    ours: list[dict[str, float]] = []
    base: list[dict[str, float]] = []
    runs: list[tuple[str, Callable[[int], dict[str, float]]]] = [
        ("drivetrain", lambda steps: drivetrain_run(steps, args.seed, args.threads, args.compile)),
        ("hand-written", lambda steps: baseline_run(steps, args.seed)),
    ]
    for _, run in runs:  # untimed warm-up: lazy imports (plotting, checkpoints) and first calls
        run(512)
    for r in range(args.rounds):
        for name, run in runs if r % 2 == 0 else runs[::-1]:
            (ours if name == "drivetrain" else base).append(run(args.total_steps))

    def med(results: list[dict[str, float]], key: str) -> float:
        return statistics.median(x[key] for x in results)

    steps = med(ours, "env_steps")
    if (med(base, "env_steps"), med(base, "train_steps")) != (steps, med(ours, "train_steps")):
        print(
            f"warning: the work differs: env steps {steps} / {med(base, 'env_steps')}, updates "
            f"{med(ours, 'train_steps')} / {med(base, 'train_steps')} (drivetrain / hand-written)"
        )
    ratio_wall = med(base, "wall") / med(ours, "wall")
    ratio_cpu = med(base, "cpu") / med(ours, "cpu")
    per_round = [b["wall"] / o["wall"] for o, b in zip(ours, base, strict=True)]
    verdict = "meets" if ratio_wall >= TARGET else "misses"

    print(
        f"`cartpole-ppo`, {int(steps):,} env steps, {int(med(ours, 'train_steps')):,} updates, "
        f"torch threads {args.threads}, {'agent.compile=True, ' if args.compile else ''}medians of "
        f"{args.rounds} interleaved rounds (`python bench/ppo.py --total-steps {args.total_steps} "
        f"--rounds {args.rounds}{' --compile' if args.compile else ''}`)"
    )
    print()
    print("| variant | wall s | CPU s | env steps/s (wall) | collection s | GAE s | updates s | other s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    dt_other = med(ours, "train") - med(ours, "prepare") - med(ours, "update")
    print(
        f"| drivetrain (`train`) | {med(ours, 'wall'):.2f} | {med(ours, 'cpu'):.2f} | "
        f"{steps / med(ours, 'wall'):,.0f} | {med(ours, 'collect'):.2f} | {med(ours, 'prepare'):.3f}¹ | "
        f"{med(ours, 'update'):.2f} | {dt_other + med(ours, 'rest'):.2f}² |"
    )
    print(
        f"| hand-written CleanRL-style | {med(base, 'wall'):.2f} | {med(base, 'cpu'):.2f} | "
        f"{steps / med(base, 'wall'):,.0f} | {med(base, 'collect'):.2f} | {med(base, 'gae'):.3f} | "
        f"{med(base, 'update'):.2f} | {med(base, 'rest'):.2f} |"
    )
    print(
        f"| **ratio hand-written / drivetrain** | **{ratio_wall:.2f}×** | {ratio_cpu:.2f}× | | "
        f"{med(base, 'collect') / med(ours, 'collect'):.2f}× | "
        f"{med(base, 'gae') / med(ours, 'prepare'):.2f}× | "
        f"{med(base, 'update') / med(ours, 'update'):.2f}× | |"
    )
    print()
    print(
        f"Whole run: drivetrain at **{ratio_wall:.2f}×** the hand-written loop's speed (wall; per round "
        f"{', '.join(f'{x:.2f}' for x in per_round)}), {ratio_cpu:.2f}× in CPU time: {verdict} the "
        f"{TARGET}× target. drivetrain's wall time leaves out its final greedy evaluation "
        f"({med(ours, 'final_eval'):.2f} s; it cannot be turned off and the hand-written loop has none); "
        "its CPU time includes it."
    )
    print()
    print(
        "¹ `agent.prepare`: trainable items and GAE; of it `drivetrain.replay.advantages.gae` "
        f"{med(ours, 'gae'):.3f} s. "
        "² setup, config, metrics, `progress.csv`, the final checkpoint "
        f"({med(ours, 'rest'):.2f} s) and the training phase's rollout handling "
        f"({dt_other:.2f} s, below)."
    )
    print()
    print("Where drivetrain's time goes (median seconds, share of the wall time):")
    print()
    print("| part | s | share |")
    print("| --- | ---: | ---: |")
    wall = med(ours, "wall")
    rows = [
        ("collection (driver: policy, environments, rollout buffer, metrics)", med(ours, "collect")),
        ("training phase (`source.batches` + `agent.train`)", med(ours, "train")),
        ("&nbsp;&nbsp;`RolloutBuffer.gather` (stack the rollout)", med(ours, "gather")),
        ("&nbsp;&nbsp;`agent.prepare` (GAE, trainable mask)", med(ours, "prepare")),
        ("&nbsp;&nbsp;&nbsp;&nbsp;of it `advantages.gae`", med(ours, "gae")),
        ("&nbsp;&nbsp;`agent.train` (updates)", med(ours, "update")),
        ("&nbsp;&nbsp;`RolloutBuffer.release` (re-gather, open tail)", med(ours, "release")),
        (
            "&nbsp;&nbsp;rest: minibatch indexing, loss bookkeeping",
            med(ours, "train")
            - med(ours, "gather")
            - med(ours, "prepare")
            - med(ours, "update")
            - med(ours, "release"),
        ),
        ("setup, logging, final checkpoint", med(ours, "rest")),
        ("whole run (final evaluation left out)", wall),
    ]
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} | {100 * seconds / wall:.1f} % |")
    print()
    print(
        f"Final greedy return of drivetrain (median): {med(ours, 'final_return'):.1f}; hand-written: mean "
        f"training return of its last 20 episodes {med(base, 'last_returns'):.1f} (a sanity check, not a "
        "learning benchmark)."
    )


if __name__ == "__main__":
    main()
