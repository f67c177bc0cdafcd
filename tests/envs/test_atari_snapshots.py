"""Atari games saved and restored mid-game: the emulator, its RNG and every wrapper continue exactly."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

import torch

from drivetrain.core import types
from drivetrain.envs.atari import AtariConfig, make_atari
from drivetrain.train import apply_overrides, get_preset, load_checkpoint, train
from drivetrain.train import loop as loop_lib
from drivetrain.train.logger import read_progress

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


TINY = [
    ("total_env_steps", 900),
    ("learning_starts", 300),
    ("update_period", 4),
    ("batch_size", 4),
    ("capacity", 2_000),
    ("eval_interval", 0),
    ("final_eval_episodes", 1),
    ("log_interval", 100),
    ("checkpoint_interval", 400),
    ("progress_bar", False),
    ("tensorboard", False),
    ("conv_layers", ((4, 8, 8),)),
    ("fc_layers", (16,)),
    ("target_update_period", 20),
    ("epsilon_decay_steps", 100),
    ("terminal_on_life_loss", True),
    ("env.atari.max_episode_steps", 500),
]


class CrashError(Exception):
    pass


def test_a_resumed_atari_run_matches_the_uninterrupted_one(tmp_path, monkeypatch) -> None:
    """With the games in the checkpoint, a resumed Atari run is bit-identical (no restarted games)."""
    config = apply_overrides(get_preset("breakout-dqn").build(), TINY)
    a = train(config, tmp_path / "a", verbose=False)
    real, calls = loop_lib._train_phase, {"n": 0}

    def phase(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 120:  # env step 780: after the checkpoint at 700
            raise CrashError
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_lib, "_train_phase", phase)
    with pytest.raises(CrashError):
        train(config, tmp_path / "b", verbose=False)
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "checkpoints do not hold the environments' state"
        b = train(config, tmp_path / "b", resume=True, verbose=False)
    assert (b.env_steps, b.train_steps) == (a.env_steps, a.train_steps)
    assert b.evaluation == a.evaluation
    skip = ("steps_per_second", "wall_seconds")
    rows = [
        [{k: v for k, v in r.items() if k not in skip} for r in read_progress(tmp_path / d / "progress.csv")]
        for d in ("a", "b")
    ]
    assert rows[0] == rows[1]
    weights = [load_checkpoint(tmp_path / d / "agent.pkl")["agent"]["q_network"] for d in ("a", "b")]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
