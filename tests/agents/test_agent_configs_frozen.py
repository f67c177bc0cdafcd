"""An agent's config cannot change under it: the compiled updates fix its values when the agent
is built, so a change the eager update would read and the compiled one would ignore is refused."""

import dataclasses

import numpy as np
import pytest

from drivetrain.agents import (
    DQNConfig,
    PPOConfig,
    R2D2Config,
    ReinforceConfig,
    SACConfig,
    TD3Config,
    make_ppo,
)
from drivetrain.core import specs, types

CONFIGS = [
    (DQNConfig, "learning_rate", 1e-3),
    (R2D2Config, "burn_in", 4),
    (PPOConfig, "vf_coef", 0.0),
    (ReinforceConfig, "learning_rate", 0.1),
    (SACConfig, "autotune_alpha", False),
    (TD3Config, "target_policy_noise", 0.0),
]


@pytest.mark.parametrize(("cls", "field", "value"), CONFIGS)
def test_assigning_a_field_is_refused_and_replace_makes_a_checked_copy(cls, field, value):
    config = cls()
    before = getattr(config, field)
    with pytest.raises(dataclasses.FrozenInstanceError, match=field):
        setattr(config, field, value)
    assert getattr(config, field) == before
    changed = dataclasses.replace(config, **{field: value})
    assert getattr(changed, field) == value and getattr(config, field) == before
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field}"):  # still checked
        dataclasses.replace(config, **{field: "not a value"})


def test_layers_given_as_a_list_become_a_tuple():
    assert PPOConfig(layers=[32, 32]).layers == (32, 32)
    assert SACConfig(actor_layers=[8], critic_layers=[16]).critic_layers == (16,)


def test_an_agents_config_cannot_be_annealed_by_assignment():
    spec = types.time_step_spec(specs.ArraySpec((3,), np.float32))
    agent = make_ppo(PPOConfig(layers=(8,)), spec, specs.BoundedArraySpec((), np.int64, 0, 1), seed=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        agent.config.ent_coef = 0.5  # type: ignore[misc]
    assert agent.config.ent_coef == PPOConfig().ent_coef
