"""EnvPool takes an int32 seed; drivetrain's seed streams give any int >= 0 (e.g. a collector's)."""

import numpy as np
import pytest

from drivetrain.envs import make_atari

pytestmark = pytest.mark.atari


def test_a_seed_beyond_int32_builds_and_still_decides_the_games():
    pytest.importorskip("envpool")
    pytest.importorskip("ale_py")

    def first_frames(seed):
        env = make_atari("Breakout", backend="envpool", num_envs=2, seed=seed)
        try:
            ts = env.reset()
            for _ in range(30):
                ts = env.step(np.ones(2, np.int64))
            return np.asarray(ts.observation).copy()
        finally:
            env.close()

    big = 3_757_552_657  # > 2**31 - 1
    assert np.array_equal(first_frames(big), first_frames(big))
    assert not np.array_equal(first_frames(big), first_frames(big + 1))
