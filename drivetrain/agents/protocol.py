"""The protocol every agent implements, and the registry of their builders.

An **agent** (TF-Agents' ``TFAgent``; Acme's learner with its policies) is what the
training loop and the drivers know of an algorithm::

    agent.policy              # greedy / deterministic: evaluation, export
    agent.collect_policy      # exploring: what the collect driver plays
    agent.collect_data_spec   # the trajectories train() learns from (a replay's data spec)
    agent.train_step          # train() calls so far
    agent.train(experience, weights=None) -> LossInfo(loss, extra)   # every scalar of extra is logged
    agent.state_dict(); agent.load_state_dict(state)                  # checkpoints, bit for bit
    agent.get_weights() -> (version, weights); agent.set_weights(weights, version)   # collectors

What ``experience`` is depends on how the agent's data arrives: windows sampled from a
replay buffer for DQN and R2D2, minibatches of a prepared rollout for REINFORCE and PPO.

A **builder** (Acme's) makes an agent from its config and says how its experience
arrives: the experience source (:mod:`drivetrain.replay.sources`), the warm-up policy,
and how many environment steps one collect phase takes. Builders are registered by
config type, and ``config.json`` names the agent by the builder's ``kind``::

    builder = builder_for(config.agent)       # by the config's type: no isinstance chains
    agent = builder.make_agent(config.agent, time_step_spec, action_spec, seed=0, plan=plan)
    builder_named("ppo").config_type          # PPOConfig
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from drivetrain.agents.loss_info import LossInfo
from drivetrain.core import types
from drivetrain.core.policy import Policy
from drivetrain.replay.sources import ExperienceSource

__all__ = [
    "Agent",
    "AgentBuilder",
    "RunPlan",
    "UnknownAgentError",
    "builder_for",
    "builder_named",
    "builders",
    "make_agent",
    "on_policy_problems",
    "register_builder",
    "for_acting",
    "with_device",
]


@runtime_checkable
class Agent(Protocol):
    """What the training loop, the drivers and the collectors use of an agent."""

    @property
    def time_step_spec(self) -> types.TimeStep: ...

    @property
    def action_spec(self) -> Any: ...

    @property
    def policy(self) -> Policy: ...

    @property
    def collect_policy(self) -> Policy: ...

    @property
    def collect_data_spec(self) -> types.Trajectory: ...

    @property
    def train_step(self) -> int: ...

    def train(self, experience: Any, weights: np.ndarray | None = None) -> LossInfo: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def get_weights(self) -> tuple[int, Any]: ...

    def set_weights(self, weights: Any, version: int) -> None: ...


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a builder needs to know of the run beyond the agent's own config."""

    num_envs: int
    """Environments of the collect batch."""
    total_env_steps: int
    """The run's budget (learning-rate annealing plans over it)."""
    learning_starts: int = 0
    """Warm-up steps before the first collect phase (replay-based agents)."""
    update_period: int = 1
    """Environment steps per collect phase, for agents whose schedule the loop config sets."""
    gradient_steps: int = 1
    """Train steps per collect phase, for agents whose schedule the loop config sets."""
    batch_size: int = 1
    """Windows per train step (replay-based agents)."""

    @property
    def planned_train_steps(self) -> int:
        """Train steps of a run whose loop sets the schedule: ``gradient_steps`` per
        ``update_period`` steps collected after the warm-up (pro rata for the last phase)."""
        collected = max(self.total_env_steps - self.learning_starts, 0)
        full, rest = divmod(collected, max(self.update_period, 1))
        return full * self.gradient_steps + math.ceil(self.gradient_steps * rest / max(self.update_period, 1))


class AgentBuilder(Protocol):
    """Makes one kind of agent and says how its experience arrives; see the module docstring."""

    kind: ClassVar[str]
    """The agent's name in ``config.json`` (``agent_kind``) and on the command line."""
    config_type: ClassVar[type]
    """The agent's config dataclass; the registry finds the builder by it."""
    changeable_on_resume: ClassVar[frozenset[str]]
    """Config fields a resumed run may change (the others are fixed by its checkpoint)."""

    def make_agent(
        self, config: Any, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None, plan: RunPlan
    ) -> Agent:
        """The agent, seeded."""
        ...

    def make_source(self, agent: Any, replay: Any, plan: RunPlan, seed: int) -> ExperienceSource:
        """How the agent's experience arrives: a replay (``replay``: a ReplayConfig) or rollouts."""
        ...

    def update_period(self, config: Any, plan: RunPlan) -> int:
        """Environment steps of one collect phase."""
        ...

    def warmup_policy(self, agent: Any, seed: int) -> Policy | None:
        """The policy that fills the experience source before training (None: no warm-up)."""
        ...

    def check(self, config: Any, plan: RunPlan) -> list[str]:
        """Problems of the run's settings for this agent, each naming the field ([] if none)."""
        ...


def on_policy_problems(name: str, plan: RunPlan) -> list[str]:
    """An on-policy agent collects its own data: no random warm-up (for builders' ``check``)."""
    if plan.learning_starts:
        return [
            f"loop.learning_starts must be 0 for {name}, got {plan.learning_starts}: an on-policy agent "
            "trains on what its own policy collects (no random warm-up)"
        ]
    return []


_BUILDERS: dict[type, AgentBuilder] = {}

