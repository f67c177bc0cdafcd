"""The configuration of a training run: typed dataclasses, one docstring per field.

``ExperimentConfig`` nests one config per part: the environment, the agent (the config
of any registered agent: :class:`~drivetrain.agents.DQNConfig`,
:class:`~drivetrain.agents.R2D2Config`, :class:`~drivetrain.agents.PPOConfig`,
:class:`~drivetrain.agents.ReinforceConfig`; its builder is found by its type), the replay
buffer (replay-based agents), the loop, and where it all executes (``execution``: one process, or
collectors on Ray, :class:`~drivetrain.distributed.config.ExecutionConfig`). Every leaf can be
overridden from the command line as ``--section.field value`` (see
:mod:`drivetrain.train.fields`). A run directory keeps the resolved config as
``config.json``; :func:`load_config` reads it back.

Units: the loop counts **environment steps** (transitions over all environments of the
batch, boundaries not counted, as a :class:`~drivetrain.core.drivers.StepDriver` does);
the agent counts **train steps** (calls of ``agent.train``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any, Literal

from drivetrain.agents import DQNConfig, RunPlan, UnknownAgentError, builder_for, builder_named, builders
from drivetrain.agents.protocol import is_agent_config
from drivetrain.core.config_checks import ConfigTypeError, check_fields
from drivetrain.distributed.config import ExecutionConfig
from drivetrain.envs.atari import AtariConfig
from drivetrain.train import fields, tracking
from drivetrain.train.checkpoint import atomic_write_text
from drivetrain.train.imports import import_modules

__all__ = [
    "EnvConfig",
    "ExecutionConfig",
    "ExperimentConfig",
    "LoopConfig",
    "ReplayConfig",
    "check_config",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "run_plan",
    "save_config",
]


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which environments to train and evaluate on (``drivetrain.envs.make``)."""

    name: str = "CartPole-v1"
    """Gymnasium environment id, or the game for suite 'atari' ('Breakout', 'ALE/Pong-v5')."""
    suite: Literal["gymnasium", "atari"] = "gymnasium"
    """'gymnasium': drivetrain.envs.make(name); 'atari': drivetrain.envs.make_atari(name) with env.atari."""
    num_envs: int = 1
    """Environments stepped together by the collect driver (the batch size B)."""
    backend: Literal["sync", "gymnasium", "async", "envpool"] = "sync"
    """'sync' (in-process loop), 'gymnasium' (SyncVectorEnv), 'async' (one process each), 'envpool' (Atari)."""
    max_episode_steps: int | None = None
    """Time limit in steps (truncation); None keeps the environment's registered limit (suite 'gymnasium')."""
    mask_velocity: bool = False
    """Drop velocities from the observation (a partially observable CartPole; suite 'gymnasium')."""
    atari: AtariConfig = dataclasses.field(default_factory=AtariConfig)
    """Atari preprocessing (suite 'atari' only)."""

    def __post_init__(self) -> None:
        check_fields(self)  # each field's type, named (ConfigTypeError)


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """The replay buffer (``drivetrain.replay``)."""

    capacity: int = 100_000
    """Transitions kept in all (over all environments); the oldest are overwritten."""
    prioritized: bool = False
    """Prioritized experience replay (Schaul et al. 2016) instead of uniform sampling."""
    alpha: float = 0.6
    """Prioritized replay: priority exponent (0 = uniform)."""
    beta: float = 0.4
    """Prioritized replay: importance-sampling exponent at the start (1 = full correction)."""
    beta_final: float | None = None
    """Prioritized replay: anneal beta linearly to this over the run's train steps (the PER paper: 1.0);
    None keeps beta fixed."""
    priority_epsilon: float = 1e-6
    """Prioritized replay: added to |TD error| so that no transition gets priority 0."""
    prefetch: int = 0
    """Batches sampled ahead in a background thread (replay.as_dataset); 0 samples in the loop.
    Prefetching overlaps sampling with training, but the sampler then runs ahead of a
    checkpoint, so a resumed run no longer matches an uninterrupted one bit for bit."""

    def __post_init__(self) -> None:
        check_fields(self)  # each field's type, named (ConfigTypeError)


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """The training loop: budgets and intervals in environment steps."""

    total_env_steps: int = 50_000
    """Environment steps of the whole run, warm-up included (with B environments the last collect
    steps the whole batch, so a run may take up to B - 1 more; on C collectors of E environments,
    up to (C + 1) × (E - 1) more)."""
    learning_starts: int = 1_000
    """Warm-up: steps of a uniformly random policy that fill the replay buffer before training."""
    update_period: int = 256
    """Environment steps collected by the collect policy in each iteration."""
    gradient_steps: int = 128
    """Train steps (agent.train calls) after each collection."""
    batch_size: int = 64
    """Windows per train step."""
    eval_interval: int = 10_000
    """Environment steps between greedy evaluations during training; 0 turns them off."""
    eval_episodes: int = 10
    """Episodes per evaluation during training."""
    final_eval_episodes: int = 10
    """Episodes of the final evaluation written to eval.json (seeded apart from the periodic ones).
    It counts no new episodes once it has played total_env_steps env steps, as an evaluation phase
    counted in steps does (Dopamine): a smoke run with a small budget evaluates briefly, on fewer
    whole episodes; the presets' full budgets are never reached this way."""
    eval_num_envs: int = 1
    """Environments of the evaluation batch (separate from the training ones)."""
    stop_at_return: float | None = None
    """End the run early once a periodic evaluation's mean return reaches this; the final evaluation
    (eval.json) then runs on episodes of its own. None: train for the whole budget."""
    eval_epsilon: float = 0.0
    """Probability of a random action during evaluation (0: greedy; the Atari papers use 0.05)."""
    video_every: int = 0
    """Record one evaluation episode as videos/step-<env steps>.mp4 in the run directory at every
    N-th periodic evaluation (on an environment of its own; the evaluation is unchanged); 0: never."""
    log_interval: int = 1_000
    """Environment steps between rows of progress.csv."""
    average_window: int = 10
    """Episodes averaged by the training return and length metrics."""
    checkpoint_interval: int = 10_000
    """Environment steps between checkpoints; 0: only at the end."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept on disk."""
    checkpoint_replay: bool = True
    """Save the replay buffer in checkpoints (needed to resume exactly; large for Atari). Without
    it a resumed run refills its replay with learning_starts env steps before it trains."""
    progress_bar: bool = True
    """Show the progress: a live bar on a terminal; elsewhere (a log file, a pipe) a plain line at
    every 10% of total_env_steps."""
    tensorboard: bool = True
    """Write TensorBoard event files into <run_dir>/tb."""
    track: Literal["none", "wandb", "mlflow"] = "none"
    """Mirror the config, every row of progress.csv and the videos to an experiment tracker: 'wandb'
    (offline into <run_dir>/wandb unless WANDB_MODE says otherwise) or 'mlflow' (MLFLOW_TRACKING_URI,
    else SQLite in <run_dir>/mlflow.db); extras drivetrain[wandb], drivetrain[mlflow]."""
    track_project: str = ""
    """The tracker's project (wandb) or experiment (mlflow); '': WANDB_PROJECT or
    MLFLOW_EXPERIMENT_NAME, else 'drivetrain'. The tracked run is named after the run directory."""
    torch_threads: int | None = 1
    """PyTorch's intra-op threads for the run (torch.set_num_threads); None leaves PyTorch's default
    (one a core). 1 by measurement (bench/threads.py, docs/benchmarks.md): on an idle 2-core machine
    2 threads made whole runs 1.12x (CartPole MLP), 1.37x (SAC) and 1.40x (Nature CNN) faster, but
    with other processes on the cores (another seed, --parallel, a collector) 2 to 5 times slower;
    1 is the setting that never loses much. Give a run the machine's cores when it has them alone."""

    def __post_init__(self) -> None:
        check_fields(self)  # each field's type, named (ConfigTypeError)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs; the preset's values with the command line's overrides."""

    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    """The environments."""
    agent: Any = dataclasses.field(default_factory=DQNConfig)
    """The agent's config (DQNConfig, R2D2Config, PPOConfig, ReinforceConfig or any registered one)."""
    replay: ReplayConfig = dataclasses.field(default_factory=ReplayConfig)
    """The replay buffer (agents that learn from a replay: DQN, R2D2)."""
    loop: LoopConfig = dataclasses.field(default_factory=LoopConfig)
    """Budgets, evaluation, logging and checkpoints."""
    execution: ExecutionConfig = dataclasses.field(default_factory=ExecutionConfig)
    """Where the run executes: 'local' (one process) or collectors, a replay and a learner on Ray."""
    seed: int = 0
    """Seed of everything random in the run (environments, networks, exploration, sampling)."""
    preset: str = ""
    """Name of the preset this config started from (for the record)."""
    imports: tuple[str, ...] = ()
    """Python modules imported before the config is read: they register the run's own agents
    (drivetrain.agents.register_builder) or environments (gymnasium.register). A name, or the path
    of a module file (a preset file keeps a module beside it so). Kept in config.json, so that a
    resume, eval, play and export import them too (Ray's workers need them importable there)."""

    def __post_init__(self) -> None:
        check_fields(self)  # each field's type, named (ConfigTypeError)
        if not is_agent_config(self.agent):
            known = ", ".join(b.config_type.__name__ for b in builders())
            raise ConfigTypeError(
                f"ExperimentConfig.agent: expected an agent config ({known}), got {self.agent!r} "
                f"({type(self.agent).__name__})"
            )


