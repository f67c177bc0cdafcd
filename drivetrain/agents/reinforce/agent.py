"""REINFORCE: Monte-Carlo policy gradient over whole episodes, optionally with a baseline.

::

    agent = make_reinforce(ReinforceConfig(), env.time_step_spec(), env.action_spec(), seed=0)
    rollout = RolloutBuffer(agent.collect_data_spec, env.batch_size)
    StepDriver(env, agent.collect_policy, [rollout.add_batch], num_steps=500).run()
    data = agent.prepare(*rollout.gather())     # discounted returns of the episodes that ended
    agent.train(next(minibatches(data, 1, 1, agent.minibatch_rng, sequences=False)))
    rollout.release(data.mask)                  # unfinished episodes wait for their end

:meth:`Reinforce.prepare` computes the returns with
:func:`drivetrain.replay.advantages.monte_carlo_returns`: only episodes that ended inside the
rollout are trained on; with a baseline a truncated episode bootstraps from the value of
its final observation (held by its boundary item), without one its return stops there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drivetrain.agents.actor_critic.agent import ActorCriticAgent
from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.loss_info import LossInfo
from drivetrain.agents.reinforce.config import ReinforceConfig
from drivetrain.agents.reinforce.loss import reinforce_loss
from drivetrain.core import types
from drivetrain.replay.advantages import monte_carlo_returns
from drivetrain.replay.rollout import RolloutBatch

__all__ = ["Reinforce"]


class Reinforce(ActorCriticAgent):
    """REINFORCE (Williams 1992); see the module docstring."""

    _name = "Reinforce"

    def __init__(
        self,
        time_step_spec: types.TimeStep,
        action_spec: Any,
        network: ActorCriticNetwork,
        config: ReinforceConfig,
        *,
        seed: int | None = None,
    ):
        super().__init__(
            time_step_spec,
            action_spec,
            network,
            learning_rate=config.learning_rate,
            adam_eps=config.adam_eps,
            max_grad_norm=config.max_grad_norm,
            device=config.device,
            seed=seed,
        )
        self._config = config

    @property
    def config(self) -> ReinforceConfig:
        return self._config

    def prepare(self, trajectory: types.Trajectory, trained: np.ndarray | None = None) -> RolloutBatch:
        """Discounted returns of the episodes that ended in the rollout ``[E, T]``."""
        values = trajectory.policy_info["value"] if self._config.baseline else None
        out = monte_carlo_returns(
            trajectory.step_type,
            trajectory.next_step_type,
            trajectory.reward,
            trajectory.discount,
            self._config.gamma,
            bootstrap_value=values,
        )
        mask = out.valid if trained is None else out.valid & ~np.asarray(trained, bool)
        return RolloutBatch(trajectory, out.advantages, out.returns, mask)

    def train(self, experience: RolloutBatch, weights: np.ndarray | None = None) -> LossInfo:
        """One gradient step on :meth:`prepare`'s returns, split by ``minibatches`` (flat items for a
        feed-forward network, whole sequences for a recurrent one; one minibatch is the whole rollout)."""
        mask = self._check_experience(experience, weights)
        c = self._config
        ev = self.evaluate_actions(experience.trajectory)
        terms = reinforce_loss(
            ev.log_prob,
            self._tensor(experience.returns),
            ev.value if c.baseline else None,
            ev.entropy,
            self._tensor(mask) > 0,
            normalize=c.normalize_returns,
            vf_coef=c.vf_coef,
            ent_coef=c.ent_coef,
        )
        loss, grad_norm, lr = self._step(terms.loss)
        extra = {
            "policy_loss": terms.policy_loss.item(),
            "value_loss": terms.value_loss.item(),
            "entropy": terms.entropy.item(),
            "episode_steps": int(mask.sum()),
            "grad_norm": grad_norm,
            "learning_rate": lr,
        }
        return LossInfo(loss, extra)
