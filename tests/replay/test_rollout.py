"""Rollout buffers and minibatches: every item once per epoch, nothing lost between rollouts."""

import numpy as np
import pytest

import drivetrain as dt
from drivetrain.core import specs, types
from drivetrain.envs.testing import CountingEnv
from drivetrain.policies import RandomPolicy
from drivetrain.replay.advantages import gae, monte_carlo_returns
from drivetrain.replay.rollout import RolloutBatch, RolloutBuffer, minibatches, open_tail

F, M, L = 0, 1, 2


def collected(lengths=(3, 5), steps=12, seed=0):
    env = CountingEnv(list(lengths))
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=seed)
    rollout = RolloutBuffer(policy.trajectory_spec, env.batch_size)
    driver = dt.StepDriver(env, policy, [rollout.add_batch], num_steps=steps)
    return env, rollout, driver


def batch_of(trajectory, mask):
    zeros = np.zeros(mask.shape, np.float32)
    return RolloutBatch(trajectory, zeros, zeros, mask)


@pytest.mark.parametrize("num_minibatches", [1, 3, 4])
def test_each_epoch_covers_every_item_once(num_minibatches):
    _, rollout, driver = collected()
    driver.run()
    trajectory, _ = rollout.gather()
    mask = gae(
        trajectory.step_type,
        trajectory.next_step_type,
        trajectory.reward,
        trajectory.discount,
        np.zeros(trajectory.reward.shape),
        0.9,
        0.9,
    ).valid
    data = batch_of(trajectory, mask)
    batches = list(minibatches(data, 2, num_minibatches, np.random.default_rng(0), sequences=False))
    assert len(batches) == 2 * num_minibatches
    for epoch in (batches[:num_minibatches], batches[num_minibatches:]):
        # CountingEnv's observation [env, t, episode] names each item.
        seen = np.concatenate([b.trajectory.observation for b in epoch])
        expected = trajectory.observation[mask]
        assert sorted(map(tuple, seen)) == sorted(map(tuple, expected))
        sizes = [len(b.mask) for b in epoch]
        assert max(sizes) - min(sizes) <= 1


def test_sequence_minibatches_split_the_environments():
    env = CountingEnv([3, 4, 5, 6])
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    rollout = RolloutBuffer(policy.trajectory_spec, env.batch_size)
    dt.StepDriver(env, policy, [rollout.add_batch], num_steps=20).run()
    trajectory, _ = rollout.gather()
    data = batch_of(trajectory, np.ones(trajectory.step_type.shape, bool))
    batches = list(minibatches(data, 1, 2, np.random.default_rng(1), sequences=True))
    rows = sorted(int(r) for b in batches for r in b.trajectory.observation[:, 0, 0])
    assert rows == [0, 1, 2, 3]
    assert all(b.trajectory.step_type.shape == (2, trajectory.step_type.shape[1]) for b in batches)


def test_release_keeps_the_newest_item_for_gae():
    _, rollout, driver = collected(lengths=(50, 50), steps=8)
    driver.run()
    trajectory, trained = rollout.gather()
    assert not trained.any()
    out = gae(
        trajectory.step_type,
        trajectory.next_step_type,
        trajectory.reward,
        trajectory.discount,
        np.zeros(trajectory.reward.shape),
        0.9,
        0.9,
    )
    assert out.valid[:, :-1].all() and not out.valid[:, -1].any()
    rollout.release(out.valid)
    assert len(rollout) == 1  # the newest item waits for its successor
    newest = trajectory.observation[:, -1]
    driver.run()
    again, trained = rollout.gather()
    np.testing.assert_array_equal(again.observation[:, 0], newest)
    assert not trained.any()


def test_release_keeps_unfinished_episodes_for_monte_carlo_returns():
    # Env 0's episodes last 2 steps, env 1's 6: after 8 steps env 1 is in the middle of one.
    _, rollout, driver = collected(lengths=(2, 6), steps=8)
    driver.run()
    trajectory, trained = rollout.gather()
    out = monte_carlo_returns(
        trajectory.step_type, trajectory.next_step_type, trajectory.reward, trajectory.discount, 0.9
    )
    pending = open_tail(trajectory.step_type, trajectory.next_step_type) & ~out.valid
    assert pending[1].any()
    rollout.release(out.valid)
    _, kept_trained = rollout.gather()
    first_pending = int(np.flatnonzero(pending.any(axis=0))[0])
    assert len(rollout) == trajectory.step_type.shape[1] - first_pending
    # Items of env 0 that were trained on are kept (the columns are shared) but marked.
    np.testing.assert_array_equal(kept_trained, out.valid[:, first_pending:])
    driver.run()
    later, trained = rollout.gather()
    again = monte_carlo_returns(later.step_type, later.next_step_type, later.reward, later.discount, 0.9)
    # Env 1's episode is complete now and gets its returns; env 0's kept items, whose returns
    # are known again, are marked trained, so a mask of valid & ~trained never takes them twice.
    assert (again.valid & ~trained)[1, 0]
    assert (again.valid & trained)[0].any()


def test_add_batch_checks_shapes_and_gather_needs_items():
    env, rollout, _ = collected()
    with pytest.raises(ValueError, match="empty"):
        rollout.gather()
    policy = RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    traj = types.from_transition(
        env.reset(), policy.action(env.current_time_step()), env.step(np.zeros(2, np.int64))
    )
    with pytest.raises(specs.SpecError):
        rollout.add_batch(traj._replace(reward=np.zeros(3, np.float32)))


def test_a_source_never_stores_other_policy_info_keys_under_the_spec_names():
    # A trajectory whose policy_info has as many keys as the spec, but not the same ones, is
    # refused by name; it used to pass the key filter unfiltered, and its "q_values" were
    # stored as "value" (the leaves are flattened in key order).
    from drivetrain.replay.sources import RolloutSource

    f32 = specs.ArraySpec((), np.float32)
    info_spec = {"log_prob": f32, "value": f32}
    spec = types.Trajectory(
        specs.ArraySpec((), np.int32), f32, specs.ArraySpec((), np.int64), info_spec,
        specs.ArraySpec((), np.int32), f32, f32,
    )  # fmt: skip
    source = RolloutSource(
        spec, 1, prepare=None, num_epochs=1, num_minibatches=1, rng=np.random.default_rng(0)
    )

    def item(info):
        one = np.ones(1, np.float32)
        return types.Trajectory(
            np.array([F], np.int32), one, np.zeros(1, np.int64), info, np.array([M], np.int32), one, one
        )

    source.observe(item({"log_prob": np.float32([1]), "value": np.float32([2])}))
    source.observe(item({"log_prob": np.float32([3]), "value": np.float32([4]), "q_values": np.float32([5])}))
    with pytest.raises(specs.SpecError):
        source.observe(item({"log_prob": np.float32([6]), "q_values": np.float32([99])}))
    trajectory, _ = source.rollout.gather()
    assert trajectory.policy_info["value"].tolist() == [[2.0, 4.0]]
