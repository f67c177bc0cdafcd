"""Collectors: seeded, continuing episodes across calls, counting as the local loop, versioned weights,
checkpoints, restarts, and only the data spec's policy info in their fragments."""

import copy
import pickle

import numpy as np
import pytest

from drivetrain.agents import DQN, builder_for
from drivetrain.core import metrics, seeding, types
from drivetrain.distributed.collector import Collector, collector_seed
from drivetrain.distributed.weights import get_policy_weights
from drivetrain.policies import EpsilonGreedyPolicy
from drivetrain.train import apply_overrides, get_preset
from drivetrain.train.config import run_plan
from drivetrain.train.experiment import make_env, run_seeds

FIRST, MID, LAST = (int(t) for t in (types.StepType.FIRST, types.StepType.MID, types.StepType.LAST))
SMALL = [("env.num_envs", "2"), ("execution.collectors", "3")]


def tiny(preset="cartpole-dqn", *overrides):
    return apply_overrides(get_preset(preset).build(), [*SMALL, *overrides])


@pytest.fixture(scope="module")
def config():
    return tiny("cartpole-dqn", ("agent.fc_layers", "16,16"))


@pytest.fixture
def make(config):
    made = []

    def build(index=0, cfg=None):
        collector = Collector(cfg or config, index)
        made.append(collector)
        return collector

    yield build
    for collector in made:
        collector.close()


