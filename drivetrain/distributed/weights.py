"""The weights that travel from the learner to the collectors, with their version.

::

    version, weights = get_policy_weights(learner_agent)      # the learner, every N updates
    set_policy_weights(collector_agent, weights, version)     # a collector (Collector.set_weights)

Every agent implements the protocol's ``get_weights() -> (version, weights)`` and
``set_weights(weights, version)``: the Q-learning agents (DQN, R2D2) send their online
Q-network's state dict as CPU tensors, with their ``train_step`` as the version (which
``set_weights`` makes the copy's ``train_step``); the
actor-critic agents (PPO, REINFORCE) send their network's and the continuous-control agents
(SAC, TD3) their actor's state dict, the version counting their updates. Either way the
version counts the learner's updates.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_policy_weights", "set_policy_weights"]


def get_policy_weights(agent: Any) -> tuple[int, Any]:
    """``(version, weights)`` that a learner publishes: ``agent.get_weights()``, the version an int."""
    get = getattr(agent, "get_weights", None)
    if not callable(get):
        raise TypeError(f"{type(agent).__name__} has no get_weights(): its weights cannot travel")
    version, weights = get()
    return int(version), weights


def set_policy_weights(agent: Any, weights: Any, version: int) -> None:
    """Loads what :func:`get_policy_weights` returned into ``agent``: ``agent.set_weights(weights, version)``."""
    put = getattr(agent, "set_weights", None)
    if not callable(put):
        raise TypeError(f"{type(agent).__name__} has no set_weights(): its weights cannot travel")
    put(weights, version)
