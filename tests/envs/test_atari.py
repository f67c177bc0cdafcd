"""Atari preprocessing (make_atari) on Breakout and Pong, Gymnasium and EnvPool backends."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

import drivetrain as dt
from drivetrain.core import metrics, types
from drivetrain.envs.atari import AtariConfig, AtariEval, UnknownGameError, make_atari

pytestmark = pytest.mark.atari

FIRST, MID, LAST = (int(s) for s in types.StepType)


def _has_envpool() -> bool:
    try:
        import envpool  # noqa: F401
    except ImportError:
        return False
    return True


needs_envpool = pytest.mark.skipif(not _has_envpool(), reason="EnvPool is not installed")
BACKENDS = ["gymnasium", pytest.param("envpool", marks=needs_envpool)]


def _random_actions(env: dt.Environment, rng: np.random.Generator) -> np.ndarray:
    spec = env.action_spec()
    return rng.integers(int(spec.minimum), int(spec.maximum), env.batch_size, endpoint=True).astype(
        spec.dtype
    )


def _play(env: dt.Environment, steps: int, seed: int = 0) -> list[types.TimeStep]:
    rng = np.random.default_rng(seed)
    out = [env.reset()]
    for _ in range(steps):
        out.append(env.step(_random_actions(env, rng)))
    return out


# ---------------------------------------------------------------------- shapes and specs
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("game", "num_actions"), [("Breakout", 4), ("Pong", 6)])
def test_specs_shapes_and_dtypes(backend: str, game: str, num_actions: int) -> None:
    with make_atari(game, num_envs=2, seed=0, backend=backend) as env:
        spec = env.observation_spec()
        assert isinstance(spec, dt.StackedFramesSpec)
        assert spec == dt.StackedFramesSpec((84, 84, 4), np.uint8, 0, 255, name="observation", num_frames=4)
        assert env.action_spec() == dt.BoundedArraySpec((), np.int64, 0, num_actions - 1, "action")
        for ts in _play(env, 20):
            dt.specs.validate(env.time_step_spec(), ts, outer_ndim=1)
            assert ts.observation.shape == (2, 84, 84, 4) and ts.observation.dtype == np.uint8
            assert ts.step_type.dtype == np.int32 and ts.reward.dtype == np.float32


def test_game_names_as_users_type_them() -> None:
    for name in ["Breakout", "breakout", "ALE/Breakout-v5", "BreakoutNoFrameskip-v4", "Breakout-v4"]:
        assert dt.envs.atari.resolve_game(name) == "breakout"
    assert dt.envs.atari.resolve_game("space invaders") == dt.envs.atari.resolve_game("SpaceInvaders")
    assert "Pong" in dt.envs.atari.atari_games()


def test_unknown_game_lists_close_names() -> None:
    with pytest.raises(UnknownGameError, match=r"'Breakuot'.*did you mean 'Breakout'"):
        make_atari("Breakuot")
    with pytest.raises(UnknownGameError, match=r"no close match.*atari_games"):
        make_atari("Quidditch")


def test_bad_config_fields_are_named() -> None:
    with pytest.raises(TypeError, match="frame_skipp"):
        make_atari("Pong", frame_skipp=4)
    with pytest.raises(ValueError, match=r"AtariConfig\.frame_skip"):
        AtariConfig(frame_skip=0)


# ---------------------------------------------------------------------- frame skip and max-pool
def _reference_steps(game_id: str, seed: int, actions: list[int]) -> tuple[list[np.ndarray], list[float]]:
    """Plays ALE one frame at a time: each action 4 frames, max of the last 2, resized once."""
    import ale_py
    import cv2
    import gymnasium

    gymnasium.register_envs(ale_py)
    raw = gymnasium.make(game_id, frameskip=1, repeat_action_probability=0.0, obs_type="grayscale")
    raw.reset(seed=seed)
    frames, rewards = [], []
    for a in actions:
        screens, total = [], 0.0
        for _ in range(4):
            screen, r, _, _, _ = raw.step(a)
            screens.append(screen)
            total += float(r)
        pooled = np.maximum(screens[-2], screens[-1])
        frames.append(cv2.resize(pooled, (84, 84), interpolation=cv2.INTER_AREA))
        rewards.append(total)
    raw.close()
    return frames, rewards


@pytest.mark.parametrize("game", ["Breakout", "Pong"])
def test_frame_skip_and_max_pool_counted_in_ale_frames(game: str) -> None:
    steps = 60
    rng = np.random.default_rng(1)
    env = make_atari(game, seed=3, noop_max=0, fire_reset=False, max_episode_steps=None)
    ale = env.envs[0].unwrapped.ale
    actions = rng.integers(0, int(env.action_spec().maximum) + 1, steps)
    expected_frames, expected_rewards = _reference_steps(f"ALE/{game}-v5", 3, actions.tolist())
    ts = env.reset()
    assert ale.getEpisodeFrameNumber() == 0
    stack = [ts.observation[0, ..., -1]] * 4
    for t, a in enumerate(actions):
        ts = env.step(np.array([a]))
        # 4 ALE frames per agent step: skipped once, not 4 x 4.
        assert ale.getEpisodeFrameNumber() == 4 * (t + 1)
        assert ts.step_type[0] == MID
        np.testing.assert_array_equal(ts.observation[0, ..., -1], expected_frames[t])
        assert ts.reward[0] == expected_rewards[t]
        stack = [*stack[1:], expected_frames[t]]
        np.testing.assert_array_equal(ts.observation[0], np.stack(stack, axis=-1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fire_on_reset_starts_breakout(backend: str) -> None:
    def moving_frames(fire: bool) -> int:
        env = make_atari("Breakout", seed=0, backend=backend, fire_reset=fire)
        ts = env.reset()
        moved = 0
        for _ in range(20):  # NOOP only: only a launched ball moves
            nxt = env.step(np.zeros(1, np.int64))
            moved += not np.array_equal(nxt.observation[0, ..., -1], ts.observation[0, ..., -1])
            ts = nxt
        return moved

    assert moving_frames(fire=False) == 0
    assert moving_frames(fire=True) >= 15


@needs_envpool
@pytest.mark.parametrize("game", ["Breakout", "Pong"])
def test_backends_emit_identical_time_steps(game: str) -> None:
    # noop_max=1 makes both resets deterministic (EnvPool draws its no-ops from its own RNG).
    kwargs = dict(num_envs=2, seed=5, noop_max=1, terminal_on_life_loss=True, max_episode_steps=120)
    gym_env = make_atari(game, backend="gymnasium", **kwargs)
    pool_env = make_atari(game, backend="envpool", **kwargs)
    gym_steps, pool_steps = _play(gym_env, 300), _play(pool_env, 300)
    for t, (a, b) in enumerate(zip(gym_steps, pool_steps, strict=True)):
        for field, x, y in zip(types.TimeStep._fields, a, b, strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"step {t}: {field}")
    step_types = np.array([ts.step_type for ts in gym_steps])
    assert (step_types == LAST).any() and (step_types[1:] == FIRST).any()  # the comparison crossed resets


# ---------------------------------------------------------------------- episodes, lives, rewards
def _play_one_game(env: dt.Environment, observers: list, seed: int = 0) -> list[types.TimeStep]:
    policy = dt.policies.RandomPolicy(env.time_step_spec(), env.action_spec(), seed=seed)
    steps: list[types.TimeStep] = []

    def record(traj: types.Trajectory) -> None:
        steps.append(types.TimeStep(traj.next_step_type, traj.reward, traj.discount, None))

    dt.EpisodeDriver(env, policy, observers=[record, *observers], num_episodes=1).run()
    return steps


@pytest.mark.parametrize("backend", BACKENDS)
def test_life_loss_is_a_zero_discount_and_the_game_is_the_episode(backend: str) -> None:
    episodes, returns, lengths = (
        metrics.NumberOfEpisodes(),
        metrics.AverageReturn(),
        metrics.AverageEpisodeLength(),
    )
    with_loss = _play_one_game(
        make_atari("Breakout", seed=1, backend=backend, terminal_on_life_loss=True),
        [episodes, returns, lengths],
    )
    without = _play_one_game(make_atari("Breakout", seed=1, backend=backend), [])
    step_type = np.concatenate([ts.step_type for ts in with_loss])
    discount = np.concatenate([ts.discount for ts in with_loss])
    reward = np.concatenate([ts.reward for ts in with_loss])
    # Breakout has 5 lives: 4 are lost on MID steps with discount 0, the 5th ends the game.
    assert np.count_nonzero((step_type == MID) & (discount == 0)) == 4
    assert step_type[-1] == LAST and discount[-1] == 0 and np.count_nonzero(step_type == LAST) == 1
    # One episode per game, with the game's score and length.
    assert episodes.result() == 1
    assert returns.result() == reward.sum()
    assert lengths.result() == len(with_loss)
    # The option changes discounts only: the same seed and policy play the same game.
    assert len(without) == len(with_loss)
    np.testing.assert_array_equal(np.concatenate([ts.reward for ts in without]), reward)
    np.testing.assert_array_equal(np.concatenate([ts.step_type for ts in without]), step_type)
    assert np.all(np.concatenate([ts.discount for ts in without])[:-1] == 1)


def test_life_loss_discounts_match_ale_lives() -> None:
    env = make_atari("Breakout", seed=2, terminal_on_life_loss=True)
    ale = env.envs[0].unwrapped.ale
    rng = np.random.default_rng(0)
    env.reset()
    lives = ale.lives()
    for _ in range(300):
        ts = env.step(_random_actions(env, rng))
        if ts.step_type[0] == FIRST:
            lives = ale.lives()
            continue
        lost = ale.lives() < lives
        lives = ale.lives()
        assert (ts.discount[0] == 0) == (lost or ts.step_type[0] == LAST)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rewards_are_the_unclipped_score_and_the_agent_clips(backend: str) -> None:
    # Space Invaders scores 5 to 30 points per invader: clipping would be visible.
    returns = metrics.AverageReturn()
    env = make_atari("SpaceInvaders", seed=0, backend=backend, max_episode_steps=400)
    steps = _play_one_game(env, [returns])
    reward = np.concatenate([ts.reward for ts in steps])
    assert reward.max() >= 5 and set(np.unique(reward)) <= {0.0, 5, 10, 15, 20, 25, 30, 200}
    assert returns.result() == reward.sum()
    # The training signal: DQN clips sampled rewards to [-1, 1] (DQNConfig.reward_clip=1.0).
    make_inputs = pytest.importorskip("drivetrain.agents.dqn.batch").make_inputs
    n = len(reward)
    window = types.Trajectory(
        step_type=np.full((n, 2), MID, np.int32),
        observation=np.zeros((n, 2, 1), np.float32),
        action=np.zeros((n, 2), np.int64),
        policy_info={},
        next_step_type=np.full((n, 2), MID, np.int32),
        reward=np.stack([reward, np.zeros_like(reward)], axis=1),
        discount=np.ones((n, 2), np.float32),
    )
    inputs = make_inputs(window, gamma=0.99, n_step=1, action_minimum=0, reward_clip=1.0)
    np.testing.assert_array_equal(inputs.scalars[0], np.sign(reward))


# ---------------------------------------------------------------------- time limit and seeding
@pytest.mark.parametrize("backend", BACKENDS)
def test_time_limit_is_a_truncation(backend: str) -> None:
    limit = 40
    steps = _play(
        make_atari("Pong", num_envs=2, seed=0, backend=backend, max_episode_steps=limit), 2 * limit + 2
    )
    step_type = np.array([ts.step_type for ts in steps])
    discount = np.array([ts.discount for ts in steps])
    # Agent steps 1..limit; the limit-th is LAST with discount 1, then FIRST again.
    assert np.all(step_type[1:limit] == MID)
    assert np.all(step_type[limit] == LAST) and np.all(discount[limit] == 1)
    assert np.all(step_type[limit + 1] == FIRST)
    assert np.all(step_type[2 * limit + 1] == LAST)


def test_default_time_limit_is_27000_agent_steps() -> None:
    assert AtariConfig().max_episode_steps * AtariConfig().frame_skip == 108_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_time_steps(backend: str) -> None:
    def run(seed: int) -> list[types.TimeStep]:
        env = make_atari("Pong", num_envs=3, seed=seed, backend=backend, sticky_actions=True)
        rng = np.random.default_rng(0)
        steps = [env.reset()]
        for _ in range(60):  # the same action in every environment: only the seeds differ
            steps.append(env.step(np.full(3, rng.integers(0, 6), np.int64)))
        return steps

    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    obs_a = np.stack([ts.observation for ts in a])
    obs_c = np.stack([ts.observation for ts in c])
    assert not np.array_equal(obs_a, obs_c)
    # The environments of one batch get different seeds (seed + i): no-op starts, sticky actions.
    assert not np.array_equal(obs_a[:, 0], obs_a[:, 1]) and not np.array_equal(obs_a[:, 1], obs_a[:, 2])


# ---------------------------------------------------------------------- evaluation settings
def test_evaluation_settings_of_the_paper() -> None:
    ev = AtariEval()
    assert ev.epsilon == 0.05
    cfg = ev.env_config(AtariConfig(terminal_on_life_loss=True, noop_max=5))
    assert cfg.max_episode_steps * cfg.frame_skip == 18_000
    assert cfg.noop_max == 30 and not cfg.terminal_on_life_loss
    assert dataclasses.replace(cfg, max_episode_steps=27_000, noop_max=5, terminal_on_life_loss=True) == (
        AtariConfig(terminal_on_life_loss=True, noop_max=5)
    )
    # A training time limit shorter than 5 minutes stays (and None still gets the cap).
    assert ev.env_config(AtariConfig(max_episode_steps=300)).max_episode_steps == 300
    assert ev.env_config(AtariConfig(max_episode_steps=None)).max_episode_steps == 4_500


# ---------------------------------------------------------------------- check_env and the replay
@pytest.mark.parametrize("backend", BACKENDS)
def test_both_backends_pass_check_env_with_the_same_specs(backend: str) -> None:
    def factory() -> dt.Environment:
        return make_atari("Breakout", num_envs=2, seed=0, backend=backend, terminal_on_life_loss=True)

    report = dt.envs.check_env(factory, num_steps=300)
    assert report.episodes >= 1
    reference = make_atari("Breakout", num_envs=2, seed=0)
    env = factory()
    assert env.time_step_spec() == reference.time_step_spec()
    assert env.action_spec() == reference.action_spec()


@pytest.mark.parametrize("game", ["Breakout", "Pong"])
@pytest.mark.parametrize("capacity", [2 * 400, 2 * 120])  # everything, and a ring that wrapped
def test_replay_stores_frames_once_and_rebuilds_the_emitted_stacks(game: str, capacity: int) -> None:
    replay_lib = pytest.importorskip("drivetrain.replay")
    num_envs, steps = 2, 300
    # Short episodes and life losses: many resets, whose stacks repeat the reset frame.
    env = make_atari(game, num_envs=num_envs, seed=4, terminal_on_life_loss=True, max_episode_steps=70)
    policy = dt.policies.RandomPolicy(env.time_step_spec(), env.action_spec(), seed=0)
    replay = replay_lib.UniformReplay(policy.trajectory_spec, capacity, num_envs, seed=0)
    emitted: list[np.ndarray] = []
    step_types: list[np.ndarray] = []

    def record(traj: types.Trajectory) -> None:
        emitted.append(traj.observation.copy())
        step_types.append(traj.step_type)

    dt.StepDriver(env, policy, observers=[record, replay.add_batch], num_steps=num_envs * steps).run()
    assert replay.frame_deduplicated
    assert np.count_nonzero(np.array(step_types) == FIRST) > 2 * num_envs  # resets were stored
    stored = replay.gather_all().observation  # [num_envs, n, 84, 84, 4]
    n = stored.shape[1]
    expected = np.stack(emitted[-n:], axis=1)
    assert n == min(len(emitted), capacity // num_envs)
    np.testing.assert_array_equal(stored, expected)
    batch, info = replay.sample(batch_size=64, num_steps=2)
    t, e = info.ids // num_envs, info.ids % num_envs
    for k in range(2):
        np.testing.assert_array_equal(batch.observation[:, k], np.stack(emitted)[t + k, e])
    # Each frame stored once: a million Atari transitions fit in 7.5 GB (four frames each: 28 GB).
    million = replay_lib.UniformReplay.estimate_nbytes(policy.trajectory_spec, 1_000_000, 1)
    assert 7.06e9 < million <= 7.5e9


# ---------------------------------------------------------------------- presets
def _atari_presets():  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from drivetrain.train.config import EnvConfig

    if "suite" not in {f.name for f in dataclasses.fields(EnvConfig)}:
        pytest.skip(
            "EnvConfig has no suite/atari fields yet (integration of drivetrain.train.atari_presets pending)"
        )
    from drivetrain.train import atari_presets, presets

    return atari_presets, presets


def test_atari_presets_are_registered_with_their_sources() -> None:
    _, presets = _atari_presets()
    for name in ("breakout-dqn", "breakout-dqn-nature", "pong-dqn-nature"):
        preset = presets.get_preset(name)
        config = preset.build()
        assert config.env.suite == "atari" and config.env.name in ("Breakout", "Pong")
        assert "Source:" in preset.doc
        # ε reaches its floor after the book's 1M ALE frames (4 frames per agent step, 4 agent
        # steps per train step), or after the 2015 code's 1M agent steps (ep_endt)
        agent_steps = config.agent.epsilon_decay_steps * config.loop.update_period
        assert agent_steps == (1_000_000 if name.endswith("nature") else 1_000_000 // 4)
    nature = presets.get_preset("pong-dqn-nature").build()
    assert nature.env.atari.terminal_on_life_loss and nature.agent.reward_clip == 1.0
    assert nature.agent.target_update_period * nature.loop.update_period == 10_000  # agent steps
    book = presets.get_preset("breakout-dqn").build()
    assert not book.env.atari.terminal_on_life_loss


@pytest.mark.parametrize("evaluation", [False, True])
def test_make_atari_env_training_and_evaluation(evaluation: bool) -> None:
    atari_presets, presets = _atari_presets()
    config = presets.get_preset("breakout-dqn-nature").build().env
    env = atari_presets.make_atari_env(config, 1, 0, evaluation=evaluation)
    assert env.config.max_episode_steps * env.config.frame_skip == (18_000 if evaluation else 108_000)
    assert env.config.terminal_on_life_loss is not evaluation


def test_breakout_dqn_trains_end_to_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _atari_presets()
    from drivetrain.cli import main

    run_dir = tmp_path / "run"
    args = ["train", "breakout-dqn", "--run-dir", str(run_dir), "--loop.total_env_steps", "240"]
    args += ["--loop.learning_starts", "200", "--loop.batch_size", "4", "--replay.capacity", "1000"]
    args += ["--loop.eval_interval", "0", "--loop.final_eval_episodes", "1", "--loop.progress_bar", "false"]
    args += ["--loop.tensorboard", "false", "--env.atari.max_episode_steps", "300"]
    assert main(args) == 0
    assert (run_dir / "eval.json").is_file()


def test_asynchronous_gymnasium_backend_matches_the_synchronous_one() -> None:
    kwargs = dict(num_envs=2, seed=3, terminal_on_life_loss=True, max_episode_steps=60)
    sync = _play(make_atari("Breakout", **kwargs), 150)
    env = make_atari("Breakout", asynchronous=True, **kwargs)
    try:
        for t, (a, b) in enumerate(zip(sync, _play(env, 150), strict=True)):
            for field, x, y in zip(types.TimeStep._fields, a, b, strict=True):
                np.testing.assert_array_equal(x, y, err_msg=f"step {t}: {field}")
    finally:
        env.close()
    discounts = np.array([ts.discount for ts in sync])
    step_types = np.array([ts.step_type for ts in sync])
    assert ((step_types == MID) & (discounts == 0)).any()  # life losses crossed the process boundary
