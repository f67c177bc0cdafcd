"""``make_dqn``: a DQN agent, its Q-network and its optimizer from a :class:`DQNConfig`.

:func:`make_optimizer` and :func:`q_learning_kwargs` (the agent arguments that DQN and R2D2
take alike, the epsilon schedule among them) serve :func:`~drivetrain.agents.make_r2d2` too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar, TypedDict

import numpy as np
import torch

from drivetrain.agents.compiling import resolve_compile
from drivetrain.agents.dqn.agent import DQN
from drivetrain.agents.dqn.config import DQNConfig
from drivetrain.agents.dqn.loss import LossKind
from drivetrain.agents.optimizers import RMSpropTF, adam
from drivetrain.agents.protocol import RunPlan, register_builder
from drivetrain.core import seeding, types
from drivetrain.core.policy import Policy
from drivetrain.core.schedules import PolynomialDecay, Schedule
from drivetrain.networks import QNetwork
from drivetrain.policies import EpsilonGreedyPolicy, RandomPolicy
from drivetrain.replay.sources import ReplaySource

__all__ = ["DQNBuilder", "QLearningKwargs", "make_dqn", "make_optimizer", "q_learning_kwargs"]


class QLearningKwargs(TypedDict):
    """The keyword arguments that :class:`DQN` and :class:`~drivetrain.agents.R2D2` both take."""

    gamma: float
    target_update_period: int
    target_update_tau: float
    n_step: int
    double: bool
    loss: LossKind
    huber_delta: float
    gradient_clipping: float | None
    reward_scale: float
    reward_clip: float | None
    epsilon_greedy: float | Schedule
    seed: seeding.Seed
    device: str | torch.device


def make_optimizer(
    config: DQNConfig, params: Iterable[torch.nn.Parameter], compiled: bool | None = None
) -> torch.optim.Optimizer:
    """Adam, RMSprop or RMSpropTF with the config's learning rate and constants.

    Adam is fused where it can be (:func:`~drivetrain.agents.optimizers.adam`), except for a
    compiled update (``compiled``; None: as ``config.compile`` resolves), which steps the
    optimizer's state itself."""
    if compiled is None:
        compiled = resolve_compile(config.compile, config.device, "DQN")
    if config.optimizer == "adam":
        if compiled:
            return torch.optim.Adam(params, lr=config.learning_rate, eps=config.adam_eps)
        return adam(params, lr=config.learning_rate, eps=config.adam_eps)
    if config.optimizer == "rmsprop_tf":
        return RMSpropTF(
            params,
            lr=config.learning_rate,
            rho=config.rmsprop_alpha,
            eps=config.rmsprop_eps,
            momentum=config.rmsprop_momentum,
            centered=config.rmsprop_centered,
        )
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params,
            lr=config.learning_rate,
            alpha=config.rmsprop_alpha,
            eps=config.rmsprop_eps,
            momentum=config.rmsprop_momentum,
            centered=config.rmsprop_centered,
        )
    raise ValueError(
        f"DQNConfig.optimizer: expected 'adam', 'rmsprop' or 'rmsprop_tf', got {config.optimizer!r}"
    )


def make_dqn(
    config: DQNConfig, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None = None
) -> DQN:
    """Builds the Q-network (seeded), the optimizer and the agent (collect policy seeded).

    The same ``seed`` gives the same initial weights and the same exploration.
    """
    network_seed, policy_seed = seeding.spawn_seeds(seed, 2)
    q_network = QNetwork(
        time_step_spec.observation,
        action_spec,
        conv_layers=config.conv_layers,
        fc_layers=config.fc_layers,
        dueling=config.dueling,
        seed=network_seed,
    ).to(config.device)
    compiled = resolve_compile(config.compile, config.device, "DQN")
    return DQN(
        time_step_spec,
        action_spec,
        q_network,
        make_optimizer(config, q_network.parameters(), compiled),
        **q_learning_kwargs(config, policy_seed),
        compile=compiled,
    )


def q_learning_kwargs(config: DQNConfig, policy_seed: seeding.Seed) -> QLearningKwargs:
    """The config's targets, loss, rewards and device, the polynomial epsilon decay, and ``policy_seed``."""
    return QLearningKwargs(
        gamma=config.gamma,
        target_update_period=config.target_update_period,
        target_update_tau=config.target_update_tau,
        n_step=config.n_step,
        double=config.double,
        loss=config.loss,
        huber_delta=config.huber_delta,
        gradient_clipping=config.gradient_clipping,
        reward_scale=config.reward_scale,
        reward_clip=config.reward_clip,
        epsilon_greedy=PolynomialDecay(
            config.epsilon_start, config.epsilon_end, config.epsilon_decay_steps, config.epsilon_power
        ),
        seed=policy_seed,
        device=config.device,
    )


