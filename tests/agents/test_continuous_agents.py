"""SAC, TD3 and DDPG agents: targets over episode ends, policies in bounds, delays, checkpoints, export."""

import copy

import numpy as np
import pytest
import torch

from drivetrain.agents import SAC, TD3, SACConfig, TD3Config, make_sac, make_td3
from drivetrain.core import nest, specs, types
from drivetrain.export import export_policy, load_exported_policy

OBS = specs.ArraySpec((3,), np.float32, "observation")
ACTION = specs.BoundedArraySpec((1,), np.float32, -2.0, 2.0, "action")
TS_SPEC = types.time_step_spec(OBS)
SMALL = {"actor_layers": (16,), "critic_layers": (16,)}
MID, LAST, FIRST = int(types.StepType.MID), int(types.StepType.LAST), int(types.StepType.FIRST)


def sac(**kw):
    return make_sac(SACConfig(**{**SMALL, **kw}), TS_SPEC, ACTION, seed=0)


def td3(**kw):
    return make_td3(TD3Config(**{**SMALL, **kw}), TS_SPEC, ACTION, seed=0)


def windows(step_type, next_step_type, discount, batch=None, seed=0):
    """Windows [B, 2] with the given first-step fields (the second step: a MID transition)."""
    rng = np.random.default_rng(seed)
    b = len(step_type) if batch is None else batch
    return types.Trajectory(
        step_type=np.stack([np.asarray(step_type, np.int32), np.full(b, MID, np.int32)], 1),
        observation=rng.normal(size=(b, 2, 3)).astype(np.float32),
        action=rng.uniform(-2, 2, (b, 2, 1)).astype(np.float32),
        policy_info={},
        next_step_type=np.stack([np.asarray(next_step_type, np.int32), np.full(b, MID, np.int32)], 1),
        reward=np.stack([np.arange(1, b + 1, dtype=np.float32), np.zeros(b, np.float32)], 1),
        discount=np.stack([np.asarray(discount, np.float32), np.ones(b, np.float32)], 1),
    )


def random_windows(batch=32, seed=0):
    rng = np.random.default_rng(seed)
    last = rng.random(batch) < 0.2
    return windows(
        np.full(batch, MID),
        np.where(last, LAST, MID),
        np.where(last, rng.integers(0, 2, batch), 1.0),
        seed=seed,
    )


def time_step(observation):
    b = len(observation)
    return types.TimeStep(
        np.full(b, MID, np.int32),
        np.zeros(b, np.float32),
        np.ones(b, np.float32),
        observation.astype(np.float32),
    )


# a truncation (LAST, discount 1), a termination (LAST, discount 0), a window starting at a boundary
ENDS = windows([MID, MID, LAST], [LAST, LAST, FIRST], [1.0, 0.0, 1.0])


def test_sac_critic_target_bootstraps_at_a_truncation_and_not_at_a_termination():
    agent = sac(gamma=0.9)
    t = agent.transitions(ENDS)
    torch.testing.assert_close(t.discount, torch.tensor([0.9, 0.0, 0.9]))
    torch.testing.assert_close(
        t.next_observation, torch.from_numpy(ENDS.observation[:, 1])
    )  # the final observation
    torch.testing.assert_close(t.weight, torch.tensor([0.5, 0.5, 0.0]))  # the boundary window does not count
    torch.testing.assert_close(t.action, torch.from_numpy(ENDS.action[:, 0] / 2.0))  # unit actions
    noise = torch.zeros(3, 1)
    y = agent.critic_target(t, noise, 0.5)
    with torch.no_grad():
        mean, log_std = agent.networks["actor"](t.next_observation)
        a = torch.tanh(mean)
        log_prob = (-log_std - 0.5 * np.log(2 * np.pi) - torch.log(1 - a**2)).sum(-1)
        soft_v = agent.networks["target_critic"](t.next_observation, a).min(0).values - 0.5 * log_prob
    assert y[0].item() == pytest.approx(1.0 + 0.9 * soft_v[0].item(), rel=1e-5)  # truncation: bootstraps
    assert y[1].item() == pytest.approx(2.0)  # termination: the reward alone
    assert abs(soft_v[0].item()) > 1e-3  # (so that the first check can tell the two apart)


def test_td3_critic_target_bootstraps_at_a_truncation_and_not_at_a_termination():
    agent = td3(gamma=0.9)
    t = agent.transitions(ENDS)
    y = agent.critic_target(t, torch.zeros(3, 1))
    with torch.no_grad():
        a = torch.tanh(agent.networks["target_actor"].mean(t.next_observation))
        next_q = agent.networks["target_critic"](t.next_observation, a).min(0).values
    assert y[0].item() == pytest.approx(1.0 + 0.9 * next_q[0].item(), rel=1e-5)
    assert y[1].item() == pytest.approx(2.0)


