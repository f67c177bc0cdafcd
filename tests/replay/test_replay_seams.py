"""Episodes are never joined: a FIRST that does not follow a LAST (an environment reset in the
middle of an episode) starts a new episode for every window, n-step target and sequence."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import drivetrain as dt
from drivetrain.core import nest
from drivetrain.core.types import StepType
from drivetrain.envs.testing import CountingEnv
from drivetrain.policies.testing import CountingPolicy
from drivetrain.replay import PrioritizedReplay, UniformReplay
from drivetrain.replay.nstep import n_step_transitions
from drivetrain.replay.sequences import sample_sequences

FIRST, LAST = int(StepType.FIRST), int(StepType.LAST)


def collect(env, replay, runs):
    """Driver runs of ``steps`` each; ``restart`` resets the environments first (mid-episode)."""
    policy = CountingPolicy(env.time_step_spec(), env.action_spec())
    driver = dt.StepDriver(env, policy, [replay.add_batch], num_steps=1)
    state = None
    for steps, restart in runs:
        driver.num_steps = steps
        _, state = driver.run(env.reset() if restart else None, None if restart else state)


def joined(step_type, observation):
    """bool [B]: the window runs from one episode into another other than through LAST -> FIRST.

    CountingEnv's observation is ``[env, t, episode]``: within an episode ``t`` grows by one;
    after a boundary the next item is a FIRST with ``t == 0``."""
    prev_last = step_type[:, :-1] == LAST
    first = step_type[:, 1:] == FIRST
    t, prev_t = observation[:, 1:, 1], observation[:, :-1, 1]
    same_episode = (observation[:, 1:, 2] == observation[:, :-1, 2]) & (t == prev_t + 1)
    continues = np.where(prev_last, first & (t == 0), ~first & same_episode)
    return ~continues.all(axis=1)


def eligible_by_hand(replay, num_steps):
    items = replay.gather_all()
    st_all, count = items.step_type, 0
    for e in range(st_all.shape[0]):
        for s in range(st_all.shape[1] - num_steps + 1):
            w = st_all[e, s : s + num_steps]
            if w[0] != LAST and all((w[k] == FIRST) == (w[k - 1] == LAST) for k in range(1, num_steps)):
                count += 1
    return count


runs_strategy = st.lists(st.tuples(st.integers(1, 9), st.booleans()), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    runs=runs_strategy,
    capacity_per_env=st.integers(4, 40),
    num_steps=st.integers(2, 5),
    prioritized=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_no_window_crosses_a_restart(lengths, runs, capacity_per_env, num_steps, prioritized, seed):
    env = CountingEnv(lengths, truncate=[i % 2 == 1 for i in range(len(lengths))])
    spec = types_spec(env)
    kind = PrioritizedReplay if prioritized else UniformReplay
    replay = kind(spec, capacity_per_env * env.batch_size, env.batch_size, seed=seed)
    collect(env, replay, runs)
    expected = eligible_by_hand(replay, num_steps)
    assert replay.num_windows(num_steps) == expected
    if expected == 0:
        with pytest.raises(ValueError, match=r"no window|never fits"):
            replay.sample(4, num_steps)
        return
    batch, info = replay.sample(128, num_steps)
    assert not joined(batch.step_type, batch.observation).any()
    if not prioritized:
        np.testing.assert_allclose(info.probabilities, 1.0 / expected)
    # n-step targets: the next observation is of the same episode, or the window ends it first.
    nstep = n_step_transitions(batch, gamma=0.9)
    same = nstep.next_observation[:, 2] == nstep.observation[:, 2]
    assert np.all(same[nstep.valid])
    # Sequences for recurrent agents are windows too.
    seqs = sample_sequences(replay, 16, num_steps - 1, burn_in=1)
    whole = nest.map_structure(lambda a, b: np.concatenate([a, b], axis=1), seqs.burn_in, seqs.train)
    assert not joined(whole.step_type, whole.observation).any()
    # The stored state (steps since FIRST) starts each sequence where its episode stood.
    np.testing.assert_array_equal(seqs.initial_state, seqs.burn_in.observation[:, 0, 1])


def types_spec(env):
    return CountingPolicy(env.time_step_spec(), env.action_spec()).trajectory_spec


def test_the_books_loop_never_samples_a_joined_window():
    # Warm-up, then the environments are restarted mid-episode (as a driver started without a
    # time step did before it continued from env.current_time_step()), then collection.
    env = CountingEnv([50, 70])
    replay = UniformReplay(types_spec(env), 10_000, env.batch_size, seed=0)
    collect(env, replay, [(60, False), (40, True), (40, True)])
    batch, _ = replay.sample(2048, 2)
    assert not joined(batch.step_type, batch.observation).any()
    # Each restart cut one 2-step window per environment: the last transition before it.
    assert replay.num_windows(2) == eligible_by_hand(replay, 2)
    assert replay.num_windows(2) == len(replay) - 2 * 2 - 2  # newest item of each env, two seams each


def test_seams_survive_a_state_round_trip_and_the_ring():
    env = CountingEnv([5, 3])
    replay = PrioritizedReplay(types_spec(env), 2 * 12, env.batch_size, seed=0)
    collect(env, replay, [(7, False), (5, True), (9, False), (3, True), (4, True)])
    restored = PrioritizedReplay(types_spec(env), 2 * 12, env.batch_size, seed=0)
    restored.load_state_dict(replay.state_dict())
    for num_steps in (2, 3, 4):
        assert restored.num_windows(num_steps) == replay.num_windows(num_steps)
        assert restored.num_windows(num_steps) == eligible_by_hand(restored, num_steps)


@pytest.mark.atari
def test_atari_frame_stacks_restarted_mid_episode_are_stored_and_never_joined():
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from drivetrain.envs.atari import make_atari
    from drivetrain.policies import RandomPolicy

    with make_atari("Breakout", num_envs=2, seed=0) as env:
        policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
        replay = UniformReplay(policy.trajectory_spec, 2 * 400, env.batch_size, seed=0)
        assert replay.frame_deduplicated
        added = []
        driver = dt.StepDriver(env, policy, [replay.add_batch, added.append], num_steps=2 * 40)
        driver.run()
        driver.run(env.reset())  # restarted in the middle of the first episode
        driver.run()
    # Every stack comes back bit for bit, the restart's FIRST stack included.
    items = replay.gather_all()
    stored = np.stack([t.observation for t in added], axis=1)
    np.testing.assert_array_equal(items.observation, stored)
    # The windows across the restart are not eligible: the restart cut one per environment.
    assert replay.num_windows(2) == eligible_by_hand(replay, 2) == len(replay) - 2 - 2
    _, info = replay.sample(512, 2)
    cut = 40 - 1  # the last item before the restart
    assert not np.any(info.ids // env.batch_size == cut)
