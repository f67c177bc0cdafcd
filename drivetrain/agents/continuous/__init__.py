"""What the continuous-control agents (SAC, TD3, DDPG) share: the actor's policies and the agent base."""

from drivetrain.agents.continuous.agent import OffPolicyActorCritic, Transitions, polyak_update
from drivetrain.agents.continuous.policy import ActorPolicy

__all__ = ["ActorPolicy", "OffPolicyActorCritic", "Transitions", "polyak_update"]