_DQN_CHANGEABLE = frozenset(
    {
        "learning_rate",
        "adam_eps",
        "rmsprop_alpha",
        "rmsprop_eps",
        "gamma",
        "n_step",
        "double",
        "target_update_period",
        "target_update_tau",
        "loss",
        "huber_delta",
        "gradient_clipping",
        "reward_scale",
        "reward_clip",
        "epsilon_start",
        "epsilon_end",
        "epsilon_decay_steps",
        "epsilon_power",
        "device",
        "compile",
    }
)


class DQNBuilder:
    """DQN from a :class:`DQNConfig`; its experience: windows of a replay buffer after a random warm-up.

    The replay stores ``agent.collect_data_spec``; with prioritized replay, ``β`` anneals
    over the run's planned train steps (``replay.beta_final``) and each batch's ``|TD error|``
    becomes its new priority. The loop config sets the schedule (``update_period``,
    ``gradient_steps``, ``batch_size``, ``learning_starts``).
    """

    kind: ClassVar[str] = "dqn"
    config_type: ClassVar[type] = DQNConfig
    changeable_on_resume: ClassVar[frozenset[str]] = _DQN_CHANGEABLE
    """Optimizer constants that its state does not depend on, targets, loss, rewards, exploration,
    device (not the networks' shapes, nor the optimizer's kind or state layout)."""

    def make_agent(
        self, config: Any, time_step_spec: types.TimeStep, action_spec: Any, seed: int | None, plan: RunPlan
    ) -> Any:
        del plan
        return make_dqn(config, time_step_spec, action_spec, seed)

    def make_source(self, agent: Any, replay: Any, plan: RunPlan, seed: int) -> ReplaySource:
        from drivetrain import replay as replay_lib

        buffer: replay_lib.ReplayBuffer
        if replay.prioritized:
            beta: float | PolynomialDecay = replay.beta
            if replay.beta_final is not None:  # annealed over the sample calls, one per train step
                beta = PolynomialDecay(replay.beta, replay.beta_final, max(plan.planned_train_steps, 1))
            buffer = replay_lib.PrioritizedReplay(
                agent.collect_data_spec,
                replay.capacity,
                plan.num_envs,
                alpha=replay.alpha,
                beta=beta,
                seed=seed,
                epsilon=replay.priority_epsilon,
            )
        else:
            buffer = replay_lib.UniformReplay(
                agent.collect_data_spec, replay.capacity, plan.num_envs, seed=seed
            )
        return ReplaySource(
            buffer,
            batch_size=plan.batch_size,
            num_steps=agent.train_sequence_length,
            update_period=plan.update_period,
            gradient_steps=plan.gradient_steps,
            priorities=_td_errors if replay.prioritized else None,
            prefetch=replay.prefetch,
        )

    def update_period(self, config: Any, plan: RunPlan) -> int:
        del config
        return plan.update_period

    def warmup_policy(self, agent: Any, seed: int) -> Policy | None:
        """Uniformly random actions; for a stateful agent ``EpsilonGreedyPolicy(agent.policy, 1.0)``,
        which runs the network for its state, so warm-up trajectories carry the state too."""
        if agent.policy.stateful:
            return EpsilonGreedyPolicy(agent.policy, 1.0, seed=seed)
        return RandomPolicy(agent.time_step_spec, agent.action_spec, seed=seed)

    def check(self, config: Any, plan: RunPlan) -> list[str]:
        window, envs = self.window_steps(config), max(plan.num_envs, 1)
        # the drivers step whole batches: each environment's steps before the first train phase,
        # whose collect is the budget's rest when that is shorter than a period
        first = (
            min(plan.update_period, max(plan.total_env_steps - plan.learning_starts, 0)) or plan.update_period
        )
        collect = math.ceil(first / envs)
        per_env = math.ceil(plan.learning_starts / envs) + collect
        if per_env < window:
            need = (window - collect) * envs
            return [
                f"loop.learning_starts ({plan.learning_starts}) and loop.update_period ({plan.update_period}) "
                f"give each of the {envs} environments {per_env} steps before the first train step, fewer "
                f"than one window of {window} ({self.window_text(config)}): raise loop.learning_starts to at "
                f"least {need}"
            ]
        return []

    def window_steps(self, config: Any) -> int:
        """Steps of a sampled window: ``n_step + 1``."""
        return int(config.n_step) + 1

    def window_text(self, config: Any) -> str:
        return f"agent.n_step {config.n_step} + 1"


def _td_errors(loss_info: Any) -> np.ndarray:
    """DQN's new priorities: the batch's ``|TD error|`` (the replay adds its epsilon)."""
    return np.asarray(loss_info.extra["td_error"])


register_builder(DQNBuilder())
