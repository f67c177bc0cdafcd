"""On-policy agents on collectors (in-process transport): rounds on the union of rollouts, whole episodes, resume."""

import json
import os
import signal

import numpy as np
import pytest

from drivetrain.core import nest, types
from drivetrain.core.specs import ArraySpec
from drivetrain.distributed.on_policy import OnPolicyLearner, cut_episodes, join_fragments
from drivetrain.distributed.runner import train_distributed
from drivetrain.distributed.topology import InProcessTransport
from drivetrain.replay.rollout import RolloutBatch
from drivetrain.replay.sources import RolloutSource
from drivetrain.train import apply_overrides, get_preset, load_checkpoint
from drivetrain.train.signals import RunInterruptedError

FIRST, MID, LAST = (int(t) for t in (types.StepType.FIRST, types.StepType.MID, types.StepType.LAST))
TINY = [
    ("execution.backend", "ray"),
    ("execution.collectors", 2),
    ("execution.envs_per_collector", 2),
    ("agent.rollout_steps", 16),
    ("loop.total_env_steps", 640),
    ("loop.eval_interval", 320),
    ("loop.eval_episodes", 2),
    ("loop.final_eval_episodes", 2),
    ("loop.checkpoint_interval", 256),
    ("loop.log_interval", 128),
    ("loop.progress_bar", False),
    ("loop.tensorboard", False),
]


def tiny(*overrides, preset="cartpole-ppo"):
    return apply_overrides(get_preset(preset).build(), [*TINY, *overrides])


class Recording(InProcessTransport):
    """Keeps every fragment the learner got; ``restart_at``: restarts collector 0 before that collect."""

    def __init__(self, restart_at=None):
        super().__init__()
        self.got, self.restart_at, self.collects = [], restart_at, 0

    def collect(self, index, num_steps, warmup, count_boundaries=False):
        self.collects += 1
        if index == 0 and self.collects == self.restart_at:
            self.collectors[0].restart(self.collectors[0].sequence_number)
        super().collect(index, num_steps, warmup, count_boundaries)

    def next_fragment(self):
        got = super().next_fragment()
        self.got.append(got)
        return got


def run(config, path, transport=None, **kwargs):
    transport = transport or Recording()
    return train_distributed(config, path, transport=transport, verbose=False, **kwargs), transport