def run_plan(config: ExperimentConfig) -> RunPlan:
    """What the agent's builder needs to know of the run (budget, batch, the loop's schedule)."""
    loop = config.loop
    return RunPlan(
        num_envs=config.env.num_envs,
        total_env_steps=loop.total_env_steps,
        learning_starts=loop.learning_starts,
        update_period=loop.update_period,
        gradient_steps=loop.gradient_steps,
        batch_size=loop.batch_size,
    )


def _check_suite_fields(env: EnvConfig) -> None:
    """ConfigError for a field that ``env.suite`` would ignore."""
    if env.suite == "atari":
        if env.max_episode_steps is not None:
            raise fields.ConfigError(
                f"env.max_episode_steps ({env.max_episode_steps}) applies to suite 'gymnasium'; an Atari "
                "run's time limit is env.atari.max_episode_steps (in agent steps)"
            )
        if env.mask_velocity:
            raise fields.ConfigError("env.mask_velocity applies to suite 'gymnasium' (CartPole), not 'atari'")
    elif env.atari != AtariConfig():
        default = AtariConfig()
        changed = [
            f.name
            for f in dataclasses.fields(default)
            if getattr(env.atari, f.name) != getattr(default, f.name)
        ]
        raise fields.ConfigError(
            f"env.atari ({', '.join(f'env.atari.{name}' for name in changed)}) applies to suite 'atari' only; "
            f"this run's suite is {env.suite!r}"
        )


