"""PPO(compile=True): the same updates and LossInfo as the eager path, checkpoints that resume bit for bit.

The agents train on the same rollouts (collected once by an untrained agent, so that every
agent sees the same data), each prepared by the agent itself, in epochs x minibatches
drawn by its own minibatch generator: the learning rate and the clip ratio anneal, and the
observation statistics (continuous case) change after each rollout.

Tolerances: float32 arithmetic that the compiler fuses and contracts differently from the
eager kernels (and means over padded minibatches) differ in the last bits after one update;
Adam divides by running gradient magnitudes, so the differences grow slowly: after dozens
of updates the check is ``rtol=1e-4, atol=1e-5``, far below what one update moves a weight.

Each compiled agent compiles its update once (seconds: one padded minibatch size per case,
which the tests check), so the cases are few, each covers several options at once, and the
tests share one eager and one compiled agent per case (:func:`run`), restoring the
checkpoint they start from.
"""

import copy
import functools
import io
from typing import NamedTuple

import numpy as np
import pytest
import torch

import drivetrain as dt
from drivetrain.agents.actor_critic.networks import ActorCriticNetwork
from drivetrain.agents.loss_info import NonFiniteLossError
from drivetrain.agents.ppo import PPO, PPOConfig, make_ppo
from drivetrain.agents.ppo.compiled import minibatch_capacity, padded_inputs, padded_size
from drivetrain.replay.rollout import RolloutBatch, RolloutBuffer, minibatches

NUM_ENVS, STEPS, ROLLOUTS = 4, 32, 6
CASES = {
    # discrete: gradient clipping (active: the loss is large early), advantages normalized
    "cartpole": (
        "CartPole-v1",
        dict(learning_rate=3e-3, num_epochs=3, num_minibatches=3, anneal_clip_ratio=True),
    ),
    # Gaussian: value clipping, entropy bonus, observation normalization, no gradient clipping
    "pendulum": (
        "Pendulum-v1",
        dict(
            learning_rate=3e-3,
            num_epochs=2,
            num_minibatches=3,
            value_clip=0.5,
            ent_coef=0.01,
            normalize_observations=True,
            max_grad_norm=None,
            anneal_clip_ratio=True,
        ),
    ),
}
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def make_agent(case, compile, seed=0):
    env_id, settings = CASES[case]
    env = dt.envs.make(env_id, num_envs=NUM_ENVS, seed=0)
    config = PPOConfig(rollout_steps=STEPS, compile=compile, **settings)
    agent = make_ppo(config, env.time_step_spec(), env.action_spec(), seed=seed, planned_rollouts=ROLLOUTS)
    env.close()
    return agent


def collect_rollouts(case):
    """``(trajectory, trained)`` of ROLLOUTS rollouts of an untrained agent's collect policy."""
    env = dt.envs.make(CASES[case][0], num_envs=NUM_ENVS, seed=0)
    agent = make_agent(case, False, seed=7)
    buffer = RolloutBuffer(agent.collect_data_spec, NUM_ENVS)
    driver = dt.StepDriver(env, agent.collect_policy, [buffer.add_batch], num_steps=STEPS * NUM_ENVS)
    out = []
    for _ in range(ROLLOUTS):
        driver.run()
        trajectory, trained = buffer.gather()
        out.append((trajectory, trained))
        buffer.release(agent.prepare(trajectory, trained).mask)
    env.close()
    return out


def train_on(agent, rollouts):
    """LossInfos of the agent's epochs x minibatches on each rollout, as the training loop runs them."""
    c = agent.config
    infos = []
    for trajectory, trained in rollouts:
        data = agent.prepare(trajectory, trained)
        for batch in minibatches(data, c.num_epochs, c.num_minibatches, agent.minibatch_rng, sequences=False):
            infos.append(agent.train(batch))
        agent.finish_rollout(data)
    return infos


def checkpoint(agent):
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)  # what a checkpoint does
    return buffer.getvalue()