def test_a_ppo_run_trains_on_rounds_of_every_collector_and_counts_exactly(tmp_path):
    result, transport = run(tiny(), tmp_path / "run")
    for name in ("config.json", "progress.jsonl", "agent.pkl", "eval.json", "learning_curve.png"):
        assert (tmp_path / "run" / name).exists(), name
    assert 640 <= result.env_steps < 640 + 4  # the budget, passed by less than one step of the 4 envs
    assert result.env_steps == sum(g.fragment.env_steps for g in transport.got)
    assert result.env_steps == sum(c.env_steps for c in transport.collectors)
    # fragments come in pairs, collector 0 then 1, of as many items of their 2 environments each
    assert [g.index for g in transport.got] == [0, 1] * (len(transport.got) // 2)
    pairs = list(zip(transport.got[::2], transport.got[1::2], strict=True))
    assert all(len(a.items) == len(b.items) and a.items[0].step_type.shape == (2,) for a, b in pairs)
    # a round: all the fragments of one weights version (every item collected with the weights of
    # the latest update); it starts with rollout_steps items, and more while boundaries left it
    # short of rollout_steps x 4 env steps, as the local loop's driver does, or of what was left
    versions = [a.fragment.weights_version for a, _ in pairs]
    assert versions == sorted(versions) and versions[0] == 0
    done = 0
    for version in sorted(set(versions)):
        round_pairs = [(a, b) for a, b in pairs if a.fragment.weights_version == version]
        assert len(round_pairs[0][0].items) == min(16, -(-(640 - done) // 4))
        steps = sum(a.fragment.env_steps + b.fragment.env_steps for a, b in round_pairs)
        assert min(64, 640 - done) <= steps < min(64, 640 - done) + 4
        done += steps
    # as many rounds as the learning rate's annealing plans: none trains at a learning rate of 0
    config = tiny().agent
    assert len(set(versions)) == 640 // 64
    assert result.train_steps == len(set(versions)) * config.num_epochs * config.num_minibatches
    assert json.loads((tmp_path / "run/eval.json").read_text())["env_steps"] == result.env_steps


class Interrupting(Recording):
    """Sends this process a SIGINT when the learner takes its ``at``-th fragment."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def next_fragment(self):
        if len(self.got) + 1 == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return super().next_fragment()


def test_the_same_seed_gives_the_same_run_and_a_resume_continues_bit_for_bit(tmp_path):
    # (a shorter budget is no stand-in for an interruption: PPO anneals its learning rate over the budget)
    whole, _ = run(tiny(), tmp_path / "whole")
    run(tiny(), tmp_path / "again")
    assert (tmp_path / "whole/eval.json").read_text() == (tmp_path / "again/eval.json").read_text()
    with pytest.raises(RunInterruptedError):
        run(tiny(), tmp_path / "cut", Interrupting(at=7))
    resumed, _ = run(tiny(), tmp_path / "cut", resume=True)
    assert (resumed.env_steps, resumed.train_steps) == (whole.env_steps, whole.train_steps)
    a = load_checkpoint(max((tmp_path / "whole/checkpoints").glob("ckpt-*.pkl")))
    b = load_checkpoint(max((tmp_path / "cut/checkpoints").glob("ckpt-*.pkl")))
    for key, value in a["experiment"]["agent"]["network"].items():
        assert (value == b["experiment"]["agent"]["network"][key]).all(), key
    assert (tmp_path / "whole/eval.json").read_text() == (tmp_path / "cut/eval.json").read_text()


def test_a_restarted_collector_cuts_its_episodes_and_the_run_completes(tmp_path, monkeypatch):
    cuts = []
    real = OnPolicyLearner._observe

    def observe(self, fragments):
        before = self.cuts
        real(self, fragments)
        cuts.append(self.cuts - before)

    monkeypatch.setattr(OnPolicyLearner, "_observe", observe)
    result, transport = run(tiny(), tmp_path / "run", Recording(restart_at=7))  # collector 0's 4th collect
    assert max(cuts) == sum(cuts) == 2  # its 2 environments, in the round of that collect only
    restarted = transport.got[6]
    assert restarted.index == 0 and (restarted.items[0].step_type == FIRST).all()
    assert result.env_steps == sum(g.fragment.env_steps for g in transport.got)


def _trajectory(step_type, next_step_type):
    step_type, next_step_type = np.asarray(step_type, np.int32), np.asarray(next_step_type, np.int32)
    n = len(step_type)
    return types.Trajectory(
        step_type, np.zeros((n, 1), np.float32), np.zeros(n, np.int64), {}, next_step_type,
        np.ones(n, np.float32), np.ones(n, np.float32),
    )  # fmt: skip


def test_cut_episodes_releases_only_the_items_that_the_new_ones_do_not_continue():
    seen = []

    def prepare(trajectory, trained):
        seen.append((trajectory.step_type.copy(), trained.copy()))
        valid = np.ones(trajectory.step_type.shape, bool)
        valid[:, -1] = False  # the newest item waits for its successor, as PPO's does
        return RolloutBatch(trajectory, np.zeros(valid.shape), np.zeros(valid.shape), valid & ~trained)

    spec = nest.map_structure(lambda x: ArraySpec(x.shape[1:], x.dtype), _trajectory([MID], [MID]))
    source = RolloutSource(
        spec, 2, prepare=prepare, num_epochs=1, num_minibatches=1, rng=np.random.default_rng(0)
    )
    source.observe(_trajectory([FIRST, FIRST], [MID, MID]))
    source.observe(_trajectory([MID, MID], [MID, MID]))
    list(source.batches(4))  # trains the first item of each env; the second is kept
    assert len(source.rollout) == 1
    # env 0 continues (MID after MID); env 1 starts over (FIRST after an item whose next is MID)
    first = _trajectory([MID, FIRST], [MID, MID])
    assert cut_episodes(source, first) == 1
    _, trained = source.rollout.gather()
    assert trained[:, -1].tolist() == [False, True]  # env 1's kept item is never trained on
    assert cut_episodes(source, _trajectory([MID, MID], [MID, MID])) == 0


def test_join_fragments_lines_collectors_up_along_the_environment_axis():
    a = [_trajectory([FIRST], [MID]), _trajectory([MID], [LAST])]
    b = [_trajectory([MID, MID], [MID, MID]), _trajectory([MID, LAST], [MID, FIRST])]
    joined = join_fragments([a, b])
    assert [t.step_type.tolist() for t in joined] == [[FIRST, MID, MID], [MID, MID, LAST]]
    with pytest.raises(RuntimeError, match="different lengths"):
        join_fragments([a, b[:1]])


def test_reinforce_runs_on_collectors_too(tmp_path):
    config = apply_overrides(
        get_preset("cartpole-reinforce").build(),
        [*TINY[:3], *TINY[4:], ("agent.rollout_steps", 64), ("loop.total_env_steps", 512)],
    )
    result, transport = run(config, tmp_path / "run")
    assert result.env_steps == sum(g.fragment.env_steps for g in transport.got) >= 512
    assert len(transport.got[0].items) == len(transport.got[1].items) == 64
