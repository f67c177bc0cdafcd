"""The parts of a training run, built from its config, and their joint checkpoint state.

:func:`build_experiment` makes the training environments, the agent, the
replay buffer, the training metrics and the warm-up policy, each seeded from
``config.seed`` through :func:`drivetrain.core.seeding.spawn_seeds`. The training loop
(:mod:`drivetrain.train.loop`) plays them; :meth:`Experiment.state_dict` gathers the
state of every stateful part for a checkpoint.

The agent is a :class:`~drivetrain.agents.DQN`, or an :class:`~drivetrain.agents.R2D2`
when ``config.agent`` is an :class:`~drivetrain.agents.R2D2Config`
(:func:`~drivetrain.agents.make_agent` picks). The replay buffer stores what the agent
trains on: the collect policy's trajectory spec without its diagnostic ``policy_info``
(q-values; only a recurrent policy's ``"state"`` is kept), so the warm-up policy and the
collect policy write the same trajectories, and an Atari buffer does not keep 18
q-values per frame. The warm-up policy acts uniformly at random; for a stateful agent it
is ``EpsilonGreedyPolicy(agent.policy, 1.0)``, which runs the recurrent network for its
state, so that warm-up trajectories carry the state the agent's policy held too.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, NamedTuple

import torch

from drivetrain.agents import QLearningAgent, make_agent
from drivetrain.core import metrics, seeding, types
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy
from drivetrain.core.schedules import PolynomialDecay
from drivetrain.policies import EpsilonGreedyPolicy, RandomPolicy
from drivetrain.train.config import EnvConfig, ExperimentConfig, planned_train_steps

__all__ = [
    "Experiment",
    "RunSeeds",
    "TrainMetrics",
    "build_experiment",
    "eval_policy",
    "make_env",
    "replay_writer",
    "run_seeds",
    "warmup_policy",
]

_KEPT_INFO = ("state",)


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


def replay_data_spec(collect_data_spec: types.Trajectory) -> types.Trajectory:
    """The trajectory spec the replay stores (see the module docstring)."""
    info = collect_data_spec.policy_info or {}
    return collect_data_spec._replace(policy_info={k: v for k, v in info.items() if k in _KEPT_INFO})


def replay_writer(replay: Any) -> Any:
    """An observer adding trajectories to ``replay`` with only the stored ``policy_info`` keys."""
    add = replay.add_batch

    def write(trajectory: types.Trajectory) -> None:
        info = trajectory.policy_info
        if info:
            trajectory = trajectory._replace(policy_info={k: v for k, v in info.items() if k in _KEPT_INFO})
        add(trajectory)

    return write


@dataclasses.dataclass
class Experiment:
    """The parts of one training run."""

    config: ExperimentConfig
    env: Environment
    agent: QLearningAgent[Any, Policy]
    replay: Any  # UniformReplay | PrioritizedReplay
    metrics: TrainMetrics
    warmup_policy: RandomPolicy | EpsilonGreedyPolicy

    seeds: RunSeeds

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
        """Agent, replay, metrics, warm-up policy, environments (when they can) and torch's RNG."""
        return {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict() if include_replay else None,
            "metrics": self.metrics.state_dict(),
            "warmup_policy": self.warmup_policy.state_dict(),
            "env": _env_state(self.env),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """Restores :meth:`state_dict`; False if the environments' state was not restored.

        Then the caller must reset the environments (and partial episodes are dropped
        from the metrics here).
        """
        self.agent.load_state_dict(state["agent"])
        if state["replay"] is not None:
            self.replay.load_state_dict(state["replay"])
        else:
            warnings.warn(
                "the checkpoint has no replay buffer: training resumes with an empty one", stacklevel=2
            )
        self.metrics.load_state_dict(state["metrics"])
        self.warmup_policy.load_state_dict(state["warmup_policy"])
        torch.set_rng_state(state["torch_rng"])
        if _load_env_state(self.env, state["env"]):
            return True
        self.metrics.drop_partial_episodes()
        return False

    def close(self) -> None:
        self.env.close()
        close = getattr(self.replay, "close", None)
        if close is not None:
            close()


class RunSeeds(NamedTuple):
    """The seeds of a run's parts, derived from ``config.seed``."""

    env: int
    eval_env: int
    agent: int
    replay: int
    warmup: int
    final_eval: int


def run_seeds(seed: int) -> RunSeeds:
    return RunSeeds(*seeding.spawn_seeds(seed, len(RunSeeds._fields)))


def eval_policy(agent: QLearningAgent[Any, Policy], config: ExperimentConfig) -> Policy:
    """The greedy policy, or epsilon-greedy with ``loop.eval_epsilon`` (seeded, so repeatable)."""
    eps = config.loop.eval_epsilon
    if eps == 0.0:
        return agent.policy
    return EpsilonGreedyPolicy(agent.policy, eps, seed=config.seed)


def _env_state(env: Environment) -> Any:
    state_dict = getattr(env, "state_dict", None)
    if not callable(state_dict):
        return None
    try:
        return state_dict()
    except Exception as e:  # e.g. an environment that cannot be pickled
        warnings.warn(
            f"checkpoints do not hold the environments' state ({type(e).__name__}: {e}); "
            "a resumed run starts new episodes",
            stacklevel=3,
        )
        return None


def _load_env_state(env: Environment, state: Any) -> bool:
    load = getattr(env, "load_state_dict", None)
    if state is None or not callable(load):
        return False
    load(state)
    return True


def warmup_policy(agent: QLearningAgent[Any, Policy], seed: int) -> RandomPolicy | EpsilonGreedyPolicy:
    """Uniformly random actions; for a stateful agent with its policy's state (see the module docstring)."""
    if agent.policy.stateful:
        return EpsilonGreedyPolicy(agent.policy, 1.0, seed=seed)
    return RandomPolicy(agent.time_step_spec, agent.action_spec, seed=seed)


def build_experiment(config: ExperimentConfig) -> Experiment:
    """Builds and seeds every part of a run from ``config``."""
    from drivetrain import replay as replay_lib

    seeds = run_seeds(config.seed)
    env = make_env(config.env, config.env.num_envs, seeds.env)
    agent = make_agent(config.agent, env.time_step_spec(), env.action_spec(), seed=seeds.agent)
    data_spec = replay_data_spec(agent.collect_data_spec)
    rc = config.replay
    replay: replay_lib.ReplayBuffer
    if rc.prioritized:
        beta: float | PolynomialDecay = rc.beta
        if rc.beta_final is not None:  # annealed over the sample calls, one per train step
            beta = PolynomialDecay(rc.beta, rc.beta_final, max(planned_train_steps(config.loop), 1))
        replay = replay_lib.PrioritizedReplay(
            data_spec,
            rc.capacity,
            env.batch_size,
            alpha=rc.alpha,
            beta=beta,
            seed=seeds.replay,
            epsilon=rc.priority_epsilon,
        )
    else:
        replay = replay_lib.UniformReplay(data_spec, rc.capacity, env.batch_size, seed=seeds.replay)
    return Experiment(
        config=config,
        env=env,
        agent=agent,
        replay=replay,
        metrics=TrainMetrics.create(config.loop.average_window),
        warmup_policy=warmup_policy(agent, seeds.warmup),
        seeds=seeds,
    )
