"""The parts of a training run, built from its config, and their joint checkpoint state.

:func:`build_experiment` makes the training environments, the agent, its experience
source, the training metrics and the warm-up policy, each seeded from ``config.seed``
through :func:`drivetrain.core.seeding.spawn_seeds`, and seeds torch's global generator too. The agent's builder, found in the
registry by the type of ``config.agent`` (:func:`~drivetrain.agents.builder_for`), makes
the agent, the source (a replay buffer for DQN and R2D2, on-policy rollouts for
REINFORCE and PPO), the warm-up policy (uniformly random actions for replay-based agents,
none for on-policy ones) and the number of environment steps of a collect phase. The
training loop (:mod:`drivetrain.train.loop`) plays them; :meth:`Experiment.state_dict`
gathers the state of every stateful part for a checkpoint.

The source stores what the agent trains on (``agent.collect_data_spec``) and keeps only
those ``policy_info`` keys of what it observes, so a warm-up policy that reports more
(q-values) writes the same trajectories as the collect policy.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple

import numpy as np
import torch

from drivetrain.agents import Agent, AgentBuilder, builder_for
from drivetrain.core import metrics, seeding
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy
from drivetrain.policies import EpsilonGreedyPolicy
from drivetrain.replay.sources import ExperienceSource
from drivetrain.train.config import EnvConfig, ExperimentConfig, run_plan

__all__ = [
    "Experiment",
    "RunSeeds",
    "TrainMetrics",
    "build_experiment",
    "env_state",
    "eval_policy",
    "load_env_state",
    "make_env",
    "run_seeds",
]


@dataclasses.dataclass
class TrainMetrics:
    """The metrics the collect drivers feed (warm-up included)."""

    episodes: metrics.NumberOfEpisodes
    env_steps: metrics.EnvironmentSteps
    average_return: metrics.AverageReturn
    average_length: metrics.AverageEpisodeLength

    @classmethod
    def create(cls, window: int) -> TrainMetrics:
        return cls(
            metrics.NumberOfEpisodes(),
            metrics.EnvironmentSteps(),
            metrics.AverageReturn(window),
            metrics.AverageEpisodeLength(window),
        )

    @property
    def observers(self) -> list[metrics.Metric]:
        return [self.episodes, self.env_steps, self.average_return, self.average_length]

    def state_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name).state_dict() for f in dataclasses.fields(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name).load_state_dict(state[f.name])

    def drop_partial_episodes(self) -> None:
        """Forgets the returns of unfinished episodes (after the environments were reset)."""
        for metric in (self.average_return, self.average_length):
            state = metric.state_dict()
            metric.load_state_dict({**state, "returns": None, "lengths": None})


def make_env(
    config: EnvConfig, num_envs: int, seed: int, *, evaluation: bool = False, render_mode: str | None = None
) -> Environment:
    """The batched environment of ``config``; ``evaluation``: as the suite evaluates (Atari: no-op starts)."""
    if config.suite == "atari":
        from drivetrain.train.atari_presets import make_atari_env

        return make_atari_env(config, num_envs, seed, evaluation=evaluation, render_mode=render_mode)
    from drivetrain import envs

    kwargs = {} if render_mode is None else {"render_mode": render_mode}
    return envs.make(
        config.name,
        num_envs=num_envs,
        seed=seed,
        backend=config.backend,  # type: ignore[arg-type]  # "envpool" is rejected by make with a clear error
        max_episode_steps=config.max_episode_steps,
        mask_velocity=config.mask_velocity,
        **kwargs,
    )


@dataclasses.dataclass
class Experiment:
    """The parts of one training run."""

    config: ExperimentConfig
    env: Environment
    agent: Agent
    source: ExperienceSource
    """Where the collect driver's trajectories go and the batches of agent.train come from."""
    metrics: TrainMetrics
    warmup_policy: Policy | None
    """Fills the source before training (None: no warm-up)."""
    update_period: int
    """Environment steps of one collect phase."""
    builder: AgentBuilder
    seeds: RunSeeds
    replay_emptied: bool = False
    """A resumed run's checkpoint held no replay (``loop.checkpoint_replay=False``): it is empty."""

    @property
    def replay(self) -> Any:
        """The replay buffer of a replay-based agent (AttributeError for on-policy agents)."""
        return getattr(self.source, "replay")  # noqa: B009 - a ReplaySource

    def make_eval_env(self, final: bool = False) -> Environment:
        """A fresh evaluation environment, seeded alike every time: every periodic evaluation of
        the run starts from the same initial states, whether or not the run was resumed in
        between. The final evaluation (``final=True``) gets its own seed, so that its episodes
        are not those that periodic evaluations (and ``loop.stop_at_return``) selected on."""
        seed = self.seeds.final_eval if final else self.seeds.eval_env
        return make_env(self.config.env, self.config.loop.eval_num_envs, seed, evaluation=True)

    @property
    def eval_policy(self) -> Policy:
        return eval_policy(self.agent, self.config)

    def state_dict(self, include_replay: bool = True) -> dict[str, Any]:
        """Agent, experience source, metrics, warm-up policy, environments (when they can), torch's RNG.

        ``include_replay=False`` leaves out a source whose state can be gigabytes (a replay
        buffer; a rollout is always kept)."""
        keep_source = include_replay or not self.source.large_state
        return {
            "agent": self.agent.state_dict(),
            "replay": self.source.state_dict() if keep_source else None,
            "metrics": self.metrics.state_dict(),
            "warmup_policy": None if self.warmup_policy is None else self.warmup_policy.state_dict(),
            "env": env_state(self.env),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """Restores :meth:`state_dict`; False if the environments' state was not restored.

        Then the caller must reset the environments (and partial episodes are dropped
        from the metrics here).
        """
        self.agent.load_state_dict(state["agent"])
        self.replay_emptied = state["replay"] is None
        if not self.replay_emptied:
            self.source.load_state_dict(state["replay"])
        else:
            warnings.warn(
                "the checkpoint has no replay buffer (loop.checkpoint_replay was false): the run collects "
                "loop.learning_starts steps with the collect policy before it trains again",
                stacklevel=2,
            )
        self.metrics.load_state_dict(state["metrics"])
        if self.warmup_policy is not None and state["warmup_policy"] is not None:
            self.warmup_policy.load_state_dict(state["warmup_policy"])
        torch.set_rng_state(state["torch_rng"])
        if load_env_state(self.env, state["env"]):
            return True
        self.metrics.drop_partial_episodes()
        self._renew_env()
        return False

    def _renew_env(self) -> None:
        """New environments for a resume that could not restore theirs, seeded from the run's
        environment seed and the steps taken: the same resume point starts the same episodes,
        and they are not the run's first ones again."""
        steps = int(self.metrics.env_steps.result())
        seed = int(np.random.SeedSequence([self.seeds.env, steps]).generate_state(1)[0])
        self.env.close()
        self.env = make_env(self.config.env, self.config.env.num_envs, seed)

    def close(self) -> None:
        try:
            self.source.close()
        finally:
            self.env.close()


class RunSeeds(NamedTuple):
    """The seeds of a run's parts, derived from ``config.seed``."""

    env: int
    eval_env: int
    agent: int
    replay: int
    warmup: int
    final_eval: int
    torch_global: int
    """Seeds torch's global generator, for code that draws from it (no built-in agent does)."""


def run_seeds(seed: int) -> RunSeeds:
    return RunSeeds(*seeding.spawn_seeds(seed, len(RunSeeds._fields)))


def eval_policy(agent: Agent, config: ExperimentConfig) -> Policy:
    """The greedy policy, or epsilon-greedy with ``loop.eval_epsilon`` (seeded, so repeatable)."""
    eps = config.loop.eval_epsilon
    if eps == 0.0:
        return agent.policy
    return EpsilonGreedyPolicy(agent.policy, eps, seed=config.seed)


def env_state(env: Environment, holder: str = "checkpoints", resumed: str = "a resumed run") -> Any:
    """The environments' state, or None when they cannot give it: then a warning says that
    ``holder`` do not hold it and that ``resumed`` starts new episodes (pointing at the caller's caller)."""
    state_dict = getattr(env, "state_dict", None)
    if not callable(state_dict):
        return None
    try:
        return state_dict()
    except Exception as e:  # e.g. an environment that cannot be pickled
        warnings.warn(
            f"{holder} do not hold the environments' state ({type(e).__name__}: {e}); "
            f"{resumed} starts new episodes",
            stacklevel=3,
        )
        return None


def load_env_state(env: Environment, state: Any) -> bool:
    """Loads :func:`env_state`'s ``state`` into ``env``; False if there is none or ``env`` cannot load it."""
    load = getattr(env, "load_state_dict", None)
    if state is None or not callable(load):
        return False
    load(state)
    return True


def build_experiment(config: ExperimentConfig) -> Experiment:
    """Builds and seeds every part of a run from ``config`` (see the module docstring)."""
    seeds = run_seeds(config.seed)
    torch.manual_seed(seeds.torch_global)  # a checkpoint holds its state: a resume continues it
    builder = builder_for(config.agent)
    plan = run_plan(config)
    env = make_env(config.env, config.env.num_envs, seeds.env)
    source: ExperienceSource | None = None
    try:
        agent = builder.make_agent(config.agent, env.time_step_spec(), env.action_spec(), seeds.agent, plan)
        source = builder.make_source(agent, config.replay, plan, seeds.replay)
        check_capacity = getattr(source, "check_capacity", None)  # a replay's: windows fit in it
        if callable(check_capacity):
            check_capacity()
        return Experiment(
            config=config,
            env=env,
            agent=agent,
            source=source,
            metrics=TrainMetrics.create(config.loop.average_window),
            warmup_policy=builder.warmup_policy(agent, seeds.warmup),
            update_period=builder.update_period(config.agent, plan),
            builder=builder,
            seeds=seeds,
        )
    except BaseException:
        if source is not None:
            source.close()
        env.close()
        raise
