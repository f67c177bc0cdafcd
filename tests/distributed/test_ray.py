"""The distributed run on Ray: a run completes, a killed collector is restarted, a checkpoint survives Ray.

Run with ``python -m pytest -m ray tests/distributed/test_ray.py`` (one ``ray.init(num_cpus=2)``
per test session: the ``ray_session`` fixture of conftest.py).
"""

import json
import os
import signal

import numpy as np
import pytest

from drivetrain.core import types
from drivetrain.distributed.ray_topology import RayTransport
from drivetrain.distributed.replay_server import ReplayServer
from drivetrain.distributed.runner import DistributedRunError, _build_learner, train_distributed
from drivetrain.train import apply_overrides, get_preset, load_checkpoint

pytestmark = pytest.mark.ray

FIRST, LAST = int(types.StepType.FIRST), int(types.StepType.LAST)
TINY = [
    ("execution.backend", "ray"),
    ("execution.collectors", "2"),
    ("loop.total_env_steps", "2000"),
    ("loop.learning_starts", "300"),
    ("loop.update_period", "100"),
    ("loop.gradient_steps", "8"),
    ("loop.batch_size", "16"),
    ("loop.eval_interval", "1000"),
    ("loop.eval_episodes", "2"),
    ("loop.final_eval_episodes", "2"),
    ("loop.checkpoint_interval", "800"),
    ("loop.log_interval", "400"),
    ("loop.progress_bar", "false"),
    ("loop.tensorboard", "false"),
    ("agent.fc_layers", "16,16"),
    ("replay.capacity", "4000"),
]


def tiny(*overrides):
    return apply_overrides(get_preset("cartpole-dqn").build(), [*TINY, *overrides])


def latest(folder):
    return load_checkpoint(max((folder / "checkpoints").glob("ckpt-*.pkl")))


def same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


class Delivered:
    """The fragments the learner got (all of them are inserted), and an optional kill of collector 0."""

    def __init__(self, kill_at=None):
        self.kill_at, self.killed, self.fragments = kill_at, None, []

    def __call__(self, transport, got):
        self.fragments.append(got.fragment)
        if self.kill_at is not None and self.killed is None and len(self.fragments) == self.kill_at:
            self.killed = transport.collector_pids()[0]
            os.kill(self.killed, signal.SIGKILL)


def test_a_run_on_ray_completes_and_writes_eval_json(ray_session, tmp_path):
    delivered = Delivered()
    result = train_distributed(tiny(), tmp_path / "run", transport=RayTransport(delivered), verbose=False)
    evaluation = json.loads((tmp_path / "run/eval.json").read_text())
    assert evaluation["env_steps"] == result.env_steps == sum(f.env_steps for f in delivered.fragments)
    assert result.env_steps >= 2000 and result.train_steps > 0


def test_a_killed_collector_is_restarted_and_the_run_completes_with_exact_counters(ray_session, tmp_path):
    # a budget long enough that the restarted actor (a new process importing torch: seconds on a
    # loaded machine) is back before the other collector alone has finished the run
    config = tiny(("loop.total_env_steps", "6000"), ("loop.checkpoint_interval", "2000"))
    delivered = Delivered(kill_at=6)
    transport = RayTransport(delivered)
    result = train_distributed(config, tmp_path / "run", transport=transport, verbose=False)
    assert delivered.killed is not None and transport.restarts >= 1
    assert result.env_steps == sum(f.env_steps for f in delivered.fragments)
    snap = latest(tmp_path / "run")
    server_state = snap["experiment"]["transport"]["server"]
    assert server_state["restarts"][0] >= 1
    assert server_state["counts"]["stored"] == len(delivered.fragments)
    numbers = [f.sequence_number for f in delivered.fragments if f.writer_id == 0]
    assert numbers == list(range(len(numbers)))  # the numbers go on across the restart
    # no sampled window crosses the restart: a FIRST inside a window always follows a LAST
    server = ReplayServer(**_build_learner(config)[2])
    server.load_state_dict(server_state)
    for _ in range(50):
        windows, _ = server.replay.sample(64, 2)
        step_type = np.asarray(windows.step_type)
        assert not np.any((step_type[:, 1] == FIRST) & (step_type[:, 0] != LAST))


