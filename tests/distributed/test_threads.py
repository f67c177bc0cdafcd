"""execution.backend = "threads": collectors in threads beside the learner, counters and schedule exact."""

import contextlib
import json
import threading

import pytest
from test_runner import tiny

from drivetrain.distributed import learner as learner_module
from drivetrain.distributed.collector import Collector
from drivetrain.distributed.runner import train_distributed
from drivetrain.distributed.thread_topology import ThreadTransport
from drivetrain.distributed.topology import InProcessTransport
from drivetrain.train import ConfigError, apply_overrides, get_preset, load_checkpoint, train


def threads(*overrides, preset="cartpole-dqn"):
    return tiny(("execution.backend", "threads"), *overrides, preset=preset)


def test_a_threads_run_collects_in_other_threads_and_counts_exactly(tmp_path, monkeypatch):
    collecting_threads = set()
    real = Collector.collect

    def collect(self, *args, **kwargs):
        collecting_threads.add(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Collector, "collect", collect)
    result = train(threads(), tmp_path / "run", verbose=False)
    assert collecting_threads and all(name.startswith("drivetrain-collector") for name in collecting_threads)
    assert threading.current_thread().name not in collecting_threads
    last = load_checkpoint(max((tmp_path / "run/checkpoints").glob("ckpt-*.pkl")))
    collectors = last["experiment"]["transport"]["collectors"]
    assert result.env_steps == sum(c["env_steps"] for c in collectors) >= 1600
    assert last["experiment"]["transport"]["server"]["counts"]["stored"] == sum(
        c["sequence_number"] for c in collectors
    )
    # the schedule is the config's whatever the threads' timing: gradient_steps per update_period
    assert result.train_steps == pytest.approx((result.env_steps - 300) * 8 / 100, abs=16)
    assert json.loads((tmp_path / "run/eval.json").read_text())["env_steps"] == result.env_steps


def test_a_threads_run_resumes_with_the_checkpoints_counters(tmp_path):
    train(threads(("loop.total_env_steps", "700")), tmp_path / "run", verbose=False)
    saved = load_checkpoint(max((tmp_path / "run/checkpoints").glob("ckpt-*.pkl")))
    result = train(threads(), tmp_path / "run", resume=True, verbose=False)
    assert saved["env_steps"] < 1600 <= result.env_steps


