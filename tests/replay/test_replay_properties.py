"""Property test: random add / sample / update / clear sequences never break the window rules."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_data import LAST, Stream, check_window, data_spec, stacked_spec

from drivetrain.replay import PrioritizedReplay, UniformReplay

ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 12)),
        st.tuples(st.just("sample"), st.integers(1, 5)),
        st.tuples(st.just("update"), st.floats(0.0, 10.0)),
        st.tuples(st.just("clear"), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def brute_force_windows(stream, cleared_at, per_env, num_envs, num_steps):
    first = max(cleared_at, stream.t - per_env)
    return {
        (e, t)
        for e in range(num_envs)
        for t in range(first, stream.t - num_steps + 1)
        if stream.item(e, t).step_type != LAST
    }


@pytest.mark.filterwarnings("ignore:replay. the frame reserve is full")
@settings(max_examples=60, deadline=None)
@given(
    prioritized=st.booleans(),
    num_envs=st.integers(1, 3),
    per_env=st.integers(1, 9),
    lengths=st.tuples(st.integers(1, 4), st.integers(0, 5)).map(lambda x: (x[0], x[0] + x[1])),
    frames=st.sampled_from([None, (np.uint8, 4), (np.uint8, 3), (np.float32, 2)]),
    frame_reserve=st.sampled_from([None, 0.0, 0.3]),
    p_jump=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 2**16),
    operations=ops,
)
def test_random_operations_keep_every_window_valid(
    prioritized, num_envs, per_env, lengths, frames, frame_reserve, p_jump, seed, operations
):
    spec = None if frames is None else stacked_spec((2, 2), frames[1], frames[0])
    stream = Stream(num_envs, lengths=lengths, seed=seed, frames=spec, p_jump=p_jump)
    kwargs = {"frame_reserve": frame_reserve}
    cls = PrioritizedReplay if prioritized else UniformReplay
    replay = cls(data_spec(spec), per_env * num_envs, num_envs, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    cleared_at = 0
    last_ids = None
    # Without frames (or with a reserve that holds every stack) nothing is evicted early.
    exact = spec is None or frame_reserve is None
    for op, arg in operations:
        if op == "add":
            for _ in range(arg):
                replay.add_batch(stream.next())
        elif op == "clear":
            replay.clear()
            cleared_at = stream.t
        elif op == "update" and prioritized and last_ids is not None:
            replay.update_priorities(last_ids, np.full(last_ids.size, arg))
        elif op == "sample":
            num_steps = arg
            allowed = brute_force_windows(stream, cleared_at, per_env, num_envs, num_steps)
            count = replay.num_windows(num_steps)
            assert count <= len(allowed)
            if exact:
                assert count == len(allowed)
            if count == 0:
                try:
                    replay.sample(4, num_steps)
                except ValueError:
                    continue
                raise AssertionError("sampled from a buffer without eligible windows")
            batch, info = replay.sample(int(rng.integers(1, 20)), num_steps)
            last_ids = info.ids
            assert batch.step_type.shape == (info.ids.size, num_steps)
            for row, i in enumerate(info.ids):
                env, t = int(i % num_envs), int(i // num_envs)
                assert (env, t) in allowed  # no boundary start, not past the newest, not overwritten
                check_window(stream, batch, row, env, t)  # the data is exactly what was added
            assert np.all((info.probabilities > 0) & (info.probabilities <= 1))
            assert np.all((info.weights > 0) & (info.weights <= 1))
            if not prioritized:
                np.testing.assert_allclose(info.probabilities, 1 / count)
