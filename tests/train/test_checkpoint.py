import os
import pickle

import numpy as np
import pytest

from drivetrain.train import checkpoint as ckpt
from drivetrain.train.checkpoint import CheckpointDir, CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip_of_arrays_and_nested_state(tmp_path):
    state = {"w": np.arange(10_000, dtype=np.float32), "rng": np.random.default_rng(3).bit_generator.state}
    path = save_checkpoint(state, tmp_path / "a.pkl")
    back = load_checkpoint(path)
    np.testing.assert_array_equal(back["w"], state["w"])
    assert back["rng"] == state["rng"]
    assert not (tmp_path / "a.pkl.tmp").exists()


def test_header_records_the_payload_checksum(tmp_path):
    path = save_checkpoint({"x": 1}, tmp_path / "a.pkl")
    raw = path.read_bytes()
    header, payload = raw[:128], raw[128:]
    assert header.startswith(b"DRIVETRAIN-CHECKPOINT 1 sha256=")
    import hashlib

    assert hashlib.sha256(payload).hexdigest().encode() in header
    assert pickle.loads(payload) == {"x": 1}


def test_flipped_byte_is_a_clear_checksum_error(tmp_path):
    path = save_checkpoint({"w": np.ones(1000)}, tmp_path / "a.pkl")
    raw = bytearray(path.read_bytes())
    raw[500] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"a\.pkl is corrupted: sha256"):
        load_checkpoint(path)


def test_truncated_and_foreign_files_are_rejected(tmp_path):
    path = save_checkpoint({"w": np.ones(1000)}, tmp_path / "a.pkl")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)
    other = tmp_path / "b.pkl"
    other.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match="not a drivetrain checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pkl")


class Boom:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = save_checkpoint({"version": "old"}, tmp_path / "a.pkl")
    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint({"version": "new", "bad": Boom()}, path)
    assert load_checkpoint(path) == {"version": "old"}
    assert sorted(os.listdir(tmp_path)) == ["a.pkl"]


def test_a_crash_before_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    # Simulate a kill at the last moment: the new file is complete but not yet renamed.
    path = save_checkpoint({"version": "old"}, tmp_path / "a.pkl")

    def killed(tmp, final):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "_replace_atomically", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"version": "new"}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"version": "old"}
    # and once the rename happens, the file is entirely the new one
    save_checkpoint({"version": "new"}, path)
    assert load_checkpoint(path) == {"version": "new"}


def test_a_kill_midway_through_writing_leaves_the_old_file(tmp_path):
    # A child process is killed while it streams a large checkpoint over the old one.
    import multiprocessing
    import signal
    import time

    path = tmp_path / "a.pkl"
    save_checkpoint({"version": "old"}, path)
    ctx = multiprocessing.get_context("fork")

    def slow_writer():
        class Slow:
            def __reduce__(self):
                time.sleep(30)
                return (dict, ())

        save_checkpoint({"big": np.ones(1_000_000), "slow": Slow()}, path)

    proc = ctx.Process(target=slow_writer)
    proc.start()
    tmp = tmp_path / "a.pkl.tmp"
    deadline = time.monotonic() + 20
    while not (tmp.exists() and tmp.stat().st_size > 1_000_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert tmp.exists()  # the torn temporary file is there ...
    assert load_checkpoint(path) == {"version": "old"}  # ... and the checkpoint is intact
    assert CheckpointDir(tmp_path).steps() == []  # a .tmp file is never taken for a checkpoint


def test_checkpoint_dir_keeps_the_newest(tmp_path):
    d = CheckpointDir(tmp_path / "checkpoints", keep=2)
    assert d.latest() is None
    for step in (1000, 2000, 3000):
        d.save({"step": step}, step)
    assert d.steps() == [2000, 3000]
    assert load_checkpoint(d.latest()) == {"step": 3000}
    assert d.latest().name == "ckpt-000000003000.pkl"


def test_tensors_come_back_exactly_with_their_dtype_shape_and_grad_flag(tmp_path):
    import torch

    state = {
        "f32": torch.randn(3, 4),
        "strided": torch.arange(12.0).reshape(3, 4).t(),  # a non-contiguous view
        "i64": torch.arange(5),
        "flag": torch.tensor([True, False]),
        "bf16": torch.ones(2, dtype=torch.bfloat16),  # no NumPy dtype: PyTorch's own pickling
        "leaf": torch.zeros(2, requires_grad=True),
        "param": torch.nn.Parameter(torch.ones(2)),
        "scalar": torch.tensor(7.5),
    }
    path = save_checkpoint(state, tmp_path / "t.pkl")
    loaded = load_checkpoint(path)
    for key, value in state.items():
        got = loaded[key]
        assert type(got) is type(value) and got.dtype == value.dtype and got.shape == value.shape, key
        assert torch.equal(got.detach(), value.detach()), key
        assert got.requires_grad == value.requires_grad, key
    # the fast path: NumPy arrays in the payload, not PyTorch's per-storage archives
    payload = path.read_bytes()
    assert b"tensor_from_numpy" in payload
    assert payload.count(b"_rebuild_tensor") == 1  # only the bfloat16 one


def test_a_stop_right_after_the_write_still_keeps_only_the_newest(tmp_path, monkeypatch):
    written = ckpt.save_checkpoint

    def then_a_second_signal(state, path):
        written(state, path)
        raise KeyboardInterrupt  # as a second SIGINT between the write and the pruning

    folder = CheckpointDir(tmp_path, keep=2)
    for step in (1, 2):
        folder.save({"step": step}, step)
    monkeypatch.setattr(ckpt, "save_checkpoint", then_a_second_signal)
    with pytest.raises(KeyboardInterrupt):
        folder.save({"step": 3}, 3)
    assert folder.steps() == [2, 3]
