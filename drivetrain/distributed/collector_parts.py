"""What a collector (:class:`~drivetrain.distributed.collector.Collector`) is made of, and its seeds.

**Parts.** :func:`build_parts` makes one generation of a collector's parts:
``execution.envs_per_collector`` environments (``env.num_envs`` when None) and an agent made
on the CPU by the registry's builder (``builder_for(config.agent)``), whose collect policy
(:func:`exploring`) and warm-up policy are what the collector plays.

**Exploration.** Versions of the weights are those of the learner's
:func:`~drivetrain.distributed.weights.get_policy_weights`, which count its train steps, so an
epsilon-greedy collect policy (DQN, R2D2) evaluates the agent's epsilon schedule at the
version the collector holds (``step_fn``), as the local loop evaluates it at
``agent.train_step``. With ``execution.apex_epsilons`` collector ``i`` of ``C`` uses Ape-X's
fixed ``0.4 ** (1 + 7 i / (C - 1))`` instead.

**Seeds.** Collector ``i`` of a run seeded ``s`` draws everything from its seed stream
:func:`collector_seed` ``(s, i)``: child ``(6, i)`` of ``s``'s ``SeedSequence``, the branch after
the six parts the run seeds first (:func:`~drivetrain.train.experiment.run_seeds`: child ``k`` is
``spawn_seeds(s, n)[k]``; its seventh, torch's global seed, is child ``(6,)``, another key). Generation ``g`` of its parts (0 when built, ``n + 1`` after
``restart(n)``) takes child ``g`` of the stream and splits it with
:func:`~drivetrain.core.seeding.spawn_seeds` into the seeds of the environments, the agent,
the collect policy and the warm-up policy (:func:`generation_seeds`). The same config and
index give the same fragments; a restarted collector does not replay the episodes of its
first life.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from drivetrain.agents import Agent, builder_for
from drivetrain.agents.protocol import with_device
from drivetrain.core.environment import Environment
from drivetrain.core.policy import Policy
from drivetrain.core.seeding import spawn_seeds
from drivetrain.distributed.config import apex_epsilon
from drivetrain.policies import EpsilonGreedyPolicy
from drivetrain.train.config import ExperimentConfig, run_plan
from drivetrain.train.experiment import make_env

__all__ = ["CollectorParts", "build_parts", "collector_seed", "exploring", "generation_seeds"]


def _child_seed(seed: int, *key: int) -> int:
    """The seed of child ``key`` of ``seed``'s SeedSequence (``spawn_seeds(seed, n)[k]`` for ``key=(k,)``)."""
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])


def collector_seed(seed: int, index: int) -> int:
    """The seed stream of collector ``index`` in a run seeded ``seed`` (see the module docstring)."""
    return _child_seed(seed, _COLLECTOR_BRANCH, index)


_COLLECTOR_BRANCH = 6
"""The collectors' branch of the run's SeedSequence: ``(6, i)``. Child ``(6,)`` itself is torch's
global seed (``RunSeeds.torch_global``), a different key, so the two never share a stream."""


def generation_seeds(seed_stream: int, generation: int) -> list[int]:
    """The seeds of the environments, the agent, the collect and the warm-up policy of a generation."""
    return spawn_seeds(_child_seed(seed_stream, generation), 4)


@dataclasses.dataclass
class CollectorParts:
    """What one generation of a collector is made of."""

    env: Environment
    agent: Agent
    collect_policy: Policy
    warmup_policy: Policy | None


def build_parts(
    config: ExperimentConfig, index: int, num_envs: int, seeds: list[int], step_fn: Callable[[], int]
) -> CollectorParts:
    """The parts of collector ``index`` from a generation's ``seeds`` (:func:`generation_seeds`);
    ``step_fn`` gives the version of the weights it holds (see :func:`exploring`)."""
    env_seed, agent_seed, collect_seed, warmup_seed = seeds
    env = make_env(config.env, num_envs, env_seed)
    try:
        agent_config = with_device(config.agent, "cpu")
        builder = builder_for(agent_config)
        plan = dataclasses.replace(run_plan(config), num_envs=num_envs)
        agent = builder.make_agent(agent_config, env.time_step_spec(), env.action_spec(), agent_seed, plan)
        return CollectorParts(
            env,
            agent,
            exploring(config, index, agent.collect_policy, collect_seed, step_fn),
            builder.warmup_policy(agent, warmup_seed),
        )
    except BaseException:
        env.close()
        raise


def exploring(
    config: ExperimentConfig, index: int, policy: Policy, seed: int, step_fn: Callable[[], int]
) -> Policy:
    """The collect policy, its epsilon (if it has one) following ``step_fn``, or Ape-X's."""
    execution = config.execution
    if not isinstance(policy, EpsilonGreedyPolicy):
        if execution.apex_epsilons:
            raise ValueError(
                f"execution.apex_epsilons: the collect policy of {type(config.agent).__name__} "
                f"({type(policy).__name__}) has no epsilon; set execution.apex_epsilons false"
            )
        return policy
    epsilon = apex_epsilon(index, execution.collectors) if execution.apex_epsilons else policy.schedule
    return EpsilonGreedyPolicy(
        policy.wrapped,
        epsilon,
        seed=seed,
        step_fn=step_fn,
        emit_info=bool(policy.info_spec),
    )