def test_a_checkpoint_survives_a_ray_shutdown_with_the_same_counters_and_replay(ray_session, tmp_path):
    folder = tmp_path / "run"
    train_distributed(tiny(("loop.total_env_steps", "1000")), folder, transport=RayTransport(), verbose=False)
    saved = latest(folder)
    ray_session.shutdown()
    ray_session.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    seen = {}

    def check(transport, got):
        if not seen:
            seen["state"] = transport.state_dict()
            seen["counters"] = transport.counters()

    result = train_distributed(tiny(), folder, transport=RayTransport(check), resume=True, verbose=False)
    state = seen["state"]
    assert same(state["server"], saved["experiment"]["transport"]["server"])
    assert (
        seen["counters"]["items_inserted"] == saved["experiment"]["transport"]["server"]["limiter"]["inserts"]
    )
    assert result.env_steps >= 2000


def test_a_lost_replay_actor_ends_the_run_with_a_clear_message_and_resume_continues(ray_session, tmp_path):
    folder = tmp_path / "run"
    killed = []

    def kill_the_replay(transport, got):
        if not killed and list((folder / "checkpoints").glob("ckpt-*.pkl")):
            killed.append(latest(folder)["env_steps"])
            ray_session.kill(transport._server, no_restart=True)

    with pytest.raises(DistributedRunError, match=r"replay actor was lost.*--resume"):
        train_distributed(tiny(), folder, transport=RayTransport(kill_the_replay), verbose=False)
    assert killed and killed[0] < 2000
    assert not (folder / "eval.json").exists()
    result = train_distributed(tiny(), folder, transport=RayTransport(), resume=True, verbose=False)
    assert result.env_steps >= 2000
    assert json.loads((folder / "eval.json").read_text())["env_steps"] == result.env_steps


def test_ppo_on_ray_survives_a_killed_collector_with_exact_counters(ray_session, tmp_path):
    config = apply_overrides(
        get_preset("cartpole-ppo").build(),
        [
            ("execution.backend", "ray"),
            ("execution.collectors", 2),
            ("execution.envs_per_collector", 2),
            ("agent.rollout_steps", 32),
            ("loop.total_env_steps", 4000),
            ("loop.eval_interval", 0),
            ("loop.stop_at_return", None),
            ("loop.final_eval_episodes", 2),
            ("loop.checkpoint_interval", 2000),
            ("loop.progress_bar", False),
            ("loop.tensorboard", False),
        ],
    )
    delivered = Delivered(kill_at=4)
    transport = RayTransport(delivered)
    result = train_distributed(config, tmp_path / "run", transport=transport, verbose=False)
    assert delivered.killed is not None and transport.restarts >= 1
    assert result.env_steps == sum(f.env_steps for f in delivered.fragments) >= 4000
    numbers = [f.sequence_number for f in delivered.fragments if f.writer_id == 0]
    assert numbers == list(range(len(numbers)))  # the numbers go on across the restart


def test_a_collector_restarted_before_a_checkpoint_is_saved_renumbered(ray_session, tmp_path):
    """A collector that Ray restarts between the checkpoint's drain and its state call answers from
    a fresh process: it is renumbered (as after a lost collect), its pending fragments collected
    again, and the checkpoint holds the numbers the replay expects next (not a fresh collector's,
    which a resume would find stored already)."""

    class KillBeforeTheStates(RayTransport):
        killed = None

        def _collector_states(self):
            if self.killed is None:
                self.killed = self.collector_pids()[0]
                os.kill(self.killed, signal.SIGKILL)
            return super()._collector_states()

    folder = tmp_path / "run"
    config = tiny(("loop.total_env_steps", "3000"))
    transport = KillBeforeTheStates()
    train_distributed(config, folder, transport=transport, verbose=False)
    assert transport.killed is not None and transport.restarts >= 1
    first = load_checkpoint(min((folder / "checkpoints").glob("ckpt-*.pkl")))
    state = first["experiment"]["transport"]
    assert state["collectors"][0]["sequence_number"] >= 1  # not a fresh collector's 0
    # resuming from that checkpoint goes on without a fragment "stored before"
    resumed = train_distributed(tiny(("loop.total_env_steps", "3500")), folder, transport=RayTransport(),
                                resume=True, verbose=False)  # fmt: skip
    assert resumed.env_steps >= 3500
