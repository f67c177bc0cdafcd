"""What a run leaves for later use: the agent's newest weights, evaluation and videos from a run dir.

A checkpoint holds everything needed to resume (the replay buffer too, which can be
gigabytes); ``agent.pkl`` holds just the agent (networks, optimizer, counters), written
atomically next to every checkpoint. ``drivetrain eval``, ``play`` and ``export`` load it:

    loaded = load_agent("runs/cartpole-dqn-0")
    loaded.agent.policy            # the greedy policy
    evaluate_run("runs/cartpole-dqn-0", episodes=10)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from drivetrain.agents import QLearningAgent, make_agent
from drivetrain.core.policy import Policy
from drivetrain.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from drivetrain.train.config import ExperimentConfig, load_config
from drivetrain.train.evaluation import EvalResult, evaluate
from drivetrain.train.experiment import eval_policy, make_env, run_seeds
from drivetrain.train.rundir import RunDir, RunDirError

__all__ = ["LoadedAgent", "evaluate_run", "load_agent", "save_agent"]

AGENT_FILE = "agent.pkl"


@dataclasses.dataclass(frozen=True)
class LoadedAgent:
    """An agent restored from a run directory."""

    config: ExperimentConfig
    agent: QLearningAgent[Any, Policy]
    env_steps: int
    """Environment steps the agent had been trained for."""


def save_agent(agent: QLearningAgent[Any, Policy], env_steps: int, run_dir: str | os.PathLike[str]) -> Path:
    """Writes ``run_dir/agent.pkl`` atomically."""
    return save_checkpoint(
        {"env_steps": int(env_steps), "agent": agent.state_dict()}, Path(run_dir) / AGENT_FILE
    )


def load_agent(run_dir: str | os.PathLike[str], device: str | None = None) -> LoadedAgent:
    """The config and the newest agent of a run; RunDirError if the run has saved none yet."""
    run = RunDir(run_dir)
    if not run.config.is_file():
        raise RunDirError(f"{run.path} is not a run directory: it has no config.json")
    config = load_config(run.config)
    if device is not None:
        config = dataclasses.replace(config, agent=dataclasses.replace(config.agent, device=device))
    path = run.path / AGENT_FILE
    if not path.is_file():
        raise RunDirError(
            f"{run.path} has no trained agent yet ({AGENT_FILE} is written with each checkpoint)"
        )
    state = load_checkpoint(path)
    if not isinstance(state, dict) or "agent" not in state:
        raise CheckpointError(f"{path} does not hold an agent")
    with make_env(config.env, 1, 0) as env:
        agent = make_agent(config.agent, env.time_step_spec(), env.action_spec(), seed=0)
    agent.load_state_dict(state["agent"])
    return LoadedAgent(config, agent, int(state["env_steps"]))


def evaluate_run(
    run_dir: str | os.PathLike[str], episodes: int | None = None, seed: int | None = None
) -> tuple[EvalResult, LoadedAgent]:
    """Evaluates the newest agent of a run as its final evaluation did (same seed, ``loop.eval_epsilon``).

    With the defaults this reproduces the run's ``eval.json``.
    """
    loaded = load_agent(run_dir)
    config = loaded.config
    n = config.loop.final_eval_episodes if episodes is None else episodes
    env_seed = run_seeds(config.seed).final_eval if seed is None else seed
    with make_env(config.env, config.loop.eval_num_envs, env_seed, evaluation=True) as env:
        return evaluate(env, eval_policy(loaded.agent, config), n), loaded