# The built-in agents: config type (module.name) -> the module that registers its builder.
# The configs need no PyTorch; their builders are imported when one is first asked for.
_BUILT_IN: dict[str, str] = {
    "drivetrain.agents.dqn.config.DQNConfig": "drivetrain.agents.dqn.builder",
    "drivetrain.agents.ppo.config.PPOConfig": "drivetrain.agents.ppo.builder",
    "drivetrain.agents.r2d2.config.R2D2Config": "drivetrain.agents.r2d2.builder",
    "drivetrain.agents.reinforce.config.ReinforceConfig": "drivetrain.agents.reinforce.builder",
    "drivetrain.agents.sac.config.SACConfig": "drivetrain.agents.sac.builder",
    "drivetrain.agents.td3.config.TD3Config": "drivetrain.agents.td3.builder",
}


def _type_name(config_type: type) -> str:
    return f"{config_type.__module__}.{config_type.__qualname__}"


def _load_built_in() -> None:
    for module in _BUILT_IN.values():
        importlib.import_module(module)


class UnknownAgentError(ValueError):
    """No builder is registered for an agent config type or kind."""


# The built-in agents' kinds, known without importing their builders.
_BUILT_IN_KINDS: dict[str, str] = {
    "dqn": "drivetrain.agents.dqn.config.DQNConfig",
    "ppo": "drivetrain.agents.ppo.config.PPOConfig",
    "r2d2": "drivetrain.agents.r2d2.config.R2D2Config",
    "reinforce": "drivetrain.agents.reinforce.config.ReinforceConfig",
    "sac": "drivetrain.agents.sac.config.SACConfig",
    "td3": "drivetrain.agents.td3.config.TD3Config",
}


def register_builder(builder: AgentBuilder) -> AgentBuilder:
    """Registers ``builder`` for its ``config_type`` (and its ``kind``); returns it.

    A kind is one config type's: a built-in kind is refused for another type, and a type of the
    same qualified name (a module imported again) takes over its kind. A builder for a built-in
    config type replaces the built-in one for good."""
    name = _type_name(builder.config_type)
    built_in = _BUILT_IN_KINDS.get(builder.kind)
    if built_in is not None and built_in != name:
        raise ValueError(
            f"register_builder: kind {builder.kind!r} is drivetrain's {built_in.rsplit('.', 1)[-1]}; "
            f"give {name} a kind of its own"
        )
    if name in _BUILT_IN and type(builder).__module__ != _BUILT_IN[name]:
        importlib.import_module(_BUILT_IN[name])  # registered first, so that this one replaces it
    for config_type, other in list(_BUILDERS.items()):
        if other.kind == builder.kind and config_type is not builder.config_type:
            if _type_name(config_type) != name:
                raise ValueError(
                    f"register_builder: kind {builder.kind!r} is taken by {_type_name(config_type)}; "
                    f"give {name} a kind of its own"
                )
            del _BUILDERS[config_type]  # the same config reloaded
    _BUILDERS[builder.config_type] = builder
    return builder


def is_agent_config(config: Any) -> bool:
    """Whether ``config`` is the config of a registered or built-in agent (imports no builder)."""
    return type(config) in _BUILDERS or _type_name(type(config)) in _BUILT_IN


def builders() -> list[AgentBuilder]:
    """The registered builders: the built-in ones (DQN, PPO, R2D2, REINFORCE, SAC, TD3), then the
    others in registration order."""
    _load_built_in()
    order = {name: i for i, name in enumerate(_BUILT_IN)}
    return sorted(_BUILDERS.values(), key=lambda b: order.get(_type_name(b.config_type), len(order)))


def builder_for(config: Any) -> AgentBuilder:
    """The builder of ``config``'s exact type (a subclass config has a builder of its own)."""
    builder = _BUILDERS.get(type(config))
    if builder is None and _type_name(type(config)) in _BUILT_IN:
        importlib.import_module(_BUILT_IN[_type_name(type(config))])
        builder = _BUILDERS.get(type(config))
    if builder is None:
        known = ", ".join(b.config_type.__name__ for b in builders())
        raise UnknownAgentError(
            f"no agent builder for a {type(config).__name__}; registered configs: {known}"
        )
    return builder


def builder_named(kind: str) -> AgentBuilder:
    """The builder whose ``kind`` is ``kind`` (as ``config.json`` names it)."""
    for builder in builders():
        if builder.kind == kind:
            return builder
    raise UnknownAgentError(
        f"unknown agent kind {kind!r}; known: {', '.join(b.kind for b in _BUILDERS.values())}"
    )


def make_agent(
    config: Any,
    time_step_spec: types.TimeStep,
    action_spec: Any,
    seed: int | None = None,
    plan: RunPlan | None = None,
) -> Agent:
    """The agent of any registered config (``plan`` defaults to one environment and no budget)."""
    plan = RunPlan(num_envs=1, total_env_steps=0) if plan is None else plan
    return builder_for(config).make_agent(config, time_step_spec, action_spec, seed, plan)


def with_device(config: Any, device: str) -> Any:
    """``config`` with its ``device`` field set to ``device``; unchanged when it has no such field
    (an agent of a user's that runs where it likes)."""
    return _with(config, device=device)


def for_acting(config: Any) -> Any:
    """``config`` for an agent that only acts (evaluation, videos, export): ``compile`` off where
    it has the field, so that a run trained compiled loads on a machine without a compiler."""
    return _with(config, compile=False)


def _with(config: Any, **changes: Any) -> Any:
    names = {f.name for f in dataclasses.fields(config)}
    present = {key: value for key, value in changes.items() if key in names}
    return dataclasses.replace(config, **present) if present else config
