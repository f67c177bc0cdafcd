"""The learner's schedule on the in-process transport: fragment sizes, updates pro rata, sample calls in flight."""

import pytest
from test_runner import tiny

from drivetrain.distributed import learner as learner_module
from drivetrain.distributed.runner import train_distributed
from drivetrain.distributed.topology import InProcessTransport
from drivetrain.train import ConfigError


class Recording(InProcessTransport):
    """Records each collect's size and the order of sample calls sent and taken."""

    def __init__(self, events):
        super().__init__()
        self.events = events
        self.collects: list[tuple[int, bool]] = []

    def collect(self, index, num_steps, warmup):
        self.collects.append((num_steps, warmup))
        super().collect(index, num_steps, warmup)

    def sample_async(self, num_batches, batch_size, num_steps):
        self.events.append(("send", num_batches))
        take = super().sample_async(num_batches, batch_size, num_steps)

        def recorded():
            batches = take()
            self.events.append(("take", 0 if batches is None else len(batches)))
            return batches

        return recorded


def run(config, path, monkeypatch):
    events: list[tuple[str, int]] = []
    real = learner_module.train_batch

    def train_batch(*args, **kwargs):
        events.append(("train", 1))
        return real(*args, **kwargs)

    monkeypatch.setattr(learner_module, "train_batch", train_batch)
    transport = Recording(events)
    result = train_distributed(config, path, transport=transport, verbose=False)
    return result, transport


def test_fragment_steps_sets_the_collect_size_and_the_updates_stay_pro_rata(tmp_path, monkeypatch):
    result, transport = run(tiny(("execution.fragment_steps", "200")), tmp_path / "run", monkeypatch)
    sizes = [n for n, warmup in transport.collects if not warmup]
    assert sizes and max(sizes) == 200 and sizes.count(200) >= len(sizes) - 1
    assert [n for n, warmup in transport.collects if warmup] == [200, 100]  # learning_starts 300
    assert result.env_steps == 1600 == sum(c.env_steps for c in transport.collectors)
    # gradient_steps 8 per update_period 100 env steps: 16 updates per fragment of 200
    assert result.train_steps == (1600 - 300) * 8 // 100


def test_the_next_sample_call_is_on_its_way_while_the_last_batches_train(tmp_path, monkeypatch):
    result, transport = run(tiny(("execution.batches_per_sample", "3")), tmp_path / "run", monkeypatch)
    events = transport.events
    takes = [i for i, (kind, _) in enumerate(events) if kind == "take"]
    # a call whose batches are taken and then trained with the next call already sent
    overlapped = sum([kind for kind, _ in events[i + 1 : i + 3]] == ["send", "train"] for i in takes)
    # 8 updates owed per fragment, 3 per call: calls of 3, 3, 2; the first two overlap the next
    assert overlapped >= 2 * (len(takes) // 3)
    # no batch is sampled and dropped: every sampled window was trained on
    sent = sum(n for kind, n in events if kind == "take")
    assert sent == result.train_steps == sum(n for kind, n in events if kind == "train")
    assert transport.server.counters()["windows_sampled"] == sent * 16


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ([("execution.fragment_steps", "5")], r"execution\.fragment_steps \(5\) x loop\.gradient_steps"),
        (
            [("execution.fragment_steps", "50"), ("execution.envs_per_collector", "4")],
            r"execution\.fragment_steps \(50\) must be a multiple of the environments",
        ),
        ([("execution.fragment_steps", "0")], r"ExecutionConfig\.fragment_steps: expected None or >= 1"),
    ],
)
def test_bad_fragment_steps_are_refused_by_name(tmp_path, monkeypatch, overrides, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        run(tiny(*overrides), tmp_path / "bad", monkeypatch)
    assert not (tmp_path / "bad").exists()


def test_weights_go_out_when_a_collect_starts_and_collectors_act_with_the_latest(tmp_path, monkeypatch):
    published, started = [], []
    real_get = learner_module.get_policy_weights

    def get(agent):
        published.append(agent.train_step)
        return real_get(agent)

    monkeypatch.setattr(learner_module, "get_policy_weights", get)

    class Started(InProcessTransport):
        def collect(self, index, num_steps, warmup, count_boundaries=False):
            started.append(published[-1] if published else None)
            super().collect(index, num_steps, warmup, count_boundaries)

        def next_fragment(self):
            got = super().next_fragment()
            started.append(("acted with", got.fragment.weights_version))
            return got

    config = tiny(("execution.collectors", "1"), ("execution.batches_per_sample", "2"))
    result = train_distributed(config, tmp_path / "run", transport=Started(), verbose=False)
    collects = [s for s in started if not isinstance(s, tuple)]
    # 8 updates per fragment in calls of 2 batches: one broadcast per collect, not one per call
    assert result.train_steps >= 8 * 5
    assert len(published) <= len(collects) + 1 < result.train_steps // 2
    # every collect acts with the weights of the learner's latest update when it started
    acted = [s[1] for s in started if isinstance(s, tuple)]
    assert acted == collects
