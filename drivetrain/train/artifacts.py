"""What a run leaves for later use: the agent's newest weights, evaluation and videos from a run dir.

A checkpoint holds everything needed to resume (the replay buffer too, which can be
gigabytes); ``agent.pkl`` holds just the agent (networks, optimizer, counters), written
atomically after every checkpoint. ``drivetrain eval``, ``play`` and ``export`` load it (or
the newest checkpoint's agent, when ``agent.pkl`` is missing or older):

    loaded = load_agent("runs/cartpole-dqn-0")
    loaded.agent.policy            # the greedy policy
    evaluate_run("runs/cartpole-dqn-0", episodes=10)
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

from drivetrain.agents import Agent, make_agent
from drivetrain.agents.protocol import for_acting, with_device
from drivetrain.train.checkpoint import (
    CheckpointDir,
    CheckpointError,
    CheckpointWarning,
    load_checkpoint,
    save_checkpoint,
)
from drivetrain.train.config import ExperimentConfig, load_config, run_plan
from drivetrain.train.evaluation import EvalResult, eval_step_limit, evaluate
from drivetrain.train.experiment import eval_policy, make_env, run_seeds
from drivetrain.train.rundir import RunDir, RunDirError

__all__ = ["LoadedAgent", "evaluate_run", "final_eval_steps", "load_agent", "save_agent"]

AGENT_FILE = "agent.pkl"


@dataclasses.dataclass(frozen=True)
class LoadedAgent:
    """An agent restored from a run directory."""

    config: ExperimentConfig
    agent: Agent
    env_steps: int
    """Environment steps the agent had been trained for."""


def save_agent(agent: Agent, env_steps: int, run_dir: str | os.PathLike[str]) -> Path:
    """Writes ``run_dir/agent.pkl`` atomically."""
    return save_checkpoint(
        {"env_steps": int(env_steps), "agent": agent.state_dict()}, Path(run_dir) / AGENT_FILE
    )


def load_agent(run_dir: str | os.PathLike[str], device: str | None = None) -> LoadedAgent:
    """The config and the newest agent of a run; RunDirError if the run has saved none yet.

    The agent comes from ``agent.pkl``, or from the newest intact checkpoint when that is
    newer (a run stopped between the two writes) or ``agent.pkl`` is missing or damaged.
    """
    run = RunDir(run_dir)
    if not run.config.is_file():
        raise RunDirError(f"{run.path} is not a run directory: it has no config.json")
    config = load_config(run.config)
    agent_config = for_acting(config.agent)  # no compiled update: it only acts
    if device is not None:
        agent_config = with_device(agent_config, device)
    config = dataclasses.replace(config, agent=agent_config)
    agent_state, env_steps = _newest_agent_state(run)
    with run_env(run.path, config, 1, 0) as env:
        agent = make_agent(config.agent, env.time_step_spec(), env.action_spec(), 0, run_plan(config))
    agent.load_state_dict(agent_state)
    return LoadedAgent(config, agent, env_steps)


def _newest_agent_state(run: RunDir) -> tuple[dict[str, Any], int]:
    saved: dict[str, Any] | None = None
    if run.agent.is_file():
        try:
            saved = load_checkpoint(run.agent)
        except CheckpointError as e:
            warnings.warn(
                CheckpointWarning(f"{e}; loading the agent from the newest checkpoint"), stacklevel=3
            )
        else:
            if not isinstance(saved, dict) or "agent" not in saved:
                raise CheckpointError(f"{run.agent} does not hold an agent")
    checkpoints = CheckpointDir(run.checkpoints)
    steps = checkpoints.steps()
    if saved is not None and (not steps or steps[-1] <= int(saved["env_steps"])):
        return saved["agent"], int(saved["env_steps"])
    loaded = checkpoints.load_latest() if steps else None
    if loaded is None:
        raise RunDirError(
            f"{run.path} has no trained agent yet ({AGENT_FILE} is written with each checkpoint)"
        )
    return loaded.state["experiment"]["agent"], int(loaded.state["env_steps"])


def final_eval_steps(config: ExperimentConfig) -> int:
    """The env steps after which a run's final evaluation counts no new episodes: its training
    budget, ``loop.total_env_steps`` (``max_steps`` of :func:`~drivetrain.train.evaluation.evaluate`).

    A smoke run with a small budget so evaluates briefly, on fewer whole episodes; the presets'
    full budgets hold ``loop.final_eval_episodes`` episodes at the evaluation's time limit many times over.
    """
    return config.loop.total_env_steps


def evaluate_run(
    run_dir: str | os.PathLike[str], episodes: int | None = None, seed: int | None = None
) -> tuple[EvalResult, LoadedAgent]:
    """Evaluates the newest agent of a run as its final evaluation did (same seed, ``loop.eval_epsilon``).

    With the defaults this reproduces the run's ``eval.json`` (``loop.final_eval_episodes``, or
    fewer once the run's budget of env steps was played); ``episodes`` plays exactly that many.
    """
    loaded = load_agent(run_dir)
    config = loaded.config
    n = config.loop.final_eval_episodes if episodes is None else episodes
    max_steps = final_eval_steps(config) if episodes is None else None
    env_seed = run_seeds(config.seed).final_eval if seed is None else seed
    with run_env(run_dir, config, config.loop.eval_num_envs, env_seed, evaluation=True) as env:
        limit = eval_step_limit(config.loop.total_env_steps, n, env.batch_size)
        return evaluate(env, eval_policy(loaded.agent, config), n, max_steps, step_limit=limit), loaded


def run_env(run_dir: Any, config: ExperimentConfig, num_envs: int, seed: int, **kwargs: Any) -> Any:
    """The environment of a run's ``config`` (``make_env``); a RunSetupError naming the run when
    it cannot be built here (a module that registers it not importable, a renderer missing)."""
    import gymnasium

    from drivetrain.train.runs import RunSetupError

    try:
        return make_env(config.env, num_envs, seed, **kwargs)
    except (gymnasium.error.Error, ImportError, TypeError, ValueError) as e:
        raise RunSetupError(
            f"cannot build the environment of {run_dir} ({config.env.name}): {type(e).__name__}: {e}"
        ) from e