def restore(agent, data):
    agent.load_state_dict(torch.load(io.BytesIO(data), weights_only=False))
    return agent


def record(agent, rollouts):
    """``([(loss, extra)...], weights)`` after training on ``rollouts``."""
    infos = train_on(agent, rollouts)
    weights = [t.clone() for t in agent.network.state_dict().values()]
    return [(info.loss, info.extra) for info in infos], weights


class Run(NamedTuple):
    rollouts: list
    eager: PPO
    compiled: PPO  # each compiles its update once per process: the tests share them
    eager_infos: list
    compiled_infos: list
    eager_saved: bytes  # checkpoints after the first four rollouts
    compiled_saved: bytes
    eager_next: tuple  # record() of the last two rollouts, from those checkpoints
    compiled_next: tuple


@functools.cache
def run(case):
    """An eager and a compiled agent on the same six rollouts; each test restores what it needs."""
    rollouts = collect_rollouts(case)
    eager, compiled = make_agent(case, False), make_agent(case, True)
    eager_infos = train_on(eager, rollouts[:4])
    eager_saved = checkpoint(eager)
    eager_next = record(eager, rollouts[4:])
    with torch._dynamo.config.patch(error_on_recompile=True):  # new learning rates and clip ratios
        compiled_infos = train_on(compiled, rollouts[:4])
        compiled_saved = checkpoint(compiled)
        compiled_next = record(compiled, rollouts[4:])
    return Run(
        rollouts,
        eager,
        compiled,
        eager_infos,
        compiled_infos,
        eager_saved,
        compiled_saved,
        eager_next,
        compiled_next,
    )


def assert_same_loss_info(a, b, **tolerance):
    assert list(b.extra) == list(a.extra)
    np.testing.assert_allclose(b.loss, a.loss, **tolerance)
    for key, value in a.extra.items():
        np.testing.assert_allclose(b.extra[key], value, err_msg=key, **tolerance)


def assert_same_agents(a, b, **tolerance):
    for (name, p), q in zip(a.network.state_dict().items(), b.network.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, msg=name, **tolerance)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for k, state in sa["state"].items():
        assert state.keys() == sb["state"][k].keys()
        assert torch.equal(state["step"], sb["state"][k]["step"])
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(sb["state"][k][key], state[key], **tolerance)


def assert_bit_equal(run_a, run_b):
    assert run_a[0] == run_b[0]  # losses and every diagnostic, as floats
    for p, q in zip(run_a[1], run_b[1], strict=True):
        assert torch.equal(p, q)


def assert_close_runs(run_a, run_b):
    for (loss_a, extra_a), (loss_b, extra_b) in zip(run_a[0], run_b[0], strict=True):
        np.testing.assert_allclose(loss_b, loss_a, **TOLERANCE)
        np.testing.assert_allclose(extra_b["grad_norm"], extra_a["grad_norm"], **TOLERANCE)
    for p, q in zip(run_a[1], run_b[1], strict=True):
        torch.testing.assert_close(q, p, **TOLERANCE)


