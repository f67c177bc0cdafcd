"""Networks are float32 whatever torch's default dtype: a user's set_default_dtype(float64)
does not turn them into float64 networks that the float32 observations no longer fit."""

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents import DQNConfig, PPOConfig, SACConfig, make_dqn, make_ppo, make_sac
from drivetrain.agents.r2d2 import R2D2Config, make_r2d2
from drivetrain.replay import UniformReplay
from drivetrain.replay.rollout import RolloutBuffer, minibatches

CASES = {
    "dqn": ("CartPole-v1", lambda s, a: make_dqn(DQNConfig(fc_layers=(8,)), s, a, seed=0)),
    "r2d2": (
        "CartPole-v1",
        lambda s, a: make_r2d2(
            R2D2Config(hidden_size=8, fc_layers=(8,), sequence_length=3, burn_in=1), s, a, seed=0
        ),
    ),
    "sac": (
        "Pendulum-v1",
        lambda s, a: make_sac(SACConfig(actor_layers=(8,), critic_layers=(8,)), s, a, seed=0),
    ),
    "ppo": ("Pendulum-v1", lambda s, a: make_ppo(PPOConfig(layers=(8,)), s, a, seed=0)),
}


@pytest.fixture
def float64_default():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


@pytest.mark.parametrize("kind", list(CASES))
def test_agents_build_act_and_train_under_a_float64_default(kind, float64_default):
    env_id, make = CASES[kind]
    env = dt.envs.make(env_id, 2, seed=0)
    agent = make(env.time_step_spec(), env.action_spec())
    params = [p for m in vars(agent).values() if isinstance(m, torch.nn.Module) for p in m.parameters()]
    assert params and all(p.dtype == torch.float32 for p in params if p.is_floating_point())
    if kind == "ppo":
        rollout = RolloutBuffer(agent.collect_data_spec, env.batch_size)
        dt.StepDriver(env, agent.collect_policy, [rollout.add_batch], num_steps=40).run()
        batch = next(
            minibatches(agent.prepare(*rollout.gather()), 1, 1, agent.minibatch_rng, sequences=False)
        )
    else:
        replay = UniformReplay(agent.collect_data_spec, 1000, 2, seed=0)
        dt.StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=60).run()
        batch = replay.sample(4, agent.train_sequence_length)[0]
    assert np.isfinite(agent.train(batch).loss)
