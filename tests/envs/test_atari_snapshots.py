"""Atari games saved and restored mid-game: the emulator, its RNG and every wrapper continue exactly.

A whole Atari run resumed from a checkpoint: tests/train/test_atari_run.py."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from drivetrain.core import types
from drivetrain.envs.atari import AtariConfig, make_atari

pytestmark = pytest.mark.atari


def _continue(env, actions: np.ndarray) -> list[types.TimeStep]:
    return [env.step(a) for a in actions]


def _assert_same(a: list[types.TimeStep], b: list[types.TimeStep]) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b, strict=True)):
        for field in types.TimeStep._fields:
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field), err_msg=f"step {t} {field}")


@pytest.mark.parametrize(
    ("game", "config"),
    [
        ("Breakout", AtariConfig(terminal_on_life_loss=True, sticky_actions=True)),  # emulator RNG in play
        ("Pong", AtariConfig(max_episode_steps=180)),  # a time limit reached after the snapshot
    ],
)
def test_a_restored_game_continues_frame_for_frame(game: str, config: AtariConfig) -> None:
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, size=(400, 2))
    with make_atari(game, num_envs=2, seed=3, config=config) as env:
        env.reset()
        _continue(env, actions[:150])
        state = pickle.loads(pickle.dumps(env.state_dict()))  # as a checkpoint stores it
        original = _continue(env, actions[150:])
        # the same object, rewound
        env.load_state_dict(state)
        _assert_same(_continue(env, actions[150:]), original)
    # a fresh environment built alike (what a resumed run does), never reset
    with make_atari(game, num_envs=2, seed=3, config=config) as fresh:
        fresh.load_state_dict(state)
        resumed = _continue(fresh, actions[150:])
    _assert_same(resumed, original)
    step_types = np.stack([ts.step_type for ts in original])
    assert (step_types == int(types.StepType.FIRST)).any()  # a game ended and restarted after the snapshot
    assert any(ts.reward.any() for ts in original) or game == "Pong"


def test_the_asynchronous_backend_says_it_cannot_save() -> None:
    with (
        make_atari("Breakout", num_envs=1, seed=0, backend="gymnasium", asynchronous=True) as env,
        pytest.raises(TypeError, match="asynchronous"),
    ):
        env.state_dict()