def test_policies_act_within_the_bounds_in_the_spec_dtype():
    for agent in (sac(), td3(exploration_noise=5.0)):
        with torch.no_grad():  # push the actor's mean far outside: tanh saturates, rescaling hits the bounds
            agent.networks["actor"].torso[0].bias.fill_(50.0)
        obs = np.random.default_rng(0).normal(size=(64, 3)) * 100
        for policy in (agent.policy, agent.collect_policy):
            action = policy.action(time_step(obs)).action
            assert action.dtype == np.float32 and action.shape == (64, 1)
            assert action.min() >= -2.0 and action.max() <= 2.0
        assert agent.collect_policy.trajectory_spec.policy_info == {}  # the replay stores env actions only


def test_the_deterministic_policy_is_tanh_of_the_mean_rescaled_and_exports():
    agent = sac()
    obs = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    with torch.no_grad():
        expected = 2.0 * torch.tanh(agent.networks["actor"].mean(torch.from_numpy(obs))).numpy()
    np.testing.assert_allclose(agent.policy.action(time_step(obs)).action, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("make", [sac, td3])
def test_export_matches_the_deterministic_policy(tmp_path, make):
    agent = make()
    obs = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    export_policy(agent, tmp_path / "p.pt2")
    exported = load_exported_policy(tmp_path / "p.pt2")
    assert exported.output_name == "mean"
    np.testing.assert_allclose(exported.action(obs), agent.policy.action(time_step(obs)).action, rtol=1e-6)


def test_sac_updates_critics_actor_temperature_and_polyak_targets():
    agent = sac(tau=0.5)
    before = copy.deepcopy(agent.networks.state_dict())
    info = agent.train(random_windows())
    after = agent.networks.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"actor", "critic", "target_critic", "temperature"}
    for key in before:  # target = ½ old target + ½ updated critic
        if key.startswith("target_critic."):
            online = after["critic." + key.removeprefix("target_critic.")]
            torch.testing.assert_close(after[key], 0.5 * before[key] + 0.5 * online)
    assert {
        "critic_loss",
        "actor_loss",
        "alpha",
        "entropy",
        "q_values",
        "critic_grad_norm",
        "actor_grad_norm",
    } <= set(info.extra)
    assert info.extra["alpha"] == pytest.approx(1.0)  # the temperature used in the step: the initial one
    assert agent.alpha < 1.0 or agent.alpha > 1.0
    assert agent.train_step == 1


def test_sac_with_a_fixed_temperature_leaves_it_alone():
    agent = sac(autotune_alpha=False, initial_alpha=0.2)
    agent.train(random_windows())
    assert agent.alpha == pytest.approx(0.2)


def test_td3_delays_the_actor_and_the_targets():
    agent = td3(policy_delay=2)
    snapshots = []
    for i in range(3):
        snapshots.append(copy.deepcopy(agent.networks.state_dict()))
        info = agent.train(random_windows(seed=i))
        assert info.extra["actor_updated"] == int(i % 2 == 0)
    snapshots.append(agent.networks.state_dict())

    def moved(i, prefix):
        return any(
            not torch.equal(snapshots[i][k], snapshots[i + 1][k])
            for k in snapshots[i]
            if k.startswith(prefix)
        )

    assert [moved(i, "critic.") for i in range(3)] == [True, True, True]
    assert [moved(i, "actor.") for i in range(3)] == [True, False, True]
    assert [moved(i, "target_actor.") for i in range(3)] == [True, False, True]
    assert [moved(i, "target_critic.") for i in range(3)] == [True, False, True]


def test_ddpg_is_td3_with_one_critic_no_smoothing_and_no_delay():
    agent = td3(num_critics=1, target_policy_noise=0.0, policy_delay=1)
    assert agent.networks["critic"].num_critics == 1
    for i in range(2):
        assert agent.train(random_windows(seed=i)).extra["actor_updated"] == 1