def same(a, b):
    """Two nests of arrays equal, bit for bit (and of the same structure)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(np.asarray(a), np.asarray(b)) and np.asarray(a).dtype == np.asarray(b).dtype


def meta(fragment):
    """A fragment without its items: numbers, counts, returns, version."""
    return fragment._replace(items=None)


def step_types(items):
    """``[T, E]`` step types and next step types of a list of batched trajectories."""
    return np.stack([t.step_type for t in items]), np.stack([t.next_step_type for t in items])


def learner_weights(config, seed=123, version=7):
    """Weights of another agent of the same config (a stand-in for the learner's)."""
    env = make_env(config.env, 1, 0)
    agent = builder_for(config.agent).make_agent(
        config.agent, env.time_step_spec(), env.action_spec(), seed, run_plan(config)
    )
    env.close()
    return agent, version, get_policy_weights(agent)[1]


def test_same_config_and_index_give_the_same_fragments_other_indices_other_data(make):
    a, b, other = make(0), make(0), make(1)
    for warmup in (True, False):
        fa, fb, fo = (
            a.collect(40, warmup=warmup),
            b.collect(40, warmup=warmup),
            other.collect(40, warmup=warmup),
        )
        assert same(fa.items, fb.items) and meta(fa) == meta(fb) and fa.items
        assert not np.array_equal(fa.items[0].observation, fo.items[0].observation)
        assert (fa.writer_id, fo.writer_id) == (0, 1)
    assert a.env.batch_size == 2
    assert collector_seed(0, 0) != collector_seed(0, 1) != collector_seed(1, 1)


def test_the_seed_stream_is_branch_six_of_the_runs_seed_sequence():
    run = np.random.SeedSequence(5).spawn(7)
    expected = [int(child.generate_state(1)[0]) for child in run[6].spawn(3)]  # keys (6, i)
    assert [collector_seed(5, i) for i in range(3)] == expected
    assert not set(expected) & set(run_seeds(5))  # torch's global seed is key (6,) itself
    assert seeding.spawn_seeds(5, len(run)) == [int(s.generate_state(1)[0]) for s in run]


def test_episodes_continue_across_collect_calls(make):
    chunked, whole = make(0), make(0)
    items = [*chunked.collect(30, warmup=True).items]
    for _ in range(15):
        items += chunked.collect(7).items
    reference = whole.collect(30, warmup=True).items + whole.collect(15 * 7 + 20).items
    assert same(items, reference[: len(items)])  # the same transitions, however the calls cut them
    st, nst = step_types(items)
    assert (st[0] == FIRST).all()
    assert (st[1:] == nst[:-1]).all()  # each call begins where the last one stopped: no reset mid-episode
    assert (st == MID).any() and (nst == LAST).any()


def test_fragments_count_as_the_local_loop(make):
    collector = make(0)
    steps, episodes = metrics.EnvironmentSteps(), metrics.NumberOfEpisodes()
    returns, lengths = metrics.AverageReturn(1000), metrics.AverageEpisodeLength(1000)
    got_returns, got_lengths, total = [], [], 0
    for i, num_steps in enumerate([101, 64, 33, 200]):
        fragment = collector.collect(num_steps, warmup=i < 2)
        before = steps.result(), episodes.result()
        for item in fragment.items:
            for metric in (steps, episodes, returns, lengths):
                metric(item)
        assert fragment.env_steps == steps.result() - before[0]
        assert fragment.episodes == episodes.result() - before[1] == len(fragment.episode_returns)
        assert num_steps <= fragment.env_steps < num_steps + collector.env.batch_size
        assert fragment.sequence_number == i
        got_returns += fragment.episode_returns
        got_lengths += fragment.episode_lengths
        total += fragment.env_steps
    assert len(got_returns) > 5
    assert got_returns == list(returns._buffer) and got_lengths == list(lengths._buffer)
    assert (collector.env_steps, collector.episodes) == (total, episodes.result())


def test_newer_weights_apply_older_ones_are_ignored_and_the_policy_acts_with_them(config, make):
    collector = make(2, apply_overrides(config, [("execution.apex_epsilons", "true")]))
    assert collector.weights_version == -1
    learner, version, weights = learner_weights(config)
    assert collector.set_weights(version, weights) is True
    assert collector.weights_version == version
    older, _, stale = learner_weights(config, seed=999)
    assert collector.set_weights(version - 1, stale) is False
    assert collector.set_weights(version, stale) is False
    mine = get_policy_weights(collector.agent)[1]
    assert all(np.array_equal(mine[k], weights[k]) for k in weights)
    assert not all(np.array_equal(mine[k], stale[k]) for k in stale)
    fragment = collector.collect(200)  # epsilon 0.4 ** 8: nearly greedy
    assert fragment.weights_version == version
    obs = np.concatenate([t.observation for t in fragment.items])
    acted = np.concatenate([t.action for t in fragment.items])
    assert (acted != learner.policy.q_values(obs).argmax(axis=1)).sum() <= 2
    assert (acted != older.policy.q_values(obs).argmax(axis=1)).sum() > 20


def test_the_epsilon_schedule_follows_the_version_held(config, make):
    collector = make(0)
    schedule = DQN.collect_policy.fget(collector.agent).schedule
    assert collector.collect_policy.epsilon == schedule(0) == config.agent.epsilon_start
    _, _, weights = learner_weights(config)
    collector.set_weights(1000, weights)
    assert collector.collect_policy.epsilon == pytest.approx(schedule(1000)) != schedule(0)
    collector.collect(50)
    assert collector.collect_policy.epsilon == pytest.approx(schedule(1000))  # not the calls made


def test_apex_epsilons_per_collector(config, make):
    apex = apply_overrides(config, [("execution.apex_epsilons", "true")])
    eps = [make(i, apex).collect_policy.epsilon for i in range(3)]
    assert eps == pytest.approx([0.4, 0.4**4.5, 0.4**8])


def test_apex_epsilons_need_a_policy_with_an_epsilon():
    sac = tiny(
        "pendulum-sac", ("execution.apex_epsilons", "true"), ("actor_layers", "8"), ("critic_layers", "8")
    )
    with pytest.raises(ValueError, match=r"^execution\.apex_epsilons: the collect policy of SACConfig"):
        Collector(sac, 0)


def test_state_dict_round_trip_continues_identically(config, make):
    original = make(1)
    _, version, weights = learner_weights(config)
    original.collect(45, warmup=True)
    original.set_weights(version, weights)
    original.collect(33)
    state = pickle.loads(pickle.dumps(original.state_dict()))  # as a checkpoint holds it
    st, _ = step_types(original.collect(1).items[:1])
    assert (st != FIRST).any()  # the checkpoint was taken mid-episode
    original.load_state_dict(state)
    restored = make(1)
    assert restored.load_state_dict(copy.deepcopy(state)) is True
    assert restored.weights_version == version
    for _ in range(3):
        a, b = original.collect(40), restored.collect(40)
        assert same(a.items, b.items) and meta(a) == meta(b)
    assert (original.env_steps, original.episodes) == (restored.env_steps, restored.episodes)


def test_a_state_without_the_environments_starts_new_episodes(config, make):
    original = make(0)
    original.collect(45, warmup=True)
    state = {**original.state_dict(), "env": None}
    assert (original.collect(1).items[0].step_type != FIRST).any()  # it was mid-episode
    restored = make(0)
    assert restored.load_state_dict(state) is False
    fragment = restored.collect(20)
    assert fragment.sequence_number == 1
    assert (fragment.items[0].step_type == FIRST).all()
    assert not np.array_equal(fragment.items[0].observation, make(0).collect(1).items[0].observation)


def test_a_restarted_collector_starts_new_episodes_and_continues_the_numbers(make):
    first_life = make(0)
    fragments = [first_life.collect(25, warmup=True), first_life.collect(25)]
    assert (fragments[-1].items[-1].next_step_type != FIRST).any()  # its episodes were unfinished
    replacement = make(0)
    replacement.restart(2)
    fresh = [replacement.collect(25), replacement.collect(25)]
    assert [f.sequence_number for f in fresh] == [2, 3]
    assert (fresh[0].items[0].step_type == FIRST).all()
    assert not np.array_equal(fresh[0].items[0].observation, fragments[0].items[0].observation)
    first_life.restart(7)  # a live collector mid-episode restarts the same way
    again = first_life.collect(10)
    assert again.sequence_number == 7 and (again.items[0].step_type == FIRST).all()
    other = make(0)
    other.restart(7)
    assert same(other.collect(10).items, again.items)  # restarts are seeded too


def test_a_restart_keeps_the_weights_held(config, make):
    collector = make(0)
    _, version, weights = learner_weights(config)
    collector.set_weights(version, weights)
    collector.restart(3)
    assert collector.weights_version == version
    mine = get_policy_weights(collector.agent)[1]
    assert all(np.array_equal(mine[k], weights[k]) for k in weights)


def test_policy_info_is_filtered_to_the_data_spec(config, make, monkeypatch):
    # a collect policy that reports its q-values, while the agent trains on none (its data spec)
    monkeypatch.setattr(
        DQN,
        "collect_policy",
        property(lambda self: EpsilonGreedyPolicy(self.policy, 0.5, seed=0, emit_info=True)),
    )
    collector = make(0)
    assert "q_values" in collector.collect_policy.info_spec
    assert collector.agent.collect_data_spec.policy_info == {}
    fragment = collector.collect(20)
    assert all(item.policy_info == {} for item in fragment.items)


def test_recurrent_state_reaches_the_items_and_carries_from_the_warmup():
    config = tiny("cartpole-masked-rdqn", ("agent.hidden_size", "8"), ("agent.fc_layers", "8"))
    collector = Collector(config, 0)
    try:
        warmup, collect = collector.collect(30, warmup=True).items, collector.collect(30).items
        items = warmup + collect
        assert all(set(item.policy_info) == {"state"} for item in items)
        st, nst = step_types(items)
        assert (st[1:] == nst[:-1]).all()
        state = np.stack(
            [np.asarray(item.policy_info["state"]).reshape(2, -1) for item in items]
        )  # [T, E, H]
        assert not state[st == FIRST].any()  # episodes start from the initial state
        assert state[st == MID].any(axis=-1).all()  # then carry the network's
        carried = collect[0].step_type == MID
        assert carried.any() and state[len(warmup)][carried].any(axis=-1).all()  # not reset between calls
    finally:
        collector.close()


def test_an_on_policy_agent_takes_weights_through_its_protocol_and_has_no_warmup():
    config = tiny("cartpole-ppo", ("agent.layers", "8"))
    collector = Collector(config, 0)
    try:
        with pytest.raises(ValueError, match=r"collect\(warmup=True\): PPOConfig has no warm-up policy"):
            collector.collect(10, warmup=True)
        assert collector.collect(10).sequence_number == 0
        learner, _, weights = learner_weights(config)
        assert collector.set_weights(4, weights)
        assert collector.agent.get_weights()[0] == 4
        fragment = collector.collect(10)
        assert set(fragment.items[0].policy_info) == set(learner.collect_data_spec.policy_info) != set()
        mine = collector.agent.get_weights()[1]
        assert all(np.array_equal(mine[k], weights[k]) for k in weights)
    finally:
        collector.close()


def test_index_is_checked(config):
    with pytest.raises(ValueError, match=r"index must be an int in \[0, execution.collectors=3\), got 3"):
        Collector(config, 3)
