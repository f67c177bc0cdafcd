"""DQN learns CartPole-v1, and recurrent DQN learns it without velocities: greedy evaluations reaching a threshold."""

import pytest

from drivetrain.train import apply_overrides, get_preset, train

QUICK = [
    ("agent.n_step", 3),
    ("agent.double", True),
    ("total_env_steps", 30_000),
    ("eval_interval", 2_000),
    ("checkpoint_interval", 0),
    ("progress_bar", False),
    ("tensorboard", False),
]


@pytest.mark.learning
def test_cartpole_dqn_with_three_step_double_targets_reaches_475(tmp_path):
    """The cartpole-dqn preset with 3-step Double-DQN targets, evaluated greedily on 10
    episodes every 2,000 env steps, stops once an evaluation reaches 475; the final
    evaluation, on 10 episodes of its own, must reach 475 too.

    On the 2-core development machine seeds 0-7 stopped after 8k-22k env steps (20-100 s)
    and 7 of 8 final evaluations reached 475 (seed 5: 474). Floating-point results differ
    between machines, so a seed here is a draw of the learning curve: a second seed runs
    if the first falls short, which leaves a flake rate near 1% and still fails an agent
    that does not learn.
    """
    finals = []
    for seed in (0, 1):
        config = apply_overrides(get_preset("cartpole-dqn").build(), [*QUICK, ("seed", seed)])
        result = train(config, tmp_path / str(seed), verbose=False)
        assert result.evaluation.episodes == 10 and result.env_steps <= 30_000
        finals.append((seed, result.env_steps, result.evaluation.mean_return))
        if result.evaluation.mean_return >= 475:
            return
    pytest.fail(f"no seed reached a greedy mean return of 475: (seed, env steps, return) = {finals}")


@pytest.mark.slow
def test_cartpole_dqn_preset_solves_four_of_five_seeds(tmp_path):
    """The issue's bar: `drivetrain train cartpole-dqn` reaches a greedy mean return >= 475
    over 10 episodes within 50k env steps for at least 4 of 5 seeds (eval.json's final
    evaluation)."""
    returns = []
    for seed in range(5):
        config = apply_overrides(
            get_preset("cartpole-dqn").build(), [("seed", seed), ("progress_bar", False)]
        )
        returns.append(train(config, tmp_path / str(seed), verbose=False).evaluation.mean_return)
    assert sum(r >= 475 for r in returns) >= 4, returns


@pytest.mark.slow
def test_cartpole_masked_rdqn_preset_solves_three_of_five_seeds(tmp_path):
    """Issue 6's bar: `drivetrain train cartpole-masked-rdqn` (CartPole without velocities)
    reaches a greedy mean return >= 400 over 10 episodes for at least 3 of 5 seeds, while
    the feed-forward control `cartpole-masked-dqn` stays clearly below (< 200) on them.
    About 2-6 minutes per recurrent run on two cores; docs/benchmarks.md has the record."""
    quiet = [("progress_bar", False), ("tensorboard", False)]
    recurrent, feed_forward = [], []
    for seed in range(5):
        for name, out in (("cartpole-masked-rdqn", recurrent), ("cartpole-masked-dqn", feed_forward)):
            config = apply_overrides(get_preset(name).build(), [("seed", seed), *quiet])
            out.append(train(config, tmp_path / f"{name}-{seed}", verbose=False).evaluation.mean_return)
    assert sum(r >= 400 for r in recurrent) >= 3, recurrent
    assert max(feed_forward) < 200, feed_forward


@pytest.mark.learning
def test_cartpole_ppo_reaches_475(tmp_path):
    """The cartpole-ppo preset (rl-baselines3-zoo's settings) stops once a greedy evaluation
    reaches 475, and its final evaluation on 10 episodes of its own must reach 475 too,
    within 100k env steps. On the development machine seeds 0-4 stopped at 10k-20k env
    steps (3-6 s each) with final returns 476-500; a second seed runs if the first falls short."""
    finals = []
    for seed in (0, 1):
        config = apply_overrides(
            get_preset("cartpole-ppo").build(),
            [("seed", seed), ("progress_bar", False), ("tensorboard", False)],
        )
        result = train(config, tmp_path / str(seed), verbose=False)
        finals.append((seed, result.env_steps, result.evaluation.mean_return))
        if result.evaluation.mean_return >= 475 and result.env_steps <= 100_000:
            return
    pytest.fail(f"no seed reached a greedy mean return of 475: (seed, env steps, return) = {finals}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preset", "threshold", "needed"),
    [("cartpole-ppo", 475, 4), ("cartpole-reinforce", 475, 3), ("cartpole-masked-rppo", 400, 3)],
)
def test_policy_gradient_presets_meet_their_bars(tmp_path, preset, threshold, needed):
    """Issue 11's bars over 5 seeds (eval.json's final evaluation); docs/benchmarks.md has the record."""
    returns = []
    for seed in range(5):
        config = apply_overrides(get_preset(preset).build(), [("seed", seed), ("progress_bar", False)])
        returns.append(train(config, tmp_path / str(seed), verbose=False).evaluation.mean_return)
    assert sum(r >= threshold for r in returns) >= needed, returns
