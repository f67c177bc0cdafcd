"""Aggregates over seeds against values worked out by hand, grouping, and ``compare`` on real runs."""

import argparse
import json

import numpy as np
import pytest

from drivetrain.train import apply_overrides, get_preset, train
from drivetrain.train.aggregate import curve_band, interpolate, iqm, iqm_interval, shared_grid
from drivetrain.train.compare import cmd_compare, find_runs, group_runs, main, markdown_table, summarize
from drivetrain.train.logger import read_progress

TINY = [
    ("total_env_steps", "600"),
    ("learning_starts", "200"),
    ("update_period", "100"),
    ("gradient_steps", "5"),
    ("agent.fc_layers", "16,16"),
    ("eval_interval", "200"),
    ("eval_episodes", "2"),
    ("stop_at_return", "none"),
    ("final_eval_episodes", "2"),
    ("checkpoint_interval", "600"),
    ("tensorboard", "false"),
    ("progress_bar", "false"),
]


# ---------------------------------------------------------------------- the IQM, by hand
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 100], (2 + 3 + 4) / 3),  # n=5: floor(1.25)=1 dropped at each end
        ([100, 3, 1, 2], (2 + 3) / 2),  # n=4: one at each end, order does not matter
        ([5, 1, 100], (5 + 1 + 100) / 3),  # n=3: floor(0.75)=0, the plain mean
        ([7, 9], 8.0),  # n=2: the plain mean
        ([4.0], 4.0),
        ([1, 2, 3, 4, 5, 6, 7, 1000], (3 + 4 + 5 + 6) / 4),  # n=8: two at each end
        ([-50, 1, 2, 3, 4, 60], (1 + 2 + 3 + 4) / 4),  # n=6: floor(1.5)=1 at each end
    ],
)
def test_iqm_drops_floor_n_over_4_at_each_end(values, expected):
    assert iqm(values) == pytest.approx(expected)


def test_iqm_is_scipys_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in range(1, 30):
        x = rng.normal(size=n) * 10
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25))


def test_iqm_refuses_empty_and_nan():
    with pytest.raises(ValueError, match="no values"):
        iqm([])
    with pytest.raises(ValueError, match="finite"):
        iqm([1.0, float("nan")])


# ---------------------------------------------------------------------- its interval
def test_interval_is_the_percentile_bootstrap_recomputed_with_numpy():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    got = iqm_interval(x, resamples=1000, confidence=0.9, seed=7)
    rng = np.random.default_rng(7)
    samples = np.sort(x[rng.integers(0, 5, size=(1000, 5))], axis=1)
    stats = samples[:, 1:4].mean(axis=1)  # n=5: drop one at each end
    assert got.value == 3.0
    assert (got.low, got.high) == (np.percentile(stats, 5.0), np.percentile(stats, 95.0))
    assert (got.confidence, got.resamples) == (0.9, 1000)


def test_interval_of_two_values_by_hand():
    # Resamples of [0, 10]: mean 0 (1/4), 5 (1/2), 10 (1/4); the 2.5 and 97.5 percentiles are 0 and 10.
    got = iqm_interval([0.0, 10.0], resamples=4000, seed=1)
    assert (got.value, got.low, got.high) == (5.0, 0.0, 10.0)
    assert iqm_interval([3.0, 3.0, 3.0]).low == iqm_interval([3.0, 3.0, 3.0]).high == 3.0


def test_strata_are_resampled_within_themselves():
    # Each resample keeps three 0s and three 10s: the pooled IQM (n=6, one dropped at each end) is always 5.
    values, envs = [0.0, 0.0, 0.0, 10.0, 10.0, 10.0], ["a", "a", "a", "b", "b", "b"]
    got = iqm_interval(values, strata=envs, resamples=500)
    assert (got.value, got.low, got.high) == (5.0, 5.0, 5.0)
    pooled = iqm_interval(values, resamples=500)
    assert pooled.low < 5.0 < pooled.high
    with pytest.raises(ValueError, match="6 values but 2 strata"):
        iqm_interval(values, strata=["a", "b"])