def test_an_error_in_a_collector_thread_ends_the_run_with_that_error(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("the environment broke")

    monkeypatch.setattr(Collector, "collect", broken)
    with pytest.raises(RuntimeError, match="the environment broke"):
        train(threads(), tmp_path / "run", verbose=False)


def test_ppo_runs_in_threads_too(tmp_path):
    config = apply_overrides(
        get_preset("cartpole-ppo").build(),
        [
            ("execution.backend", "threads"),
            ("execution.collectors", 2),
            ("execution.envs_per_collector", 2),
            ("agent.rollout_steps", 16),
            ("loop.total_env_steps", 512),
            ("loop.eval_interval", 256),
            ("loop.eval_episodes", 2),
            ("loop.final_eval_episodes", 2),
            ("loop.progress_bar", False),
            ("loop.tensorboard", False),
        ],
    )
    result = train(config, tmp_path / "run", verbose=False)
    assert result.env_steps >= 512 and result.train_steps > 0


def test_the_thread_transport_is_the_default_of_the_threads_backend():
    from drivetrain.distributed.runner import _default_transport

    assert isinstance(_default_transport(threads()), ThreadTransport)
    with pytest.raises(
        ValueError, match=r"execution\.backend: expected one of \['local', 'ray', 'threads'\]"
    ):
        tiny(("execution.backend", "processes"))
    with pytest.raises(ConfigError, match=r"execution\.fragment_steps"):
        train(threads(("execution.fragment_steps", "5")), "unused")


def sequenced(base, events):
    """A ``base`` transport that records, in the learner's thread, when collects start and fragments arrive."""

    class Sequenced(base):
        def collect(self, *args, **kwargs):
            events.append("collect")
            super().collect(*args, **kwargs)

        def next_fragment(self):
            got = super().next_fragment()
            events.append("fragment")
            return got

    return Sequenced()


@pytest.mark.parametrize("base", [ThreadTransport, InProcessTransport])
def test_a_lone_collector_steps_its_next_fragment_while_the_learner_trains(tmp_path, monkeypatch, base):
    events: list[str] = []
    real = learner_module.train_batch

    def train_batch(*args, **kwargs):
        events.append("train")
        return real(*args, **kwargs)

    monkeypatch.setattr(learner_module, "train_batch", train_batch)
    transport = sequenced(base, events)
    result = train_distributed(
        threads(("execution.collectors", "1")), tmp_path / "run", transport=transport, verbose=False
    )
    # the fragments trained on (all but the warm-up's): was the next collect started before training?
    trained = [i for i, e in enumerate(events) if e == "fragment" and "train" in events[i + 1 : i + 3]]
    assert len(trained) >= 5 and result.train_steps > 0
    ahead = [events[i + 1] == "collect" for i in trained[:-1]]
    # threads: always; in-process (same seed, same run): never, collects stay in the learner's order
    assert all(ahead) if base is ThreadTransport else not any(ahead)


def test_every_collector_gets_its_fragments_taken_in_turn(tmp_path, monkeypatch):
    """Finished fragments are taken in the order their collects started: none waits while another
    collector's is taken again and again, its weights growing old (collector 0 first, always, had
    collector 1's fragments inserted ~1,600 updates after their weights)."""
    lags: list[int] = []  # updates published since each fragment's weights, when it is taken
    real = ThreadTransport.next_fragment

    def next_fragment(self):
        got = real(self)
        if not got.warmup:
            lags.append(self._weights[0] - got.fragment.weights_version)
        return got

    monkeypatch.setattr(ThreadTransport, "next_fragment", next_fragment)
    train(threads(("loop.total_env_steps", "3000")), tmp_path / "run", verbose=False)
    # a 100-step fragment is 8 updates: at most the other collector's fragment and one more came
    # between a fragment's weights and its insertion
    assert len(lags) >= 20 and max(lags) <= 2 * 8, sorted(lags)


def test_apex_epsilons_leave_the_learners_epsilon_schedule_out_of_the_rows(tmp_path):
    from drivetrain.train.logger import read_progress

    train(threads(("loop.total_env_steps", "700")), tmp_path / "plain", verbose=False)
    assert "epsilon" in read_progress(tmp_path / "plain/progress.csv")[-1]
    train(
        threads(("loop.total_env_steps", "700"), ("execution.apex_epsilons", "true")),
        tmp_path / "apex",
        verbose=False,
    )
    assert all("epsilon" not in row for row in read_progress(tmp_path / "apex/progress.csv"))


def test_a_window_longer_than_a_shards_share_per_environment_is_refused_by_name(tmp_path):
    config = threads(("replay.capacity", "8"), ("loop.learning_starts", "8"), ("agent.n_step", "5"))
    with pytest.raises(
        ConfigError, match=r"keeps 4 items per environment .* fewer than one window of 6 steps"
    ):
        train(config, tmp_path / "run", verbose=False)


def test_a_threads_run_seeds_torchs_global_generator_as_a_local_run_does(tmp_path):
    import torch

    from drivetrain.train.experiment import run_seeds

    torch.manual_seed(123)  # whatever the process did before
    config = threads(("loop.total_env_steps", "700"))
    train(config, tmp_path / "run", verbose=False)
    assert torch.initial_seed() == run_seeds(config.seed).torch_global


def test_with_a_rate_limit_training_waits_for_learning_starts_env_steps(tmp_path, monkeypatch):
    first = []
    original = learner_module.Learner._train

    def recording(self, limit, refused=False):
        before = self.agent.train_step
        done = original(self, limit, refused)
        if self.agent.train_step > before and not first:
            first.append(self.metrics.env_steps.result())
        return done

    monkeypatch.setattr(learner_module.Learner, "_train", recording)
    config = threads(
        ("execution.collectors", "1"), ("env.num_envs", "1"), ("loop.total_env_steps", "400"),
        ("loop.learning_starts", "300"), ("loop.update_period", "4"), ("loop.gradient_steps", "1"),
        ("execution.samples_per_insert", "1.0"), ("loop.checkpoint_interval", "0"),
    )  # fmt: skip
    train(config, tmp_path / "run", verbose=False)
    assert first and first[0] >= 300  # the replay's minimum counts items, boundaries included


def test_a_rate_limit_that_could_ask_for_samples_before_any_window_is_refused_by_name(tmp_path):
    config = threads(
        ("execution.collectors", "2"), ("env.num_envs", "2"), ("agent.n_step", "3"),
        ("execution.samples_per_insert", "1.0"), ("loop.learning_starts", "10"),
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"loop.learning_starts \(10\) must be at least 16"):
        train(config, tmp_path / "run", verbose=False)
    assert not (tmp_path / "run" / "progress.csv").exists()


@pytest.mark.parametrize("backend", ["local", "threads"])
def test_a_resume_without_the_replay_refills_it_before_training_on_any_backend(tmp_path, backend):
    settings = (
        ("execution.backend", backend), ("execution.collectors", "1"), ("env.num_envs", "2"),
        ("loop.learning_starts", "300"), ("loop.update_period", "100"), ("loop.gradient_steps", "8"),
        ("loop.checkpoint_replay", "false"), ("loop.checkpoint_interval", "0"),
    )  # fmt: skip
    first = train(tiny(*settings, ("loop.total_env_steps", "800")), tmp_path / "run", verbose=False)
    with (
        pytest.warns(UserWarning, match="no replay buffer")
        if backend == "local"
        else contextlib.nullcontext()
    ):
        again = train(
            tiny(*settings, ("loop.total_env_steps", "1600")), tmp_path / "run", resume=True, verbose=False
        )
    # 800 more env steps, of which 300 refill the empty replay: 500 owe 8 updates per 100
    assert again.train_steps - first.train_steps == 40