def check_config(config: ExperimentConfig, *, resuming: bool = False) -> None:
    """Raises ConfigError naming the field when values do not fit together.

    ``resuming``: a field that the suite ignores is a warning, not an error (a run saved before
    that was refused resumes; the field cannot change on resume)."""
    import_modules(config.imports)  # before anything is built: they register its agent or environments
    loop, replay = config.loop, config.replay
    positive = {
        "loop.total_env_steps": loop.total_env_steps,
        "loop.update_period": loop.update_period,
        "loop.batch_size": loop.batch_size,
        "loop.eval_episodes": loop.eval_episodes,
        "loop.final_eval_episodes": loop.final_eval_episodes,
        "loop.eval_num_envs": loop.eval_num_envs,
        "loop.log_interval": loop.log_interval,
        "loop.keep_checkpoints": loop.keep_checkpoints,
        "loop.average_window": loop.average_window,
        "env.num_envs": config.env.num_envs,
        "replay.capacity": replay.capacity,
    }
    for key, value in positive.items():
        if value < 1:
            raise fields.ConfigError(f"{key} must be >= 1, got {value}")
    non_negative = {
        "loop.learning_starts": loop.learning_starts,
        "loop.gradient_steps": loop.gradient_steps,
        "loop.eval_interval": loop.eval_interval,
        "loop.checkpoint_interval": loop.checkpoint_interval,
        "loop.video_every": loop.video_every,
        "replay.prefetch": replay.prefetch,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise fields.ConfigError(f"{key} must be >= 0, got {value}")
    if config.seed < 0:
        raise fields.ConfigError(f"seed must be >= 0, got {config.seed}")
    if loop.torch_threads is not None and loop.torch_threads < 1:
        raise fields.ConfigError(
            f"loop.torch_threads must be >= 1 or None (torch's default), got {loop.torch_threads}"
        )
    if loop.learning_starts > loop.total_env_steps:
        raise fields.ConfigError(
            f"loop.learning_starts ({loop.learning_starts}) exceeds loop.total_env_steps ({loop.total_env_steps})"
        )
    if loop.stop_at_return is not None and loop.eval_interval == 0:
        raise fields.ConfigError("loop.stop_at_return needs periodic evaluations: set loop.eval_interval > 0")
    if loop.video_every > 0 and loop.eval_interval == 0:
        raise fields.ConfigError("loop.video_every needs periodic evaluations: set loop.eval_interval > 0")
    try:
        _check_suite_fields(config.env)
    except fields.ConfigError as e:
        if not resuming:
            raise
        warnings.warn(f"{e} (it is ignored)", stacklevel=2)
    if replay.beta_final is not None and not 0.0 <= replay.beta_final <= 1.0:
        raise fields.ConfigError(f"replay.beta_final must be in [0, 1] or None, got {replay.beta_final}")
    tracking.check_tracker(loop.track)  # the backend's package is installed
    if not 0.0 <= loop.eval_epsilon <= 1.0:
        raise fields.ConfigError(f"loop.eval_epsilon must be in [0, 1], got {loop.eval_epsilon}")
    # replay.capacity >= env.num_envs is the replay buffer's own check, for agents that have one
    builder, plan = builder_for(config.agent), run_plan(config)
    envs = config.execution.num_envs(config.env.num_envs) if config.execution.distributed else plan.num_envs
    # a distributed run's environments are all its collectors' (its on-policy learner's union)
    union = envs * config.execution.collectors if config.execution.distributed else envs
    problems = builder.check(config.agent, dataclasses.replace(plan, num_envs=union))
    period = builder.update_period(config.agent, dataclasses.replace(plan, num_envs=envs))
    name = "loop.update_period"
    if config.execution.distributed and config.execution.fragment_steps is not None:
        name, period = "execution.fragment_steps", config.execution.fragment_steps
        if loop.gradient_steps * period % loop.update_period:
            problems.append(
                f"execution.fragment_steps ({period}) x loop.gradient_steps ({loop.gradient_steps}) must be "
                f"a multiple of loop.update_period ({loop.update_period}): each fragment is followed by "
                "that many updates"
            )
    if period % envs:
        problems.append(
            f"{name} ({period}) must be a multiple of the environments a driver steps at once "
            f"({envs}): every driver step takes one step in each, so a collect phase would take "
            f"{-(-period // envs) * envs} steps and train as if it took {period}"
        )
    if problems:
        raise fields.ConfigError("; ".join(problems))


_AGENT_KIND = "agent_kind"  # the JSON key naming the agent's builder


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    """A JSON-ready dict of ``config``, with ``agent_kind`` naming the agent (its builder's ``kind``)."""
    return {**fields.to_dict(config), _AGENT_KIND: builder_for(config.agent).kind}


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Inverse of :func:`config_to_dict`; ConfigError names a bad or unknown key (no ``agent_kind``: DQN)."""
    data = dict(data)
    import_modules(data.get("imports", ()))  # before the agent kind: they may register it
    kind = data.pop(_AGENT_KIND, "dqn")
    try:
        agent_type = builder_named(kind).config_type
    except UnknownAgentError as e:
        raise fields.ConfigError(
            f"{_AGENT_KIND}: {e} (an agent of your own: name the module that registers it in `imports`)"
        ) from None
    agent = fields.from_dict(agent_type, data.pop("agent", {}), prefix="agent.")
    config: ExperimentConfig = fields.from_dict(ExperimentConfig, data)
    return dataclasses.replace(config, agent=agent)


def save_config(config: ExperimentConfig, path: str | os.PathLike[str]) -> Path:
    """Writes ``config`` as JSON (atomically)."""
    return atomic_write_text(json.dumps(config_to_dict(config), indent=2) + "\n", path)


def load_config(path: str | os.PathLike[str]) -> ExperimentConfig:
    """Reads a config written by :func:`save_config`; ConfigError names a bad or unknown key."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise fields.ConfigError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise fields.ConfigError(f"{path} does not hold a config (a JSON object)")
    return config_from_dict(data)
