"""AtariConfig.fire_on_life_loss: Breakout relaunches the ball after a lost life without the agent's FIRE."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

from drivetrain.core import types
from drivetrain.envs.atari import make_atari

pytestmark = pytest.mark.atari

LAST = int(types.StepType.LAST)


def lives_lost_with_noops(fire_on_life_loss: bool, steps: int) -> tuple[int, bool]:
    """(lives lost, game over) after ``steps`` NOOP steps from the reset (which presses FIRE)."""
    env = make_atari("Breakout", 1, seed=0, fire_on_life_loss=fire_on_life_loss, noop_max=1)
    env.reset()
    ale = env.envs[0].unwrapped.ale
    start = ale.lives()
    noop = np.zeros(1, np.int64)
    game_over = False
    for _ in range(steps):
        time_step = env.step(noop)
        if time_step.step_type[0] == LAST:
            game_over = True
            break
    lost = start - ale.lives() if not game_over else start
    env.close()
    return lost, game_over


def test_after_a_lost_life_the_ball_is_launched_again():
    # a paddle that never moves misses every ball: each relaunched ball costs a life, until game over
    lost, game_over = lives_lost_with_noops(fire_on_life_loss=True, steps=3_000)
    assert game_over and lost == 5


def test_without_it_breakout_waits_for_fire_after_the_first_lost_life():
    lost, game_over = lives_lost_with_noops(fire_on_life_loss=False, steps=1_500)
    assert lost == 1 and not game_over


def test_envpool_refuses_the_option_clearly():
    with pytest.raises(ValueError, match="fire_on_life_loss is not available"):
        make_atari("Breakout", 1, seed=0, backend="envpool", fire_on_life_loss=True)


def test_a_game_without_fire_is_refused():
    with pytest.raises(ValueError, match="has no FIRE action"):
        make_atari("Freeway", 1, seed=0, fire_on_life_loss=True).reset()


@pytest.mark.parametrize("backend", ["gymnasium", "envpool"])
def test_fire_reset_on_a_game_without_fire_is_refused_on_either_backend(backend):
    if backend == "envpool":
        pytest.importorskip("envpool")
    with pytest.raises(ValueError, match=r"fire_reset=True but ALE/Freeway-v5 has no FIRE action"):
        make_atari("Freeway", 1, seed=0, backend=backend, fire_reset=True).reset()