@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_updates_match_eager_ones(case):
    r = run(case)
    eager, compiled = restore(r.eager, r.eager_saved), restore(r.compiled, r.compiled_saved)
    assert len(r.compiled_infos) == len(r.eager_infos) == compiled.train_step == eager.train_step
    assert compiled.train_step == 4 * compiled.config.num_epochs * compiled.config.num_minibatches
    rates = [info.extra["learning_rate"] for info in r.compiled_infos]
    assert rates[0] > rates[-1] > 0  # annealed: the same compiled function at every rate
    for i, (a, b) in enumerate(zip(r.eager_infos, r.compiled_infos, strict=True)):
        tolerance = dict(rtol=1e-5, atol=1e-6) if i == 0 else TOLERANCE
        assert_same_loss_info(a, b, **tolerance)
    assert any(info.extra["clip_fraction"] > 0 for info in r.compiled_infos)  # the ratio clipping took part
    limit = compiled.config.max_grad_norm
    assert limit is None or any(info.extra["grad_norm"] > limit for info in r.compiled_infos)
    assert_same_agents(eager, compiled, **TOLERANCE)
    assert compiled.weights_version == eager.weights_version
    assert eager.minibatch_rng.bit_generator.state == compiled.minibatch_rng.bit_generator.state
    assert_close_runs(r.eager_next, r.compiled_next)
    # One padded minibatch size, the first rollout's (shorter) and the last minibatches of epochs included.
    assert list(compiled._compiled._steps) == [
        minibatch_capacity(NUM_ENVS, STEPS, compiled.config.num_minibatches)
    ]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_restored_compiled_agent_continues_bit_for_bit_and_either_path_continues_the_other(case):
    r = run(case)
    # The same agent restored (new optimizer state tensors): the same bits.
    assert_bit_equal(record(restore(r.compiled, r.compiled_saved), r.rollouts[4:]), r.compiled_next)
    # The same checkpoint format: the eager path continues a compiled run, and the other way round.
    assert_close_runs(r.eager_next, record(restore(r.eager, r.compiled_saved), r.rollouts[4:]))
    assert_close_runs(r.eager_next, record(restore(r.compiled, r.eager_saved), r.rollouts[4:]))


