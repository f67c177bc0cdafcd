"""The weights that travel from the learner to the collectors, with their version.

::

    version, weights = get_policy_weights(learner_agent)      # the learner, every N updates
    set_policy_weights(collector_agent, weights, version)     # a collector (Collector.set_weights)

An agent that implements the protocol's ``get_weights() -> (version, weights)`` and
``set_weights(weights, version)`` (PPO, REINFORCE, SAC, TD3) is used as it is: its version
counts its updates. An agent without them (the Q-learning agents, DQN and R2D2) sends its
online Q-network's state dict, as CPU tensors, with its ``train_step`` as the version; its
greedy and collect policies act with that network. Either way the version counts the
learner's train steps, which a collector's epsilon schedule follows.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["get_policy_weights", "set_policy_weights"]


def get_policy_weights(agent: Any) -> tuple[int, Any]:
    """``(version, weights)`` that a learner publishes: ``agent.get_weights()``; for an agent without
    it (the Q-learning agents: DQN, R2D2), ``(train_step, its online Q-network's state dict on the CPU)``."""
    get = getattr(agent, "get_weights", None)
    if callable(get):
        version, weights = get()
        return int(version), weights
    network = getattr(agent, "q_network", None)
    if isinstance(network, torch.nn.Module):
        return int(agent.train_step), {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    raise TypeError(
        f"{type(agent).__name__} has no get_weights() (nor a q_network): its weights cannot travel"
    )


def set_policy_weights(agent: Any, weights: Any, version: int) -> None:
    """Loads what :func:`get_policy_weights` returned into ``agent`` (the inverse, for any agent)."""
    put = getattr(agent, "set_weights", None)
    if callable(put):
        put(weights, version)
        return
    network = getattr(agent, "q_network", None)
    if isinstance(network, torch.nn.Module):
        network.load_state_dict(weights)
        return
    raise TypeError(
        f"{type(agent).__name__} has no set_weights() (nor a q_network): its weights cannot travel"
    )