@pytest.mark.parametrize("make", [sac, td3])
def test_state_dict_round_trip_continues_bit_for_bit(make):
    a = make()
    for i in range(3):
        a.train(random_windows(seed=i))
        a.collect_policy.action(time_step(np.zeros((2, 3))))
    saved = copy.deepcopy(a.state_dict())
    b = make()
    b.load_state_dict(saved)
    for i in range(3, 6):
        info_a, info_b = a.train(random_windows(seed=i)), b.train(random_windows(seed=i))
        assert info_a == info_b
    obs = time_step(np.ones((2, 3)))
    np.testing.assert_array_equal(a.collect_policy.action(obs).action, b.collect_policy.action(obs).action)
    sa, sb = a.networks.state_dict(), b.networks.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_clear_errors_for_what_the_agents_cannot_train_on():
    with pytest.raises(TypeError, match="SAC: needs continuous actions"):
        make_sac(SACConfig(**SMALL), TS_SPEC, specs.BoundedArraySpec((), np.int64, 0, 3))
    agent = td3()
    with pytest.raises(ValueError, match="importance weights are not supported"):
        agent.train(random_windows(), weights=np.ones(32, np.float32))
    with pytest.raises(ValueError, match=r"expected windows \[batch >= 1, 2\]"):
        agent.train(nest.map_structure(lambda x: x[:, :1], random_windows()))
    with pytest.raises(ValueError, match=r"SACConfig.tau: expected a number in \(0, 1\]"):
        SACConfig(tau=0.0)
    with pytest.raises(ValueError, match=r"TD3Config\.policy_delay"):
        TD3Config(policy_delay=0)


def test_agents_are_what_their_builders_make():
    assert isinstance(sac(), SAC) and isinstance(td3(), TD3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("make", [sac, td3])
def test_cuda_agent_matches_cpu_agent(tmp_path, make):
    cpu, gpu = make(), make(device="cuda")
    assert all(p.is_cuda for p in gpu.networks.parameters()) and gpu.scale.low.is_cuda
    for i in range(4):
        a, b = cpu.train(random_windows(seed=i)), gpu.train(random_windows(seed=i))
        assert a.loss == pytest.approx(b.loss, rel=1e-3, abs=1e-4)
        assert a.extra["q_values"] == pytest.approx(b.extra["q_values"], rel=1e-3, abs=1e-4)
    obs = time_step(np.random.default_rng(3).normal(size=(6, 3)))
    for policy_cpu, policy_gpu in ((cpu.policy, gpu.policy), (cpu.collect_policy, gpu.collect_policy)):
        np.testing.assert_allclose(
            policy_cpu.action(obs).action, policy_gpu.action(obs).action, rtol=1e-3, atol=1e-4
        )
    restored = make()
    restored.load_state_dict(
        {**gpu.state_dict(), "network": {k: v.cpu() for k, v in gpu.state_dict()["network"].items()}}
    )
    export_policy(gpu, tmp_path / "gpu.pt2")
    np.testing.assert_allclose(
        load_exported_policy(tmp_path / "gpu.pt2").action(obs.observation),
        gpu.policy.action(obs).action,
        rtol=1e-5,
    )


def test_a_loaded_checkpoint_keeps_the_learning_rates_the_agent_was_built_with():
    old = sac(actor_learning_rate=3e-4, critic_learning_rate=3e-4)
    old.train(random_windows())
    new = sac(actor_learning_rate=1e-3, critic_learning_rate=2e-3)
    new.load_state_dict(copy.deepcopy(old.state_dict()))
    assert new.optimizers["actor"].param_groups[0]["lr"] == 1e-3
    assert new.optimizers["critic"].param_groups[0]["lr"] == 2e-3
    assert (
        new.optimizers["actor"].state_dict()["state"][0]["step"] == 1
    )  # Adam's moments came from the checkpoint
    with pytest.raises(KeyError, match=r"SAC.load_state_dict: missing keys \['train_rng'\]"):
        new.load_state_dict({k: v for k, v in old.state_dict().items() if k != "train_rng"})


@pytest.mark.parametrize("cls", [SACConfig, TD3Config])
def test_every_config_field_refuses_a_value_of_the_wrong_type(cls):
    import dataclasses

    from drivetrain.core.config_checks import ConfigTypeError

    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        with pytest.raises(ConfigTypeError, match=rf"^{cls.__name__}\.{f.name}: expected .*, got "):
            cls(**{f.name: 3 if isinstance(default, str) else "3"})


@pytest.mark.parametrize("make_agent", [make_sac, make_td3])
def test_annealed_learning_rates_follow_the_remaining_budget(make_agent):
    from drivetrain.agents.continuous.builder import remaining_budget
    from drivetrain.agents.protocol import RunPlan

    # 100 env steps: 10 of warm-up, then one train step per env step (SB3's progress_remaining)
    fraction = remaining_budget(RunPlan(num_envs=1, total_env_steps=100, learning_starts=10))
    assert fraction(0) == pytest.approx(1 - 11 / 100)
    assert fraction(44) == pytest.approx(1 - 55 / 100)
    assert fraction(89) == 0.0 and fraction(500) == 0.0
    # every 4 env steps, 2 train steps: train step k follows 10 + 2 (k + 1) env steps
    halves = remaining_budget(RunPlan(1, 100, learning_starts=10, update_period=4, gradient_steps=2))
    assert halves(9) == pytest.approx(1 - 30 / 100)

    config_type = SACConfig if make_agent is make_sac else TD3Config
    config = config_type(**SMALL, actor_learning_rate=1e-3, critic_learning_rate=2e-3)
    agent = make_agent(config, TS_SPEC, ACTION, seed=0, learning_rate_fraction=fraction)
    for i in range(3):
        agent.train(random_windows(seed=i))
    # the third step (train step 2) ran with 1 - 13/100 of each base rate; the next will use 1 - 14/100
    assert agent.optimizers["critic"].param_groups[0]["lr"] == pytest.approx(2e-3 * 0.87)
    assert agent.optimizers["actor"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.87)
    assert agent.learning_rate("critic") == pytest.approx(2e-3 * 0.86)
    resumed = make_agent(config, TS_SPEC, ACTION, seed=0, learning_rate_fraction=fraction)
    resumed.load_state_dict(copy.deepcopy(agent.state_dict()))
    assert resumed.train(random_windows(seed=9)) == agent.train(random_windows(seed=9))
    constant = make_agent(config, TS_SPEC, ACTION, seed=0)
    constant.train(random_windows())
    assert constant.optimizers["critic"].param_groups[0]["lr"] == 2e-3


@pytest.mark.parametrize("max_grad_norm", [None, 1e-3])
def test_gradients_are_clipped_to_max_grad_norm_and_the_norm_before_is_logged(max_grad_norm):
    agent = sac(max_grad_norm=max_grad_norm)
    seen = []
    critic_optimizer = agent.optimizers["critic"]
    original = critic_optimizer.step

    def step(*args, **kwargs):  # the gradients the optimizer applies
        grads = [p.grad for g in critic_optimizer.param_groups for p in g["params"] if p.grad is not None]
        seen.append(
            float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in grads])))
        )
        return original(*args, **kwargs)

    critic_optimizer.step = step
    info = agent.train(random_windows())
    assert info.extra["critic_grad_norm"] > 1e-2  # the norm before clipping
    if max_grad_norm is None:
        assert seen[0] == pytest.approx(info.extra["critic_grad_norm"], rel=1e-5)
    else:
        assert seen[0] == pytest.approx(max_grad_norm, rel=1e-3)