def test_interval_contains_the_iqm_and_narrows_with_more_seeds():
    rng = np.random.default_rng(3)
    widths = []
    for n in (5, 20, 80):
        x = rng.normal(100.0, 20.0, size=n)
        got = iqm_interval(x, resamples=2000, seed=0)
        assert got.low <= got.value <= got.high
        widths.append(got.high - got.low)
    assert widths[0] > widths[1] > widths[2]


# ---------------------------------------------------------------------- curves
def test_curves_are_interpolated_onto_the_range_every_seed_covers():
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))
    b = (np.array([5.0, 15.0, 30.0]), np.array([1.0, 1.0, 1.0]))
    grid = shared_grid([a[0], b[0]], points=3)
    assert grid.tolist() == [5.0, 12.5, 20.0]
    band = curve_band([a, b], points=3, resamples=200)
    assert band.mean.tolist() == pytest.approx([(5 + 1) / 2, (12.5 + 1) / 2, (20 + 1) / 2])
    assert np.all(band.low <= band.mean) and np.all(band.mean <= band.high)
    assert band.low[-1] == pytest.approx(1.0) and band.high[-1] == pytest.approx(20.0)
    same = curve_band([a, a], points=3, resamples=50)
    assert same.low.tolist() == same.mean.tolist() == same.high.tolist()
    assert interpolate(np.array([2.0, 1.0, 2.0]), np.array([5.0, 1.0, 7.0]), np.array([2.0])).tolist() == [
        7.0
    ]
    with pytest.raises(ValueError, match="no common steps"):
        shared_grid([np.array([0.0, 1.0]), np.array([2.0, 3.0])])


# ---------------------------------------------------------------------- grouping, on runs written by hand
def fake_run(folder, preset, seed, final, lr=1e-3, env="CartPole-v1", agent="dqn", curve=(1.0, 2.0)):
    folder.mkdir(parents=True)
    config = {"env": {"name": env}, "agent": {"learning_rate": lr}, "loop": {"torch_threads": seed}}
    config |= {"seed": seed, "preset": preset, "agent_kind": agent}
    (folder / "config.json").write_text(json.dumps(config))
    rows = ["env_steps,average_return,eval_mean_return"]
    rows += [f"{100 * (i + 1)},{y},{y}" for i, y in enumerate(curve)]
    (folder / "progress.csv").write_text("\n".join(rows) + "\n")
    if final is not None:
        (folder / "eval.json").write_text(
            json.dumps({"mean_return": final, "env_steps": 100 * len(curve) + 100})
        )
    return folder


def test_groups_by_preset_agent_env_and_config(tmp_path):
    for s, final in enumerate([1.0, 2.0, 3.0]):
        fake_run(tmp_path / "a" / f"seed-{s}", "cartpole-dqn", s, final)
    fake_run(tmp_path / "b" / "seed-0", "cartpole-dqn", 0, 9.0, lr=0.01)
    fake_run(tmp_path / "ppo", "cartpole-ppo", 0, 4.0, agent="ppo")
    runs = find_runs([tmp_path / "a", tmp_path / "b", tmp_path / "ppo", tmp_path / "a" / "seed-1"])
    assert [r.path.name for r in runs] == ["seed-0", "seed-1", "seed-2", "seed-0", "ppo"]  # seed-1 once
    by_preset = group_runs(runs)
    assert {k: [r.final_return for r in v] for k, v in by_preset.items()} == {
        "cartpole-dqn": [1.0, 2.0, 3.0, 9.0],
        "cartpole-ppo": [4.0],
    }
    assert list(group_runs(runs, "agent")) == ["dqn", "ppo"]
    assert list(group_runs(runs, "env")) == ["CartPole-v1"]
    by_config = group_runs(runs, "config")  # torch_threads (bookkeeping) differs between seeds: ignored
    assert {k: len(v) for k, v in by_config.items()} == {
        "cartpole-dqn agent.learning_rate=0.001": 3,
        "cartpole-dqn agent.learning_rate=0.01": 1,
        "cartpole-ppo": 1,
    }
    with pytest.raises(ValueError, match="--by 'seed'"):
        group_runs(runs, "seed")


