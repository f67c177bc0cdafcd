"""Agents (PyTorch): one folder per agent (config, networks, loss, policy, agent, builder).

Every agent implements one protocol (:class:`Agent`: ``policy``, ``collect_policy``,
``collect_data_spec``, ``train_step``, ``train(experience) -> LossInfo``, checkpoints,
weights out and in), so the drivers and the training loop run any of them:

- Q-learning, from a replay buffer: ``DQN`` (windows of ``n_step + 1`` steps) and ``R2D2``
  (recurrent, sequences with a burn-in from the stored state); both subclass
  :class:`QLearningAgent`.
- Policy gradient, from on-policy rollouts: ``Reinforce`` (Monte-Carlo returns) and ``PPO``
  (clipped surrogate, GAE; discrete, continuous and recurrent); both subclass
  :class:`~drivetrain.agents.actor_critic.agent.ActorCriticAgent`.

Each agent's builder is registered by its config type (:func:`builder_for`);
:func:`make_agent` builds the agent of any registered config.

The names are imported on first use: the configs (``DQNConfig``, ...), the protocol and the
builder registry need no PyTorch; the agents, networks and builders do.
"""

from typing import TYPE_CHECKING

from drivetrain._lazy import lazy_exports

if TYPE_CHECKING:
    from drivetrain.agents.actor_critic import ActorCriticNetwork, ActorCriticPolicy
    from drivetrain.agents.dqn import DQN, DQNConfig, QPolicy, make_dqn, make_optimizer
    from drivetrain.agents.loss_info import LossInfo
    from drivetrain.agents.ppo import PPO, PPOConfig, make_ppo
    from drivetrain.agents.protocol import (
        Agent,
        AgentBuilder,
        RunPlan,
        UnknownAgentError,
        builder_for,
        builder_named,
        builders,
        make_agent,
        register_builder,
    )
    from drivetrain.agents.q_learning import QLearningAgent
    from drivetrain.agents.r2d2 import R2D2, R2D2Config, RecurrentQPolicy, make_r2d2
    from drivetrain.agents.reinforce import Reinforce, ReinforceConfig, make_reinforce
    from drivetrain.agents.sac import SAC, SACConfig, make_sac
    from drivetrain.agents.td3 import TD3, TD3Config, make_td3
    from drivetrain.export import ExportedPolicy, export_policy, load_exported_policy

__all__ = [
    "DQN",
    "PPO",
    "R2D2",
    "SAC",
    "TD3",
    "ActorCriticNetwork",
    "ActorCriticPolicy",
    "Agent",
    "AgentBuilder",
    "DQNConfig",
    "ExportedPolicy",
    "LossInfo",
    "PPOConfig",
    "QLearningAgent",
    "QPolicy",
    "R2D2Config",
    "RecurrentQPolicy",
    "Reinforce",
    "ReinforceConfig",
    "RunPlan",
    "SACConfig",
    "TD3Config",
    "UnknownAgentError",
    "builder_for",
    "builder_named",
    "builders",
    "export_policy",
    "load_exported_policy",
    "make_agent",
    "make_dqn",
    "make_optimizer",
    "make_ppo",
    "make_r2d2",
    "make_reinforce",
    "make_sac",
    "make_td3",
    "register_builder",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".actor_critic": ("ActorCriticNetwork", "ActorCriticPolicy"),
        ".dqn": ("DQN", "QPolicy", "make_dqn", "make_optimizer"),
        ".dqn.config": ("DQNConfig",),
        ".loss_info": ("LossInfo",),
        ".ppo": ("PPO", "make_ppo"),
        ".ppo.config": ("PPOConfig",),
        ".protocol": (
            "Agent",
            "AgentBuilder",
            "RunPlan",
            "UnknownAgentError",
            "builder_for",
            "builder_named",
            "builders",
            "make_agent",
            "register_builder",
        ),
        ".q_learning": ("QLearningAgent",),
        ".r2d2": ("R2D2", "RecurrentQPolicy", "make_r2d2"),
        ".r2d2.config": ("R2D2Config",),
        ".reinforce": ("Reinforce", "make_reinforce"),
        ".reinforce.config": ("ReinforceConfig",),
        ".sac": ("SAC", "make_sac"),
        ".sac.config": ("SACConfig",),
        ".td3": ("TD3", "make_td3"),
        ".td3.config": ("TD3Config",),
        "drivetrain.export": ("ExportedPolicy", "export_policy", "load_exported_policy"),
    },
    submodules=(
        "actor_critic",
        "continuous",
        "dqn",
        "loss_info",
        "optimizers",
        "ppo",
        "protocol",
        "q_learning",
        "r2d2",
        "reinforce",
        "sac",
        "td3",
        "tensors",
    ),
)