def test_float32_bounds_inside_round_a_float64_bound_inward():
    from drivetrain.networks.continuous import float32_bounds_inside

    low, high = float32_bounds_inside([-0.3, 0.1, -2.0, -np.inf], [0.3, 0.7, 2.0, np.inf])
    assert low.dtype == high.dtype == np.float32
    assert np.all(low.astype(np.float64) >= [-0.3, 0.1, -2.0, -np.inf])
    assert np.all(high.astype(np.float64) <= [0.3, 0.7, 2.0, np.inf])
    assert low[2] == -2.0 and high[2] == 2.0 and np.isinf(low[3]) and np.isinf(high[3])  # exact ones stay
    assert np.all(np.nextafter(high[:2], np.float32(np.inf)).astype(np.float64) > [0.3, 0.7])  # the nearest


@pytest.mark.parametrize("make", [make_sac, make_td3], ids=["sac", "td3"])
def test_saturated_actions_stay_inside_float64_bounds_and_so_do_exported_ones(make, tmp_path):
    action = specs.BoundedArraySpec((2,), np.float64, [-0.3, 0.1], [0.3, 0.7], "action")
    agent = make(SACConfig(**SMALL) if make is make_sac else TD3Config(**SMALL), TS_SPEC, action, seed=0)
    with torch.no_grad():
        for p in agent.policy._actor.parameters():
            p.fill_(5.0)  # every action at its upper bound
    obs = np.ones((4, 3), np.float32)
    ts = types.TimeStep(np.full(4, MID, np.int32), np.zeros(4, np.float32), np.ones(4, np.float32), obs)
    taken = agent.policy.action(ts).action
    assert taken.dtype == np.float64 and np.all(taken <= action.maximum) and np.all(taken >= action.minimum)
    export_policy(agent, tmp_path / "p.pt2")
    exported = load_exported_policy(tmp_path / "p.pt2").action(obs).astype(np.float64)
    assert np.all(exported <= action.maximum) and np.all(exported >= action.minimum)


def test_continuous_networks_name_a_bad_argument():
    from drivetrain.networks.continuous import QCritics, SquashedGaussianActor

    with pytest.raises(ValueError, match="SquashedGaussianActor: action_dim must be an int >= 1, got -1"):
        SquashedGaussianActor(OBS, -1)
    with pytest.raises(ValueError, match=r"QCritics: layers\[1\] must be >= 1, got 0"):
        QCritics(OBS, 2, layers=(16, 0))