def test_the_table_names_every_seed_and_leaves_out_unfinished_runs(tmp_path):
    for s, final in enumerate([1.0, 2.0, 3.0, 4.0, 100.0]):
        fake_run(tmp_path / "r" / f"seed-{s}", "cartpole-dqn", s, final)
    fake_run(tmp_path / "r" / "seed-5", "cartpole-dqn", 5, None)
    [summary] = summarize(group_runs(find_runs([tmp_path / "r"])), resamples=500)
    assert summary.iqm is not None and summary.iqm.value == 3.0
    assert summary.mean == 22.0 and summary.std == pytest.approx(np.std([1, 2, 3, 4, 100], ddof=1))
    table = markdown_table([summary])
    assert (
        "| cartpole-dqn | 5 of 6 finished | 0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 4: 100.0, 5: — | 3.0 [" in table
    )
    assert "22.0 ± 43.6 |" in table and "seed-5" in table.splitlines()[-1]


def test_the_table_says_when_a_group_pools_other_configs_or_a_seed_twice(tmp_path):
    for s, final in enumerate([1.0, 2.0, 3.0]):
        fake_run(tmp_path / "a" / f"seed-{s}", "cartpole-dqn", s, final)
    fake_run(tmp_path / "b" / "seed-0", "cartpole-dqn", 0, 9.0, lr=0.01)
    runs = find_runs([tmp_path / "a", tmp_path / "b"])
    table = markdown_table(summarize(group_runs(runs), resamples=100))
    assert "Note: cartpole-dqn pools runs of different configs (agent.learning_rate); `--by config`" in table
    assert "Note: cartpole-dqn holds seed 0 more than once." in table
    alone = markdown_table(summarize(group_runs(find_runs([tmp_path / "a"])), resamples=100))
    assert "Note:" not in alone  # torch_threads (bookkeeping) differs between its seeds: not a note
    by_config = markdown_table(summarize(group_runs(runs, "config"), resamples=100))
    assert "Note:" not in by_config


def test_compare_command_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    assert "holds no run: no config.json, and no seed-*/config.json" in capsys.readouterr().err
    fake_run(tmp_path / "r", "cartpole-dqn", 0, 1.0)
    assert main([str(tmp_path / "r"), "--out", str(tmp_path / "x.svg")]) == 2
    assert "expected a .png" in capsys.readouterr().err


# ---------------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds") / "cartpole-dqn"
    config = apply_overrides(get_preset("cartpole-dqn").build(), TINY)
    for seed in (0, 1):
        train(apply_overrides(config, [("seed", str(seed))]), root / f"seed-{seed}", verbose=False)
    return root


def test_compare_reads_real_runs_and_writes_the_png_and_the_table(two_seeds, tmp_path, capsys):
    out = tmp_path / "report" / "cmp.png"
    args = argparse.Namespace(
        run_dirs=[str(two_seeds)],
        by="preset",
        out=str(out),
        resamples=1000,
        confidence=0.95,
        seed=0,
        points=50,
    )
    assert cmd_compare(args) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    table = out.with_suffix(".md").read_text()
    assert table in printed
    finals = [json.loads((two_seeds / f"seed-{s}" / "eval.json").read_text())["mean_return"] for s in (0, 1)]
    assert f"| cartpole-dqn | 2 | 0: {finals[0]:.1f}, 1: {finals[1]:.1f} | {np.mean(finals):.1f} [" in table
    [summary] = summarize(group_runs(find_runs([two_seeds])), resamples=100, points=4)
    assert summary.curve_kind == "evaluation"  # the periodic evaluations, then eval.json at 600
    first = min(
        r["env_steps"]
        for r in read_progress(two_seeds / "seed-0" / "progress.csv")
        if "eval_mean_return" in r
    )
    assert summary.curve is not None and summary.curve.x.tolist() == pytest.approx(np.linspace(first, 600, 4))
    assert summary.curve.mean[-1] == pytest.approx(np.mean(finals))
