"""What the policy-gradient agents share: the actor-critic network, its policy, its distributions."""

from drivetrain.agents.actor_critic.networks import ActorCriticNetwork, ActorCriticOutput
from drivetrain.agents.actor_critic.policy import ActorCriticPolicy

__all__ = ["ActorCriticNetwork", "ActorCriticOutput", "ActorCriticPolicy"]
