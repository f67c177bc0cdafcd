"""The recurrent presets: documented, overridable configs that build a working R2D2 on masked CartPole."""

from __future__ import annotations

import dataclasses

import numpy as np

import drivetrain as dt
from drivetrain.agents import DQN, make_agent
from drivetrain.agents.r2d2 import R2D2, R2D2Config, make_r2d2
from drivetrain.train import fields
from drivetrain.train.recurrent_presets import RECURRENT_PRESETS, cartpole_masked_dqn, cartpole_masked_rdqn


def test_presets_have_summaries_and_the_masked_task() -> None:
    assert set(RECURRENT_PRESETS) == {"cartpole-masked-rdqn", "cartpole-masked-dqn"}
    for factory in RECURRENT_PRESETS.values():
        assert factory.__doc__ and factory().env.mask_velocity
    rdqn, dqn = cartpole_masked_rdqn(), cartpole_masked_dqn()
    assert isinstance(rdqn.agent, R2D2Config) and not isinstance(dqn.agent, R2D2Config)
    assert rdqn.agent.initial_state == "stored" and rdqn.agent.burn_in > 0


def test_every_r2d2_field_is_documented_and_overridable() -> None:
    config = cartpole_masked_rdqn()
    docs = {f.key: f.doc for f in fields.fields_of(config)}
    for key in ("agent.core", "agent.burn_in", "agent.sequence_length", "agent.initial_state", "agent.gamma"):
        assert docs[key], key
    changed = fields.apply_overrides(config, [("agent.initial_state", "zeros"), ("burn_in", "4")])
    assert isinstance(changed.agent, R2D2Config)
    assert changed.agent.initial_state == "zeros" and changed.agent.burn_in == 4


def test_preset_agent_collects_and_trains_on_masked_cartpole() -> None:
    config = cartpole_masked_rdqn()
    env = dt.envs.make("CartPole-v1", num_envs=2, seed=0, mask_velocity=True)
    assert env.observation_spec().shape == (2,)
    eager = dataclasses.replace(config.agent, compile=False)  # compiled: tests/agents/test_r2d2_compiled.py
    agent = make_r2d2(eager, env.time_step_spec(), env.action_spec(), seed=0)
    assert isinstance(agent, R2D2)
    replay = dt.replay.UniformReplay(agent.collect_data_spec, 2_000, env.batch_size, seed=0)
    dt.StepDriver(env, agent.collect_policy, [replay.add_batch], num_steps=200).run()
    batch, _ = replay.sample(4, agent.train_sequence_length)
    info = agent.train(batch)
    assert np.isfinite(info.loss) and info.extra["num_valid"] > 0
    env.close()


def test_make_agent_builds_the_agent_of_the_config_type() -> None:
    env = dt.envs.make("CartPole-v1", num_envs=1, seed=0, mask_velocity=True)
    spec, actions = env.time_step_spec(), env.action_spec()
    assert isinstance(make_agent(cartpole_masked_rdqn().agent, spec, actions, seed=0), R2D2)
    assert isinstance(make_agent(cartpole_masked_dqn().agent, spec, actions, seed=0), DQN)
    env.close()