@pytest.mark.parametrize("case", ["cartpole", pytest.param("pendulum", marks=pytest.mark.slow)])
def test_a_new_compiled_agent_continues_a_checkpoint_bit_for_bit(case):
    r = run(case)
    restored = restore(make_agent(case, True, seed=3), r.compiled_saved)  # compiles its own update
    assert restored.train_step == 4 * restored.config.num_epochs * restored.config.num_minibatches
    assert_bit_equal(record(restored, r.rollouts[4:]), r.compiled_next)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_non_finite_loss_is_refused_before_the_step(case):
    r = run(case)
    agent = restore(r.compiled, r.compiled_saved)
    data = agent.prepare(*r.rollouts[0])
    batch = next(
        minibatches(data, 1, agent.config.num_minibatches, np.random.default_rng(0), sequences=False)
    )
    advantages = batch.advantages.copy()
    advantages[3] = np.nan
    bad = batch._replace(advantages=advantages)
    before = checkpoint(agent)
    lr = agent.optimizer.param_groups[0]["lr"]
    step = agent.train_step
    with pytest.raises(
        NonFiniteLossError, match=rf"PPO.train: the loss of train step {step + 1} is nan"
    ) as e:
        agent.train(bad)
    assert (e.value.train_step, np.isnan(e.value.loss)) == (step + 1, True)
    assert agent.train_step == step and agent.optimizer.param_groups[0]["lr"] == lr
    assert checkpoint(agent) == before  # weights, Adam's state and step count, generators: untouched

    # The eager agent refuses the same batch with the same error.
    eager = restore(r.eager, before)
    with pytest.raises(NonFiniteLossError) as eager_error:
        eager.train(bad)
    assert str(eager_error.value) == str(e.value) and eager_error.value.train_step == e.value.train_step

    # The next good update is the one the agent would have made without the refused one.
    good = agent.train(batch)
    after = [p.clone() for p in agent.network.parameters()]
    assert restore(agent, before).train(batch) == good
    for p, q in zip(after, agent.network.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("case", sorted(CASES))
def test_items_left_out_by_the_mask_are_left_out_as_eagerly(case):
    r = run(case)
    eager, compiled = restore(r.eager, r.compiled_saved), restore(r.compiled, r.compiled_saved)
    batches = []
    for agent in (eager, compiled):
        data = agent.prepare(*r.rollouts[4])
        batch = next(
            minibatches(data, 1, agent.config.num_minibatches, np.random.default_rng(1), sequences=False)
        )
        mask = batch.mask.copy()
        mask[::4] = False  # their advantages would change the normalization, and their terms the means
        batches.append(batch._replace(mask=mask))
    for _ in range(3):
        assert_same_loss_info(eager.train(batches[0]), compiled.train(batches[1]), **TOLERANCE)
    assert_same_agents(eager, compiled, **TOLERANCE)
    assert len(compiled._compiled._steps) == 1  # fewer items, the same padded size


def test_a_copied_compiled_agent_follows_its_own_network():
    agent = make_agent("cartpole", True)
    twin = copy.deepcopy(agent)
    update = twin._compiled
    assert update._steps == {}
    named = dict(twin.network.named_parameters())
    for name, p in zip(update._names, update._params, strict=True):
        assert p.data_ptr() == named[name].data_ptr()
    assert update._optimizer._optimizer is twin.optimizer
    assert all(
        p.data_ptr() != q.data_ptr() for p, q in zip(update._params, agent._compiled._params, strict=True)
    )


# ---------------------------------------------------------------------- no compilation below
def test_padded_sizes_are_the_capacity_or_round_up_by_an_eighth_of_the_octave():
    counts = (1, 8, 9, 41, 48, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000)
    expected = (8, 8, 16, 48, 48, 64, 64, 72, 128, 128, 144, 256, 256, 288, 1024)
    assert [padded_size(n) for n in counts] == list(expected)
    sizes = [padded_size(n) for n in range(1, 5000)]
    assert all(n <= s < n * 1.2 + 8 for n, s in zip(range(1, 5000), sizes, strict=True))
    assert sizes == sorted(sizes)
    # cartpole-ppo: 8 environments, rollouts of 32 steps (up to 263 trainable items), 1 minibatch
    assert minibatch_capacity(8, 32, 1) == 272 and minibatch_capacity(4, 32, 3) == 46
    assert [padded_size(n, 272) for n in (136, 248, 263, 272)] == [272] * 4
    assert [padded_size(n, 272) for n in (135, 273)] == [144, 288]


def test_padded_inputs_take_the_masked_items_and_repeat_the_first():
    rng = np.random.default_rng(0)
    mask = np.array([[True, False, True], [False, True, True]])
    trajectory = dt.Trajectory(
        step_type=np.zeros((2, 3), np.int32),
        observation=rng.standard_normal((2, 3, 5)).astype(np.float32),
        action=rng.integers(1, 4, (2, 3)),
        policy_info={"log_prob": rng.standard_normal((2, 3)), "value": rng.standard_normal((2, 3))},
        next_step_type=(),
        reward=(),
        discount=(),
    )
    batch = RolloutBatch(trajectory, rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), mask)
    observation, action, data, valid = padded_inputs(batch, mask, None, 1, continuous=False)
    assert observation.shape == (8, 5) and action.dtype == np.int64 and data.dtype == np.float32
    np.testing.assert_array_equal(observation[:4], trajectory.observation[mask])
    np.testing.assert_array_equal(observation[4:], np.repeat(observation[:1], 4, axis=0))
    np.testing.assert_array_equal(action[:4], trajectory.action[mask] - 1)
    np.testing.assert_array_equal(valid, [True] * 4 + [False] * 4)
    expected = [
        trajectory.policy_info["log_prob"],
        batch.advantages,
        trajectory.policy_info["value"],
        batch.returns,
    ]
    np.testing.assert_array_equal(data[:, :4], np.stack([x[mask] for x in expected]).astype(np.float32))
    np.testing.assert_array_equal(data[:, 4:], 0.0)


def test_recurrent_networks_are_refused():
    with pytest.raises(
        ValueError, match=r"PPOConfig.compile: expected False or 'auto' with a recurrent core"
    ):
        PPOConfig(compile=True, core="gru")
    env = dt.envs.make("CartPole-v1", num_envs=1, seed=0)
    network = ActorCriticNetwork(env.observation_spec(), env.action_spec(), (8,), core="gru", hidden_size=8)
    with pytest.raises(ValueError, match="PPO: compile=True supports feed-forward networks only"):
        PPO(env.time_step_spec(), env.action_spec(), network, PPOConfig(compile=True))
    assert not PPO(env.time_step_spec(), env.action_spec(), network, PPOConfig(compile="auto")).compiled
    env.close()
